package vm

import (
	"bytes"
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
	bin := filepath.Join(tmp, "x.test")
	os.WriteFile(bin, nil, 0o755)
	script := filepath.Join(tmp, "sub", "s.txtar")
	os.MkdirAll(filepath.Dir(script), 0o755)
	os.WriteFile(script, nil, 0o644)
	got := autoShares(Options{Dir: "/work", Args: []string{bin, "-test.v", script, "/etc/passwd"}})
	var paths []string
	for _, s := range got {
		paths = append(paths, s.HostPath)
		if s.Writable {
			t.Errorf("auto share %s is writable", s.HostPath)
		}
	}
	if want := []string{tmp, filepath.Join(tmp, "sub")}; !reflect.DeepEqual(paths, want) {
		t.Errorf("shares %q, want %q", paths, want)
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
