// Package loop attaches, inspects and detaches Linux loop devices through the
// loop driver's ioctls (linux/loop.h) and its sysfs attributes. It never runs
// losetup.
//
// Attach uses LOOP_CTL_GET_FREE on /dev/loop-control to pick a free device and
// binds it with LOOP_CONFIGURE; on kernels without LOOP_CONFIGURE (before
// 5.8) it falls back to LOOP_SET_FD followed by LOOP_SET_STATUS64,
// LOOP_SET_BLOCK_SIZE and LOOP_SET_DIRECT_IO.
package loop

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Loop driver constants from linux/loop.h and linux/major.h that
// golang.org/x/sys/unix does not define.
const (
	loopMajor = 7 // LOOP_MAJOR

	flagReadOnly  = 1  // LO_FLAGS_READ_ONLY
	flagAutoclear = 4  // LO_FLAGS_AUTOCLEAR
	flagDirectIO  = 16 // LO_FLAGS_DIRECT_IO

	controlPath = "/dev/loop-control"
	sysBlock    = "/sys/block"

	// maxAttachAttempts bounds how often Attach asks for a new free device
	// when another process wins the race for the one it was given.
	maxAttachAttempts = 32
)

// ErrNotLoop reports that a path is not a loop block device.
var ErrNotLoop = errors.New("not a loop device")

// ErrNotAttached reports that a loop device has no backing file bound.
var ErrNotAttached = errors.New("loop device is not attached")

// Options selects how Attach binds a backing file.
type Options struct {
	// ReadOnly opens the backing file read-only and makes the device
	// read-only.
	ReadOnly bool
	// Autoclear makes the kernel detach the device when its last opener
	// closes it. Attach then keeps the device open until Device.Close, so
	// the device survives until the caller has opened or claimed it. Keep
	// the Device reachable until then: the handle is an *os.File, and
	// garbage collection would close it.
	Autoclear bool
	// DirectIO makes the loop driver use direct I/O on the backing file.
	// Attach fails if the backing file system cannot do it.
	DirectIO bool
	// Offset is where the device starts in the backing file, in bytes.
	Offset uint64
	// SizeLimit caps the device size in bytes; 0 means up to the end of
	// the backing file.
	SizeLimit uint64
	// BlockSize is the device's logical block size: 0 for the kernel
	// default, or a power of two from 512 to the page size.
	BlockSize uint32
}

// Device describes an attached loop device.
type Device struct {
	// Path is the device node, /dev/loopN.
	Path string
	// Number is N in /dev/loopN.
	Number int
	// Major and Minor are the device numbers.
	Major, Minor uint32
	// Backing is the absolute path of the backing file as the kernel
	// reports it (it ends in " (deleted)" once the file is unlinked).
	Backing string
	// Offset and SizeLimit are the byte offset into the backing file and
	// the size cap (0: none).
	Offset, SizeLimit uint64
	// ReadOnly, Autoclear and DirectIO mirror the device's flags.
	ReadOnly, Autoclear, DirectIO bool

	// backingDev and backingIno identify the backing file (from
	// LOOP_GET_STATUS64) so Detach can check the device still holds it.
	backingDev, backingIno uint64
	haveIdentity           bool
	// held is the open device kept by Attach for an autoclear device.
	held *os.File
}

// Attach binds the backing file to a free loop device and returns it. With
// opts.Autoclear the returned Device holds the loop device open; call Close
// once something else (a mount, a device-mapper table) holds it, or to let
// the kernel detach it.
func Attach(backing string, opts Options) (*Device, error) {
	return attach(backing, opts, false)
}

