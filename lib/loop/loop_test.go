package loop

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// These tests attach real loop devices and need root and /dev/loop-control.
// Every backing file name carries backingMarker so TestMain can prove that no
// device attached by this test binary outlives it, even though other
// processes may use loop devices at the same time.
var backingMarker = fmt.Sprintf("looptest-%d-", os.Getpid())

func TestMain(m *testing.M) {
	code := m.Run()
	if leaked := leakedDevices(); len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "loop tests leaked devices: %s\n", strings.Join(leaked, ", "))
		for _, p := range leaked {
			_ = Detach(p)
		}
		code = 1
	}
	os.Exit(code)
}

// leakedDevices lists attached devices whose backing file this binary made.
func leakedDevices() []string {
	var out []string
	// Autoclear devices may need a moment to go after their last close.
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out = out[:0]
		all, err := List()
		if err != nil {
			return []string{err.Error()}
		}
		for _, d := range all {
			if strings.Contains(d.Backing, backingMarker) {
				out = append(out, d.Path+" ("+d.Backing+")")
			}
		}
		if len(out) == 0 || time.Now().After(deadline) {
			return out
		}
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("loop tests need root (euid %d)", os.Geteuid())
	}
	if _, err := os.Stat(controlPath); err != nil {
		t.Fatalf("loop tests need %s: %v", controlPath, err)
	}
}

// backingFile creates a sparse file of size bytes and returns its canonical
// path.
func backingFile(t *testing.T, size int64) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, backingMarker+"disk.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return p
}

// attachT attaches through attach and registers cleanup that detaches the
// device only while it still holds this test's backing file.
func attachT(t *testing.T, backing string, opts Options, legacy bool) *Device {
	t.Helper()
	d, err := attach(backing, opts, legacy)
	if err != nil {
		t.Fatalf("attach %s %+v (legacy %v): %v", backing, opts, legacy, err)
	}
	t.Cleanup(func() {
		if err := d.Detach(); err != nil && !errors.Is(err, ErrNotAttached) {
			t.Errorf("cleanup: %v", err)
		}
	})
	return d
}

// sysSize returns the device size in bytes from sysfs.
func sysSize(t *testing.T, d *Device) int64 {
	t.Helper()
	s, err := readAttr(d.Number, "size")
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n * 512
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

func writeAt(t *testing.T, path string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatalf("write %s at %d: %v", path, off, err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("sync %s: %v", path, err)
	}
}

func readAt(t *testing.T, path string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatalf("read %s at %d: %v", path, off, err)
	}
	return b
}

func TestAttachReadWrite(t *testing.T) {
	requireRoot(t)
	const size = 8 << 20
	backing := backingFile(t, size)
	before := pattern(4096, 1)
	writeAt(t, backing, 3<<20, before)

	d := attachT(t, backing, Options{}, false)
	if d.Path != "/dev/loop"+strconv.Itoa(d.Number) || d.Major != loopMajor {
		t.Errorf("device identity = %s %d:%d, want /dev/loop%d on major %d", d.Path, d.Major, d.Minor, d.Number, loopMajor)
	}
	if d.Backing != backing || d.Offset != 0 || d.SizeLimit != 0 || d.ReadOnly || d.Autoclear || d.DirectIO {
		t.Errorf("device = %+v, want plain read-write binding of %s", d, backing)
	}
	if got := sysSize(t, d); got != size {
		t.Errorf("device size = %d, want %d", got, size)
	}
	// Data written to the file before attaching reads back through the device.
	if got := readAt(t, d.Path, 3<<20, len(before)); !bytes.Equal(got, before) {
		t.Error("data in the backing file does not read back through the device")
	}
	// Data written through the device lands in the file.
	after := pattern(8192, 99)
	writeAt(t, d.Path, 5<<20, after)
	if got := readAt(t, backing, 5<<20, len(after)); !bytes.Equal(got, after) {
		t.Error("data written through the device is not in the backing file")
	}
}

func TestAttachOffsetSizeLimit(t *testing.T) {
	requireRoot(t)
	backing := backingFile(t, 8<<20)
	data := pattern(512, 5)
	writeAt(t, backing, 1<<20, data)
	for _, legacy := range []bool{false, true} {
		t.Run(fmt.Sprintf("legacy=%v", legacy), func(t *testing.T) {
			d := attachT(t, backing, Options{Offset: 1 << 20, SizeLimit: 2 << 20}, legacy)
			if d.Offset != 1<<20 || d.SizeLimit != 2<<20 {
				t.Errorf("offset/sizelimit = %d/%d, want %d/%d", d.Offset, d.SizeLimit, 1<<20, 2<<20)
			}
			if got := sysSize(t, d); got != 2<<20 {
				t.Errorf("device size = %d, want %d", got, 2<<20)
			}
			if got := readAt(t, d.Path, 0, len(data)); !bytes.Equal(got, data) {
				t.Error("device sector 0 is not the backing file at the offset")
			}
		})
	}
}

