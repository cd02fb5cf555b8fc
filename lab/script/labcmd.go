package script

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/dmfm/dmfm/lab"
	"github.com/dmfm/dmfm/lib/dm"
	"github.com/dmfm/dmfm/lib/units"
	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"
)

const labUsage = "lab [fs=xfs|ext4|none] [size=SIZE] [mount=OPTS] [name=LABEL] | lab down"

func init() {
	register("lab", command{usage: labUsage, run: cmdLab})
	register("exclusive", command{usage: "exclusive", run: cmdExclusive})
}

// labEntry is one lab a script brought up.
type labEntry struct {
	lab    *lab.Lab
	label  string
	down   bool
	loopNo string // the loop device's major:minor
}

// labLock keeps scripts that look at (or clean) every lab device on the
// machine apart from the others: every script holds it shared from its
// setup to its end, an exclusive script alone.
var labLock sync.RWMutex

func (st *state) releaseLock() {
	switch {
	case st.exclusive:
		st.exclusive = false
		labLock.Unlock()
	case st.shared:
		st.shared = false
		labLock.RUnlock()
	}
}

func cmdExclusive(ts *testscript.TestScript, st *state, _ bool, args []string) {
	nargs(ts, "exclusive", args, 0, 0)
	switch {
	case st.exclusive:
		ts.Fatalf("exclusive: already exclusive")
	case len(st.labs) > 0:
		ts.Fatalf("exclusive must come before the script's first lab")
	}
	start := time.Now()
	if st.shared {
		st.shared = false
		labLock.RUnlock()
	}
	labLock.Lock()
	st.exclusive = true
	if d := time.Since(start); d > time.Second {
		ts.Logf("waited %v for the other scripts to end", d.Round(100*time.Millisecond))
	}
}

// MaxLabSize bounds the lab command's size: backing files are sparse, but
// scripts run many labs side by side.
const MaxLabSize = 4 << 30

var labelRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)

func cmdLab(ts *testscript.TestScript, st *state, _ bool, args []string) {
	if len(args) == 1 && args[0] == "down" {
		labDown(ts, st)
		return
	}
	spec := lab.Spec{FS: lab.FSExt4, Dir: st.labDir}
	if fs := ts.Getenv("FS"); fs != "" {
		// A suite with a FILESYSTEMS file runs each script once per file
		// system, with $FS set.
		spec.FS = lab.FS(fs)
	}
	var label string
	seen := map[string]bool{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			usageErr(ts, labUsage, "lab: argument %q is not KEY=VALUE", a)
		}
		if seen[k] {
			usageErr(ts, labUsage, "lab: %s given twice", k)
		}
		seen[k] = true
		switch k {
		case "fs":
			switch lab.FS(v) {
			case lab.FSXFS, lab.FSExt4, lab.FSNone:
				spec.FS = lab.FS(v)
			default:
				usageErr(ts, labUsage, "lab: fs=%q: want xfs, ext4 or none", v)
			}
		case "size":
			n, err := units.ParseSize(v)
			if err != nil {
				usageErr(ts, labUsage, "lab: %v", err)
			}
			if n == 0 || n%512 != 0 || n > MaxLabSize {
				usageErr(ts, labUsage, "lab: size=%s: want a multiple of 512 bytes between 512 and %d MiB", v, MaxLabSize>>20)
			}
			spec.Size = n
		case "mount":
			if v == "" {
				usageErr(ts, labUsage, "lab: mount= is empty")
			}
			spec.MountOpts = v
		case "name":
			if !labelRE.MatchString(v) {
				usageErr(ts, labUsage, "lab: name=%q: want 1 to 32 letters, digits, '.', '_' or '-'", v)
			}
			label = v
		default:
			usageErr(ts, labUsage, "lab: unknown setting %q", k)
		}
	}
	switch spec.FS {
	case lab.FSXFS, lab.FSExt4, lab.FSNone:
	default:
		usageErr(ts, labUsage, "lab: $FS=%q: want xfs, ext4 or none", spec.FS)
	}
	// A fresh sparse backing file has nothing to discard: skip mkfs's
	// discard pass, which costs seconds under emulation.
	switch spec.FS {
	case lab.FSXFS:
		spec.MkfsArgs = []string{"-K"}
	case lab.FSExt4:
		spec.MkfsArgs = []string{"-E", "nodiscard"}
	}
	if spec.FS == lab.FSNone && spec.MountOpts != "" {
		usageErr(ts, labUsage, "lab: mount=%s given with fs=none", spec.MountOpts)
	}
	if spec.Size == 0 {
		spec.Size = 128 << 20
		if spec.FS == lab.FSXFS {
			spec.Size = lab.MinXFSSize
		}
	}
	if spec.FS == lab.FSXFS && spec.Size < lab.MinXFSSize {
		usageErr(ts, labUsage, "lab: size=%d MiB is too small for xfs (mkfs.xfs needs at least %d MiB)", spec.Size>>20, lab.MinXFSSize>>20)
	}
	for _, e := range st.labs {
		if label != "" && e.label == label && !e.down {
			ts.Fatalf("lab: this script already has a lab named %q", label)
		}
	}
	if err := needDM(); err != nil {
		ts.Fatalf("lab: %v", err)
	}
	spec.Name = labName(ts.Name(), label)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	l, err := lab.Up(ctx, spec)
	if err != nil {
		ts.Fatalf("lab: %v", err)
	}
	e := &labEntry{lab: l, label: label}
	var lst unix.Stat_t
	if unix.Stat(l.LoopDev, &lst) == nil {
		e.loopNo = fmt.Sprintf("%d:%d", unix.Major(lst.Rdev), unix.Minor(lst.Rdev))
	}
	st.labs = append(st.labs, e)
	ts.Defer(func() { st.teardown(ts, e) })

	ts.Setenv("LABDEV", l.DMName)
	ts.Setenv("LABPATH", l.DevPath)
	ts.Setenv("LABDEVNO", l.DevNo())
	ts.Setenv("LABLOOP", l.LoopDev)
	ts.Setenv("MNT", l.Mountpoint)
	what := string(spec.FS)
	if spec.MountOpts != "" {
		what += " -o " + spec.MountOpts
	}
	ts.Logf("lab %s: dm %s over %s, %d MiB, %s (%v)", l.DMName, l.DevNo(), l.LoopDev, spec.Size>>20, what, time.Since(start).Round(time.Millisecond))
}

