package script

import (
	"cmp"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dmfm/dmfm/lib/dm"
	"github.com/dmfm/dmfm/lib/dmstats"
	"github.com/dmfm/dmfm/lib/filemap"
	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"
)

func init() {
	register("extents", command{usage: "extents FILE", run: cmdExtents})
	register("statslist", command{usage: "statslist [DEV]", run: cmdStatslist})
	register("regions", command{usage: "regions DEV GROUP", run: cmdRegions})
	register("waitgroup", command{usage: waitgroupUsage, run: cmdWaitgroup})
	register("counters", command{usage: countersUsage, neg: true, run: cmdCounters})
	register("groupof", command{usage: "groupof VAR DEV ALIAS", run: cmdGroupof})
}

// DefaultWait is how long waitgroup and daemon exited wait by default.
const DefaultWait = 20 * time.Second

var devnoRE = regexp.MustCompile(`^(\d+):(\d+)$`)

// devID resolves a device argument: a dm name, /dev/mapper/NAME, another
// block device node (/dev/dm-3) or MAJOR:MINOR.
func devID(s string) (dm.DevID, error) {
	if m := devnoRE.FindStringSubmatch(s); m != nil {
		maj, err1 := strconv.ParseUint(m[1], 10, 32)
		min, err2 := strconv.ParseUint(m[2], 10, 32)
		if err1 != nil || err2 != nil {
			return dm.DevID{}, fmt.Errorf("device %q: bad major:minor", s)
		}
		return dm.ByDevno(uint32(maj), uint32(min)), nil
	}
	if name, ok := strings.CutPrefix(s, dm.MapperDir+"/"); ok {
		return dm.ByName(name), nil
	}
	if strings.HasPrefix(s, "/") {
		var st unix.Stat_t
		if err := unix.Stat(s, &st); err != nil {
			return dm.DevID{}, fmt.Errorf("device %s: %w", s, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFBLK {
			return dm.DevID{}, fmt.Errorf("device %s is not a block device", s)
		}
		return dm.ByDevno(unix.Major(st.Rdev), unix.Minor(st.Rdev)), nil
	}
	if s == "" {
		return dm.DevID{}, fmt.Errorf("no device given (is $LABDEV set? run lab first)")
	}
	return dm.ByName(s), nil
}

// withStats runs fn with dm-stats access to the device named by arg.
func withStats(ts *testscript.TestScript, what, arg string, fn func(*dmstats.Stats) error) {
	id, err := devID(arg)
	if err != nil {
		ts.Fatalf("%s: %v", what, err)
	}
	c, err := dm.Open()
	if err != nil {
		ts.Fatalf("%s: %v", what, err)
	}
	defer c.Close()
	if err := fn(dmstats.New(dmstats.DeviceMessenger(c, id))); err != nil {
		ts.Fatalf("%s: %v", what, err)
	}
}

func cmdExtents(ts *testscript.TestScript, _ *state, _ bool, args []string) {
	nargs(ts, "extents FILE", args, 1, 1)
	rs := fileRanges(ts, "extents", args[0])
	fmt.Fprint(ts.Stdout(), formatRanges(rs))
}

func fileRanges(ts *testscript.TestScript, what, name string) []filemap.Range {
	f, err := os.Open(ts.MkAbs(name))
	if err != nil {
		ts.Fatalf("%s: %v", what, err)
	}
	defer f.Close()
	rs, err := filemap.Ranges(f)
	if err != nil {
		ts.Fatalf("%s %s: %v", what, name, err)
	}
	return rs
}

func cmdStatslist(ts *testscript.TestScript, _ *state, _ bool, args []string) {
	nargs(ts, "statslist [DEV]", args, 0, 1)
	dev := ts.Getenv("LABDEV")
	if len(args) == 1 {
		dev = args[0]
	}
	id, err := devID(dev)
	if err != nil {
		ts.Fatalf("statslist: %v", err)
	}
	c, err := dm.Open()
	if err != nil {
		ts.Fatalf("statslist: %v", err)
	}
	defer c.Close()
	reply, err := c.Message(id, 0, "@stats_list")
	if err != nil {
		ts.Fatalf("statslist: %v", err)
	}
	if reply != "" && !strings.HasSuffix(reply, "\n") {
		reply += "\n"
	}
	fmt.Fprint(ts.Stdout(), reply)
}

// groupRanges returns the ranges of group's members, sorted by start, and
// whether the group exists.
func groupRanges(st *dmstats.Stats, group uint64) ([]filemap.Range, bool, error) {
	regions, err := st.List("")
	if err != nil {
		return nil, false, err
	}
	groups, _ := dmstats.GroupsClaiming(regions, filemap.Claims)
	for _, g := range groups {
		if g.ID != group {
			continue
		}
		if _, empty := filemap.DecodeUserData(g.UserData); empty {
			// dmfm keeps the group of a file without extents as its
			// leader alone, marked empty: it maps nothing.
			return []filemap.Range{}, true, nil
		}
		var rs []filemap.Range
		for _, r := range regions {
			if slices.Contains(g.Members, r.ID) {
				rs = append(rs, filemap.Range{Start: r.Start, Length: r.Length})
			}
		}
		sortRanges(rs)
		return rs, true, nil
	}
	return nil, false, nil
}

func sortRanges(rs []filemap.Range) {
	slices.SortFunc(rs, func(a, b filemap.Range) int {
		if c := cmp.Compare(a.Start, b.Start); c != 0 {
			return c
		}
		return cmp.Compare(a.Length, b.Length)
	})
}

func groupArgs(ts *testscript.TestScript, usage string, args []string) (string, uint64) {
	g, err := parseID("GROUP", args[1])
	if err != nil {
		usageErr(ts, usage, "%v", err)
	}
	return args[0], g
}

func cmdRegions(ts *testscript.TestScript, _ *state, _ bool, args []string) {
	const usage = "regions DEV GROUP"
	nargs(ts, usage, args, 2, 2)
	dev, group := groupArgs(ts, usage, args)
	withStats(ts, "regions", dev, func(st *dmstats.Stats) error {
		rs, ok, err := groupRanges(st, group)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("group %d does not exist on %s", group, dev)
		}
		fmt.Fprint(ts.Stdout(), formatRanges(rs))
		return nil
	})
}

// cover merges sorted ranges that touch into runs and reports the first
// overlap, if any.
func cover(rs []filemap.Range) (runs []filemap.Range, overlap string) {
	for _, r := range rs {
		if n := len(runs); n > 0 {
			last := &runs[n-1]
			if r.Start < last.End() && overlap == "" {
				overlap = fmt.Sprintf("%d+%d overlaps %d+%d", r.Start, r.Length, last.Start, last.Length)
			}
			if r.Start <= last.End() {
				if r.End() > last.End() {
					last.Length = r.End() - last.Start
				}
				continue
			}
		}
		runs = append(runs, r)
	}
	return runs, overlap
}

const waitgroupUsage = "waitgroup [-exact] DEV GROUP FILE [TIMEOUT]"

// cmdWaitgroup waits until the group's member regions cover exactly the
// sectors of the file's extents, no region overlapping another (dmfm may
// split an extent's sectors among regions to keep their counters); with
// -exact, until there is one region per extent as lvm2 lays them out. It
// prints the covered runs (or, with -exact, the regions), sorted by start;
// on timeout it fails showing the regions and the extents.
func cmdWaitgroup(ts *testscript.TestScript, _ *state, _ bool, args []string) {
	exact := len(args) > 0 && args[0] == "-exact"
	if exact {
		args = args[1:]
	}
	nargs(ts, waitgroupUsage, args, 3, 4)
	dev, group := groupArgs(ts, waitgroupUsage, args)
	wait := DefaultWait
	if len(args) == 4 {
		d, err := parseTimeout(args[3])
		if err != nil {
			usageErr(ts, waitgroupUsage, "%v", err)
		}
		wait = d
	}
	deadline := time.Now().Add(wait)
	withStats(ts, "waitgroup", dev, func(st *dmstats.Stats) error {
		for {
			want := fileRanges(ts, "waitgroup", args[2])
			sortRanges(want)
			got, ok, err := groupRanges(st, group)
			if err != nil {
				return err
			}
			gotRuns, overlap := cover(got)
			wantRuns, _ := cover(want)
			var done bool
			if exact {
				done = ok && slices.Equal(got, want)
			} else {
				done = ok && overlap == "" && slices.Equal(gotRuns, wantRuns)
			}
			if done {
				if exact {
					fmt.Fprint(ts.Stdout(), formatRanges(got))
				} else {
					fmt.Fprint(ts.Stdout(), formatRanges(gotRuns))
				}
				return nil
			}
			if time.Now().After(deadline) {
				have := "(group does not exist)\n"
				if ok {
					have = formatRanges(got)
					if have == "" {
						have = "(no members)\n"
					}
					if overlap != "" {
						have += "(overlap: " + overlap + ")\n"
					}
				}
				ext := formatRanges(want)
				if ext == "" {
					ext = "(no extents)\n"
				}
				what := "cover"
				if exact {
					what = "have one region per extent of"
				}
				return fmt.Errorf("group %d on %s does not %s %s after %v\nregions of group %d (by start):\n%sextents of %s (by start):\n%s",
					group, dev, what, args[2], wait, group, have, args[2], ext)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

const countersUsage = "counters [-reset] DEV GROUP"

// cmdCounters prints the group's I/O totals and checks that none of them
// went backwards since this script's last counters call for the same
// device and group (with !, that one did); -reset only records them, after
// a step that may rightly lose counts (a punched hole, a truncation).
func cmdCounters(ts *testscript.TestScript, s *state, neg bool, args []string) {
	const usage = countersUsage
	reset := len(args) > 0 && args[0] == "-reset"
	if reset {
		args = args[1:]
		if neg {
			usageErr(ts, usage, "! counters -reset: -reset compares nothing")
		}
	}
	nargs(ts, usage, args, 2, 2)
	dev, group := groupArgs(ts, usage, args)
	var cur dmstats.Counters
	withStats(ts, "counters", dev, func(st *dmstats.Stats) error {
		regions, err := st.List("")
		if err != nil {
			return err
		}
		groups, _ := dmstats.GroupsClaiming(regions, filemap.Claims)
		for _, g := range groups {
			if g.ID == group {
				t, err := st.GroupTotals(g, regions, false)
				cur = t.Counters
				return err
			}
		}
		return fmt.Errorf("group %d does not exist on %s", group, dev)
	})
	fmt.Fprintf(ts.Stdout(), "reads %d read_sectors %d writes %d write_sectors %d\n", cur.Reads, cur.ReadSectors, cur.Writes, cur.WriteSectors)
	key := dev + "\x00" + strconv.FormatUint(group, 10)
	prev, seen := s.counters[key]
	s.counters[key] = cur
	if reset {
		return
	}
	var back []string
	for _, c := range []struct {
		name      string
		prev, cur uint64
	}{
		{"reads", prev.Reads, cur.Reads},
		{"read_sectors", prev.ReadSectors, cur.ReadSectors},
		{"writes", prev.Writes, cur.Writes},
		{"write_sectors", prev.WriteSectors, cur.WriteSectors},
	} {
		if c.cur < c.prev {
			back = append(back, fmt.Sprintf("%s %d -> %d", c.name, c.prev, c.cur))
		}
	}
	switch {
	case !seen && neg:
		ts.Fatalf("! counters: no earlier counters for group %d on %s to compare with", group, dev)
	case len(back) > 0 && !neg:
		ts.Fatalf("counters of group %d on %s went backwards: %s", group, dev, strings.Join(back, ", "))
	case len(back) == 0 && neg:
		ts.Fatalf("counters of group %d on %s did not go backwards", group, dev)
	}
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// cmdGroupof sets $VAR to the id of the one group on DEV whose alias is
// ALIAS, so that scripts can name groups whose ids depend on timing.
func cmdGroupof(ts *testscript.TestScript, _ *state, _ bool, args []string) {
	const usage = "groupof VAR DEV ALIAS"
	nargs(ts, usage, args, 3, 3)
	if !envNameRE.MatchString(args[0]) {
		usageErr(ts, usage, "VAR %q is not a variable name", args[0])
	}
	withStats(ts, "groupof", args[1], func(st *dmstats.Stats) error {
		regions, err := st.List("")
		if err != nil {
			return err
		}
		groups, _ := dmstats.GroupsClaiming(regions, filemap.Claims)
		var ids []string
		for _, g := range groups {
			if g.Alias == args[2] {
				ids = append(ids, strconv.FormatUint(g.ID, 10))
			}
		}
		switch len(ids) {
		case 0:
			return fmt.Errorf("no group on %s is named %q", args[1], args[2])
		case 1:
			ts.Setenv(args[0], ids[0])
			return nil
		}
		return fmt.Errorf("%d groups on %s are named %q: %s", len(ids), args[1], args[2], strings.Join(ids, ", "))
	})
}