func TestReadOnly(t *testing.T) {
	requireRoot(t)
	backing := backingFile(t, 4<<20)
	for _, legacy := range []bool{false, true} {
		t.Run(fmt.Sprintf("legacy=%v", legacy), func(t *testing.T) {
			d := attachT(t, backing, Options{ReadOnly: true}, legacy)
			if !d.ReadOnly {
				t.Fatalf("device %s is not read-only", d.Path)
			}
			if ro, err := readAttr(d.Number, "ro"); err != nil || ro != "1" {
				t.Errorf("sysfs ro = %q, %v; want 1", ro, err)
			}
			f, err := os.OpenFile(d.Path, os.O_WRONLY, 0)
			if err == nil {
				_, err = f.WriteAt(make([]byte, 512), 0)
				if err == nil {
					err = f.Sync()
				}
				f.Close()
			}
			if err == nil {
				t.Errorf("writing to read-only %s succeeded", d.Path)
			}
		})
	}
}

func TestAutoclear(t *testing.T) {
	requireRoot(t)
	backing := backingFile(t, 4<<20)
	d := attachT(t, backing, Options{Autoclear: true}, false)
	if !d.Autoclear {
		t.Errorf("device %s lacks the autoclear flag", d.Path)
	}
	// Attach holds the device, so it survives until Close.
	time.Sleep(50 * time.Millisecond)
	g, err := Get(d.Path)
	if err != nil || g.Backing != backing || !g.Autoclear {
		t.Fatalf("Get(%s) = %+v, %v; want autoclear binding of %s", d.Path, g, err, backing)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	waitGone(t, backing)
}

// waitGone waits until no loop device is bound to backing.
func waitGone(t *testing.T, backing string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		found, err := Find(backing)
		if err != nil {
			t.Fatal(err)
		}
		if len(found) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still bound to %s", backing, found[0].Path)
		}
	}
}

// alignedBuf returns a len-byte slice aligned for O_DIRECT.
func alignedBuf(n, align int) []byte {
	b := make([]byte, n+align)
	off := align - int(uintptr(unsafe.Pointer(&b[0]))%uintptr(align))
	if off == align {
		off = 0
	}
	return b[off : off+n]
}

func TestDirectIO(t *testing.T) {
	requireRoot(t)
	backing := backingFile(t, 8<<20)
	// Check the backing file system supports O_DIRECT at all; ext4 and xfs
	// do, tmpfs did not before Linux 6.6.
	if f, err := os.OpenFile(backing, os.O_RDONLY|unix.O_DIRECT, 0); err != nil {
		t.Skipf("backing file system of %s has no O_DIRECT: %v", backing, err)
	} else {
		f.Close()
	}
	for _, legacy := range []bool{false, true} {
		t.Run(fmt.Sprintf("legacy=%v", legacy), func(t *testing.T) {
			d := attachT(t, backing, Options{DirectIO: true, BlockSize: 4096}, legacy)
			if !d.DirectIO {
				t.Fatalf("device %s does not use direct I/O", d.Path)
			}
			if dio, err := readAttr(d.Number, "loop/dio"); err != nil || dio != "1" {
				t.Errorf("sysfs loop/dio = %q, %v; want 1", dio, err)
			}
			if lbs, err := readAttr(d.Number, "queue/logical_block_size"); err != nil || lbs != "4096" {
				t.Errorf("logical block size = %q, %v; want 4096", lbs, err)
			}
			f, err := os.OpenFile(d.Path, os.O_RDWR|unix.O_DIRECT, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			buf := alignedBuf(4096, 4096)
			copy(buf, pattern(4096, 42))
			if _, err := f.WriteAt(buf, 1<<20); err != nil {
				t.Fatalf("O_DIRECT write: %v", err)
			}
			if got := readAt(t, backing, 1<<20, 4096); !bytes.Equal(got, buf) {
				t.Error("direct write through the device is not in the backing file")
			}
		})
	}
}

func TestListFindGet(t *testing.T) {
	requireRoot(t)
	backing := backingFile(t, 4<<20)
	a := attachT(t, backing, Options{}, false)
	b := attachT(t, backing, Options{Offset: 4096, ReadOnly: true}, false)
	other := attachT(t, backingFile(t, 1<<20), Options{}, false)

	all, err := List()
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]Device{}
	for i, d := range all {
		byPath[d.Path] = d
		if i > 0 && all[i-1].Number >= d.Number {
			t.Errorf("List is not ordered by number: %s before %s", all[i-1].Path, d.Path)
		}
	}
	for _, want := range []*Device{a, b, other} {
		got, ok := byPath[want.Path]
		if !ok {
			t.Errorf("List lacks %s", want.Path)
			continue
		}
		if got.Backing != want.Backing || got.Offset != want.Offset || got.ReadOnly != want.ReadOnly ||
			got.Major != want.Major || got.Minor != want.Minor || got.Number != want.Number {
			t.Errorf("List entry %+v does not match Attach result %+v", got, *want)
		}
		g, err := Get(want.Path)
		if err != nil {
			t.Fatal(err)
		}
		if g.Backing != want.Backing || g.Offset != want.Offset || g.ReadOnly != want.ReadOnly || g.Number != want.Number {
			t.Errorf("Get = %+v, want %+v", *g, *want)
		}
	}

	// The same file through a symlink and through a hard link.
	dir := filepath.Dir(backing)
	sym := filepath.Join(dir, "symlink.img")
	hard := filepath.Join(dir, "hardlink.img")
	if err := os.Symlink(backing, sym); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(backing, hard); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{backing, sym, hard} {
		found, err := Find(p)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, d := range found {
			got = append(got, d.Path)
		}
		want := []string{a.Path, b.Path}
		if a.Number > b.Number {
			want = []string{b.Path, a.Path}
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("Find(%s) = %v, want %v", p, got, want)
		}
	}
}