// labName makes a dm name unique on the machine from the script name, the
// label and a random suffix.
func labName(script, label string) string {
	var b strings.Builder
	b.WriteString("ts-")
	for _, r := range script {
		if len(b.String()) >= 40 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if label != "" {
		b.WriteString("-" + label)
	}
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	b.WriteString("-" + hex.EncodeToString(rnd[:]))
	return b.String()
}

func labDown(ts *testscript.TestScript, st *state) {
	var e *labEntry
	for i := len(st.labs) - 1; i >= 0; i-- {
		if !st.labs[i].down {
			e = st.labs[i]
			break
		}
	}
	if e == nil {
		ts.Fatalf("lab down: this script has no lab up")
	}
	if err := st.closeLab(ts, e); err != nil {
		ts.Fatalf("lab down: %v", err)
	}
	// Point the variables at the lab before it, if any.
	for _, k := range []string{"LABDEV", "LABPATH", "LABDEVNO", "LABLOOP", "MNT"} {
		ts.Setenv(k, "")
	}
	for i := len(st.labs) - 1; i >= 0; i-- {
		if l := st.labs[i]; !l.down {
			ts.Setenv("LABDEV", l.lab.DMName)
			ts.Setenv("LABPATH", l.lab.DevPath)
			ts.Setenv("LABDEVNO", l.lab.DevNo())
			ts.Setenv("LABLOOP", l.lab.LoopDev)
			ts.Setenv("MNT", l.lab.Mountpoint)
			break
		}
	}
}

// teardown closes a lab when the script ends, and fails the script if that
// does not work (a leak).
func (st *state) teardown(ts *testscript.TestScript, e *labEntry) {
	if e.down {
		return
	}
	if err := st.closeLab(ts, e); err != nil {
		st.failLater(ts, "%v", err)
	}
}

// closeLab stops whatever still uses the lab's file system (daemons left
// running by the script, background commands on a failure path), unmounts
// it and removes the dm device, retrying while they are busy (udev may hold
// a device for a moment after it was closed), then lets lab.Close undo the
// rest.
func (st *state) closeLab(ts *testscript.TestScript, e *labEntry) error {
	l := e.lab
	e.down = true
	deadline := time.Now().Add(10 * time.Second)
	var errs []error
	if l.Mountpoint != "" {
		for {
			for _, p := range stopUsers(l.Major, l.Minor, 3*time.Second) {
				ts.Logf("teardown %s: stopped %s", l.DMName, p)
			}
			err := unix.Unmount(l.Mountpoint, 0)
			if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
				break
			}
			if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", l.Mountpoint, err))
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if len(errs) == 0 {
		if err := removeDM(l.DMName, deadline); err != nil {
			errs = append(errs, err)
		}
	}
	if err := l.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tear down lab %s: %w", l.DMName, err)
	}
	return nil
}

// removeDM removes a dm device by name, retrying while it is busy.
func removeDM(name string, deadline time.Time) error {
	c, err := dm.Open()
	if err != nil {
		return err
	}
	defer c.Close()
	for {
		err := c.Remove(dm.ByName(name))
		switch {
		case err == nil || errors.Is(err, dm.ErrNotFound):
			return nil
		case !errors.Is(err, dm.ErrBusy) || time.Now().After(deadline):
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// needDM says why this process cannot build labs, or nil.
func needDM() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (euid %d); run scripts with `dmfm lab script`, which boots the lab VM", os.Geteuid())
	}
	f, err := os.OpenFile("/dev/mapper/control", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("needs device-mapper (%v); run scripts with `dmfm lab script`, which boots the lab VM when this kernel has none", err)
	}
	f.Close()
	return nil
}
