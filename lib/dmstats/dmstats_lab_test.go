//go:build lab

package dmstats_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dmfm/dmfm/lab/labtest"
	"github.com/dmfm/dmfm/lib/dm"
	"github.com/dmfm/dmfm/lib/dmstats"
	"github.com/dmfm/dmfm/lib/loop"
	"golang.org/x/sys/unix"
)

// labDevSectors is the size of the test device: 8 MiB.
const labDevSectors = 16384

// labDevice is a dm linear device over a loop device over a file, removed
// (with its regions) when the test ends.
type labDevice struct {
	name string
	c    *dm.Client
	st   *dmstats.Stats
	m    dmstats.Messenger
}

func newLabDevice(t *testing.T) *labDevice {
	t.Helper()
	labtest.RequireDM(t)
	backing := filepath.Join(t.TempDir(), "backing.img")
	if err := os.WriteFile(backing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(backing, labDevSectors*512); err != nil {
		t.Fatal(err)
	}
	ld, err := loop.Attach(backing, loop.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := loop.Detach(ld.Path); err != nil {
			t.Errorf("detach %s: %v", ld.Path, err)
		}
	})
	c, err := dm.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	name := fmt.Sprintf("dmstats-lab-%d-%s", os.Getpid(), strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()))
	if len(name) > 100 {
		name = name[:100]
	}
	_, err = c.Create(name, "", dm.Table{{Start: 0, Length: labDevSectors,
		Target: dm.Linear{Device: fmt.Sprintf("%d:%d", ld.Major, ld.Minor), Offset: 0}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Remove(dm.ByName(name)); err != nil {
			t.Errorf("remove %s: %v", name, err)
		}
	})
	m := dmstats.DeviceMessenger(c, dm.ByName(name))
	return &labDevice{name: name, c: c, st: dmstats.New(m), m: m}
}

func (d *labDevice) create(t *testing.T, o dmstats.CreateOptions) uint64 {
	t.Helper()
	id, err := d.st.Create(o)
	if err != nil {
		t.Fatalf("Create(%+v): %v", o, err)
	}
	return id
}

func (d *labDevice) rawList(t *testing.T) string {
	t.Helper()
	reply, err := d.m.Message("@stats_list")
	if err != nil {
		t.Fatal(err)
	}
	return reply
}

