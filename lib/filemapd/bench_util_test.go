package filemapd

// Measuring helpers of the lab benchmarks (bench_lab_test.go). They need no
// device-mapper, so they are tested here, on the host.

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dmfm/dmfm/lib/dmstats"
	"github.com/dmfm/dmfm/lib/fiemap"
	"github.com/dmfm/dmfm/lib/filemap"
)

// benchUnion merges ranges into sorted disjoint ranges, adjacent ones
// joined: what a set of regions covers, whatever their layout.
func benchUnion(rs []filemap.Range) []filemap.Range {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b filemap.Range) int {
		switch {
		case a.Start < b.Start:
			return -1
		case a.Start > b.Start:
			return 1
		}
		return 0
	})
	var out []filemap.Range
	for _, r := range rs {
		if r.Length == 0 {
			continue
		}
		if n := len(out); n > 0 && r.Start <= out[n-1].End() {
			out[n-1].Length = max(out[n-1].End(), r.End()) - out[n-1].Start
			continue
		}
		out = append(out, r)
	}
	return out
}

// benchCovers reports whether every range of want lies inside one range of
// cover, a union (benchUnion).
func benchCovers(cover, want []filemap.Range) bool {
	for _, w := range want {
		i, _ := slices.BinarySearchFunc(cover, w.Start, func(c filemap.Range, s uint64) int {
			switch {
			case c.End() <= s:
				return -1
			case c.Start > s:
				return 1
			}
			return 0
		})
		if i == len(cover) || cover[i].Start > w.Start || cover[i].End() < w.End() {
			return false
		}
	}
	return true
}

// benchGroupRanges finds the one group named alias in a listing and returns
// it with the union of its members' ranges; false when there is no such
// group, more than one, or a member is missing from the listing.
func benchGroupRanges(regions []dmstats.Region, alias string) (dmstats.Group, []filemap.Range, bool) {
	groups, _ := dmstats.Groups(regions)
	var g dmstats.Group
	found := 0
	for _, c := range groups {
		if c.Alias == alias {
			g = c
			found++
		}
	}
	if found != 1 {
		return dmstats.Group{}, nil, false
	}
	var rs []filemap.Range
	for _, id := range g.Members {
		i := slices.IndexFunc(regions, func(r dmstats.Region) bool { return r.ID == id })
		if i < 0 {
			return dmstats.Group{}, nil, false
		}
		rs = append(rs, filemap.Range{Start: regions[i].Start, Length: regions[i].Length})
	}
	return g, benchUnion(rs), true
}

// benchPhysical returns the device sectors that bytes [off, off+n) of a file
// occupy, given its FIEMAP extents; an error when part of them is not
// allocated.
func benchPhysical(exts []fiemap.Extent, off, n uint64) ([]filemap.Range, error) {
	var out []filemap.Range
	at, end := off, off+n
	for _, e := range exts {
		if at >= end {
			break
		}
		if e.End() <= at || e.Logical >= end {
			continue
		}
		if e.Logical > at {
			return nil, fmt.Errorf("bytes %d+%d of the file are not allocated", at, e.Logical-at)
		}
		stop := min(e.End(), end)
		phys := e.Physical + (at - e.Logical)
		out = append(out, filemap.Range{
			Start:  phys / filemap.SectorSize,
			Length: (phys+stop-at+filemap.SectorSize-1)/filemap.SectorSize - phys/filemap.SectorSize,
		})
		at = stop
	}
	if at < end {
		return nil, fmt.Errorf("bytes %d+%d of the file are not allocated", at, end-at)
	}
	return benchUnion(out), nil
}

// benchPercentile returns the p-th percentile (0 < p <= 100) of xs by the
// nearest-rank method; NaN when xs is empty.
func benchPercentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Sorted(slices.Values(xs))
	k := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(k, 0), len(s)-1)]
}

