package vm

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoadOrder(t *testing.T) {
	idx, err := loadModuleIndex("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		names []string
		want  []string
		err   string
	}{
		{names: []string{"dm-mod"}, want: []string{"kernel/drivers/md/dm-mod.ko"}},
		{names: []string{"dm_mod"}, want: []string{"kernel/drivers/md/dm-mod.ko"}},
		{names: []string{"9p"}, want: []string{"kernel/fs/fscache/fscache.ko", "kernel/fs/netfs/netfs.ko", "kernel/net/9p/9pnet.ko", "kernel/fs/9p/9p.ko"}},
		{names: []string{"virtio_pci", "virtio_console", "9pnet_virtio"}, want: []string{
			"kernel/drivers/virtio/virtio_pci_modern_dev.ko", "kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/virtio/virtio.ko",
			"kernel/drivers/virtio/virtio_pci.ko.xz", "kernel/net/9p/9pnet.ko", "kernel/net/9p/9pnet_virtio.ko"}},
		{names: []string{"nosuch"}, err: "module nosuch is not in testdata"},
	} {
		got, err := idx.loadOrder(tc.names...)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("loadOrder(%v): error %v, want %q", tc.names, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("loadOrder(%v): %v", tc.names, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("loadOrder(%v)\n got %q\nwant %q", tc.names, got, tc.want)
		}
	}
}

// TestCPIO checks our newc writer against GNU cpio as the oracle.
func TestCPIO(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Fatalf("this test uses GNU cpio as its oracle: %v (apt-get install cpio)", err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	big := bytes.Repeat([]byte("0123456789abcdef"), 4099) // not a multiple of 4 after the 3 below
	big = append(big, 'x', 'y', 'z')
	if err := os.WriteFile(src, big, 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := newCPIOWriter(&buf)
	w.Dir("d", 0o755)
	w.Bytes("d/odd", 0o600, []byte("abcde"))
	w.File("big", 0o755, src)
	w.CharDev("null", 0o666, 1, 3)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if buf.Len()%4 != 0 {
		t.Errorf("archive length %d is not a multiple of 4", buf.Len())
	}
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o755)
	cmd := exec.Command("cpio", "-idm", "--quiet")
	cmd.Dir = out
	cmd.Stdin = bytes.NewReader(buf.Bytes())
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v: %s", err, b)
	}
	if got, _ := os.ReadFile(filepath.Join(out, "d/odd")); string(got) != "abcde" {
		t.Errorf("d/odd = %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(out, "big")); !bytes.Equal(got, big) {
		t.Errorf("big: %d bytes back, want %d", len(got), len(big))
	}
	if st, err := os.Stat(filepath.Join(out, "big")); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("big mode: %v %v", st.Mode(), err)
	}
	if st, err := os.Stat(filepath.Join(out, "null")); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		t.Errorf("null is not a char device: %v", err)
	}
}

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"A=1", "B=2"}, []string{"B=3", "C=4"})
	if want := []string{"A=1", "B=3", "C=4"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q want %q", got, want)
	}
	env := guestEnv([]string{"X=y"})
	has := func(kv string) bool {
		for _, e := range env {
			if e == kv {
				return true
			}
		}
		return false
	}
	if !has("X=y") || !has("DM_DISABLE_UDEV=1") || !has("HOME=/tmp") {
		t.Errorf("guest env lacks basics: %q", env)
	}
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") && !strings.HasPrefix(e, "PATH="+guestBin+":") {
			t.Errorf("guest PATH does not start with the modprobe wrapper dir: %s", e)
		}
	}
}

