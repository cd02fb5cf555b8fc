package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dmfm/dmfm/lib/dm"
	"github.com/dmfm/dmfm/lib/loop"
	"github.com/google/uuid"
	"golang.org/x/sys/unix"
)

// UUIDPrefix starts the dm UUID of every device the lab creates.
const UUIDPrefix = "DMFM-LAB-"

// FS names a file system the lab can make.
type FS string

// File systems.
const (
	FSNone FS = "none"
	FSXFS  FS = "xfs"
	FSExt4 FS = "ext4"
)

// Target names the device-mapper target the lab puts over the loop device.
type Target string

// Targets.
const (
	TargetLinear Target = "linear"
)

// MinXFSSize is the smallest file system mkfs.xfs accepts.
const MinXFSSize = 300 << 20

// DefaultSize is the backing file size when Spec.Size is zero.
const DefaultSize = 512 << 20

// Spec declares a lab stack.
type Spec struct {
	// Name is the dm device name; default "dmfm-lab-" and 8 hex digits.
	Name string `json:"name,omitempty"`
	// Size of the backing file in bytes; default DefaultSize.
	Size int64 `json:"size,omitempty"`
	// FS is the file system to make and mount; default FSNone.
	FS FS `json:"fs,omitempty"`
	// Target is the dm target; default TargetLinear.
	Target Target `json:"target,omitempty"`
	// MountOpts are passed to mount(2) as data (e.g. "allocsize=4k").
	MountOpts string `json:"mount_opts,omitempty"`
	// MkfsArgs are extra arguments for mkfs.
	MkfsArgs []string `json:"mkfs_args,omitempty"`
	// Dir holds the lab's state directory; default DefaultDir().
	Dir string `json:"dir,omitempty"`
}

// DefaultDir is where labs keep their backing files and mount points:
// $DMFM_LAB_DIR, else /tmp/dmfm-lab.
func DefaultDir() string {
	if d := os.Getenv("DMFM_LAB_DIR"); d != "" {
		return d
	}
	return "/tmp/dmfm-lab"
}

// Lab is a live stack built by Up.
type Lab struct {
	Spec       Spec   `json:"spec"`
	ID         string `json:"id"`         // the google/uuid part of the dm UUID
	StateDir   string `json:"state_dir"`  // Dir/Name
	Backing    string `json:"backing"`    // backing file
	LoopDev    string `json:"loop"`       // /dev/loopN
	DMName     string `json:"dm_name"`    // dm device name
	DMUUID     string `json:"dm_uuid"`    // UUIDPrefix + ID
	DevPath    string `json:"dev_path"`   // /dev/mapper/NAME
	Major      uint32 `json:"major"`      // dm device numbers
	Minor      uint32 `json:"minor"`      //
	Mountpoint string `json:"mountpoint"` // empty without a file system

	mu   sync.Mutex
	undo []undoStep
}

type undoStep struct {
	what string
	fn   func() error
}

func (l *Lab) push(what string, fn func() error) { l.undo = append(l.undo, undoStep{what, fn}) }

// DevNo is the dm device's "major:minor".
func (l *Lab) DevNo() string { return fmt.Sprintf("%d:%d", l.Major, l.Minor) }

func (s *Spec) validate() error {
	if s.Size == 0 {
		s.Size = DefaultSize
	}
	if s.Size < 0 || s.Size%512 != 0 {
		return fmt.Errorf("lab: size %d: want a positive multiple of 512 bytes", s.Size)
	}
	if s.FS == "" {
		s.FS = FSNone
	}
	switch s.FS {
	case FSNone, FSExt4:
	case FSXFS:
		if s.Size < MinXFSSize {
			return fmt.Errorf("lab: size %d MiB is too small for xfs (mkfs.xfs needs at least %d MiB)", s.Size>>20, MinXFSSize>>20)
		}
	default:
		return fmt.Errorf("lab: unknown file system %q (want xfs, ext4 or none)", s.FS)
	}
	if s.Target == "" {
		s.Target = TargetLinear
	}
	if s.Target != TargetLinear {
		return fmt.Errorf("lab: unknown target %q (want linear)", s.Target)
	}
	if s.FS == FSNone && s.MountOpts != "" {
		return errors.New("lab: mount options given but no file system")
	}
	if s.Dir == "" {
		s.Dir = DefaultDir()
	}
	if s.Name == "" {
		s.Name = "dmfm-lab-" + uuid.NewString()[:8]
	}
	if strings.ContainsAny(s.Name, "/ \t\n") || len(s.Name) > 127 {
		return fmt.Errorf("lab: name %q: want at most 127 characters, no '/' or white space", s.Name)
	}
	return nil
}