// benchStraceSummary reads the table `strace -c` writes: the calls of each
// system call and the total.
func benchStraceSummary(s string) (calls map[string]uint64, total uint64, err error) {
	calls = map[string]uint64{}
	if strings.TrimSpace(s) == "" {
		return calls, 0, nil // strace writes no table when nothing was traced
	}
	sawTotal := false
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// "% time seconds usecs/call calls [errors] syscall"
		if len(f) < 5 || f[0] == "%" || strings.HasPrefix(f[0], "-") {
			continue
		}
		n, err := strconv.ParseUint(f[3], 10, 64)
		if err != nil {
			return nil, 0, fmt.Errorf("strace summary: bad calls column in %q", sc.Text())
		}
		name := f[len(f)-1]
		if name == "total" {
			total, sawTotal = n, true
			continue
		}
		calls[name] += n
	}
	if !sawTotal {
		return nil, 0, errors.New("strace summary: no total line")
	}
	return calls, total, nil
}

// benchCtxSwitches sums the voluntary and involuntary context switches of
// every thread of process pid: how often it was put on a CPU.
func benchCtxSwitches(pid int) (uint64, error) {
	tasks, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "task"))
	if err != nil {
		return 0, fmt.Errorf("threads of %d: %w", pid, err)
	}
	var sum uint64
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "task", t.Name(), "status"))
		if errors.Is(err, os.ErrNotExist) {
			continue // the thread ended meanwhile
		}
		if err != nil {
			return 0, err
		}
		seen := 0
		for line := range strings.Lines(string(b)) {
			k, v, ok := strings.Cut(line, ":")
			if !ok || (k != "voluntary_ctxt_switches" && k != "nonvoluntary_ctxt_switches") {
				continue
			}
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("thread %s of %d: %s: %w", t.Name(), pid, k, err)
			}
			sum += n
			seen++
		}
		if seen != 2 {
			return 0, fmt.Errorf("thread %s of %d: no context switch counts in its status", t.Name(), pid)
		}
	}
	return sum, nil
}

// benchWakeups counts the times a process woke in a series of readings of
// its context switch counter, taken at a steady rate: the readings that
// grew after one that did not (or first).
func benchWakeups(series []uint64) int {
	n := 0
	quiet := true
	for i := 1; i < len(series); i++ {
		active := series[i] > series[i-1]
		if active && quiet {
			n++
		}
		quiet = !active
	}
	return n
}

// benchUpdateTimes returns, in ms, the "took" of every update the daemon's
// text log (verbose 1 or more) reports as done.
func benchUpdateTimes(log string) ([]float64, error) {
	var ms []float64
	for line := range strings.Lines(log) {
		if !strings.Contains(line, " msg=updated ") {
			continue
		}
		_, rest, ok := strings.Cut(line, " took=")
		if !ok {
			return nil, fmt.Errorf("update line without its time: %q", line)
		}
		v, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("update line %q: %w", line, err)
		}
		ms = append(ms, float64(d.Microseconds())/1000)
	}
	return ms, nil
}

func TestBenchUnionCovers(t *testing.T) {
	r := func(s, l uint64) filemap.Range { return filemap.Range{Start: s, Length: l} }
	tests := []struct {
		name  string
		in    []filemap.Range
		union []filemap.Range
		want  []filemap.Range
		cover bool
	}{
		{"empty", nil, nil, []filemap.Range{r(0, 8)}, false},
		{"adjacent joined", []filemap.Range{r(16, 8), r(0, 8), r(8, 8)}, []filemap.Range{r(0, 24)}, []filemap.Range{r(4, 16)}, true},
		{"overlap joined", []filemap.Range{r(0, 16), r(8, 16)}, []filemap.Range{r(0, 24)}, []filemap.Range{r(0, 24)}, true},
		{"gap kept", []filemap.Range{r(0, 8), r(16, 8)}, []filemap.Range{r(0, 8), r(16, 8)}, []filemap.Range{r(4, 16)}, false},
		{"both sides of a gap", []filemap.Range{r(0, 8), r(16, 8)}, []filemap.Range{r(0, 8), r(16, 8)}, []filemap.Range{r(0, 8), r(16, 8)}, true},
		{"past the end", []filemap.Range{r(0, 8)}, []filemap.Range{r(0, 8)}, []filemap.Range{r(4, 8)}, false},
		{"before the start", []filemap.Range{r(8, 8)}, []filemap.Range{r(8, 8)}, []filemap.Range{r(0, 4)}, false},
		{"zero length dropped", []filemap.Range{r(8, 0), r(0, 8)}, []filemap.Range{r(0, 8)}, []filemap.Range{r(0, 8)}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := benchUnion(tc.in)
			if !slices.Equal(u, tc.union) {
				t.Fatalf("union %v = %v, want %v", tc.in, u, tc.union)
			}
			if got := benchCovers(u, tc.want); got != tc.cover {
				t.Fatalf("covers(%v, %v) = %v, want %v", u, tc.want, got, tc.cover)
			}
		})
	}
}