// attach implements Attach; legacy forces the LOOP_SET_FD path so tests can
// exercise it on kernels that have LOOP_CONFIGURE.
func attach(backing string, opts Options, legacy bool) (*Device, error) {
	fail := func(err error) (*Device, error) {
		return nil, fmt.Errorf("loop: attach %s: %w", backing, err)
	}
	if backing == "" {
		return fail(errors.New("empty backing file path"))
	}
	if err := checkBlockSize(opts.BlockSize); err != nil {
		return fail(err)
	}
	abs, err := filepath.Abs(backing)
	if err != nil {
		return fail(err)
	}
	mode := os.O_RDWR
	if opts.ReadOnly {
		mode = os.O_RDONLY
	}
	bf, err := os.OpenFile(abs, mode, 0)
	if err != nil {
		return fail(err)
	}
	defer bf.Close()
	fi, err := bf.Stat()
	if err != nil {
		return fail(err)
	}
	if !fi.Mode().IsRegular() && fi.Mode().Type() != fs.ModeDevice {
		return fail(fmt.Errorf("backing file is a %s, not a regular file or block device", describeMode(fi.Mode())))
	}
	if opts.Offset > 0 && fi.Mode().IsRegular() && opts.Offset >= uint64(fi.Size()) {
		return fail(fmt.Errorf("offset %d is not inside the %d-byte backing file", opts.Offset, fi.Size()))
	}

	ctl, err := os.OpenFile(controlPath, os.O_RDWR, 0)
	if err != nil {
		return fail(err)
	}
	defer ctl.Close()

	var lastErr error
	for range maxAttachAttempts {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return fail(fmt.Errorf("LOOP_CTL_GET_FREE: %w", err))
		}
		dev, err := openLoop(n, !opts.ReadOnly)
		if err != nil {
			return fail(err)
		}
		err = bind(dev, bf, abs, opts, legacy)
		if errors.Is(err, unix.EBUSY) {
			// Another attacher took this device between GET_FREE and
			// our bind: ask for another one.
			dev.Close()
			lastErr = err
			continue
		}
		if err != nil {
			dev.Close()
			return fail(err)
		}
		d, err := describe(dev)
		if err == nil && opts.DirectIO && !d.DirectIO {
			err = errors.New("the backing file system does not support direct I/O at this offset and block size")
		}
		if err != nil {
			_ = unix.IoctlSetInt(int(dev.Fd()), unix.LOOP_CLR_FD, 0)
			dev.Close()
			return fail(err)
		}
		if opts.Autoclear {
			d.held = dev
		} else {
			dev.Close()
		}
		return d, nil
	}
	return fail(fmt.Errorf("gave up after %d attempts to claim a free device: %w", maxAttachAttempts, lastErr))
}

// checkBlockSize validates Options.BlockSize.
func checkBlockSize(bs uint32) error {
	if bs == 0 {
		return nil
	}
	if bs < 512 || bs > uint32(os.Getpagesize()) || bs&(bs-1) != 0 {
		return fmt.Errorf("block size %d is not a power of two from 512 to %d", bs, os.Getpagesize())
	}
	return nil
}

// describeMode names a file type for error messages.
func describeMode(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	default:
		return "special file"
	}
}

// bind attaches bf to the open loop device dev.
func bind(dev, bf *os.File, abs string, opts Options, legacy bool) error {
	if !legacy {
		err := configure(dev, bf, abs, opts)
		if !errors.Is(err, unix.ENOTTY) && !errors.Is(err, unix.EINVAL) {
			return err
		}
		// ENOTTY: the kernel predates LOOP_CONFIGURE. EINVAL: it rejects
		// something in the combined call; the step-by-step ioctls below
		// either work or say which step failed.
	}
	return setFD(dev, bf, abs, opts)
}

// fillInfo sets the fields shared by LOOP_CONFIGURE and LOOP_SET_STATUS64.
func fillInfo(info *unix.LoopInfo64, abs string, opts Options) {
	info.Offset = opts.Offset
	info.Sizelimit = opts.SizeLimit
	if opts.Autoclear {
		info.Flags |= flagAutoclear
	}
	// lo_file_name is informational and limited to 63 bytes; sysfs
	// backing_file has the full path.
	n := copy(info.File_name[:len(info.File_name)-1], abs)
	info.File_name[n] = 0
}

// configure binds with the single LOOP_CONFIGURE ioctl (Linux 5.8+).
func configure(dev, bf *os.File, abs string, opts Options) error {
	var cfg unix.LoopConfig
	cfg.Fd = uint32(bf.Fd())
	cfg.Size = opts.BlockSize
	fillInfo(&cfg.Info, abs, opts)
	if opts.ReadOnly {
		cfg.Info.Flags |= flagReadOnly
	}
	if opts.DirectIO {
		cfg.Info.Flags |= flagDirectIO
	}
	if err := unix.IoctlLoopConfigure(int(dev.Fd()), &cfg); err != nil {
		return fmt.Errorf("LOOP_CONFIGURE: %w", err)
	}
	return nil
}