func TestSetCapacity(t *testing.T) {
	requireRoot(t)
	backing := backingFile(t, 1<<20)
	d := attachT(t, backing, Options{}, false)
	if got := sysSize(t, d); got != 1<<20 {
		t.Fatalf("size = %d, want %d", got, 1<<20)
	}
	if err := os.Truncate(backing, 3<<20); err != nil {
		t.Fatal(err)
	}
	if got := sysSize(t, d); got != 1<<20 {
		t.Fatalf("size changed to %d before SetCapacity", got)
	}
	if err := SetCapacity(d.Path); err != nil {
		t.Fatal(err)
	}
	if got := sysSize(t, d); got != 3<<20 {
		t.Errorf("size after SetCapacity = %d, want %d", got, 3<<20)
	}
}

func TestDetach(t *testing.T) {
	requireRoot(t)
	backing := backingFile(t, 1<<20)
	d := attachT(t, backing, Options{}, false)
	if err := Detach(d.Path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(sysBlock, "loop"+strconv.Itoa(d.Number), "loop")); !errors.Is(err, fs.ErrNotExist) {
		// Someone else may already have reused the number; then it must
		// at least not be bound to our file.
		if found, _ := Find(backing); len(found) != 0 {
			t.Errorf("%s still bound after Detach", d.Path)
		}
	}
	if err := Detach(d.Path); !errors.Is(err, ErrNotAttached) {
		// Unless the number was reused meanwhile, detaching twice reports
		// the device unbound.
		if g, gerr := Get(d.Path); gerr == nil && g.Backing != backing {
			t.Logf("%s reused by %s; skipping double-detach check", d.Path, g.Backing)
		} else {
			t.Errorf("second Detach = %v, want ErrNotAttached", err)
		}
	}
}

// TestDetachReused checks that Device.Detach leaves alone a device number
// that was detached and then bound again to another file.
func TestDetachReused(t *testing.T) {
	requireRoot(t)
	first := attachT(t, backingFile(t, 1<<20), Options{}, false)
	if err := Detach(first.Path); err != nil {
		t.Fatal(err)
	}
	second := attachT(t, backingFile(t, 1<<20), Options{}, false)
	err := first.Detach()
	if !errors.Is(err, ErrNotAttached) {
		t.Errorf("Detach of stale device = %v, want ErrNotAttached", err)
	}
	if g, err := Get(second.Path); err != nil || g.Backing != second.Backing {
		t.Errorf("second device %s was disturbed: %+v, %v", second.Path, g, err)
	}
}

// TestConcurrentAttach makes several attachers race for the same free device
// so Attach must retry on EBUSY.
func TestConcurrentAttach(t *testing.T) {
	requireRoot(t)
	const n = 6
	var files [n]string
	for i := range files {
		files[i] = backingFile(t, 1<<20)
	}
	var wg sync.WaitGroup
	devs := make([]*Device, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			devs[i], errs[i] = Attach(files[i], Options{})
		}()
	}
	close(start)
	wg.Wait()
	seen := map[string]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Errorf("attacher %d: %v", i, errs[i])
			continue
		}
		d := devs[i]
		t.Cleanup(func() {
			if err := d.Detach(); err != nil && !errors.Is(err, ErrNotAttached) {
				t.Errorf("cleanup: %v", err)
			}
		})
		if seen[d.Path] {
			t.Errorf("two attachers got %s", d.Path)
		}
		seen[d.Path] = true
		if d.Backing != files[i] {
			t.Errorf("attacher %d: %s backs %s, want %s", i, d.Path, d.Backing, files[i])
		}
	}
}