func TestBenchGroupRanges(t *testing.T) {
	const list = `0: 100+8 8 dmstats DMS_GROUP="a":0,2-3#-
1: 500+8 8 dmstats -
2: 108+8 8 dmstats -
3: 200+16 16 dmstats -
4: 600+8 8 dmstats DMS_GROUP="b":4#-
5: 700+8 8 dmstats DMS_GROUP="b":5#-
6: 800+8 8 dmstats DMS_GROUP="c":6-7#-
`
	regions, err := dmstats.ParseList(list, "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		alias string
		id    uint64
		want  []filemap.Range
		ok    bool
	}{
		{"a", 0, []filemap.Range{{Start: 100, Length: 16}, {Start: 200, Length: 16}}, true},
		{"b", 0, nil, false}, // two groups of that name
		{"c", 6, []filemap.Range{{Start: 800, Length: 8}}, true}, // member 7 is gone: dropped, as lvm2 does
		{"d", 0, nil, false},
	}
	for _, tc := range tests {
		g, rs, ok := benchGroupRanges(regions, tc.alias)
		if ok != tc.ok || g.ID != tc.id || !slices.Equal(rs, tc.want) {
			t.Errorf("%s: group %d %v %v, want %d %v %v", tc.alias, g.ID, rs, ok, tc.id, tc.want, tc.ok)
		}
	}
}

func TestBenchPhysical(t *testing.T) {
	exts := []fiemap.Extent{
		{Logical: 0, Physical: 1 << 20, Length: 64 << 10},
		{Logical: 64 << 10, Physical: 4 << 20, Length: 64 << 10},
		{Logical: 256 << 10, Physical: 8 << 20, Length: 64 << 10},
	}
	tests := []struct {
		off, n uint64
		want   []filemap.Range
		err    bool
	}{
		{0, 64 << 10, []filemap.Range{{Start: 2048, Length: 128}}, false},
		{4096, 4096, []filemap.Range{{Start: 2056, Length: 8}}, false},
		{32 << 10, 64 << 10, []filemap.Range{{Start: 2112, Length: 64}, {Start: 8192, Length: 64}}, false},
		{64 << 10, 128 << 10, nil, true}, // runs into a hole
		{300 << 10, 64 << 10, nil, true}, // past the last extent
		{128 << 10, 4096, nil, true},     // inside the hole
	}
	for _, tc := range tests {
		got, err := benchPhysical(exts, tc.off, tc.n)
		if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
			t.Errorf("benchPhysical(%d, %d) = %v, %v; want %v, error %v", tc.off, tc.n, got, err, tc.want, tc.err)
		}
	}
}

