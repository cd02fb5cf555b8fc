//go:build lab

package dm_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/dmfm/dmfm/lab/labtest"
	"github.com/dmfm/dmfm/lib/dm"
	"github.com/dmfm/dmfm/lib/loop"
	"golang.org/x/sys/unix"
)

// Kernel tests: they run inside the lab VM (make lab-test). Every device
// name starts with namePrefix so TestMain can prove nothing leaked.
var namePrefix = fmt.Sprintf("dmtest%d-", os.Getpid())

func TestMain(m *testing.M) {
	code := m.Run()
	if c, err := dm.Open(); err == nil {
		devs, err := c.List()
		if err != nil {
			fmt.Fprintln(os.Stderr, "leak check:", err)
			code = 1
		}
		for _, d := range devs {
			if strings.HasPrefix(d.Name, namePrefix) {
				fmt.Fprintf(os.Stderr, "leaked dm device %s\n", d.Name)
				_ = c.Remove(dm.ByName(d.Name))
				code = 1
			}
		}
		if ents, _ := filepath.Glob(filepath.Join(dm.MapperDir, namePrefix+"*")); len(ents) > 0 {
			fmt.Fprintf(os.Stderr, "leaked nodes %v\n", ents)
			code = 1
		}
		c.Close()
	}
	if loops, err := loop.List(); err == nil {
		for _, l := range loops {
			if strings.Contains(l.Backing, namePrefix) {
				fmt.Fprintf(os.Stderr, "leaked loop device %s (%s)\n", l.Path, l.Backing)
				_ = loop.Detach(l.Path)
				code = 1
			}
		}
	}
	os.Exit(code)
}

// open returns a client closed at cleanup.
func open(t *testing.T) *dm.Client {
	t.Helper()
	labtest.RequireDM(t)
	c, err := dm.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// name returns a device name unique to this test.
func name(t *testing.T, suffix string) string {
	return namePrefix + regexp.MustCompile(`[^A-Za-z0-9_.-]`).ReplaceAllString(t.Name(), "_") + suffix
}

// backing attaches a sparse loop device of size bytes, detached at cleanup.
func backing(t *testing.T, size int64) *loop.Device {
	t.Helper()
	p := filepath.Join(t.TempDir(), namePrefix+"disk.img")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	l, err := loop.Attach(p, loop.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Detach(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return l
}

// devno renders a loop device as "major:minor".
func devno(l *loop.Device) string { return fmt.Sprintf("%d:%d", l.Major, l.Minor) }

// create makes a device and removes it at cleanup unless the test did.
func create(t *testing.T, c *dm.Client, name, uuid string, table dm.Table) dm.Info {
	t.Helper()
	info, err := c.Create(name, uuid, table)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Remove(dm.ByName(info.Name)); err != nil && !errors.Is(err, dm.ErrNotFound) {
			t.Errorf("cleanup: %v", err)
		}
	})
	return info
}

// linear maps the first sectors of l.
func linear(l *loop.Device, sectors uint64) dm.Table {
	return dm.Table{{Start: 0, Length: sectors, Target: dm.Linear{Device: devno(l), Offset: 0}}}
}

// checkNode checks that path is a block node for major:minor.
func checkNode(t *testing.T, path string, major, minor uint32) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatalf("node %s: %v", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK || st.Rdev != unix.Mkdev(major, minor) {
		t.Fatalf("%s is mode %o dev %d:%d, want block %d:%d", path, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev), major, minor)
	}
}

// checkNoNode checks that path does not exist.
func checkNoNode(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists (%v)", path, err)
	}
}

// sysSectors reads /sys/block/dm-N/size.
func sysSectors(t *testing.T, info dm.Info) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/sys/block/dm-%d/size", info.Minor))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestVersion(t *testing.T) {
	c := open(t)
	v, err := c.Version()
	if err != nil {
		t.Fatal(err)
	}
	if v.Major != 4 || v.Minor < 27 {
		t.Errorf("interface version %s, want 4.27 or newer", v)
	}
	t.Logf("device-mapper ioctl interface %s", v)
}

