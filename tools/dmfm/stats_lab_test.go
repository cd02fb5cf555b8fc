//go:build lab

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dmfm/dmfm/lab"
	"github.com/dmfm/dmfm/lab/labtest"
	"github.com/dmfm/dmfm/lib/dm"
	"github.com/dmfm/dmfm/lib/dmstats"
	"github.com/dmfm/dmfm/lib/loop"
	"golang.org/x/sys/unix"
)

// Kernel tests of the dmstats-like commands: a loop + dm + xfs/ext4 stack
// (package lab), dmfm run in-process through the same code as the command,
// and lvm2's dmstats (2.03.16 in the lab) as the reference it must match.

// newLab builds a stack with file system fs; it is torn down after the test.
func newLab(t *testing.T, fs lab.FS, mountOpts string) *lab.Lab {
	t.Helper()
	labtest.RequireDM(t)
	l, err := lab.Up(context.Background(), lab.Spec{Size: 512 << 20, FS: fs, MountOpts: mountOpts, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("lab close: %v", err)
		}
	})
	return l
}

// dmfmOK runs dmfm and fails the test unless it exits 0.
func dmfmOK(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, code := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("dmfm %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// tool runs a reference tool (dmstats, dmsetup, ...) without udev.
func tool(t *testing.T, name string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	// The system's tools, whatever a test did to $PATH.
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		if p := filepath.Join(dir, name); unix.Access(p, unix.X_OK) == nil {
			name = p
			break
		}
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "DM_DISABLE_UDEV=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out.String(), errb.String(), code
}

func toolOK(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, errs, code := tool(t, name, args...)
	if code != 0 {
		t.Fatalf("%s %s: exit %d\n%s%s", name, strings.Join(args, " "), code, out, errs)
	}
	return out
}

// statsList is the device's @stats_list, asked through dmsetup.
func statsList(t *testing.T, dev string) string {
	t.Helper()
	return toolOK(t, "dmsetup", "message", dev, "0", "@stats_list")
}

// wipe deletes every region on dev.
func wipe(t *testing.T, dev string) {
	t.Helper()
	dmfmOK(t, "delete", "--allregions", "--allprograms", dev)
	if l := statsList(t, dev); l != "" {
		t.Fatalf("regions left after delete --allregions --allprograms:\n%s", l)
	}
}

// writeBlocks writes 4 KiB at each block number given, syncing after each
// write so that each gets its own allocation.
func writeBlocks(t *testing.T, path string, blocks ...int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := bytes.Repeat([]byte{0xa5}, 4096)
	for _, b := range blocks {
		if _, err := f.WriteAt(buf, b*4096); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
}

// fragmented writes n blocks, each followed by a hole, starting at block
// from.
func fragmented(t *testing.T, path string, from, n int) {
	t.Helper()
	blocks := make([]int64, n)
	for i := range blocks {
		blocks[i] = int64(2 * (from + i))
	}
	writeBlocks(t, path, blocks...)
}

func fallocated(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
		t.Fatal(err)
	}
}

func sparse(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 10<<20); err != nil {
		t.Fatal(err)
	}
	writeBlocks(t, path, 100, 101, 1000)
}

var createdRE = regexp.MustCompile(`^(.*): Created new group with (\d+) region\(s\) as group ID (\d+)\.\n$`)

// groupOf reads the group id from a "Created new group" line.
func groupOf(t *testing.T, line string) string {
	t.Helper()
	m := createdRE.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("not a created-group line: %q", line)
	}
	return m[3]
}