// setFD binds with LOOP_SET_FD and then applies the options one ioctl at a
// time, undoing the binding if any step fails.
func setFD(dev, bf *os.File, abs string, opts Options) error {
	fd := int(dev.Fd())
	if err := unix.IoctlSetInt(fd, unix.LOOP_SET_FD, int(bf.Fd())); err != nil {
		return fmt.Errorf("LOOP_SET_FD: %w", err)
	}
	step := func() error {
		var info unix.LoopInfo64
		fillInfo(&info, abs, opts)
		if err := unix.IoctlLoopSetStatus64(fd, &info); err != nil {
			return fmt.Errorf("LOOP_SET_STATUS64: %w", err)
		}
		if opts.BlockSize != 0 {
			if err := unix.IoctlSetInt(fd, unix.LOOP_SET_BLOCK_SIZE, int(opts.BlockSize)); err != nil {
				return fmt.Errorf("LOOP_SET_BLOCK_SIZE %d: %w", opts.BlockSize, err)
			}
		}
		if opts.DirectIO {
			if err := unix.IoctlSetInt(fd, unix.LOOP_SET_DIRECT_IO, 1); err != nil {
				return fmt.Errorf("LOOP_SET_DIRECT_IO: %w", err)
			}
		}
		return nil
	}
	if err := step(); err != nil {
		_ = unix.IoctlSetInt(fd, unix.LOOP_CLR_FD, 0)
		return err
	}
	return nil
}

// openLoop opens /dev/loopN, creating the node from sysfs when /dev lacks it
// (a /dev without devtmpfs or udev).
func openLoop(n int, write bool) (*os.File, error) {
	path := devPath(n)
	mode := os.O_RDONLY
	if write {
		mode = os.O_RDWR
	}
	f, err := os.OpenFile(path, mode, 0)
	if errors.Is(err, fs.ErrNotExist) {
		if err := makeNode(n, path); err != nil {
			return nil, err
		}
		f, err = os.OpenFile(path, mode, 0)
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// makeNode creates the block node for loopN with the numbers sysfs gives.
func makeNode(n int, path string) error {
	b, err := os.ReadFile(filepath.Join(sysBlock, fmt.Sprintf("loop%d", n), "dev"))
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	maj, min, err := parseDevNumbers(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	err = unix.Mknod(path, unix.S_IFBLK|0o660, int(unix.Mkdev(maj, min)))
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return nil
}

// parseDevNumbers parses "MAJOR:MINOR".
func parseDevNumbers(s string) (uint32, uint32, error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("bad device number %q", s)
	}
	maj, err1 := strconv.ParseUint(a, 10, 32)
	min, err2 := strconv.ParseUint(b, 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("bad device number %q", s)
	}
	return uint32(maj), uint32(min), nil
}

// devPath is the node path of loop device n.
func devPath(n int) string { return "/dev/loop" + strconv.Itoa(n) }

// openChecked opens path and checks it is a whole loop block device.
func openChecked(path string) (*os.File, unix.Stat_t, error) {
	var st unix.Stat_t
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, st, err
	}
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, st, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK || unix.Major(st.Rdev) != loopMajor {
		f.Close()
		return nil, st, ErrNotLoop
	}
	return f, st, nil
}

// describe reads the state of the open, bound loop device f.
func describe(f *os.File) (*Device, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, err
	}
	info, err := unix.IoctlLoopGetStatus64(int(f.Fd()))
	if errors.Is(err, unix.ENXIO) {
		return nil, ErrNotAttached
	}
	if err != nil {
		return nil, fmt.Errorf("LOOP_GET_STATUS64: %w", err)
	}
	d := &Device{
		Path:         devPath(int(info.Number)),
		Number:       int(info.Number),
		Major:        unix.Major(st.Rdev),
		Minor:        unix.Minor(st.Rdev),
		Offset:       info.Offset,
		SizeLimit:    info.Sizelimit,
		ReadOnly:     info.Flags&flagReadOnly != 0,
		Autoclear:    info.Flags&flagAutoclear != 0,
		DirectIO:     info.Flags&flagDirectIO != 0,
		backingDev:   info.Device,
		backingIno:   info.Inode,
		haveIdentity: true,
	}
	if b, err := readAttr(d.Number, "loop/backing_file"); err == nil {
		d.Backing = b
	} else {
		d.Backing = cString(info.File_name[:])
	}
	return d, nil
}