// Up builds the stack the spec describes. On failure everything it made is
// undone and the error says which step failed.
func Up(ctx context.Context, spec Spec) (l *Lab, err error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	id := uuid.New()
	l = &Lab{Spec: spec, ID: id.String(), DMName: spec.Name, DMUUID: UUIDPrefix + id.String()}
	l.StateDir = filepath.Join(spec.Dir, spec.Name)
	defer func() {
		if err != nil {
			if uerr := l.Close(); uerr != nil {
				err = fmt.Errorf("%w (and undoing: %v)", err, uerr)
			}
		}
	}()
	c, err := dm.Open()
	if err != nil {
		return l, fmt.Errorf("lab: %w", err)
	}
	defer c.Close()

	if err := os.MkdirAll(spec.Dir, 0o755); err != nil {
		return l, fmt.Errorf("lab: state directory: %w", err)
	}
	if err := os.Mkdir(l.StateDir, 0o755); err != nil {
		return l, fmt.Errorf("lab %s: %w", spec.Name, err)
	}
	l.push("remove "+l.StateDir, func() error { return os.RemoveAll(l.StateDir) })

	l.Backing = filepath.Join(l.StateDir, "backing.img")
	if err := makeSparse(l.Backing, spec.Size); err != nil {
		return l, fmt.Errorf("lab %s: backing file: %w", spec.Name, err)
	}
	// Autoclear: once the dm table holds the loop device, removing the dm
	// device detaches it, even if this process is gone by then.
	ld, err := loop.Attach(l.Backing, loop.Options{Autoclear: true})
	if err != nil {
		return l, fmt.Errorf("lab %s: %w", spec.Name, err)
	}
	l.LoopDev = ld.Path
	l.push("detach "+ld.Path, func() error {
		if err := ld.Detach(); err != nil && !errors.Is(err, loop.ErrNotAttached) {
			return err
		}
		return nil
	})

	table := dm.Table{{Start: 0, Length: uint64(spec.Size) / 512, Target: dm.Linear{Device: fmt.Sprintf("%d:%d", ld.Major, ld.Minor)}}}
	info, err := c.Create(spec.Name, l.DMUUID, table)
	if err != nil {
		return l, fmt.Errorf("lab %s: %w", spec.Name, err)
	}
	l.Major, l.Minor, l.DevPath = info.Major, info.Minor, info.DevPath()
	l.push("remove dm device "+spec.Name, func() error { return removeDM(l.DMName) })
	// The dm table holds the loop device now; let autoclear own it.
	if err := ld.Close(); err != nil {
		return l, fmt.Errorf("lab %s: release %s: %w", spec.Name, ld.Path, err)
	}

	if spec.FS != FSNone {
		if err := mkfs(ctx, spec, l.DevPath); err != nil {
			return l, fmt.Errorf("lab %s: %w", spec.Name, err)
		}
		mnt := filepath.Join(l.StateDir, "mnt")
		if err := os.Mkdir(mnt, 0o755); err != nil {
			return l, fmt.Errorf("lab %s: %w", spec.Name, err)
		}
		opts := spec.MountOpts
		if err := unix.Mount(l.DevPath, mnt, string(spec.FS), 0, opts); err != nil {
			return l, fmt.Errorf("lab %s: mount %s (%s, options %q) on %s: %w", spec.Name, l.DevPath, spec.FS, opts, mnt, err)
		}
		l.Mountpoint = mnt
		l.push("unmount "+mnt, func() error { return unmount(mnt) })
	}
	if err := l.save(); err != nil {
		return l, err
	}
	register(l)
	return l, nil
}

// Close tears the stack down in reverse order. Each step depends on the
// ones after it having been undone (the dm device cannot go while mounted,
// the state directory must not be removed under a mount), so Close stops at
// the first step that fails and keeps it and the rest: calling Close again
// retries from there, and `dmfm lab clean` finds what is left. Close is safe
// to call more than once.
func (l *Lab) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.undo) > 0 {
		step := l.undo[len(l.undo)-1]
		if err := step.fn(); err != nil {
			return fmt.Errorf("lab %s: %s: %w", l.DMName, step.what, err)
		}
		l.undo = l.undo[:len(l.undo)-1]
	}
	unregister(l)
	return nil
}

const stateFile = "lab.json"