// TestLabCreateMatchesDmstats maps the same files with lvm2's dmstats and
// with dmfm (legacy tags, as dmstats 2.03.16 writes them): the printed line
// and every @stats_list row must be the same. Each tool must also read the
// other's group.
func TestLabCreateMatchesDmstats(t *testing.T) {
	for _, fs := range []struct {
		fs   lab.FS
		opts string
	}{{lab.FSXFS, "allocsize=4k"}, {lab.FSExt4, ""}} {
		t.Run(string(fs.fs), func(t *testing.T) {
			l := newLab(t, fs.fs, fs.opts)
			dev := l.DMName
			files := []struct {
				name string
				make func(path string)
			}{
				{"fragmented", func(p string) { fragmented(t, p, 1, 40) }},
				{"fallocated", func(p string) { fallocated(t, p, 3<<20) }},
				{"sparse", func(p string) { sparse(t, p) }},
			}
			for _, fc := range files {
				t.Run(fc.name, func(t *testing.T) {
					path := filepath.Join(l.Mountpoint, fc.name)
					fc.make(path)
					theirs := toolOK(t, "dmstats", "create", "--filemap", "--nomonitor", path)
					theirRows := statsList(t, dev)
					g := groupOf(t, theirs)
					// dmfm reads dmstats' group.
					got := dmfmOK(t, "list", "--group", "--noheadings", "-o", "group_id,region_id,stats_name,obj_type", dev)
					if !strings.HasPrefix(got, g+":") || !strings.HasSuffix(got, ":"+fc.name+":group\n") {
						t.Errorf("dmfm list --group of dmstats' group: %q", got)
					}
					rep := dmfmOK(t, "report", "--group", "--noheadings", "-o", "group_id,stats_name,read_count", dev)
					if !strings.HasPrefix(rep, g+":"+fc.name+":") {
						t.Errorf("dmfm report --group of dmstats' group: %q", rep)
					}
					wipe(t, dev)

					ours := dmfmOK(t, "create", "--filemap", "--nomonitor", "--group-format", "legacy", path)
					ourRows := statsList(t, dev)
					if ours != theirs {
						t.Errorf("dmfm printed %q, dmstats %q", ours, theirs)
					}
					if ourRows != theirRows {
						t.Errorf("@stats_list after dmfm:\n%s\nafter dmstats:\n%s", ourRows, theirRows)
					}
					// dmstats reads dmfm's group.
					list := toolOK(t, "dmstats", "list", "--group", dev)
					if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(fc.name) + `\s+` + g + `\s+\S+\s+group\s`).MatchString(list) {
						t.Errorf("dmstats list --group does not show dmfm's group %s (%s):\n%s", g, fc.name, list)
					}
					wipe(t, dev)
				})
			}

			// A name with a space: dmstats 2.03.16 cannot map it (it
			// sends the alias unescaped, fails, and aborts); dmfm refuses
			// the legacy tag, which could not carry the alias, and maps it
			// with the quoted tag. The regions are the ones dmstats makes
			// for the same file under another name (a hard link).
			t.Run("space", func(t *testing.T) {
				path := filepath.Join(l.Mountpoint, "a b.img")
				fragmented(t, path, 1, 12)
				link := filepath.Join(l.Mountpoint, "a_b.img")
				if err := os.Link(path, link); err != nil {
					t.Fatal(err)
				}
				if _, _, code := tool(t, "dmstats", "create", "--filemap", "--nomonitor", path); code == 0 {
					t.Log("this dmstats maps names with spaces")
				}
				wipe(t, dev)
				_, errs, code := runCLI(t, "create", "--filemap", "--nomonitor", "--group-format", "legacy", path)
				if code != 1 || !strings.Contains(errs, `the group would be named "a b.img"`) || !strings.Contains(errs, "whitespace") {
					t.Errorf("legacy tag with a space: exit %d, %q", code, errs)
				}
				if rows := statsList(t, dev); rows != "" {
					t.Errorf("refused create left regions:\n%s", rows)
				}
				toolOK(t, "dmstats", "create", "--filemap", "--nomonitor", link)
				want := strings.ReplaceAll(statsList(t, dev), "DMS_GROUP=a_b.img:", `DMS_GROUP="a b.img":`)
				wipe(t, dev)
				out := dmfmOK(t, "create", "--filemap", "--nomonitor", path)
				if !strings.HasPrefix(out, path+": Created new group with ") {
					t.Errorf("dmfm printed %q", out)
				}
				// The kernel lists the aux data as stored, space included.
				if got := statsList(t, dev); got != want {
					t.Errorf("@stats_list:\n%s\nwant (dmstats' regions for the link, quoted alias):\n%s", got, want)
				}
				got := dmfmOK(t, "list", "--group", "--noheadings", "-o", "stats_name,obj_type", dev)
				if got != "a b.img:group\n" {
					t.Errorf("dmfm list of the quoted alias: %q", got)
				}
				wipe(t, dev)
			})
		})
	}
}