func TestErrors(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	small := backingFile(t, 4096)
	notLoop := filepath.Join(dir, "plain")
	if err := os.WriteFile(notLoop, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	attachCases := []struct {
		name    string
		backing string
		opts    Options
		is      error  // wanted errors.Is target, or nil
		text    string // wanted substring of the message
	}{
		{"missing file", filepath.Join(dir, "missing"), Options{}, fs.ErrNotExist, "missing"},
		{"directory read-write", dir, Options{}, nil, "directory"},
		{"directory read-only", dir, Options{ReadOnly: true}, nil, "directory"},
		{"empty path", "", Options{}, nil, "empty backing file path"},
		{"bad block size", small, Options{BlockSize: 1000}, nil, "block size 1000"},
		{"offset past end", small, Options{Offset: 8192}, nil, "offset 8192"},
		{"char device", "/dev/null", Options{}, nil, "character device"},
	}
	for _, c := range attachCases {
		t.Run("attach "+c.name, func(t *testing.T) {
			d, err := Attach(c.backing, c.opts)
			if err == nil {
				d.Detach()
				t.Fatalf("Attach(%q, %+v) succeeded", c.backing, c.opts)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %v does not wrap %v", err, c.is)
			}
			if !strings.Contains(err.Error(), c.text) || !strings.HasPrefix(err.Error(), "loop: attach ") {
				t.Errorf("error %q lacks %q", err, c.text)
			}
		})
	}

	pathCases := []struct {
		name string
		path string
		is   error
	}{
		{"regular file", notLoop, ErrNotLoop},
		{"char device", "/dev/null", ErrNotLoop},
		{"missing", filepath.Join(dir, "nope"), fs.ErrNotExist},
	}
	ops := map[string]func(string) error{
		"detach":       Detach,
		"set capacity": SetCapacity,
		"get":          func(p string) error { _, err := Get(p); return err },
	}
	for _, c := range pathCases {
		for op, fn := range ops {
			t.Run(op+" "+c.name, func(t *testing.T) {
				err := fn(c.path)
				if !errors.Is(err, c.is) {
					t.Fatalf("%s(%s) = %v, want %v", op, c.path, err, c.is)
				}
				if !strings.Contains(err.Error(), "loop: "+op+" "+c.path) {
					t.Errorf("error %q does not name the operation and path", err)
				}
			})
		}
	}

	if _, err := Find(filepath.Join(dir, "nope")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Find(missing) = %v, want ErrNotExist", err)
	}
}

// TestUnbound checks operations on a free (unbound) loop device.
func TestUnbound(t *testing.T) {
	requireRoot(t)
	ctl, err := os.OpenFile(controlPath, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
	if err != nil {
		t.Fatal(err)
	}
	f, err := openLoop(n, false)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	// Another process may bind it meanwhile; only judge an unbound device.
	if _, err := Get(devPath(n)); err != nil && !errors.Is(err, ErrNotAttached) {
		t.Errorf("Get(free %s) = %v, want ErrNotAttached", devPath(n), err)
	} else if err == nil {
		t.Skipf("%s was bound by someone else meanwhile", devPath(n))
	}
	if err := SetCapacity(devPath(n)); !errors.Is(err, ErrNotAttached) {
		t.Errorf("SetCapacity(free) = %v, want ErrNotAttached", err)
	}
}

func TestParseDevNumbers(t *testing.T) {
	cases := []struct {
		in       string
		maj, min uint32
		ok       bool
	}{
		{"7:0", 7, 0, true},
		{"259:1048575", 259, 1048575, true},
		{"7", 0, 0, false},
		{"a:1", 0, 0, false},
		{"7:-1", 0, 0, false},
	}
	for _, c := range cases {
		maj, min, err := parseDevNumbers(c.in)
		if (err == nil) != c.ok || maj != c.maj || min != c.min {
			t.Errorf("parseDevNumbers(%q) = %d, %d, %v", c.in, maj, min, err)
		}
	}
}

func TestDetachedWhileRead(t *testing.T) {
	attr := "/sys/block/loop4/loop/sizelimit"
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"attribute missing", &fs.PathError{Op: "open", Path: attr, Err: unix.ENOENT}, true},
		{"removed while read", &fs.PathError{Op: "read", Path: attr, Err: unix.ENODEV}, true},
		{"wrapped", fmt.Errorf("sizelimit: %w", &fs.PathError{Op: "read", Path: attr, Err: unix.ENODEV}), true},
		{"permission", &fs.PathError{Op: "open", Path: attr, Err: unix.EACCES}, false},
		{"parse", strconv.ErrSyntax, false},
	}
	for _, tt := range tests {
		if got := detachedWhileRead(tt.err); got != tt.want {
			t.Errorf("%s: detachedWhileRead(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}