func TestBenchPercentile(t *testing.T) {
	xs := []float64{9, 1, 8, 2, 7, 3, 6, 4, 5, 10}
	tests := []struct{ p, want float64 }{{50, 5}, {95, 10}, {90, 9}, {10, 1}, {1, 1}, {100, 10}}
	for _, tc := range tests {
		if got := benchPercentile(xs, tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if !math.IsNaN(benchPercentile(nil, 50)) {
		t.Error("percentile of nothing is not NaN")
	}
	if xs[0] != 9 {
		t.Error("benchPercentile sorted its input")
	}
}

func TestBenchStraceSummary(t *testing.T) {
	// As strace 6.1 -c -f writes it (columns errors left blank where 0).
	const summary = `% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 45.00    0.000090          18         5           ioctl
 30.00    0.000060           5        12           nanosleep
 25.00    0.000050          25         2         1 futex
------ ----------- ----------- --------- --------- ----------------
100.00    0.000200          10        19         1 total
`
	calls, total, err := benchStraceSummary(summary)
	if err != nil {
		t.Fatal(err)
	}
	if calls["ioctl"] != 5 || calls["nanosleep"] != 12 || calls["futex"] != 2 || len(calls) != 3 || total != 19 {
		t.Fatalf("got %v total %d", calls, total)
	}
	// Nothing traced: strace 6.1 writes nothing at all.
	calls, total, err = benchStraceSummary("")
	if err != nil || total != 0 || len(calls) != 0 {
		t.Fatalf("empty summary: %v %d %v", calls, total, err)
	}
	for _, bad := range []string{"strace: attach: ptrace(PTRACE_SEIZE, 1): Operation not permitted\n", " 1.00 0.1 1 many ioctl\n", summary[:strings.LastIndex(summary, "---")]} {
		if _, _, err := benchStraceSummary(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestBenchCtxSwitches(t *testing.T) {
	before, err := benchCtxSwitches(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		time.Sleep(time.Millisecond) // each sleep puts a thread off and back on a CPU
	}
	after, err := benchCtxSwitches(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after < before+5 {
		t.Fatalf("context switches went from %d to %d over 5 sleeps", before, after)
	}
	if _, err := benchCtxSwitches(1 << 30); err == nil {
		t.Fatal("no error for a process that does not exist")
	}
}

func TestBenchUpdateTimes(t *testing.T) {
	const log = `time=2026-11-30T10:27:56.978Z level=INFO msg=watching group=0 path=/x/reaction.dat mode=inode pid=121
time=2026-11-30T10:27:57.615Z level=DEBUG msg=updated group=0 regions=1 kept=1 added=0 removed=0 took=289.828ms forced=true
time=2026-11-30T10:27:58.199Z level=INFO msg=updated group=0 regions=2 kept=1 added=1 removed=0 took=28.281ms
time=2026-11-30T10:27:59.199Z level=ERROR msg="update failed" err="boom" took=1.5s
time=2026-11-30T10:28:00.492Z level=INFO msg=updated group=3 regions=4 kept=3 added=1 removed=0 took=1.224742s old_group=0
`
	got, err := benchUpdateTimes(log)
	if err != nil {
		t.Fatal(err)
	}
	if want := []float64{289.828, 28.281, 1224.742}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if _, err := benchUpdateTimes("level=INFO msg=updated group=0 took=fast\n"); err == nil {
		t.Fatal("no error for a bad duration")
	}
	if _, err := benchUpdateTimes("level=INFO msg=updated group=0\n"); err == nil {
		t.Fatal("no error for a line without took")
	}
}

func TestBenchWakeups(t *testing.T) {
	tests := []struct {
		series []uint64
		want   int
	}{
		{nil, 0},
		{[]uint64{5}, 0},
		{[]uint64{5, 5, 5}, 0},
		{[]uint64{5, 9}, 1},
		{[]uint64{5, 9, 12, 20, 20}, 1},        // one burst over three readings
		{[]uint64{5, 9, 9, 12, 12, 12, 13}, 3}, // three bursts
		{[]uint64{1, 1, 2, 2, 3, 4, 4}, 2},
	}
	for _, tc := range tests {
		if got := benchWakeups(tc.series); got != tc.want {
			t.Errorf("benchWakeups(%v) = %d, want %d", tc.series, got, tc.want)
		}
	}
}