func TestTargets(t *testing.T) {
	c := open(t)
	ts, err := c.Targets()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]dm.Version{}
	for _, tv := range ts {
		found[tv.Name] = tv.Version
	}
	// linear and error are built into dm_mod; other targets are modules
	// loaded on first use.
	for _, want := range []string{"linear", "error"} {
		v, ok := found[want]
		if !ok {
			t.Errorf("targets %v lack %s", ts, want)
		} else if v.Major < 1 {
			t.Errorf("%s version %s", want, v)
		}
	}
}

func TestLinearLifecycle(t *testing.T) {
	c := open(t)
	l := backing(t, 8<<20)
	n, uuid := name(t, ""), "DMTEST-"+name(t, "")
	table := linear(l, 16384)
	info := create(t, c, n, uuid, table)

	if info.Name != n || info.UUID != uuid || !info.LiveTable || info.InactiveTable || info.Suspended ||
		info.ReadOnly || info.TargetCount != 1 || info.OpenCount != 0 || info.Major == 0 {
		t.Errorf("Create returned %+v", info)
	}
	checkNode(t, info.DevPath(), info.Major, info.Minor)
	checkNode(t, info.DevNode(), info.Major, info.Minor)
	if got := sysSectors(t, info); got != 16384 {
		t.Errorf("device has %d sectors, want 16384", got)
	}

	// The same device by each kind of id.
	for _, id := range []dm.DevID{dm.ByName(n), dm.ByUUID(uuid), dm.ByDevno(info.Major, info.Minor)} {
		got, err := c.Info(id)
		if err != nil {
			t.Fatalf("Info(%v): %v", id, err)
		}
		if got != info {
			t.Errorf("Info(%v) = %+v, want %+v", id, got, info)
		}
	}

	tab, err := c.Table(dm.ByName(n))
	if err != nil {
		t.Fatal(err)
	}
	if tab.String() != table.String() {
		t.Errorf("Table = %q, want %q", tab, table)
	}
	if _, ok := tab[0].Target.(dm.Linear); !ok {
		t.Errorf("table target is %T, want dm.Linear", tab[0].Target)
	}

	st, err := c.Status(dm.ByName(n))
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || st[0] != (dm.TargetStatus{Start: 0, Length: 16384, Type: "linear"}) {
		t.Errorf("Status = %+v", st)
	}

	deps, err := c.Deps(dm.ByName(n))
	if err != nil {
		t.Fatal(err)
	}
	if len(deps) != 1 || unix.Major(deps[0]) != l.Major || unix.Minor(deps[0]) != l.Minor {
		t.Errorf("Deps = %#x, want %s", deps, devno(l))
	}

	devs, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	want := dm.Device{Name: n, UUID: uuid, Major: info.Major, Minor: info.Minor}
	found := false
	for _, d := range devs {
		found = found || d == want
	}
	if !found {
		t.Errorf("List = %+v lacks %+v", devs, want)
	}

	// I/O through the device reaches the loop device at the same offset.
	data := []byte(strings.Repeat("dmfm linear test ", 30))[:512]
	writeSync(t, info.DevPath(), 4096*512, data)
	if got := readBack(t, l.Path, 4096*512, len(data)); string(got) != string(data) {
		t.Error("data written through the dm device is not on the loop device")
	}

	if err := c.Remove(dm.ByName(n)); err != nil {
		t.Fatal(err)
	}
	checkNoNode(t, info.DevPath())
	if _, err := c.Info(dm.ByName(n)); !errors.Is(err, dm.ErrNotFound) {
		t.Errorf("Info after Remove = %v, want ErrNotFound", err)
	}
}

