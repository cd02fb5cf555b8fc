package dm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmfm/dmfm/lib/dm/internal/dmioctl"
	"golang.org/x/sys/unix"
)

func TestDevIDString(t *testing.T) {
	cases := []struct {
		id   DevID
		want string
	}{
		{ByName("labx"), `"labx"`},
		{ByUUID("LAB-1"), `uuid "LAB-1"`},
		{ByDevno(253, 4), "dev 253:4"},
		{ByDevno(259, 70000), "dev 259:70000"},
		{DevID{}, "(no device)"},
		{DevID{Name: "a", UUID: "b"}, `(name "a", uuid "b", dev 0:0)`},
	}
	for _, c := range cases {
		if got := c.id.String(); got != c.want {
			t.Errorf("%#v.String() = %q, want %q", c.id, got, c.want)
		}
	}
}

func TestDevIDApply(t *testing.T) {
	cases := []struct {
		id      DevID
		wantErr string
	}{
		{ByName("labx"), ""},
		{ByUUID("LAB-1"), ""},
		{ByDevno(253, 4), ""},
		{DevID{}, "empty device id"},
		{DevID{Name: "a", UUID: "b"}, "more than one"},
		{DevID{Name: "a", Dev: 5}, "more than one"},
		{ByName(strings.Repeat("n", 128)), "limit is 127"},
		{ByUUID(strings.Repeat("u", 129)), "limit is 128"},
	}
	for _, c := range cases {
		var h dmioctl.Header
		err := c.id.apply(&h)
		if c.wantErr == "" {
			if err != nil {
				t.Errorf("%v: %v", c.id, err)
				continue
			}
			if h.NameString() != c.id.Name || h.UUIDString() != c.id.UUID || h.Dev != c.id.Dev {
				t.Errorf("%v applied as name %q uuid %q dev %#x", c.id, h.NameString(), h.UUIDString(), h.Dev)
			}
		} else if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%v: error %v, want %q", c.id, err, c.wantErr)
		}
	}
	// ByDevno uses the kernel's encoding, as huge_decode_dev expects.
	if d := ByDevno(253, 4).Dev; d != 0xfd04 {
		t.Errorf("ByDevno(253, 4).Dev = %#x, want 0xfd04", d)
	}
}

func TestCheckName(t *testing.T) {
	good := []string{"labx", "a-b_c.d", strings.Repeat("n", 127)}
	bad := map[string]string{
		"":                       "empty",
		"a/b":                    "'/'",
		".":                      "reserved",
		"..":                     "reserved",
		"control":                "reserved",
		strings.Repeat("n", 128): "limit is 127",
		"a\x00":                  "NUL",
	}
	for _, n := range good {
		if err := checkName(n); err != nil {
			t.Errorf("checkName(%q) = %v", n, err)
		}
	}
	for n, want := range bad {
		if err := checkName(n); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("checkName(%q) = %v, want %q", n, err, want)
		}
	}
	if err := checkUUID(strings.Repeat("u", 129)); err == nil {
		t.Error("overlong uuid accepted")
	}
}

func TestErrnoMapping(t *testing.T) {
	cases := []struct {
		errno           unix.Errno
		busyMeansExists bool
		want            error // sentinel or nil
		text            string
	}{
		{unix.ENXIO, false, ErrNotFound, "device not found"},
		{unix.EEXIST, false, ErrExists, "device already exists"},
		{unix.EBUSY, false, ErrBusy, "device or resource busy"},
		{unix.EBUSY, true, ErrExists, "name or uuid already in use"},
		{unix.EINVAL, false, nil, "invalid argument"},
		{unix.EACCES, false, nil, "permission denied"},
	}
	sentinels := []error{ErrNotFound, ErrExists, ErrBusy, ErrNoDM}
	for _, c := range cases {
		err := error(&Error{Op: "create", Device: ByName("labx").String(), Err: mapErrno(c.errno, c.busyMeansExists)})
		if want := `dm create "labx": ` + c.text; err.Error() != want {
			t.Errorf("%v: message %q, want %q", c.errno, err, want)
		}
		if !errors.Is(err, c.errno) {
			t.Errorf("%v: errors.Is(errno) false", c.errno)
		}
		for _, s := range sentinels {
			if got := errors.Is(err, s); got != (s == c.want) {
				t.Errorf("%v (busyMeansExists %v): errors.Is(%v) = %v", c.errno, c.busyMeansExists, s, got)
			}
		}
		var e *Error
		if !errors.As(err, &e) || e.Op != "create" {
			t.Errorf("%v: errors.As(*Error) failed", c.errno)
		}
	}
	// Context wrapped around a mapped errno keeps the mapping.
	err := &Error{Op: "reload", Device: `"x"`, Err: fmt.Errorf("suspend: %w", mapErrno(unix.ENXIO, false))}
	if !errors.Is(err, ErrNotFound) || err.Error() != `dm reload "x": suspend: device not found` {
		t.Errorf("wrapped mapping: %v", err)
	}
	// A non-errno error passes through unchanged.
	plain := errors.New("plain")
	if mapErrno(plain, false) != plain {
		t.Error("mapErrno changed a non-errno error")
	}
	if got := (&Error{Op: "version", Err: plain}).Error(); got != "dm version: plain" {
		t.Errorf("device-less error = %q", got)
	}
}

