package filemap

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// On the host (no device-mapper) every file is refused; each kind of refusal
// must name the file and say why. The dm case itself is a lab test.
func TestBindRefuses(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	// The temporary directory is on a disk on most hosts, on tmpfs in the
	// lab.
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	onTemp := ` is on /dev/\S+, which is not a device-mapper device`
	if unix.Major(st.Dev) == 0 {
		onTemp = ` is on [a-z0-9]+, not on a device-mapper device`
	}
	tests := []struct {
		name  string
		path  string
		flag  int
		want  string // regexp: the error after the file's path
		notDM bool
	}{
		{"directory", dir, os.O_RDONLY, ` is not a regular file \(a directory\)`, false},
		{"fifo", fifo, os.O_RDWR, ` is not a regular file \(a FIFO\)`, false},
		{"file in the temp dir", regular, os.O_RDONLY, onTemp, true},
		{"proc", "/proc/self/status", os.O_RDONLY, ` is on proc, not on a device-mapper device`, true},
	}
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		var sfs unix.Statfs_t
		if unix.Statfs("/dev/shm", &sfs) == nil && sfs.Type == unix.TMPFS_MAGIC {
			shm, err := os.CreateTemp("/dev/shm", "dmfm-bind-")
			if err != nil {
				t.Fatal(err)
			}
			shm.Close()
			t.Cleanup(func() { os.Remove(shm.Name()) })
			tests = append(tests, struct {
				name  string
				path  string
				flag  int
				want  string
				notDM bool
			}{"tmpfs", shm.Name(), os.O_RDONLY, ` is on tmpfs, not on a device-mapper device`, true})
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.OpenFile(tc.path, tc.flag, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			b, err := Bind(f)
			if err == nil {
				t.Fatalf("Bind(%s) = %+v, want an error", tc.path, b)
			}
			re := errorRE(tc.path, tc.want)
			if !re.MatchString(err.Error()) {
				t.Errorf("error %q does not match %q", err, re)
			}
			if errors.Is(err, ErrNotDM) != tc.notDM {
				t.Errorf("errors.Is(%v, ErrNotDM) = %v, want %v", err, !tc.notDM, tc.notDM)
			}
		})
	}
}

// Files on a loop device and on btrfs are refused with the device or the
// file system named.
func TestBindLoopAndBtrfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop devices and mounts")
	}
	tests := []struct {
		fstype string
		mkfs   []string
		want   string
	}{
		{"ext4", []string{"-q", "-F"}, ` is on /dev/loop\d+, which is not a device-mapper device`},
		{"btrfs", []string{"-q", "-f"}, ` is on btrfs: btrfs does not report physical extent offsets$`},
	}
	for _, tc := range tests {
		t.Run(tc.fstype, func(t *testing.T) {
			if _, err := exec.LookPath("mkfs." + tc.fstype); err != nil {
				t.Skipf("mkfs.%s not installed", tc.fstype)
			}
			mnt := loopMount(t, tc.fstype, tc.mkfs...)
			path := filepath.Join(mnt, "file")
			if err := os.WriteFile(path, []byte(strings.Repeat("x", 8192)), 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			_, err = Bind(f)
			re := errorRE(path, tc.want)
			if err == nil || !re.MatchString(err.Error()) {
				t.Errorf("Bind: %v, want an error matching %q", err, re)
			}
			if !errors.Is(err, ErrNotDM) {
				t.Errorf("error %v does not wrap ErrNotDM", err)
			}
		})
	}
}

// errorRE matches an error that starts with path, goes on with want and
// may end with a parenthesised remark (such as "the kernel has no
// device-mapper").
func errorRE(path, want string) *regexp.Regexp {
	return regexp.MustCompile("^" + regexp.QuoteMeta(path) + want + `( \(.*\))?$`)
}

// loopMount makes a file system on a loop device over a sparse image and
// mounts it; cleanup unmounts and detaches even if the test fails.
func loopMount(t *testing.T, fstype string, mkfsArgs ...string) string {
	t.Helper()
	dir := t.TempDir()
	image := filepath.Join(dir, "img")
	if err := os.WriteFile(image, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(image, 320<<20); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	dev := run("losetup", "-f", "--show", image)
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v\n%s", dev, err, out)
		}
	})
	run("mkfs."+fstype, append(mkfsArgs, dev)...)
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	run("mount", "-t", fstype, dev, mnt)
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("umount %s: %v", mnt, err)
		}
	})
	return mnt
}