func writeSync(t *testing.T, path string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

func readBack(t *testing.T, path string, off int64, n int) []byte {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// O_DIRECT bypasses the loop device's page cache; use an aligned
	// buffer by over-allocating a page-multiple read.
	buf := make([]byte, 2*os.Getpagesize())
	pg := os.Getpagesize()
	start := pg - int(uintptr(unsafe.Pointer(&buf[0]))%uintptr(pg))
	if start == pg {
		start = 0
	}
	al := buf[start : start+pg]
	if _, err := f.ReadAt(al, off); err != nil {
		t.Fatal(err)
	}
	return al[:n]
}

func TestRename(t *testing.T) {
	c := open(t)
	l := backing(t, 1<<20)
	old, renamed := name(t, "-a"), name(t, "-b")
	info := create(t, c, old, "", linear(l, 2048))
	if err := c.Rename(dm.ByName(old), renamed); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Remove(dm.ByName(renamed)) })
	if _, err := c.Info(dm.ByName(old)); !errors.Is(err, dm.ErrNotFound) {
		t.Errorf("old name still answers: %v", err)
	}
	got, err := c.Info(dm.ByName(renamed))
	if err != nil || got.Minor != info.Minor {
		t.Fatalf("Info(new name) = %+v, %v", got, err)
	}
	checkNoNode(t, info.DevPath())
	checkNode(t, got.DevPath(), info.Major, info.Minor)

	// Renaming by device number works too (the client looks the name up).
	if err := c.Rename(dm.ByDevno(info.Major, info.Minor), old); err != nil {
		t.Fatal(err)
	}
	checkNode(t, info.DevPath(), info.Major, info.Minor)
	checkNoNode(t, got.DevPath())

	// Onto a taken name.
	other := create(t, c, renamed, "", linear(l, 2048))
	err = c.Rename(dm.ByName(old), other.Name)
	if !errors.Is(err, dm.ErrExists) || !strings.Contains(err.Error(), strconv.Quote(old)) {
		t.Errorf("rename onto a used name = %v, want ErrExists naming %q", err, old)
	}
	if err := c.Rename(dm.ByName(name(t, "-missing")), name(t, "-x")); !errors.Is(err, dm.ErrNotFound) {
		t.Errorf("rename of a missing device = %v, want ErrNotFound", err)
	}
}

func TestSuspendResume(t *testing.T) {
	c := open(t)
	l := backing(t, 1<<20)
	id := dm.ByName(name(t, ""))
	create(t, c, id.Name, "", linear(l, 2048))
	if err := c.Suspend(id); err != nil {
		t.Fatal(err)
	}
	if info, err := c.Info(id); err != nil || !info.Suspended {
		t.Errorf("after Suspend: %+v, %v", info, err)
	}
	// Suspending twice is allowed.
	if err := c.Suspend(id); err != nil {
		t.Errorf("second Suspend: %v", err)
	}
	if err := c.Resume(id); err != nil {
		t.Fatal(err)
	}
	if info, err := c.Info(id); err != nil || info.Suspended {
		t.Errorf("after Resume: %+v, %v", info, err)
	}
}

func TestCreateEmptyLoadResume(t *testing.T) {
	c := open(t)
	l := backing(t, 1<<20)
	n := name(t, "")
	info, err := c.CreateEmpty(n, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Remove(dm.ByName(n)) })
	if info.LiveTable || info.InactiveTable {
		t.Errorf("empty device has tables: %+v", info)
	}
	checkNode(t, info.DevPath(), info.Major, info.Minor)
	if err := c.Load(dm.ByName(n), linear(l, 2048)); err != nil {
		t.Fatal(err)
	}
	if info, _ = c.Info(dm.ByName(n)); info.LiveTable || !info.InactiveTable {
		t.Errorf("after Load: %+v", info)
	}
	if err := c.Resume(dm.ByName(n)); err != nil {
		t.Fatal(err)
	}
	if info, _ = c.Info(dm.ByName(n)); !info.LiveTable || info.InactiveTable || info.TargetCount != 1 {
		t.Errorf("after Resume: %+v", info)
	}
	if got := sysSectors(t, info); got != 2048 {
		t.Errorf("size %d sectors, want 2048", got)
	}
}