func TestInfoPaths(t *testing.T) {
	i := Info{Name: "labx", Minor: 12}
	if i.DevPath() != "/dev/mapper/labx" || i.DevNode() != "/dev/dm-12" {
		t.Errorf("DevPath %q DevNode %q", i.DevPath(), i.DevNode())
	}
	if v := (Version{4, 47, 0}).String(); v != "4.47.0" {
		t.Errorf("Version.String() = %q", v)
	}
}

// fakeKernel answers DM_TARGET_MSG like the kernel's target_message: it
// sets DM_BUFFER_FULL_FLAG when the reply does not fit in data_size, and
// otherwise returns the text at data_start with DM_DATA_OUT_FLAG. The
// kernel will not overflow on demand, so this is the one place a fake
// stands in for it.
type fakeKernel struct {
	t        *testing.T
	reply    string // reply text; "" means no DM_DATA_OUT_FLAG
	errno    unix.Errno
	sizes    []uint32 // data_size of each request
	messages []string // message of each request
}

func (k *fakeKernel) ioctl(fd uintptr, req uint32, buf []byte) error {
	var h dmioctl.Header
	if err := h.Unmarshal(buf); err != nil {
		k.t.Fatal(err)
	}
	if req != dmioctl.ReqTargetMsg {
		k.t.Fatalf("request %#x, want DM_TARGET_MSG", req)
	}
	if h.Version != [3]uint32{4, 0, 0} || h.DataStart != dmioctl.HeaderSize || int(h.DataSize) != len(buf) {
		k.t.Fatalf("bad request header %+v (buffer %d)", h, len(buf))
	}
	k.sizes = append(k.sizes, h.DataSize)
	k.messages = append(k.messages, dmioctl.CString(buf[h.DataStart+dmioctl.TargetMsgSize:]))
	if k.errno != 0 {
		return k.errno
	}
	if k.reply != "" {
		h.Flags |= dmioctl.DataOutFlag
		if int(h.DataStart)+len(k.reply)+1 > len(buf) {
			h.Flags |= dmioctl.BufferFullFlag
		} else {
			n := copy(buf[h.DataStart:], k.reply)
			buf[int(h.DataStart)+n] = 0
			h.DataSize = h.DataStart + uint32(n) + 1
		}
	} else {
		h.DataSize = dmioctl.DataOffset
	}
	h.Marshal(buf)
	return nil
}