// regionsOf parses @stats_list rows.
func regionsOf(t *testing.T, rows string) []dmstats.Region {
	t.Helper()
	rs, err := dmstats.ParseList(rows, "")
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// restore recreates exactly the listed regions on an emptied device, ids
// included.
func restore(t *testing.T, dev string, rows string) {
	t.Helper()
	wipe(t, dev)
	c, err := dm.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st := dmstats.New(dmstats.DeviceMessenger(c, dm.ByName(dev)))
	for i, r := range regionsOf(t, rows) {
		if r.ID != uint64(i) {
			t.Fatalf("restore needs ids 0..n-1, got %d at %d", r.ID, i)
		}
		if _, err := st.Create(dmstats.CreateOptions{Start: r.Start, Length: r.Length,
			ProgramID: strings.TrimPrefix(r.ProgramID, "-"), AuxData: strings.TrimPrefix(r.AuxData, "-")}); err != nil {
			t.Fatal(err)
		}
	}
	if got := statsList(t, dev); got != rows {
		t.Fatalf("restore:\n%s\nwant\n%s", got, rows)
	}
}

// TestLabUpdateExactMatchesDmstats grows a mapped file (new extents, and a
// last extent grown in place) and updates its group with dmstats
// update_filemap and with dmfm update_filemap --exact from the same
// starting regions: the results must be the same, line and rows. dmfm
// keeps the group's legacy tag without being told.
func TestLabUpdateExactMatchesDmstats(t *testing.T) {
	l := newLab(t, lab.FSXFS, "allocsize=4k")
	dev := l.DMName
	path := filepath.Join(l.Mountpoint, "grow")
	fragmented(t, path, 1, 30)
	toolOK(t, "dmstats", "create", "--filemap", "--nomonitor", path)
	before := statsList(t, dev)
	// Grow: new extents after holes, and the last block extended.
	fragmented(t, path, 31, 20)
	writeBlocks(t, path, 2*50+1)

	theirs := toolOK(t, "dmstats", "update_filemap", "--nomonitor", "--groupid", "0", path)
	theirRows := statsList(t, dev)
	restore(t, dev, before)
	ours := dmfmOK(t, "update_filemap", "--nomonitor", "--exact", "--groupid", "0", path)
	ourRows := statsList(t, dev)
	if ours != theirs {
		t.Errorf("dmfm printed %q, dmstats %q", ours, theirs)
	}
	if ourRows != theirRows {
		t.Errorf("@stats_list after dmfm update_filemap --exact:\n%s\nafter dmstats update_filemap:\n%s", ourRows, theirRows)
	}
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(path) + `: Updated group ID 0 with \d+ region\(s\)\.\n$`).MatchString(ours) {
		t.Errorf("update line %q", ours)
	}
	// An 8-digit spelling of the id names the same group; dmstats then
	// reads the result.
	out := dmfmOK(t, "update_filemap", "--nomonitor", "--groupid", "00000000", path)
	if !strings.HasSuffix(out, ": Updated group ID 0 with "+strconv.Itoa(len(regionsOf(t, ourRows)))+" region(s).\n") {
		t.Errorf("no-op update: %q", out)
	}
	if list := toolOK(t, "dmstats", "list", "--group", dev); !strings.Contains(list, "grow ") {
		t.Errorf("dmstats cannot read the updated group:\n%s", list)
	}
}