// cString returns the bytes of b up to the first NUL.
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// readAttr reads /sys/block/loopN/<name> without its trailing newline.
func readAttr(n int, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(sysBlock, "loop"+strconv.Itoa(n), name))
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(string(b), "\n"), nil
}

// Close releases the device handle Attach keeps for an autoclear device; the
// kernel then detaches the device as soon as no one else has it open. It is
// a no-op for other devices and safe to call more than once.
func (d *Device) Close() error {
	if d.held == nil {
		return nil
	}
	err := d.held.Close()
	d.held = nil
	return err
}

// Detach releases the handle Attach may hold and detaches the device, after
// checking that it is still bound to the same backing file (so a device
// number reused by someone else is left alone). It returns ErrNotAttached if
// the device was already detached, for example by autoclear.
func (d *Device) Detach() error {
	if err := d.Close(); err != nil {
		return fmt.Errorf("loop: detach %s: %w", d.Path, err)
	}
	if !d.haveIdentity {
		return Detach(d.Path)
	}
	return detach(d.Path, func(info *unix.LoopInfo64) error {
		if info.Device != d.backingDev || info.Inode != d.backingIno {
			return fmt.Errorf("%w: now bound to another file (%s)", ErrNotAttached, cString(info.File_name[:]))
		}
		return nil
	})
}

// Detach detaches the loop device at path (LOOP_CLR_FD), retrying briefly
// while the kernel reports it busy. If other processes still have the
// device open, the kernel finishes the detach when the last one closes it.
func Detach(path string) error {
	return detach(path, nil)
}

// detach implements Detach; check, when set, vets the bound file first.
func detach(path string, check func(*unix.LoopInfo64) error) error {
	fail := func(err error) error { return fmt.Errorf("loop: detach %s: %w", path, err) }
	f, st, err := openChecked(path)
	if err != nil {
		return fail(err)
	}
	n := int(unix.Minor(st.Rdev))
	info, err := unix.IoctlLoopGetStatus64(int(f.Fd()))
	if err == nil && check != nil {
		err = check(info)
	}
	if err == nil {
		n = int(info.Number)
		for i := 0; ; i++ {
			err = unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0)
			if !errors.Is(err, unix.EBUSY) || i == 50 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	f.Close()
	if errors.Is(err, unix.ENXIO) {
		return fail(ErrNotAttached)
	}
	if err != nil {
		return fail(err)
	}
	waitUnbound(n, time.Second)
	return nil
}

// waitUnbound waits up to limit for loopN's sysfs "loop" directory to go
// away. The kernel may finish a detach asynchronously after the last close;
// waiting makes Detach's effect visible to the caller's next step.
func waitUnbound(n int, limit time.Duration) {
	dir := filepath.Join(sysBlock, "loop"+strconv.Itoa(n), "loop")
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			return
		}
	}
}

// SetCapacity makes the loop device at path re-read the size of its backing
// file (LOOP_SET_CAPACITY), after the file has grown or shrunk.
func SetCapacity(path string) error {
	f, _, err := openChecked(path)
	if err == nil {
		err = unix.IoctlSetInt(int(f.Fd()), unix.LOOP_SET_CAPACITY, 0)
		f.Close()
		if errors.Is(err, unix.ENXIO) {
			err = ErrNotAttached
		}
	}
	if err != nil {
		return fmt.Errorf("loop: set capacity %s: %w", path, err)
	}
	return nil
}

// Get returns the state of the loop device at path (LOOP_GET_STATUS64). It
// returns an error wrapping ErrNotAttached for an unbound device and
// ErrNotLoop for a path that is not a loop device.
func Get(path string) (*Device, error) {
	f, _, err := openChecked(path)
	if err != nil {
		return nil, fmt.Errorf("loop: get %s: %w", path, err)
	}
	defer f.Close()
	d, err := describe(f)
	if err != nil {
		return nil, fmt.Errorf("loop: get %s: %w", path, err)
	}
	d.Path = path
	return d, nil
}

