//go:build lab

package lab_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmfm/dmfm/lab"
	"github.com/dmfm/dmfm/lab/labtest"
	"github.com/dmfm/dmfm/lib/dm"
	"github.com/dmfm/dmfm/lib/loop"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	lab.CloseOnSignal()
	os.Exit(m.Run())
}

func TestUpClose(t *testing.T) {
	labtest.RequireDM(t)
	for _, tc := range []struct {
		name string
		spec lab.Spec
	}{
		{"none", lab.Spec{Size: 64 << 20}},
		{"ext4", lab.Spec{Size: 64 << 20, FS: lab.FSExt4, MountOpts: "noinit_itable"}},
		{"xfs", lab.Spec{Size: 320 << 20, FS: lab.FSXFS, MountOpts: "allocsize=4k"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Dir = t.TempDir()
			l, err := lab.Up(context.Background(), tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			c := openDM(t)
			info, err := c.Info(dm.ByName(l.DMName))
			if err != nil {
				t.Fatal(err)
			}
			if info.UUID != l.DMUUID || !strings.HasPrefix(info.UUID, lab.UUIDPrefix) {
				t.Errorf("dm uuid %q, lab says %q", info.UUID, l.DMUUID)
			}
			if info.Major != l.Major || info.Minor != l.Minor {
				t.Errorf("dm device %d:%d, lab says %s", info.Major, info.Minor, l.DevNo())
			}
			table, err := c.Table(dm.ByName(l.DMName))
			if err != nil {
				t.Fatal(err)
			}
			if len(table) != 1 || table[0].Length != uint64(tc.spec.Size/512) || table[0].Target.Type() != "linear" {
				t.Errorf("table %q", table)
			}
			if l.Spec.FS != lab.FSNone {
				var st unix.Statfs_t
				if err := unix.Statfs(l.Mountpoint, &st); err != nil {
					t.Fatal(err)
				}
				want := map[lab.FS]int64{lab.FSXFS: unix.XFS_SUPER_MAGIC, lab.FSExt4: unix.EXT4_SUPER_MAGIC}[tc.spec.FS]
				if st.Type != want {
					t.Errorf("mounted fs magic %#x, want %#x", st.Type, want)
				}
				if err := os.WriteFile(filepath.Join(l.Mountpoint, "f"), []byte("data"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			assertNothingLeft(t, tc.spec.Dir)
			if err := l.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

func TestUpFailsCleanly(t *testing.T) {
	labtest.RequireDM(t)
	for _, tc := range []struct {
		name string
		spec lab.Spec
		want string
	}{
		{"xfs too small", lab.Spec{Size: 64 << 20, FS: lab.FSXFS}, "too small for xfs"},
		{"unknown fs", lab.Spec{FS: "btrfs"}, `unknown file system "btrfs"`},
		{"odd size", lab.Spec{Size: 1000}, "multiple of 512"},
		{"bad mkfs argument", lab.Spec{Size: 64 << 20, FS: lab.FSExt4, MkfsArgs: []string{"-b", "3"}}, "mkfs.ext4"},
		{"bad mount option", lab.Spec{Size: 64 << 20, FS: lab.FSExt4, MountOpts: "no_such_option"}, "mount /dev/mapper/"},
		{"name with slash", lab.Spec{Name: "a/b"}, "no '/'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Dir = t.TempDir()
			l, err := lab.Up(context.Background(), tc.spec)
			if err == nil {
				l.Close()
				t.Fatalf("Up succeeded, want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			assertNothingLeft(t, tc.spec.Dir)
		})
	}
}

func TestDuplicateNameLeavesFirstAlone(t *testing.T) {
	labtest.RequireDM(t)
	dir := t.TempDir()
	l, err := lab.Up(context.Background(), lab.Spec{Name: "dup", Size: 16 << 20, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := lab.Up(context.Background(), lab.Spec{Name: "dup", Size: 16 << 20, Dir: t.TempDir()}); !errors.Is(err, dm.ErrExists) {
		t.Fatalf("second Up with the same name: %v, want ErrExists", err)
	}
	if _, err := openDM(t).Info(dm.ByName("dup")); err != nil {
		t.Fatalf("first lab damaged: %v", err)
	}
}

func TestGrow(t *testing.T) {
	labtest.RequireDM(t)
	for _, fs := range []lab.FS{lab.FSExt4, lab.FSXFS} {
		t.Run(string(fs), func(t *testing.T) {
			dir := t.TempDir()
			l, err := lab.Up(context.Background(), lab.Spec{Size: 320 << 20, FS: fs, Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			before := fsSize(t, l.Mountpoint)
			if err := l.Grow(context.Background(), 640<<20); err != nil {
				t.Fatal(err)
			}
			after := fsSize(t, l.Mountpoint)
			if after < before+250<<20 {
				t.Errorf("file system grew from %d to %d bytes, want about 320 MiB more", before, after)
			}
			table, err := openDM(t).Table(dm.ByName(l.DMName))
			if err != nil {
				t.Fatal(err)
			}
			if table[0].Length != (640<<20)/512 {
				t.Errorf("table after grow: %v", table)
			}
			if err := l.Grow(context.Background(), 100<<20); err == nil {
				t.Error("shrinking Grow succeeded")
			}
		})
	}
}

// TestLoadAndClose tears down a lab from its saved state, as `dmfm lab down`
// does in another process.
func TestLoadAndClose(t *testing.T) {
	labtest.RequireDM(t)
	dir := t.TempDir()
	l, err := lab.Up(context.Background(), lab.Spec{Name: "saved", Size: 64 << 20, FS: lab.FSExt4, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	got, err := lab.Load(dir, "saved")
	if err != nil {
		t.Fatal(err)
	}
	if got.DMUUID != l.DMUUID || got.Mountpoint != l.Mountpoint || got.LoopDev != l.LoopDev {
		t.Errorf("loaded %+v, want %+v", got, l)
	}
	if err := got.Close(); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, dir)
	if _, err := lab.Load(dir, "saved"); err == nil || !strings.Contains(err.Error(), "no such lab") {
		t.Errorf("Load after Close: %v", err)
	}
}

// TestCleanTouchesOnlyLabDevices leaves a foreign dm device and a foreign
// loop device next to lab leftovers and checks Clean removes only the latter.
func TestCleanTouchesOnlyLabDevices(t *testing.T) {
	labtest.RequireDM(t)
	dir := t.TempDir()
	c := openDM(t)

	foreignFile := filepath.Join(t.TempDir(), "foreign.img")
	if err := os.WriteFile(foreignFile, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	fl, err := loop.Attach(foreignFile, loop.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fl.Detach() })
	if _, err := c.Create("foreign", "NOT-LAB-1", dm.Table{{Start: 0, Length: 2048, Target: dm.Linear{Device: fl.Path}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Remove(dm.ByName("foreign")) })

	// Two lab stacks, "crashed": their Lab values are dropped unclosed.
	for i := 0; i < 2; i++ {
		if _, err := lab.Up(context.Background(), lab.Spec{Size: 64 << 20, FS: lab.FSExt4, Dir: dir}); err != nil {
			t.Fatal(err)
		}
	}
	owned, err := lab.Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, o := range owned {
		kinds[o.Kind]++
		if o.Name == "foreign" || o.Name == fl.Path {
			t.Errorf("Scan lists a foreign device: %v", o)
		}
	}
	if kinds["dm"] != 2 || kinds["mount"] != 2 || kinds["loop"] != 2 {
		t.Errorf("Scan found %v, want 2 of each: %v", kinds, owned)
	}
	if _, err := lab.Clean(dir); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, dir)
	if _, err := c.Info(dm.ByName("foreign")); err != nil {
		t.Errorf("Clean removed the foreign dm device: %v", err)
	}
	if _, err := loop.Get(fl.Path); err != nil {
		t.Errorf("Clean detached the foreign loop device: %v", err)
	}
}

func openDM(t *testing.T) *dm.Client {
	t.Helper()
	c, err := dm.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func fsSize(t *testing.T, mnt string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Blocks) * st.Bsize
}

// assertNothingLeft fails if any lab device or state is left under dir.
func assertNothingLeft(t *testing.T, dir string) {
	t.Helper()
	owned, err := lab.Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(owned) > 0 {
		t.Errorf("left behind: %v", owned)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		t.Errorf("state left behind: %s", filepath.Join(dir, e.Name()))
	}
	if labs, _ := lab.List(dir); len(labs) > 0 {
		t.Errorf("labs still listed: %v", fmt.Sprint(labs))
	}
}

// TestCloseStopsAtBusyMountAndRetries holds a file open on the lab's file
// system: Close must fail at the unmount, leave the device and the state
// (with the file system's contents) alone, and finish on the next call.
func TestCloseStopsAtBusyMountAndRetries(t *testing.T) {
	labtest.RequireDM(t)
	dir := t.TempDir()
	l, err := lab.Up(context.Background(), lab.Spec{Size: 64 << 20, FS: lab.FSExt4, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	data := filepath.Join(l.Mountpoint, "keep")
	f, err := os.Create(data)
	if err != nil {
		t.Fatal(err)
	}
	err = l.Close()
	if err == nil || !strings.Contains(err.Error(), "unmount") {
		f.Close()
		t.Fatalf("Close with a busy mount: %v, want an unmount error", err)
	}
	if _, err := os.Stat(data); err != nil {
		t.Errorf("Close removed files under a mount it could not unmount: %v", err)
	}
	if _, err := openDM(t).Info(dm.ByName(l.DMName)); err != nil {
		t.Errorf("dm device gone although its file system is still mounted: %v", err)
	}
	f.Close()
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	assertNothingLeft(t, dir)
}