// TestLabDeviceRegions covers the commands on device regions and groups,
// cross-checked with dmstats on a device of two segments.
func TestLabDeviceRegions(t *testing.T) {
	labtest.RequireDM(t)
	c, err := dm.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	name := fmt.Sprintf("dmfm-test-segs-%d", os.Getpid())
	if _, err := c.Create(name, lab.UUIDPrefix+name, dm.Table{
		{Start: 0, Length: 2048, Target: dm.Zero{}},
		{Start: 2048, Length: 6144, Target: dm.Zero{}},
	}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Remove(dm.ByName(name)); err != nil {
			t.Errorf("remove %s: %v", name, err)
		}
	}()

	// --segments: one region per segment, grouped, as dmstats does.
	theirs := toolOK(t, "dmstats", "create", "--segments", "--alias", "segs", name)
	theirRows := statsList(t, name)
	wipe(t, name)
	ours := dmfmOK(t, "create", "--segments", "--alias", "segs", "--group-format", "legacy", name)
	if ours != theirs || statsList(t, name) != theirRows {
		t.Errorf("create --segments: dmfm %q\n%s\ndmstats %q\n%s", ours, statsList(t, name), theirs, theirRows)
	}
	wipe(t, name)

	// Whole device, --start/--length, --areas, --areasize, by devno and uuid.
	for _, tc := range []struct {
		args []string
		line string
		row  string
	}{
		{[]string{name}, name + ": Created new region with 1 area(s) as region ID 0\n", "0: 0+8192 8192 dmstats -"},
		{[]string{"--start", "1m", "--length", "1024", "--areas", "4", "--programid", "mine", "--userdata", "u", name},
			name + ": Created new region with 4 area(s) as region ID 1\n", "1: 2048+1024 256 mine u"},
		{[]string{"--start", "4096", "--areasize", "1m", "--uuid", lab.UUIDPrefix + name},
			name + ": Created new region with 2 area(s) as region ID 2\n", "2: 4096+4096 2048 dmstats -"},
	} {
		if out := dmfmOK(t, append([]string{"create"}, tc.args...)...); out != tc.line {
			t.Errorf("create %v: %q, want %q", tc.args, out, tc.line)
		}
		if rows := statsList(t, name); !strings.Contains(rows, tc.row+"\n") {
			t.Errorf("create %v: rows\n%s\nwant a row %q", tc.args, rows, tc.row)
		}
	}
	info, err := c.Info(dm.ByName(name))
	if err != nil {
		t.Fatal(err)
	}
	dmfmOK(t, "create", "--precise", "--bounds", "500us,2ms", "-j", strconv.Itoa(int(info.Major)), "-m", strconv.Itoa(int(info.Minor)), "--length", "8")
	if rows := statsList(t, name); !strings.Contains(rows, "3: 0+8 8 dmstats - precise_timestamps histogram:500000,2000000\n") {
		t.Errorf("precise histogram region:\n%s", rows)
	}

	// group, setalias, list, report, ungroup.
	if out := dmfmOK(t, "group", "--regions", "0,2", "--alias", "pair", name); out != "Grouped regions 0,2 as group ID 0 on "+name+"\n" {
		t.Errorf("group: %q", out)
	}
	if rows := statsList(t, name); !strings.Contains(rows, `0: 0+8192 8192 dmstats DMS_GROUP="pair":0,2#-`) {
		t.Errorf("group tag:\n%s", rows)
	}
	_, errs, code := runCLI(t, "group", "--regions", "2,3", name)
	if code != 1 || !strings.Contains(errs, "region 2 on "+name+" already belongs to group 0") {
		t.Errorf("regrouping a member: %d %q", code, errs)
	}
	_, errs, code = runCLI(t, "group", "--regions", "1,3", name)
	if code != 1 || !strings.Contains(errs, "different histogram bounds") {
		t.Errorf("grouping different histograms: %d %q", code, errs)
	}
	dmfmOK(t, "setalias", "--groupid", "0", "--alias", "two", name)
	if got := dmfmOK(t, "list", "--group", "--noheadings", "-o", "stats_name,region_id", name); got != "two:0,2\n" {
		t.Errorf("list after setalias: %q", got)
	}
	if got, _, _ := tool(t, "dmstats", "list", "--group", name); !strings.Contains(got, `"two"`) {
		t.Logf("dmstats 2.03.16 shows the quoted alias with its quotes: %q", got)
	}

	// Counters: read through the device, then report, print, clear.
	readDirect(t, "/dev/mapper/"+name, 0, 64<<10)
	rep := dmfmOK(t, "report", "--groupid", "0", "--noheadings", "-o", "obj_type,region_id,read_count,read_sector_count", name)
	if !strings.Contains(rep, "group:0,2:") || !strings.Contains(rep, ":128\n") {
		t.Errorf("report after reading 64 KiB at 0:\n%s", rep)
	}
	js := dmfmOK(t, "report", "--json", "--region", "--regionid", "0", "-o", "region_id,read_sector_count,reads_per_sec", name)
	var doc struct {
		Rows []map[string]any `json:"rows"`
	}
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		t.Fatalf("report --json: %v\n%s", err, js)
	}
	if len(doc.Rows) != 1 || doc.Rows[0]["device"] != name || doc.Rows[0]["region_id"] != 0.0 || doc.Rows[0]["read_sector_count"] != 128.0 {
		t.Errorf("report --json rows %v\n%s", doc.Rows, js)
	}
	if raw := dmfmOK(t, "print", "--regionid", "0", name); !strings.HasPrefix(raw, "0+8192 ") {
		t.Errorf("print: %q", raw)
	}
	dmfmOK(t, "clear", "--groupid", "0", name)
	if raw := dmfmOK(t, "print", "--regionid", "0", name); !strings.HasPrefix(raw, "0+8192 0 0 0 0 ") {
		t.Errorf("print after clear: %q", raw)
	}

	// delete a member: the tag loses it; delete the leader: the group goes.
	dmfmOK(t, "create", "--start", "8", "--length", "8", name) // region 4
	dmfmOK(t, "group", "--regions", "1,4", name)               // group 1
	dmfmOK(t, "delete", "--regionid", "4", name)               // member
	if rows := statsList(t, name); !strings.Contains(rows, "1: 2048+1024 256 mine DMS_GROUP=:1#u\n") {
		t.Errorf("after deleting a member, the tag should list 1 only and keep the user data:\n%s", rows)
	}
	if out := dmfmOK(t, "ungroup", "--groupid", "0", name); out != "Removed group ID 0 on "+name+"\n" {
		t.Errorf("ungroup: %q", out)
	}
	if rows := statsList(t, name); !strings.Contains(rows, "0: 0+8192 8192 dmstats -\n") {
		t.Errorf("after ungroup:\n%s", rows)
	}
	dmfmOK(t, "delete", "--regionid", "1", name) // a leader
	if rows := statsList(t, name); strings.Contains(rows, "1: ") {
		t.Errorf("region 1 not deleted:\n%s", rows)
	}
	// --allregions honours the program id: "mine" regions stay.
	dmfmOK(t, "create", "--programid", "mine", "--length", "8", name)
	dmfmOK(t, "delete", "--allregions", name)
	if rows := statsList(t, name); rows != "1: 0+8 8 mine -\n" {
		t.Errorf("delete --allregions kept:\n%s", rows)
	}
	wipe(t, name)
}

// readDirect reads n bytes at off from a block device, bypassing the cache.
func readDirect(t *testing.T, path string, off, n int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf, err := unix.Mmap(-1, 0, int(n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(buf)
	if _, err := f.ReadAt(buf, off); err != nil {
		t.Fatal(err)
	}
}

// badCase is a command that must fail with a message, exit 1 and leave the
// regions as they were.
type badCase struct {
	name string
	args []string
	want string
}

func checkBad(t *testing.T, dev string, cases []badCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := statsList(t, dev)
			out, errs, code := runCLI(t, tc.args...)
			if code != 1 {
				t.Errorf("exit %d, want 1 (stdout %q, stderr %q)", code, out, errs)
			}
			if out != "" {
				t.Errorf("stdout %q", out)
			}
			if !strings.Contains(errs, tc.want) {
				t.Errorf("stderr %q, want %q", errs, tc.want)
			}
			if after := statsList(t, dev); after != before {
				t.Errorf("@stats_list changed:\n%s\nwas\n%s", after, before)
			}
		})
	}
}