func TestReload(t *testing.T) {
	c := open(t)
	l := backing(t, 16<<20)
	id := dm.ByName(name(t, ""))
	info := create(t, c, id.Name, "", linear(l, 8192))
	bigger := dm.Table{
		{Start: 0, Length: 16384, Target: dm.Linear{Device: devno(l), Offset: 0}},
		{Start: 16384, Length: 8192, Target: dm.Zero{}},
	}
	if err := c.Reload(id, bigger); err != nil {
		t.Fatal(err)
	}
	if got := sysSectors(t, info); got != 24576 {
		t.Errorf("size after Reload %d sectors, want 24576", got)
	}
	tab, err := c.Table(id)
	if err != nil || tab.String() != bigger.String() {
		t.Errorf("Table after Reload = %q, %v; want %q", tab, err, bigger)
	}

	// A table the kernel rejects leaves the old one live and the device
	// resumed.
	bads := []struct {
		table dm.Table
		errno unix.Errno
	}{
		{dm.Table{{Start: 0, Length: 8, Target: dm.Linear{Device: "/nonexistent/dev", Offset: 0}}}, unix.ENODEV},
		{dm.Table{{Start: 0, Length: 8, Target: dm.Raw{TargetType: "linear", Args: "too many args here"}}}, unix.EINVAL},
	}
	for _, bad := range bads {
		err = c.Reload(id, bad.table)
		want := "dm reload " + strconv.Quote(id.Name) + ": load table: "
		if !errors.Is(err, bad.errno) || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Reload with %q = %v, want %v starting %q", bad.table, err, bad.errno, want)
		}
		after, ierr := c.Info(id)
		if ierr != nil || after.Suspended || after.InactiveTable || after.TargetCount != 2 {
			t.Errorf("after failed Reload: %+v, %v", after, ierr)
		}
	}
	if !strings.Contains(err.Error(), "kernel log") {
		t.Errorf("EINVAL from a table load does not point at the kernel log: %v", err)
	}
}

func TestMessageStats(t *testing.T) {
	c := open(t)
	l := backing(t, 1<<20)
	id := dm.ByName(name(t, ""))
	create(t, c, id.Name, "", linear(l, 2048))
	if got, err := c.Message(id, 0, "@stats_list"); err != nil || got != "" {
		t.Errorf("@stats_list on a fresh device = %q, %v; want empty", got, err)
	}
	if got, err := c.Message(id, 0, "@stats_create - /1"); err != nil || got != "0" {
		t.Errorf("@stats_create = %q, %v; want 0", got, err)
	}
	got, err := c.Message(id, 0, "@stats_list")
	if err != nil || !strings.HasPrefix(got, "0: 0+2048 2048 ") {
		t.Errorf("@stats_list after create = %q, %v", got, err)
	}
	_, err = c.Message(id, 0, "@stats_no_such_message")
	if !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), strconv.Quote(id.Name)) {
		t.Errorf("bad message = %v, want EINVAL naming the device", err)
	}
	if _, err := c.Message(dm.ByName(name(t, "-missing")), 0, "@stats_list"); !errors.Is(err, dm.ErrNotFound) {
		t.Errorf("message to a missing device = %v, want ErrNotFound", err)
	}
}

// TestMessageLargeReply makes @stats_list outgrow the first buffer so the
// client must retry on DM_BUFFER_FULL_FLAG against the real kernel.
func TestMessageLargeReply(t *testing.T) {
	c := open(t)
	l := backing(t, 4<<20)
	id := dm.ByName(name(t, ""))
	create(t, c, id.Name, "", linear(l, 8192))
	const regions = 1500
	for i := range regions {
		got, err := c.Message(id, 0, fmt.Sprintf("@stats_create %d+4 /1 dmfm-test", i*4))
		if err != nil || got != strconv.Itoa(i) {
			t.Fatalf("region %d: %q, %v", i, got, err)
		}
	}
	got, err := c.Message(id, 0, "@stats_list")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(got) <= 16<<10 || len(lines) != regions {
		t.Fatalf("@stats_list: %d bytes, %d lines; want > 16 KiB and %d lines", len(got), len(lines), regions)
	}
	if want := fmt.Sprintf("%d: %d+4 4 dmfm-test -", regions-1, (regions-1)*4); lines[regions-1] != want {
		t.Errorf("last line %q, want %q", lines[regions-1], want)
	}
}