// tool runs dmsetup or dmstats (lvm2 2.03.16 in the lab) on the device.
func tool(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "DM_DISABLE_UDEV=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func TestLabRegions(t *testing.T) {
	d := newLabDevice(t)
	opts := []dmstats.CreateOptions{
		{Areas: 4},
		{Start: 100, Length: 1000, Step: 300, ProgramID: dmstats.DefaultProgramID},
		{Length: 64, Precise: true, Bounds: []time.Duration{500 * time.Microsecond, time.Millisecond, 5 * time.Millisecond}, ProgramID: "42", AuxData: "7"},
		{Length: 8, Bounds: []time.Duration{time.Millisecond, 10 * time.Millisecond, time.Second}},
		{Length: 8, ProgramID: "tab\tprog", AuxData: `a\b"c`},
		{Areas: 3},
		{Length: 8, ProgramID: "space prog", AuxData: "x"},
	}
	want := []dmstats.Region{
		{ID: 0, Start: 0, Length: labDevSectors, Step: labDevSectors / 4, ProgramID: "-", AuxData: "-"},
		{ID: 1, Start: 100, Length: 1000, Step: 300, ProgramID: "dmstats", AuxData: "-"},
		{ID: 2, Start: 0, Length: 64, Step: 64, ProgramID: "42", AuxData: "7", Precise: true, Bounds: []uint64{500000, 1000000, 5000000}},
		{ID: 3, Start: 0, Length: 8, Step: 8, ProgramID: "-", AuxData: "-", Bounds: []uint64{1, 10, 1000}},
		{ID: 4, Start: 0, Length: 8, Step: 8, ProgramID: "tab\tprog", AuxData: `a\b"c`},
		{ID: 5, Start: 0, Length: labDevSectors, Step: 5462, ProgramID: "-", AuxData: "-"},
		{ID: 6, Start: 0, Length: 8, Step: 8, ProgramID: "space prog", AuxData: "x"},
	}
	for i, o := range opts {
		if id := d.create(t, o); id != uint64(i) {
			t.Fatalf("region %d got id %d", i, id)
		}
	}
	all, err := d.st.List("")
	if err != nil {
		t.Fatal(err)
	}
	// Unfiltered, a program id with a space is cut at the space (it
	// cannot be told from the aux data); a TAB is no problem.
	if !reflect.DeepEqual(all[:6], want[:6]) {
		t.Fatalf("List\ngot  %+v\nwant %+v", all, want)
	}
	if r := all[6]; r.ProgramID != "space" || r.AuxData != "prog" || !slices.Equal(r.ExtraOptions, []string{"x"}) {
		t.Fatalf("unfiltered row with a spaced program id: %+v", r)
	}
	// Filtered by it, it is cut exactly.
	if got, err := d.st.List("space prog"); err != nil || !reflect.DeepEqual(got, want[6:7]) {
		t.Fatalf("List(program) = %+v, %v", got, err)
	}
	if got, err := d.st.List("42"); err != nil || !reflect.DeepEqual(got, want[2:3]) {
		t.Fatalf("List(42) = %+v, %v", got, err)
	}
	if want[1].Areas() != 4 || want[5].Areas() != 3 {
		t.Fatal("Areas")
	}

	// Our reply is exactly what dmsetup gets from the kernel.
	if got := tool(t, "dmsetup", "message", d.name, "0", "@stats_list"); got != d.rawList(t) {
		t.Errorf("dmsetup sees\n%s\nwe see\n%s", got, d.rawList(t))
	}

	areas, err := d.st.Print(0, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(areas) != 4 {
		t.Fatalf("region 0 has %d areas, want 4", len(areas))
	}
	for i, a := range areas {
		if a.Start != uint64(i)*4096 || a.Length != 4096 || a.Histogram != nil {
			t.Errorf("area %d = %+v", i, a)
		}
	}
	// The kernel prints the step for the last, shorter area.
	areas, err = d.st.Print(5, false)
	if err != nil || len(areas) != 3 || areas[2].Start != 2*5462 || areas[2].Length != 5462 {
		t.Fatalf("region 5 areas = %+v, %v", areas, err)
	}
	areas, err = d.st.PrintAreas(1, 2, 5, false)
	if err != nil || len(areas) != 2 || areas[0].Start != 700 || areas[1].Start != 1000 {
		t.Fatalf("PrintAreas = %+v, %v", areas, err)
	}
	areas, err = d.st.Print(2, true)
	if err != nil || len(areas) != 1 || len(areas[0].Histogram) != 4 {
		t.Fatalf("histogram region areas = %+v, %v", areas, err)
	}

	// The kernel hands out the lowest free id.
	if err := d.st.Delete(1); err != nil {
		t.Fatal(err)
	}
	if err := d.st.Clear(0); err != nil {
		t.Fatal(err)
	}
	if id := d.create(t, dmstats.CreateOptions{Length: 8}); id != 1 {
		t.Fatalf("re-created region got id %d, want 1", id)
	}
	for _, id := range []uint64{0, 1, 2, 3, 4, 5, 6} {
		if err := d.st.Delete(id); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := d.st.List(""); err != nil || len(got) != 0 {
		t.Fatalf("after deleting all: %+v, %v", got, err)
	}
	if err := d.st.Delete(3); err == nil {
		t.Fatal("deleting a missing region succeeded")
	}
	if _, err := d.st.Print(3, false); err == nil {
		t.Fatal("printing a missing region succeeded")
	}
}

// The kernel takes the bounds and ids exactly as rendered, numeric program
// ids included, and rejects what it should.
func TestLabCreateEdgeCases(t *testing.T) {
	d := newLabDevice(t)
	// A numeric program id and aux data: without the explicit option count
	// the kernel would take "5" for an option count.
	id := d.create(t, dmstats.CreateOptions{Length: 8, ProgramID: "5", AuxData: "3"})
	r, err := d.st.Region(id)
	if err != nil || r.ProgramID != "5" || r.AuxData != "3" {
		t.Fatalf("numeric ids: %+v, %v", r, err)
	}
	// The kernel lets a region reach past the end of the device.
	far := d.create(t, dmstats.CreateOptions{Start: 1 << 62, Length: 1 << 62})
	if r, err := d.st.Region(far); err != nil || r.Start != 1<<62 || r.Length != 1<<62 {
		t.Fatalf("far region: %+v, %v", r, err)
	}
	// One area per sector: a reply of 16384 rows, far larger than the
	// first ioctl buffer.
	big := d.create(t, dmstats.CreateOptions{Step: 1})
	areas, err := d.st.Print(big, false)
	if err != nil || len(areas) != labDevSectors || areas[labDevSectors-1].Start != labDevSectors-1 {
		t.Fatalf("per-sector region: %d areas, %v", len(areas), err)
	}
	// The kernel refuses decreasing bounds, as FormatBounds does before sending.
	if _, err := d.m.Message("@stats_create - /1 1 histogram:2,1"); err == nil {
		t.Error("kernel accepted decreasing bounds")
	}
}

func TestLabAuxEscaping(t *testing.T) {
	d := newLabDevice(t)
	id := d.create(t, dmstats.CreateOptions{Length: 8})
	for _, aux := range []string{
		"plain", "a b", "tab\there", `back\slash`, `\`, "à la", "\xa0", `"q" \ #:`, " lead", "trail ", "v\vf\fr\r",
	} {
		if err := d.st.SetAux(id, aux); err != nil {
			t.Fatalf("SetAux(%q): %v", aux, err)
		}
		// The kernel stored exactly the bytes: the raw row holds them.
		if row, want := d.rawList(t), fmt.Sprintf("%d: 0+8 8 - %s\n", id, aux); row != want {
			t.Errorf("aux %q: kernel lists %q, want %q", aux, row, want)
		}
	}
	if err := d.st.SetAux(id, ""); err != nil {
		t.Fatal(err)
	}
	if r, err := d.st.Region(id); err != nil || r.AuxData != "-" {
		t.Fatalf("empty aux: %+v, %v", r, err)
	}
	// Why 0xA0 is escaped: unescaped, the kernel splits on it and drops it.
	if _, err := d.m.Message(fmt.Sprintf("@stats_set_aux %d \xc3\xa0", id)); err != nil {
		t.Fatal(err)
	}
	if r, err := d.st.Region(id); err != nil || r.AuxData != "\xc3" {
		t.Fatalf("unescaped 0xA0 stored as %q (%v); the kernel should have split on it", r.AuxData, err)
	}
}

func TestLabQuotedGroupRoundTrip(t *testing.T) {
	d := newLabDevice(t)
	for i := 0; i < 5; i++ {
		d.create(t, dmstats.CreateOptions{Start: uint64(i) * 8, Length: 8, ProgramID: dmstats.DefaultProgramID})
	}
	if err := d.st.SetAux(0, "keep"); err != nil {
		t.Fatal(err)
	}
	alias := "we\tird: #alias \\ \"x\" à"
	if err := d.st.SetGroup(dmstats.Group{ID: 0, Alias: alias, Members: []uint64{3, 0, 1}}, dmstats.FormatQuoted); err != nil {
		t.Fatal(err)
	}
	regions, err := d.st.List("")
	if err != nil {
		t.Fatal(err)
	}
	groups, warn := dmstats.Groups(regions)
	want := []dmstats.Group{{ID: 0, Alias: alias, Members: []uint64{0, 1, 3}, UserData: "keep", Format: dmstats.FormatQuoted}}
	if !reflect.DeepEqual(groups, want) || warn != nil {
		t.Fatalf("Groups = %+v, %q\nwant %+v\nlisting %q", groups, warn, want, d.rawList(t))
	}
	// The legacy format refuses this alias and changes nothing.
	err = d.st.SetGroup(dmstats.Group{ID: 0, Alias: alias, Members: []uint64{0, 1}}, dmstats.FormatLegacy)
	if !errors.Is(err, dmstats.ErrAliasUnsafe) {
		t.Fatalf("legacy SetGroup = %v, want ErrAliasUnsafe", err)
	}
	if again, err := d.st.List(""); err != nil || !reflect.DeepEqual(again, regions) {
		t.Fatalf("refused SetGroup changed the listing: %v", err)
	}
	// A second group cannot take a member of the first.
	if err := d.st.SetGroup(dmstats.Group{ID: 2, Members: []uint64{2, 3}}, dmstats.FormatQuoted); err == nil {
		t.Fatal("region 3 joined two groups")
	}
	if err := d.st.Ungroup(0); err != nil {
		t.Fatal(err)
	}
	if r, err := d.st.Region(0); err != nil || r.AuxData != "keep" {
		t.Fatalf("after Ungroup: %+v, %v", r, err)
	}
	if groups, _ := dmstats.Groups(mustList(t, d)); len(groups) != 0 {
		t.Fatalf("groups after Ungroup: %+v", groups)
	}
}

func mustList(t *testing.T, d *labDevice) []dmstats.Region {
	t.Helper()
	regions, err := d.st.List("")
	if err != nil {
		t.Fatal(err)
	}
	return regions
}

// lvm2 2.03.16's dmstats reads the legacy tags we write, member runs and
// all.
func TestLabDmstatsReadsLegacyTag(t *testing.T) {
	d := newLabDevice(t)
	for i := 0; i < 5; i++ {
		d.create(t, dmstats.CreateOptions{Start: uint64(i) * 8, Length: 8, ProgramID: dmstats.DefaultProgramID})
	}
	if err := d.st.SetGroup(dmstats.Group{ID: 0, Alias: "legacy.img", Members: []uint64{0, 1, 3}}, dmstats.FormatLegacy); err != nil {
		t.Fatal(err)
	}
	if err := d.st.SetGroup(dmstats.Group{ID: 2, Members: []uint64{2, 4}}, dmstats.FormatLegacy); err != nil {
		t.Fatal(err)
	}
	out := tool(t, "dmstats", "list", d.name, "--group", "-o", "obj_type,group_id,region_id,stats_name", "--noheadings", "--separator", "|")
	got := strings.Fields(out)
	slices.Sort(got)
	want := []string{"group|0|0-1,3|legacy.img", "group|2|2,4|" + d.name}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("dmstats list --group:\n%s\nwant %q", out, want)
	}
	out = tool(t, "dmstats", "list", d.name, "--region", "-o", "region_id,group_id", "--noheadings", "--separator", "|")
	got = strings.Fields(out)
	slices.Sort(got)
	want = []string{"0|0", "1|0", "2|2", "3|0", "4|2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("dmstats list --region:\n%s\nwant %q", out, want)
	}
	// lvm2's ungroup restores the leader's aux data from our tag.
	tool(t, "dmstats", "ungroup", d.name, "--groupid", "0")
	if r, err := d.st.Region(0); err != nil || r.AuxData != "-" {
		t.Fatalf("after dmstats ungroup: %+v, %v", r, err)
	}
}

// We read the groups lvm2 2.03.16's dmstats writes.
func TestLabReadDmstatsGroups(t *testing.T) {
	d := newLabDevice(t)
	for i := 0; i < 6; i++ {
		d.create(t, dmstats.CreateOptions{Start: uint64(i) * 8, Length: 8, ProgramID: dmstats.DefaultProgramID})
	}
	tool(t, "dmstats", "group", "--alias", "x", "--regions", "0-2", d.name)
	tool(t, "dmstats", "group", "--regions", "3,5", d.name)
	regions := mustList(t, d)
	groups, warn := dmstats.Groups(regions)
	want := []dmstats.Group{
		{ID: 0, Alias: "x", Members: []uint64{0, 1, 2}, Format: dmstats.FormatLegacy},
		{ID: 3, Alias: "", Members: []uint64{3, 5}, Format: dmstats.FormatQuoted},
	}
	if !reflect.DeepEqual(groups, want) || warn != nil {
		t.Fatalf("Groups = %+v, %q\nwant %+v\nlisting %q", groups, warn, want, d.rawList(t))
	}
	// Rewriting lvm2's group in the legacy format gives the same bytes.
	before := regions[0].AuxData
	if err := d.st.SetGroup(groups[0], dmstats.FormatLegacy); err != nil {
		t.Fatal(err)
	}
	if after := mustList(t, d)[0].AuxData; after != before {
		t.Errorf("our legacy tag %q, lvm2's %q", after, before)
	}
	// A member deleted behind the group's back is ignored with a warning.
	if err := d.st.Delete(1); err != nil {
		t.Fatal(err)
	}
	groups, warn = dmstats.Groups(mustList(t, d))
	if len(groups) != 2 || !reflect.DeepEqual(groups[0].Members, []uint64{0, 2}) || len(warn) != 1 || !strings.Contains(warn[0], "member region 1 does not exist") {
		t.Fatalf("after deleting a member: %+v, %q", groups, warn)
	}
}

// directIO does O_DIRECT I/O of n bytes at off on the device node.
func directIO(t *testing.T, path string, write bool, off int64, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(buf)
	for i := range buf {
		buf[i] = byte(i)
	}
	if write {
		_, err = f.WriteAt(buf, off)
	} else {
		_, err = f.ReadAt(buf, off)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestLabCounters(t *testing.T) {
	d := newLabDevice(t)
	start := time.Now()
	ms := d.create(t, dmstats.CreateOptions{Areas: 4, Bounds: []time.Duration{time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond}})
	ns := d.create(t, dmstats.CreateOptions{Precise: true, Bounds: []time.Duration{10 * time.Microsecond, time.Millisecond, time.Second}})
	part := d.create(t, dmstats.CreateOptions{Start: 10240, Length: 64})

	node := filepath.Join(dm.MapperDir, d.name)
	directIO(t, node, true, 0, 64<<10)             // sectors 0-127: area 0
	directIO(t, node, false, 10240*512, 32<<10)    // sectors 10240-10303: area 2, region part
	directIO(t, node, false, 10240*512+4096, 4096) // inside the same

	areas, err := d.st.Print(ms, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(areas) != 4 {
		t.Fatalf("%d areas", len(areas))
	}
	a0, a2 := areas[0].Counters, areas[2].Counters
	if a0.WriteSectors != 128 || a0.Writes == 0 || a0.Reads != 0 || a0.InFlight != 0 {
		t.Errorf("area 0 counters %+v", a0)
	}
	if a2.ReadSectors != 72 || a2.Reads < 2 || a2.Writes != 0 {
		t.Errorf("area 2 counters %+v", a2)
	}
	for _, i := range []int{1, 3} {
		if areas[i].Counters != (dmstats.Counters{}) || !slices.Equal(areas[i].Histogram, []uint64{0, 0, 0, 0}) {
			t.Errorf("untouched area %d: %+v", i, areas[i])
		}
	}
	for i, a := range areas {
		var sum uint64
		for _, c := range a.Histogram {
			sum += c
		}
		if sum != a.Counters.Reads+a.Counters.Writes {
			t.Errorf("area %d: histogram %v counts %d I/Os, counters %d", i, a.Histogram, sum, a.Counters.Reads+a.Counters.Writes)
		}
	}
	regions := mustList(t, d)
	msTotals, err := d.st.RegionTotals(regions[ms], false)
	if err != nil {
		t.Fatal(err)
	}
	nsTotals, err := d.st.RegionTotals(regions[ns], false)
	if err != nil {
		t.Fatal(err)
	}
	// The precise region saw the same I/O, timed in ns.
	n := nsTotals.Counters
	if n.ReadSectors != 72 || n.WriteSectors != 128 || n.Reads != msTotals.Counters.Reads || n.Writes != msTotals.Counters.Writes {
		t.Errorf("precise totals %+v, ms totals %+v", n, msTotals.Counters)
	}
	if n.ReadTicks == 0 || n.WriteTicks == 0 || n.IOTicks == 0 {
		t.Errorf("precise region timed nothing: %+v", n)
	}
	bins, err := regions[ns].HistogramBins(nsTotals.Histogram)
	if err != nil {
		t.Fatal(err)
	}
	var pct float64
	var cnt uint64
	for _, b := range bins {
		pct += b.Percent
		cnt += b.Count
	}
	if cnt != n.Reads+n.Writes || pct < 99.999 || pct > 100.001 || bins[1].Lower != 10*time.Microsecond {
		t.Errorf("precise histogram bins %+v", bins)
	}
	m, err := dmstats.Derive(dmstats.Counters{}, n, time.Since(start), true)
	if err != nil {
		t.Fatal(err)
	}
	if m.WritesPerSec <= 0 || m.ReadsPerSec <= 0 || m.AvgRequestSize <= 0 || m.Await <= 0 || m.Utilization <= 0 || m.Utilization > 100 {
		t.Errorf("metrics %+v", m)
	}

	// A group over two regions adds them up, normalising units.
	if err := d.st.SetGroup(dmstats.Group{ID: ms, Members: []uint64{ms, part}}, dmstats.FormatQuoted); err != nil {
		t.Fatal(err)
	}
	regions = mustList(t, d)
	groups, _ := dmstats.Groups(regions)
	if len(groups) != 1 {
		t.Fatalf("groups %+v", groups)
	}
	gt, err := d.st.GroupTotals(groups[0], regions, false)
	if err != nil {
		t.Fatal(err)
	}
	if gt.Counters.ReadSectors != 2*72 || gt.Counters.WriteSectors != 128 || gt.Precise || gt.Histogram != nil {
		t.Errorf("group totals %+v", gt)
	}

	// print_clear returns the counters and clears them.
	cleared, err := d.st.Print(ms, true)
	if err != nil || cleared[0].Counters.WriteSectors != 128 {
		t.Fatalf("print_clear = %+v, %v", cleared, err)
	}
	after, err := d.st.Print(ms, false)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range after {
		if a.Counters.Reads != 0 || a.Counters.Writes != 0 || a.Counters.ReadSectors != 0 || a.Counters.WriteSectors != 0 || slices.Max(a.Histogram) != 0 {
			t.Errorf("area %d after print_clear: %+v", i, a)
		}
	}
	if err := d.st.Clear(ns); err != nil {
		t.Fatal(err)
	}
	if tot, err := d.st.RegionTotals(regions[ns], false); err != nil || tot.Counters.Reads != 0 || tot.Counters.WriteSectors != 0 {
		t.Errorf("after Clear: %+v, %v", tot, err)
	}
}