func TestAutoShares(t *testing.T) {
	tmp, err := os.MkdirTemp("/tmp", "autoshare-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "b001", "x.test")
	os.MkdirAll(filepath.Dir(bin), 0o755)
	os.WriteFile(bin, nil, 0o755)
	script := filepath.Join(tmp, "sub", "s.txtar")
	os.MkdirAll(filepath.Dir(script), 0o755)
	os.WriteFile(script, nil, 0o644)
	junit := filepath.Join(tmp, "repo", ".cache", "junit")
	os.MkdirAll(junit, 0o755)
	for _, tc := range []struct {
		name string
		o    Options
		want []Share
	}{
		{"outside tmp", Options{Dir: "/work", Args: []string{"/bin/true", "/etc/passwd"}}, nil},
		{"binary and script under one tmp tree", Options{Dir: "/work", Args: []string{bin, "-test.v", script, "/etc/passwd"}},
			[]Share{{HostPath: tmp}}},
		{"repository cloned under tmp, writable share inside it",
			Options{Dir: filepath.Join(tmp, "repo"), Args: []string{"go"}, Shares: []Share{{HostPath: junit, Writable: true}}},
			[]Share{{HostPath: tmp}, {HostPath: junit, Writable: true}}},
		{"missing path", Options{Dir: "/work", Args: []string{"x", "/tmp/no/such/file"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := autoShares(tc.o)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("shares %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestConsoleVerdict(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ log, want string }{
		{"[ 1.0] ok\n[ 2.0] Kernel panic - not syncing: Fatal exception\n", "kernel panic: Kernel panic - not syncing: Fatal exception"},
		{"[ 1.0] Oops: 0000 [#1] SMP\n", "kernel oops: Oops: 0000 [#1] SMP"},
		{"dmfm lab (guest): mount x: no such device\n", "the guest's init failed: dmfm lab (guest): mount x: no such device"},
		{"all quiet\n", "no panic in the console log"},
	} {
		p := filepath.Join(dir, "console.log")
		os.WriteFile(p, []byte(tc.log), 0o644)
		if got := consoleVerdict(p); got != tc.want {
			t.Errorf("consoleVerdict(%q) = %q, want %q", tc.log, got, tc.want)
		}
	}
}

// fakeBzImage builds the parts of a bzImage that unpackBzImage reads: the
// setup header with the boot protocol version and the payload fields, and
// the payload after one setup sector.
func fakeBzImage(version uint16, payload []byte) []byte {
	img := make([]byte, 2*512+0x40+len(payload))
	img[0x1f1] = 1 // setup_sects
	copy(img[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(img[0x206:], version)
	binary.LittleEndian.PutUint32(img[0x248:], 0x40)
	binary.LittleEndian.PutUint32(img[0x24c:], uint32(len(payload)))
	copy(img[2*512+0x40:], payload)
	return img
}

func compress(t *testing.T, data []byte, tool ...string) []byte {
	t.Helper()
	cmd := exec.Command(tool[0], tool[1:]...)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	return out
}

func TestUnpackBzImage(t *testing.T) {
	kernel := bytes.Repeat([]byte("an uncompressed kernel "), 1000)
	sizeWord := func(n int) []byte { return binary.LittleEndian.AppendUint32(nil, uint32(n)) }
	xz := compress(t, kernel, "xz", "-c", "--check=crc32")
	gz := compress(t, kernel, "gzip", "-c")
	for _, tc := range []struct {
		name string
		img  []byte
		err  string
	}{
		{name: "xz with size word", img: fakeBzImage(0x20f, append(append([]byte(nil), xz...), sizeWord(len(kernel))...))},
		{name: "gzip", img: fakeBzImage(0x20f, gz)},
		{name: "xz with a wrong size word", img: fakeBzImage(0x20f, append(append([]byte(nil), xz...), sizeWord(len(kernel)+1)...)),
			err: "the image says"},
		{name: "corrupt xz", img: fakeBzImage(0x20f, append(append([]byte(nil), xz[:len(xz)/2]...), sizeWord(len(kernel))...)),
			err: "xz -dc"},
		{name: "unknown compression", img: fakeBzImage(0x20f, []byte("plain old bytes")), err: "unknown payload compression"},
		{name: "old boot protocol", img: fakeBzImage(0x207, gz), err: "boot protocol 2.07"},
		{name: "not a bzImage", img: make([]byte, 4096), err: "not a bzImage"},
		{name: "payload past the end", img: fakeBzImage(0x20f, gz)[:2*512+0x40+len(gz)-1], err: "lies outside"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := unpackBzImage(tc.img)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, kernel) {
				t.Errorf("got %d bytes back, want the %d-byte kernel", len(got), len(kernel))
			}
		})
	}
}

// TestPVHImage unpacks the lab kernel (fetched on first use, as the boot
// tests do) and checks the result is the ELF kernel with its PVH entry, and
// that a second call uses the cache.
func TestPVHImage(t *testing.T) {
	k, err := EnsureKernel(context.Background(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pvhImage(k, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if p == "" {
		t.Fatalf("the lab kernel %s was not unpacked for PVH boot", k.Image)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ok, err := hasPVHEntry(f); err != nil || !ok {
		t.Errorf("hasPVHEntry(%s) = %v, %v; want true", p, ok, err)
	}
	st, _ := f.Stat()
	again, err := pvhImage(k, io.Discard)
	if err != nil || again != p {
		t.Fatalf("second call: %q, %v; want %q", again, err, p)
	}
	if st2, _ := os.Stat(p); !st2.ModTime().Equal(st.ModTime()) {
		t.Errorf("the cached image was rewritten")
	}
	// An ELF file without the note: this test binary.
	self, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	if ok, err := hasPVHEntry(self); err != nil || ok {
		t.Errorf("hasPVHEntry(test binary) = %v, %v; want false", ok, err)
	}
}

func TestModuleParams(t *testing.T) {
	const cmdline = `console=ttyS0 root=/dev/vda1.x loop.max_part=8 dm_mod.dm_numa_node=0 dm-mod.stats_current_allocated_bytes=1 ` +
		`loop.max_loop="4" 9pnet.debug virtio_pci.x="a b" quiet` + "\n"
	for _, tc := range []struct{ module, want string }{
		{"kernel/drivers/block/loop.ko", "max_part=8 max_loop=4"},
		{"dm-mod.ko", "dm_numa_node=0 stats_current_allocated_bytes=1"},
		{"kernel/net/9p/9pnet.ko", "debug"},
		{"virtio_pci.ko", `x="a b"`},
		{"kernel/fs/9p/9p.ko", ""},
		{"root.ko", ""}, // "root=/dev/vda1.x" is no parameter of a module "root"
	} {
		if got := moduleParams(cmdline, tc.module); got != tc.want {
			t.Errorf("moduleParams(%s) = %q, want %q", tc.module, got, tc.want)
		}
	}
	if got, want := splitCmdline(` a "b c"d  e="f g" `), []string{"a", "b cd", "e=f g"}; !reflect.DeepEqual(got, want) {
		t.Errorf("splitCmdline = %q, want %q", got, want)
	}
}

func TestLPJFor(t *testing.T) {
	const cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC\nbogomips\t: 4890.82\n\nprocessor\t: 1\nbogomips\t: 4890.82\n"
	for _, tc := range []struct {
		name, cpuinfo, config string
		want                  int64
	}{
		{"HZ 250", cpuinfo, "CONFIG_HZ_250=y\nCONFIG_HZ=250\n", 9781640},
		{"HZ 1000", cpuinfo, "CONFIG_HZ=1000\n", 2445410},
		{"no HZ", cpuinfo, "CONFIG_HZ_250=y\n", 0},
		{"no bogomips", "processor\t: 0\n", "CONFIG_HZ=250\n", 0},
		{"implausible rate", "bogomips\t: 2.00\n", "CONFIG_HZ=250\n", 0},
	} {
		if got := lpjFor(tc.cpuinfo, tc.config); got != tc.want {
			t.Errorf("%s: lpjFor = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestCachedKernelPackage checks that apt's answer is remembered while apt's
// state stays as it is, and asked again once the package lists change.
func TestCachedKernelPackage(t *testing.T) {
	t.Setenv("DMFM_KERNEL_PACKAGE", "") // ask apt
	lists := t.TempDir()
	old := aptStateFiles
	aptStateFiles = []string{lists}
	defer func() { aptStateFiles = old }()
	os.WriteFile(filepath.Join(lists, "x_Packages"), []byte("v1"), 0o644)
	dir := t.TempDir()
	first, err := cachedKernelPackage(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "package-*"))
	if len(files) != 1 {
		t.Fatalf("cache files %q, want one", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(b)), " "+first) {
		t.Fatalf("cache file %q (%v) does not name %s", b, err, first)
	}
	// A changed answer in the cache file is returned while the stamp holds...
	stamp, _, _ := strings.Cut(string(b), " ")
	os.WriteFile(files[0], []byte(stamp+" linux-image-cached\n"), 0o644)
	if got, err := cachedKernelPackage(context.Background(), dir); err != nil || got != "linux-image-cached" {
		t.Errorf("with a fresh cache: %q, %v; want linux-image-cached", got, err)
	}
	// ...and apt is asked again once the lists change.
	os.WriteFile(filepath.Join(lists, "x_Packages"), []byte("v2, longer"), 0o644)
	if got, err := cachedKernelPackage(context.Background(), dir); err != nil || got != first {
		t.Errorf("after the lists changed: %q, %v; want apt's %q", got, err, first)
	}
	if aptStamp() == stamp {
		t.Errorf("the stamp did not change with the lists")
	}
	// The answer for the old lists is still there, for runs that still see them.
	if files, _ := filepath.Glob(filepath.Join(dir, "package-*")); len(files) != 2 {
		t.Errorf("cache files %q, want two", files)
	}
}