// List returns the attached loop devices, ordered by number, from the
// attributes under /sys/block/loopN/loop. It opens no device.
func List() ([]Device, error) {
	ents, err := os.ReadDir(sysBlock)
	if err != nil {
		return nil, fmt.Errorf("loop: list: %w", err)
	}
	var out []Device
	for _, e := range ents {
		num, ok := strings.CutPrefix(e.Name(), "loop")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 0 {
			continue
		}
		d, err := fromSysfs(n)
		if detachedWhileRead(err) {
			continue // not bound (or detached while we looked)
		}
		if err != nil {
			return nil, fmt.Errorf("loop: list: loop%d: %w", n, err)
		}
		out = append(out, d)
	}
	sortDevices(out)
	return out, nil
}

// detachedWhileRead tells whether err from reading a loop device's sysfs
// attributes means the device is not bound: the attribute is missing, or
// the kernel removed it between open and read (ENODEV), which happens when
// the device detaches while List looks at it.
func detachedWhileRead(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENODEV)
}

// sortDevices orders devices by number (insertion sort: lists are short).
func sortDevices(ds []Device) {
	for i := 1; i < len(ds); i++ {
		for j := i; j > 0 && ds[j].Number < ds[j-1].Number; j-- {
			ds[j], ds[j-1] = ds[j-1], ds[j]
		}
	}
}

// fromSysfs reads loopN's state from sysfs; it returns an error wrapping
// fs.ErrNotExist if the device is not bound.
func fromSysfs(n int) (Device, error) {
	d := Device{Path: devPath(n), Number: n}
	backing, err := readAttr(n, "loop/backing_file")
	if err != nil {
		return d, err
	}
	d.Backing = backing
	dev, err := readAttr(n, "dev")
	if err != nil {
		return d, err
	}
	if d.Major, d.Minor, err = parseDevNumbers(dev); err != nil {
		return d, err
	}
	u64 := func(name string) (uint64, error) {
		s, err := readAttr(n, name)
		if err != nil {
			return 0, err
		}
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		return v, nil
	}
	var v uint64
	if d.Offset, err = u64("loop/offset"); err != nil {
		return d, err
	}
	if d.SizeLimit, err = u64("loop/sizelimit"); err != nil {
		return d, err
	}
	if v, err = u64("loop/autoclear"); err != nil {
		return d, err
	}
	d.Autoclear = v != 0
	if v, err = u64("ro"); err != nil {
		return d, err
	}
	d.ReadOnly = v != 0
	// loop/dio appeared in Linux 4.10; treat its absence as "off".
	if v, err = u64("loop/dio"); err == nil {
		d.DirectIO = v != 0
	} else if !errors.Is(err, fs.ErrNotExist) {
		return d, err
	}
	return d, nil
}

// Find returns the attached loop devices whose backing file is backing: the
// same canonical path, or the same file (device and inode) reached by
// another path.
func Find(backing string) ([]Device, error) {
	fail := func(err error) ([]Device, error) { return nil, fmt.Errorf("loop: find %s: %w", backing, err) }
	var st unix.Stat_t
	if err := unix.Stat(backing, &st); err != nil {
		return fail(&fs.PathError{Op: "stat", Path: backing, Err: err})
	}
	canon, err := filepath.Abs(backing)
	if err != nil {
		return fail(err)
	}
	if c, err := filepath.EvalSymlinks(canon); err == nil {
		canon = c
	}
	all, err := List()
	if err != nil {
		return nil, err
	}
	var out []Device
	for _, d := range all {
		g, err := Get(d.Path)
		if err != nil {
			if errors.Is(err, ErrNotAttached) || errors.Is(err, fs.ErrNotExist) {
				continue // detached since List
			}
			// Fall back to comparing paths only.
			if d.Backing == canon {
				out = append(out, d)
			}
			continue
		}
		if g.Backing == canon || (g.backingDev == st.Dev && g.backingIno == st.Ino) {
			out = append(out, *g)
		}
	}
	return out, nil
}