func TestErrors(t *testing.T) {
	c := open(t)
	l := backing(t, 1<<20)
	n := name(t, "")
	info := create(t, c, n, "", linear(l, 2048))

	_, err := c.Create(n, "", linear(l, 2048))
	if !errors.Is(err, dm.ErrExists) || !strings.HasPrefix(err.Error(), "dm create "+strconv.Quote(n)) {
		t.Errorf("second Create = %v, want ErrExists naming the device", err)
	}
	checkNode(t, info.DevPath(), info.Major, info.Minor) // the failed create did not touch it

	err = c.Remove(dm.ByName(name(t, "-missing")))
	if !errors.Is(err, dm.ErrNotFound) {
		t.Errorf("Remove(missing) = %v, want ErrNotFound", err)
	}

	f, err := os.Open(info.DevPath())
	if err != nil {
		t.Fatal(err)
	}
	err = c.Remove(dm.ByName(n))
	f.Close()
	if !errors.Is(err, dm.ErrBusy) || !strings.Contains(err.Error(), strconv.Quote(n)) {
		t.Errorf("Remove of an open device = %v, want ErrBusy naming it", err)
	}
	checkNode(t, info.DevPath(), info.Major, info.Minor)

	// A table the kernel rejects: the error names the device and nothing
	// is left behind.
	badName := name(t, "-bad")
	_, err = c.Create(badName, "", dm.Table{{Start: 0, Length: 8, Target: dm.Linear{Device: "/nonexistent/dev", Offset: 0}}})
	if err == nil || !strings.HasPrefix(err.Error(), "dm create "+strconv.Quote(badName)+": load table: ") {
		t.Errorf("Create with a bad table = %v", err)
	}
	if _, err := c.Info(dm.ByName(badName)); !errors.Is(err, dm.ErrNotFound) {
		t.Errorf("failed Create left a device: %v", err)
	}
	checkNoNode(t, filepath.Join(dm.MapperDir, badName))

	// A table larger than the device it maps is rejected too.
	_, err = c.Create(badName, "", linear(l, 1<<30))
	if err == nil {
		t.Error("Create mapping past the end of the loop device succeeded")
	}
	if _, err := c.Info(dm.ByName(badName)); !errors.Is(err, dm.ErrNotFound) {
		t.Errorf("failed Create left a device: %v", err)
	}
}

// TestOpenRecreatesControlNode removes /dev/mapper/control (the lab VM is
// throwaway) and checks that Open makes it again from /proc/misc.
func TestOpenRecreatesControlNode(t *testing.T) {
	labtest.RequireDM(t)
	var before unix.Stat_t
	if err := unix.Stat(dm.ControlPath, &before); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(dm.ControlPath); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := os.Stat(dm.ControlPath); err != nil {
			_ = unix.Mknod(dm.ControlPath, unix.S_IFCHR|0o600, int(before.Rdev))
		}
	})
	c, err := dm.Open()
	if err != nil {
		t.Fatalf("Open without a control node: %v", err)
	}
	if _, err := c.Version(); err != nil {
		t.Errorf("Version through the recreated node: %v", err)
	}
	c.Close()
	var after unix.Stat_t
	if err := unix.Stat(dm.ControlPath, &after); err != nil {
		t.Fatal(err)
	}
	if after.Mode&unix.S_IFMT != unix.S_IFCHR || after.Rdev != before.Rdev {
		t.Errorf("recreated node: mode %o dev %d:%d, want char %d:%d", after.Mode,
			unix.Major(after.Rdev), unix.Minor(after.Rdev), unix.Major(before.Rdev), unix.Minor(before.Rdev))
	}
}