func fakeClient(t *testing.T, k *fakeKernel) *Client {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{f: f, fd: f.Fd(), ioctl: k.ioctl, mapperDir: t.TempDir()}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestMessageBufferGrowth(t *testing.T) {
	k := &fakeKernel{t: t, reply: strings.Repeat("0: 0+2048 2048 dmfm -\n", 2000)} // 44000 bytes
	c := fakeClient(t, k)
	got, err := c.Message(ByName("lab0"), 0, "@stats_list")
	if err != nil {
		t.Fatal(err)
	}
	if got != k.reply {
		t.Errorf("reply of %d bytes, want %d", len(got), len(k.reply))
	}
	if want := []uint32{16 << 10, 32 << 10, 64 << 10}; fmt.Sprint(k.sizes) != fmt.Sprint(want) {
		t.Errorf("buffer sizes %v, want %v", k.sizes, want)
	}
	for _, m := range k.messages {
		if m != "@stats_list" {
			t.Errorf("retry sent %q", m)
		}
	}

	// The next call starts at the size that worked; small replies then
	// let the starting size fall back step by step.
	k.reply, k.sizes = "0", nil
	for range 3 {
		if got, err := c.Message(ByName("lab0"), 0, "@stats_create - /1"); err != nil || got != "0" {
			t.Fatalf("small message: %q, %v", got, err)
		}
	}
	if want := []uint32{64 << 10, 32 << 10, 16 << 10}; fmt.Sprint(k.sizes) != fmt.Sprint(want) {
		t.Errorf("buffer sizes after shrink %v, want %v", k.sizes, want)
	}
}

// TestMessageAllocs guards the hot path of the stats tools: a message
// round trip should allocate little beyond the reply string.
func TestMessageAllocs(t *testing.T) {
	k := &fakeKernel{t: t, reply: "0"}
	c := fakeClient(t, k)
	id := ByName("lab0")
	allocs := testing.AllocsPerRun(200, func() {
		k.sizes, k.messages = k.sizes[:0], k.messages[:0]
		if _, err := c.Message(id, 0, "@stats_print 0"); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("%.1f allocations per message", allocs)
	// The fake itself allocates one string per call (k.messages).
	if allocs > 2 {
		t.Errorf("Message allocates %.1f times per call, want at most 2", allocs)
	}
}

func TestMessageBufferLimit(t *testing.T) {
	k := &fakeKernel{t: t, reply: strings.Repeat("x", maxBufSize)} // never fits
	c := fakeClient(t, k)
	_, err := c.Message(ByName("lab0"), 0, "@stats_list")
	if err == nil || !strings.Contains(err.Error(), "64 MiB buffer limit") || !strings.HasPrefix(err.Error(), `dm message "lab0": `) {
		t.Fatalf("error %v, want buffer limit error", err)
	}
	if n := len(k.sizes); n != 13 || k.sizes[n-1] != maxBufSize {
		t.Errorf("tried sizes %v, want 16 KiB doubling to 64 MiB", k.sizes)
	}
}

func TestMessageNoOutputAndErrors(t *testing.T) {
	k := &fakeKernel{t: t}
	c := fakeClient(t, k)
	if got, err := c.Message(ByName("lab0"), 0, "@stats_clear 0"); err != nil || got != "" {
		t.Errorf("no-output message: %q, %v", got, err)
	}
	k.errno = unix.ENXIO
	_, err := c.Message(ByName("gone"), 0, "@stats_list")
	if !errors.Is(err, ErrNotFound) || err.Error() != `dm message "gone": "@stats_list": device not found` {
		t.Errorf("ENXIO: %v", err)
	}
	if _, err := c.Message(DevID{}, 0, "@stats_list"); err == nil || !strings.Contains(err.Error(), "empty device id") {
		t.Errorf("empty id: %v", err)
	}
	c.Close()
	if _, err := c.Message(ByName("lab0"), 0, "x"); !errors.Is(err, errClosed) {
		t.Errorf("closed client: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestLargeRequestSizesBuffer checks that a table load bigger than the
// initial buffer goes out in a buffer that holds it.
func TestLargeRequestSizesBuffer(t *testing.T) {
	var sizes []int
	var specs int
	c := fakeClient(t, &fakeKernel{t: t})
	c.ioctl = func(fd uintptr, req uint32, buf []byte) error {
		var h dmioctl.Header
		if err := h.Unmarshal(buf); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(buf))
		specs = int(h.TargetCount)
		return nil
	}
	var tab Table
	for i := range 1000 {
		tab = append(tab, Segment{Start: uint64(i) * 8, Length: 8, Target: Linear{Device: "/dev/loop0", Offset: uint64(i) * 8}})
	}
	if err := c.Load(ByName("lab0"), tab); err != nil {
		t.Fatal(err)
	}
	// 1000 specs of at least 56 bytes each need more than 16 KiB.
	if len(sizes) != 1 || sizes[0] < 56*1000 || specs != 1000 {
		t.Errorf("load sent %d specs in buffers %v", specs, sizes)
	}
}

func TestValidationBeforeIoctl(t *testing.T) {
	c := fakeClient(t, &fakeKernel{t: t})
	c.ioctl = func(uintptr, uint32, []byte) error {
		t.Fatal("ioctl issued for an invalid request")
		return nil
	}
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"create bad name", func() error { _, err := c.Create("a/b", "", Table{{0, 8, Zero{}}}); return err }(),
			`dm create "a/b": device name contains '/'`},
		{"create empty table", func() error { _, err := c.Create("x", "", nil); return err }(),
			`dm create "x": bad table: empty table`},
		{"create gap", func() error {
			_, err := c.Create("x", "", Table{{0, 8, Zero{}}, {16, 8, Zero{}}})
			return err
		}(), `dm create "x": bad table: segment 1 starts at sector 16`},
		{"create long uuid", func() error { _, err := c.CreateEmpty("x", strings.Repeat("u", 200)); return err }(),
			`dm create "x": uuid is 200 bytes`},
		{"load empty", c.Load(ByName("x"), Table{}), `dm load "x": bad table: empty table`},
		{"reload bad", c.Reload(ByName("x"), Table{{0, 0, Zero{}}}), `dm reload "x": bad table: segment 0 (zero) has length 0`},
		{"rename bad", c.Rename(ByName("x"), "y/z"), `dm rename "x": new name "y/z": device name contains '/'`},
		{"info no id", func() error { _, err := c.Info(DevID{}); return err }(), `dm info (no device): empty device id`},
	}
	for _, tc := range cases {
		if tc.err == nil || !strings.HasPrefix(tc.err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, tc.err, tc.want)
		}
	}
}

func TestNodes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mknod needs root")
	}
	dir := filepath.Join(t.TempDir(), "mapper") // created on demand
	node := filepath.Join(dir, "labx")
	rdev := func() uint64 {
		var st unix.Stat_t
		if err := unix.Lstat(node, &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFBLK || st.Mode&0o777 != 0o600 {
			t.Fatalf("%s has mode %o, want block node 0600", node, st.Mode)
		}
		return st.Rdev
	}
	if err := makeNode(dir, "labx", 253, 7); err != nil {
		t.Fatal(err)
	}
	if rdev() != unix.Mkdev(253, 7) {
		t.Fatalf("node numbers wrong")
	}
	if err := makeNode(dir, "labx", 253, 7); err != nil {
		t.Fatalf("recreating an identical node: %v", err)
	}
	// A stale node for another device is replaced.
	if err := makeNode(dir, "labx", 253, 8); err != nil || rdev() != unix.Mkdev(253, 8) {
		t.Fatalf("replacing stale node: %v", err)
	}
	// removeNode leaves a node of another device alone...
	if err := removeNode(dir, "labx", 253, 9); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(node); err != nil {
		t.Fatalf("removeNode removed another device's node: %v", err)
	}
	// ...and removes its own; a missing node is fine.
	if err := removeNode(dir, "labx", 253, 8); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(node); !os.IsNotExist(err) {
		t.Fatalf("node still there: %v", err)
	}
	if err := removeNode(dir, "labx", 253, 8); err != nil {
		t.Errorf("removing a missing node: %v", err)
	}
	// A regular file in the way is an error for makeNode and left alone by
	// removeNode.
	if err := os.WriteFile(node, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := makeNode(dir, "labx", 253, 7); err == nil || !strings.Contains(err.Error(), "non-device file") {
		t.Errorf("makeNode over a file: %v", err)
	}
	if err := removeNode(dir, "labx", 253, 7); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(node); err != nil || string(b) != "keep" {
		t.Errorf("removeNode touched a regular file: %q, %v", b, err)
	}
	// A udev-style symlink is replaced by a node.
	os.Remove(node)
	if err := os.Symlink("../dm-7", node); err != nil {
		t.Fatal(err)
	}
	if err := makeNode(dir, "labx", 253, 7); err != nil || rdev() != unix.Mkdev(253, 7) {
		t.Errorf("replacing a symlink: %v", err)
	}
}

func TestMiscMinor(t *testing.T) {
	// loop-control is in /proc/misc wherever the loop driver is built in
	// or loaded, as on the development host and in the lab.
	data, err := os.ReadFile("/proc/misc")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), " loop-control\n") {
		t.Skip("no loop-control in /proc/misc")
	}
	m, ok, err := miscMinor("loop-control")
	if err != nil || !ok || m != 237 {
		t.Errorf("miscMinor(loop-control) = %d, %v, %v; want 237", m, ok, err)
	}
	if _, ok, err := miscMinor("no-such-misc-device"); ok || err != nil {
		t.Errorf("miscMinor(missing) = %v, %v", ok, err)
	}
}