func (l *Lab) save() error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(l.StateDir, stateFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("lab %s: save state: %w", l.DMName, err)
	}
	return nil
}

// Load finds a lab that Up made, possibly in another process, by name, so
// it can be closed or grown. Its teardown does not depend on this process
// having built it.
func Load(dir, name string) (*Lab, error) {
	if dir == "" {
		dir = DefaultDir()
	}
	b, err := os.ReadFile(filepath.Join(dir, name, stateFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("lab %s: no such lab in %s", name, dir)
		}
		return nil, fmt.Errorf("lab %s: %w", name, err)
	}
	l := &Lab{}
	if err := json.Unmarshal(b, l); err != nil {
		return nil, fmt.Errorf("lab %s: state: %w", name, err)
	}
	l.push("remove "+l.StateDir, func() error { return os.RemoveAll(l.StateDir) })
	l.push("detach "+l.LoopDev, func() error { return detachBacking(l.Backing) })
	l.push("remove dm device "+l.DMName, func() error { return removeDM(l.DMName) })
	if l.Mountpoint != "" {
		mnt := l.Mountpoint
		l.push("unmount "+mnt, func() error { return unmount(mnt) })
	}
	return l, nil
}

// Grow enlarges a running lab to newSize bytes: the backing file, the loop
// device's capacity, the dm table (suspend, load, resume) and the file
// system (xfs_growfs or resize2fs).
func (l *Lab) Grow(ctx context.Context, newSize int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if newSize%512 != 0 || newSize <= l.Spec.Size {
		return fmt.Errorf("lab %s: grow to %d bytes: want a multiple of 512 larger than the current %d", l.DMName, newSize, l.Spec.Size)
	}
	if err := os.Truncate(l.Backing, newSize); err != nil {
		return fmt.Errorf("lab %s: grow backing file: %w", l.DMName, err)
	}
	if err := loop.SetCapacity(l.LoopDev); err != nil {
		return fmt.Errorf("lab %s: %w", l.DMName, err)
	}
	c, err := dm.Open()
	if err != nil {
		return fmt.Errorf("lab %s: %w", l.DMName, err)
	}
	defer c.Close()
	ld, err := loop.Get(l.LoopDev)
	if err != nil {
		return fmt.Errorf("lab %s: %w", l.DMName, err)
	}
	table := dm.Table{{Start: 0, Length: uint64(newSize) / 512, Target: dm.Linear{Device: fmt.Sprintf("%d:%d", ld.Major, ld.Minor)}}}
	if err := c.Reload(dm.ByName(l.DMName), table); err != nil {
		return fmt.Errorf("lab %s: %w", l.DMName, err)
	}
	switch l.Spec.FS {
	case FSXFS:
		err = runTool(ctx, "xfs_growfs", "-d", l.Mountpoint)
	case FSExt4:
		err = runTool(ctx, "resize2fs", l.DevPath)
	}
	if err != nil {
		return fmt.Errorf("lab %s: grow file system: %w", l.DMName, err)
	}
	l.Spec.Size = newSize
	return l.save()
}

func makeSparse(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func mkfs(ctx context.Context, spec Spec, dev string) error {
	var args []string
	switch spec.FS {
	case FSXFS:
		args = append([]string{"mkfs.xfs", "-q", "-f"}, spec.MkfsArgs...)
	case FSExt4:
		args = append([]string{"mkfs.ext4", "-q", "-F"}, spec.MkfsArgs...)
	}
	return runTool(ctx, args[0], append(args[1:], dev)...)
}

func runTool(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func unmount(mnt string) error {
	err := unix.Unmount(mnt, 0)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil // not mounted
	}
	if err != nil {
		return fmt.Errorf("unmount %s: %w", mnt, err)
	}
	return nil
}

func removeDM(name string) error {
	c, err := dm.Open()
	if err != nil {
		return err
	}
	defer c.Close()
	// Right after an unmount the kernel can still hold the device for a
	// moment; give it a little while before calling it busy.
	deadline := time.Now().Add(2 * time.Second)
	for {
		err = c.Remove(dm.ByName(name))
		if errors.Is(err, dm.ErrNotFound) {
			return nil
		}
		if !errors.Is(err, dm.ErrBusy) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// detachBacking detaches every loop device over the backing file.
func detachBacking(backing string) error {
	devs, err := loop.Find(backing)
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range devs {
		if err := loop.Detach(d.Path); err != nil && !errors.Is(err, loop.ErrNotAttached) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
