package fiemap

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// run runs a command and fails the test with its output if it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// loopFS makes a filesystem of the given type on a fresh loop device backed
// by a sparse image in a temporary directory, mounts it, and returns the
// mount point and the image path. Cleanup unmounts and detaches the loop
// device even when the test fails half-way.
func loopFS(t *testing.T, fstype string, mkfsArgs ...string) (mnt, image string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop devices and mounts")
	}
	for _, tool := range []string{"losetup", "mkfs." + fstype, "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	dir := t.TempDir()
	image = filepath.Join(dir, fstype+".img")
	img, err := os.Create(image)
	if err != nil {
		t.Fatal(err)
	}
	// mkfs.xfs refuses filesystems below 300 MiB.
	if err := img.Truncate(320 << 20); err != nil {
		t.Fatal(err)
	}
	img.Close()
	dev := run(t, "losetup", "-f", "--show", image)
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v\n%s", dev, err, out)
		}
	})
	run(t, "mkfs."+fstype, append(mkfsArgs, dev)...)
	mnt = filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "mount", "-t", fstype, dev, mnt)
	t.Cleanup(func() {
		// A just-closed file can keep the mount busy for a moment.
		var err error
		for range 50 {
			if err = unix.Unmount(mnt, 0); err == nil || err == unix.EINVAL {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("umount %s: %v", mnt, err)
	})
	return mnt, image
}

func TestLoopFilesystems(t *testing.T) {
	tests := []struct {
		fstype string
		mkfs   []string
		magic  int64
	}{
		{"ext4", []string{"-q", "-F"}, unix.EXT4_SUPER_MAGIC},
		{"xfs", []string{"-q", "-f"}, unix.XFS_SUPER_MAGIC},
	}
	for _, tc := range tests {
		t.Run(tc.fstype, func(t *testing.T) {
			mnt, image := loopFS(t, tc.fstype, tc.mkfs...)
			var st unix.Statfs_t
			if err := unix.Statfs(mnt, &st); err != nil {
				t.Fatal(err)
			}
			if st.Type != tc.magic {
				t.Fatalf("%s has fs magic %#x, want %#x", mnt, st.Type, tc.magic)
			}
			runCases(t, mnt, dataMatches(image))
		})
	}
}