// TestLabBadInput checks every kind of bad input on a live device.
func TestLabBadInput(t *testing.T) {
	l := newLab(t, lab.FSXFS, "")
	dev := l.DMName
	file := filepath.Join(l.Mountpoint, "f")
	fragmented(t, file, 1, 8)
	dmfmOK(t, "create", "--filemap", "--nomonitor", file) // group 0
	dmfmOK(t, "create", "--length", "8", dev)             // a plain region, the highest id
	rows := regionsOf(t, statsList(t, dev))
	last := rows[len(rows)-1].ID // the plain region just made
	member := rows[1].ID
	empty := filepath.Join(l.Mountpoint, "empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tmpfsFile := filepath.Join(t.TempDir(), "on-tmpfs")
	if err := os.WriteFile(tmpfsFile, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	loopFile := loopFSFile(t, "ext4")
	btrfsFile := loopFSFile(t, "btrfs")

	checkBad(t, dev, []badCase{
		{"missing", []string{"create", "--filemap", "--nomonitor", l.Mountpoint + "/nope"}, "nope: no such file or directory"},
		{"directory", []string{"create", "--filemap", "--nomonitor", l.Mountpoint}, "is not a regular file (a directory)"},
		{"device node", []string{"create", "--filemap", "--nomonitor", l.DevPath}, "is not a regular file (a block device)"},
		{"tmpfs", []string{"create", "--filemap", "--nomonitor", tmpfsFile}, "is on tmpfs, not on a device-mapper device"},
		{"loop disk", []string{"create", "--filemap", "--nomonitor", loopFile}, "which is not a device-mapper device"},
		{"btrfs", []string{"create", "--filemap", "--nomonitor", btrfsFile}, "is on btrfs"},
		{"no extents", []string{"create", "--filemap", "--nomonitor", empty}, "no allocated extents"},
		{"second file bad", []string{"create", "--filemap", "--nomonitor", file, tmpfsFile}, "not on a device-mapper device"},
		{"update missing group", []string{"update_filemap", "--nomonitor", "--groupid", "12345678", file}, "group 12345678 does not exist on " + dev},
		{"update plain region", []string{"update_filemap", "--nomonitor", "--groupid", strconv.FormatUint(last, 10), file}, "is a plain region, in no group"},
		{"update member", []string{"update_filemap", "--nomonitor", "--groupid", strconv.FormatUint(member, 10), file}, "is a member of group 0"},
		{"update not a number", []string{"update_filemap", "--groupid", "x1", file}, `--groupid "x1" is not a number`},
		{"update negative", []string{"update_filemap", "--groupid", "-1", file}, "--groupid -1: ids are never negative"},
		{"update on tmpfs", []string{"update_filemap", "--nomonitor", "--groupid", "0", tmpfsFile}, "is on tmpfs"},
		{"delete missing group", []string{"delete", "--groupid", "99999999", dev}, "group 99999999 does not exist on " + dev},
		{"delete plain as group", []string{"delete", "--groupid", strconv.FormatUint(last, 10), dev}, "is a plain region, in no group"},
		{"delete missing region", []string{"delete", "--regionid", "4242", dev}, "region 4242 does not exist on " + dev},
		{"ungroup plain", []string{"ungroup", "--groupid", strconv.FormatUint(last, 10), dev}, "is a plain region"},
		{"setalias member", []string{"setalias", "--groupid", strconv.FormatUint(member, 10), "--alias", "x", dev}, "is a member of group 0"},
		{"group missing region", []string{"group", "--regions", "0,4242", dev}, "region 4242 does not exist"},
		{"report unknown field", []string{"report", "-o", "frobs", dev}, `unknown field "frobs"; valid fields: name,`},
		{"conflict", []string{"create", "--filemap", "--start", "0", file}, "--filemap cannot be used with --start"},
		{"device not found", []string{"create", "dmfm-no-such-dev"}, `device "dmfm-no-such-dev" not found`},
		{"uuid not found", []string{"list", "--uuid", "NO-SUCH-UUID"}, `device uuid "NO-SUCH-UUID" not found`},
		{"devno not found", []string{"report", "-j", "7", "-m", "12345"}, "device 7:12345 not found"},
		{"start beyond end", []string{"create", "--start", "1g", dev}, "is beyond the end of " + dev},
		{"region too long", []string{"create", "--length", "2g", dev}, "does not fit on " + dev},
	})
}

// loopFSFile makes a file system of type fs on a loop device (no dm) and
// returns a file on it; everything goes when the test ends.
func loopFSFile(t *testing.T, fs string) string {
	t.Helper()
	dir := t.TempDir()
	backing := filepath.Join(dir, "backing")
	if err := os.WriteFile(backing, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(backing, 160<<20); err != nil {
		t.Fatal(err)
	}
	ld, err := loop.Attach(backing, loop.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ld.Detach(); err != nil {
			t.Errorf("detach %s: %v", ld.Path, err)
		}
	})
	toolOK(t, "mkfs."+fs, "-q", ld.Path)
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(ld.Path, mnt, fs, 0, ""); err != nil {
		t.Fatalf("mount %s %s: %v", fs, ld.Path, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	f := filepath.Join(mnt, "file")
	writeBlocks(t, f, 0, 2)
	return f
}

// TestLabReport checks counts and the repeating report on a file map.
func TestLabReport(t *testing.T) {
	l := newLab(t, lab.FSExt4, "")
	dev := l.DMName
	path := filepath.Join(l.Mountpoint, "data")
	fragmented(t, path, 0, 16)
	dmfmOK(t, "create", "--filemap", "--nomonitor", "--alias", "data", path)
	// Read the file directly: 16 blocks of 4 KiB.
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	buf, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < 16; i++ {
		if _, err := f.ReadAt(buf, 2*i*4096); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	unix.Munmap(buf)
	got := dmfmOK(t, "report", "--group", "--noheadings", "-o", "stats_name,read_count,read_sector_count", dev)
	if got != "data:16:128\n" {
		t.Errorf("report after 16 reads of 4 KiB: %q, want data:16:128", got)
	}
	// Selected area rows, busiest first: they add up to the group's reads.
	got = dmfmOK(t, "report", "--area", "--noheadings", "-S", "group_id=0 && read_count>0", "-O", "-read_count,region_id", "-o", "read_count", dev)
	sum, prev := 0, 1<<30
	for _, f := range strings.Fields(got) {
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 || n > prev {
			t.Errorf("area report not selected or sorted: %q", got)
			break
		}
		sum, prev = sum+n, n
	}
	if sum != 16 {
		t.Errorf("area reads add up to %d, want 16: %q", sum, got)
	}
	// A repeating report prints one block per interval with a header when
	// stdout is not a terminal; nothing happened in between.
	out := dmfmOK(t, "report", "--interval", "0.3", "--count", "2", "--noheadings", "-o", "stats_name,read_count", dev)
	blocks := strings.Split(strings.TrimSpace(out), "\n\n")
	if len(blocks) != 2 || !strings.HasPrefix(blocks[0], "# ") || !strings.HasPrefix(blocks[1], "# ") {
		t.Fatalf("repeating report:\n%s", out)
	}
	if !strings.HasSuffix(blocks[0], "\ndata:16") || !strings.HasSuffix(blocks[1], "\ndata:0") {
		t.Errorf("first block counts since creation, second the interval:\n%s", out)
	}
	// JSON stream: two documents.
	out = dmfmOK(t, "report", "--json", "--interval", "200ms", "--count", "2", dev)
	dec := json.NewDecoder(strings.NewReader(out))
	for i := 0; i < 2; i++ {
		var d struct {
			IntervalNS int64            `json:"interval_ns"`
			Rows       []map[string]any `json:"rows"`
		}
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("JSON document %d: %v\n%s", i, err, out)
		}
		if len(d.Rows) != 1 || d.Rows[0]["obj_type"] != "group" || d.IntervalNS <= 0 {
			t.Errorf("JSON document %d: %+v", i, d)
		}
		if i == 1 && (d.IntervalNS < int64(150*time.Millisecond) || d.IntervalNS > int64(2*time.Second)) {
			t.Errorf("measured interval %v", time.Duration(d.IntervalNS))
		}
	}
}

// TestLabMonitor starts dmfilemapd with create and update_filemap, and
// checks the warning when no daemon can be found.
func TestLabMonitor(t *testing.T) {
	l := newLab(t, lab.FSXFS, "allocsize=4k")
	dev := l.DMName
	path := filepath.Join(l.Mountpoint, "watched")
	fragmented(t, path, 1, 4)

	// No dmfilemapd anywhere: a warning, and the group is made.
	t.Setenv("PATH", t.TempDir())
	out, errs, code := runCLI(t, "create", "--filemap", path)
	if code != 0 || !strings.Contains(errs, "dmfm: warning: dmfilemapd is not available") || !strings.Contains(errs, "use update_filemap") {
		t.Fatalf("create without a daemon: exit %d, %q %q", code, out, errs)
	}
	wipe(t, dev)

	bin, err := filepath.Abs("../../bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(bin, "dmfilemapd")); err != nil {
		t.Fatalf("build the daemon first (make build): %v", err)
	}
	t.Setenv("PATH", bin+":/usr/sbin:/usr/bin:/sbin:/bin")
	out, errs, code = runCLI(t, "create", "--filemap", "-v", path)
	if code != 0 || !strings.Contains(errs, "dmfilemapd follows "+path) {
		t.Fatalf("create with the daemon: exit %d, %q %q", code, out, errs)
	}
	m := regexp.MustCompile(`\(pid (\d+)\)`).FindStringSubmatch(errs)
	if m == nil || m[1] == "0" {
		t.Fatalf("no daemon pid in %q", errs)
	}
	alive := func() bool { return unix.Kill(atoi(t, m[1]), 0) == nil }
	n := len(regionsOf(t, statsList(t, dev)))
	// The daemon maps new extents.
	fragmented(t, path, 5, 6)
	deadline := time.Now().Add(20 * time.Second)
	for len(regionsOf(t, statsList(t, dev))) <= n {
		if time.Now().After(deadline) {
			t.Fatalf("dmfilemapd did not map the new extents:\n%s", statsList(t, dev))
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Deleting the group stops the daemon.
	if !alive() {
		t.Errorf("dmfilemapd %s is not running", m[1])
	}
	dmfmOK(t, "delete", "--groupid", "0", dev)
	deadline = time.Now().Add(20 * time.Second)
	for alive() {
		if time.Now().After(deadline) {
			t.Fatalf("dmfilemapd %s still running after the group was deleted", m[1])
		}
		time.Sleep(200 * time.Millisecond)
	}
	if rows := statsList(t, dev); rows != "" {
		t.Errorf("regions left:\n%s", rows)
	}

	// --foreground: the command becomes the daemon and ends with the group.
	dmfmOK(t, "create", "--filemap", "--nomonitor", path)
	type result struct {
		out, errs string
		code      int
	}
	done := make(chan result, 1)
	go func() {
		out, errs, code := runCLI(t, "update_filemap", "--foreground", "--groupid", "0", path)
		done <- result{out, errs, code}
	}()
	n = len(regionsOf(t, statsList(t, dev)))
	fragmented(t, path, 11, 5)
	deadline = time.Now().Add(20 * time.Second)
	for len(regionsOf(t, statsList(t, dev))) <= n {
		if time.Now().After(deadline) {
			t.Fatalf("the foreground daemon did not map the new extents:\n%s", statsList(t, dev))
		}
		time.Sleep(200 * time.Millisecond)
	}
	select {
	case r := <-done:
		t.Fatalf("update_filemap --foreground returned while its group exists: %+v", r)
	default:
	}
	dmfmOK(t, "delete", "--groupid", "0", dev)
	select {
	case r := <-done:
		if r.code != 0 || !strings.HasSuffix(r.out, ": Updated group ID 0 with "+strconv.Itoa(n)+" region(s).\n") {
			t.Errorf("update_filemap --foreground: %+v", r)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("update_filemap --foreground still running after its group was deleted")
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// recordingMessenger passes messages to the kernel and records each with
// its reply.
type recordingMessenger struct {
	m       dmstats.Messenger
	mu      sync.Mutex
	sent    []string
	replies []string
}

func (r *recordingMessenger) Message(msg string) (string, error) {
	reply, err := r.m.Message(msg)
	r.mu.Lock()
	r.sent, r.replies = append(r.sent, msg), append(r.replies, reply)
	r.mu.Unlock()
	return reply, err
}

// zeroDevice makes a dm zero device of size sectors, removed after the test.
func zeroDevice(t *testing.T, c *dm.Client, what string, size uint64) string {
	t.Helper()
	name := fmt.Sprintf("dmfm-test-%s-%d", what, os.Getpid())
	if _, err := c.Create(name, lab.UUIDPrefix+name, dm.Table{{Start: 0, Length: size, Target: dm.Zero{}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Remove(dm.ByName(name)); err != nil {
			t.Errorf("remove %s: %v", name, err)
		}
	})
	return name
}

// groupedZeroDevice makes a dm zero device with n regions of 8 sectors,
// grouped as "big" with leader 0; the device and client go after the test.
func groupedZeroDevice(t *testing.T, what string, n int) (*dm.Client, string) {
	t.Helper()
	labtest.RequireDM(t)
	c, err := dm.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() }) // after zeroDevice's removal
	name := zeroDevice(t, c, what, 1<<20)
	st := dmstats.New(dmstats.DeviceMessenger(c, dm.ByName(name)))
	for i := 0; i < n; i++ {
		if _, err := st.Create(dmstats.CreateOptions{Start: uint64(8 * i), Length: 8, ProgramID: dmstats.DefaultProgramID}); err != nil {
			t.Fatal(err)
		}
	}
	dmfmOK(t, "group", "--regions", fmt.Sprintf("0-%d", n-1), "--alias", "big", name)
	return c, name
}

// TestLabBulkDeleteScratch deletes 600 regions through the kernel: the
// lowest goes first, a scratch region takes its id at the head of the
// kernel's list, and nothing is left at the end. A scratch region whose
// process died is removed by the next command that creates regions; a
// live process's is left alone and shown by no command.
func TestLabBulkDeleteScratch(t *testing.T) {
	c, name := groupedZeroDevice(t, "scratch", 600)
	dev, err := c.Info(dm.ByName(name))
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingMessenger{m: dmstats.DeviceMessenger(c, dm.ByName(name))}
	st := dmstats.New(rec)
	state, err := loadState(device{Name: name, Major: dev.Major, Minor: dev.Minor}, st)
	if err != nil {
		t.Fatal(err)
	}
	g, err := state.needGroup(0)
	if err != nil {
		t.Fatal(err)
	}
	rec.sent, rec.replies = nil, nil
	if err := state.deleteRegions(context.Background(), g.Members, dmstats.FormatQuoted, false, nil, 1); err != nil {
		t.Fatal(err)
	}
	self, err := dmstats.SelfOwner()
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.sent) < 3 || rec.sent[0] != "@stats_delete 1" ||
		rec.sent[1] != "@stats_create 0+1 /1 1 precise_timestamps dmfm-scratch "+self.String() || rec.replies[1] != "1" {
		t.Fatalf("the bulk delete began with %q (replies %q), want the delete of region 1 and a scratch region taking id 1", rec.sent[:min(3, len(rec.sent))], rec.replies[:min(3, len(rec.replies))])
	}
	if l := statsList(t, name); l != "" {
		t.Fatalf("left after deleting the group:\n%s", l)
	}

	// A dead process's scratch region (id 0) goes, a live one's (id 1) stays.
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	dead, err := dmstats.OwnerOf(sleep.Process.Pid)
	sleep.Process.Kill()
	sleep.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if id, err := st.CreateScratch(dead); err != nil || id != 0 {
		t.Fatalf("scratch region of a dead process: id %d, %v", id, err)
	}
	if id, err := st.CreateScratch(self); err != nil || id != 1 {
		t.Fatalf("scratch region of this process: id %d, %v", id, err)
	}
	if out := dmfmOK(t, "list", "--allprograms", name); strings.Contains(out, "dmfm-scratch") {
		t.Errorf("dmfm list shows scratch regions:\n%s", out)
	}
	dmfmOK(t, "create", "--start", "0", "--length", "8", name)
	want := "0: 0+8 8 dmstats -\n1: 0+1 1 dmfm-scratch " + self.String() + " precise_timestamps\n"
	if l := statsList(t, name); l != want {
		t.Errorf("after create:\n%swant\n%s", l, want)
	}
	if err := st.DeleteScratch(1, dead); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(statsList(t, name), "dmfm-scratch") {
		t.Errorf("DeleteScratch deleted another process's scratch region")
	}
	if err := st.DeleteScratch(1, self); err != nil {
		t.Fatal(err)
	}
	wipe(t, name)
}

// TestLabDeleteInterrupted sends SIGINT to `dmfm delete --groupid` while it
// deletes a group of 2000 regions: it exits non-zero saying it stopped,
// leaves no scratch region, and the leader's tag lists exactly the regions
// left, so that lvm2's dmstats still reads the group.
func TestLabDeleteInterrupted(t *testing.T) {
	const n = 2000
	c, name := groupedZeroDevice(t, "sigint", n)
	st := dmstats.New(dmstats.DeviceMessenger(c, dm.ByName(name)))
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "delete", "--groupid", "0", name)
	cmd.Env = append(os.Environ(), "DMFM_TEST_AS_DMFM=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt once a tenth of the regions is gone.
	for {
		regions, err := st.List(dmstats.DefaultProgramID)
		if err != nil {
			t.Fatal(err)
		}
		if len(regions) == 0 {
			t.Fatalf("the delete ended before it could be interrupted")
		}
		if len(regions) < n-n/10 {
			break
		}
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if err == nil || !strings.Contains(out.String(), "stopped: interrupt signal received") {
		t.Fatalf("interrupted delete: %v\n%s", err, out.String())
	}
	regions, err := st.List("")
	if err != nil {
		t.Fatal(err)
	}
	if len(regions) == 0 || regions[0].ID != 0 {
		t.Fatalf("the leader was deleted although members are left (%d regions)", len(regions))
	}
	var left []uint64
	for _, r := range regions {
		if dmstats.IsScratch(r) {
			t.Errorf("scratch region %d left behind", r.ID)
		}
		left = append(left, r.ID)
	}
	g, ok, err := dmstats.ParseGroupTag(regions[0].AuxData)
	if !ok || err != nil || !slices.Equal(g.Members, left) {
		t.Fatalf("group tag %q (%v) does not list exactly the %d regions left", regions[0].AuxData, err, len(left))
	}
	if out := toolOK(t, "dmstats", "list", "--group", name); !strings.Contains(out, "big") {
		t.Errorf("dmstats list --group does not show the group:\n%s", out)
	}
	t.Logf("interrupted with %d of %d regions left", len(left), n)
	wipe(t, name)
}
