// Package dm is a pure-Go device-mapper client: it talks to the kernel
// through the ioctls on /dev/mapper/control (never through dmsetup or
// libdevmapper) to create, load, suspend, resume, rename, inspect, message
// and remove devices, and it models tables as typed targets.
//
// Without udev (no /run/udev/control), the client creates, renames and
// removes the /dev/mapper/NAME block nodes itself.
package dm

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/dmfm/dmfm/lib/dm/internal/dmioctl"
	"golang.org/x/sys/unix"
)

// Buffer sizes for ioctl replies.
const (
	// initialBufSize is the first buffer size tried for a command.
	initialBufSize = 16 << 10
	// maxBufSize caps buffer growth on DM_BUFFER_FULL_FLAG.
	maxBufSize = 64 << 20
)

// ioctlFunc issues one device-mapper ioctl; tests replace it.
type ioctlFunc func(fd uintptr, req uint32, buf []byte) error

// Client is an open device-mapper control node. Its methods are safe for
// concurrent use; they run one at a time.
type Client struct {
	mu    sync.Mutex
	f     *os.File
	fd    uintptr // f's descriptor, taken once
	ioctl ioctlFunc
	// buf is the request/reply buffer, reused by every call; it grows
	// when replies overflow and keeps its largest size.
	buf []byte
	// payload is scratch space for request payloads.
	payload []byte
	// hint is, per command number, the buffer size to start with: it
	// rises when a reply overflows and falls back when replies shrink.
	hint [32]int
	// manageNodes is set when udev does not run: the client then keeps
	// the /dev/mapper nodes itself.
	manageNodes bool
	// mapperDir is where nodes go (MapperDir outside tests).
	mapperDir string
}

// Open opens the device-mapper control node. If /dev/mapper/control is
// missing but the kernel lists device-mapper in /proc/misc, Open creates
// the node. If the kernel has no device-mapper, the error wraps ErrNoDM.
func Open() (*Client, error) {
	f, err := openControl()
	if err != nil {
		return nil, err
	}
	c := &Client{f: f, fd: f.Fd(), ioctl: dmioctl.Ioctl, manageNodes: !udevRunning(), mapperDir: MapperDir}
	if _, err := c.Version(); err != nil {
		f.Close()
		return nil, err
	}
	return c, nil
}

// openControl opens ControlPath, creating it from /proc/misc if needed.
func openControl() (*os.File, error) {
	f, err := os.OpenFile(ControlPath, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err == nil {
		return f, nil
	}
	if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, unix.ENODEV) && !errors.Is(err, unix.ENXIO) {
		return nil, fmt.Errorf("dm: open control node: %w", err)
	}
	minor, ok, merr := miscMinor("device-mapper")
	if merr != nil {
		return nil, fmt.Errorf("dm: %w: open %s: %v; and reading /proc/misc: %v", ErrNoDM, ControlPath, unwrapPath(err), merr)
	}
	if !ok {
		return nil, fmt.Errorf("dm: %w: open %s: %v, and /proc/misc lists no device-mapper (kernel without CONFIG_BLK_DEV_DM, or dm_mod not loaded)",
			ErrNoDM, ControlPath, unwrapPath(err))
	}
	// The kernel has device-mapper: the node is missing or has the wrong
	// numbers. Recreate it.
	if err := os.MkdirAll(MapperDir, 0o755); err != nil {
		return nil, fmt.Errorf("dm: create %s: %w", MapperDir, err)
	}
	if err := os.Remove(ControlPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("dm: replace %s: %w", ControlPath, err)
	}
	if err := unix.Mknod(ControlPath, unix.S_IFCHR|0o600, int(unix.Mkdev(miscMajor, minor))); err != nil {
		return nil, fmt.Errorf("dm: create %s (10:%d): %w", ControlPath, minor, err)
	}
	f, err = os.OpenFile(ControlPath, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dm: open control node: %w", err)
	}
	return f, nil
}

// unwrapPath strips the *fs.PathError around an errno for shorter messages.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// miscMinor looks name up in /proc/misc ("minor name" lines).
func miscMinor(name string) (uint32, bool, error) {
	f, err := os.Open("/proc/misc")
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		num, n, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if !ok || strings.TrimSpace(n) != name {
			continue
		}
		m, err := strconv.ParseUint(num, 10, 32)
		if err != nil {
			return 0, false, fmt.Errorf("/proc/misc: bad minor %q for %s", num, name)
		}
		return uint32(m), true, nil
	}
	return 0, false, sc.Err()
}

// Close closes the control node.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil {
		return nil
	}
	err := c.f.Close()
	c.f = nil
	return err
}

// errClosed is returned by calls on a closed Client.
var errClosed = errors.New("client is closed")

// call issues command cmd with header h (identifier and flags set by the
// caller) and payload, growing the buffer while the kernel reports
// DM_BUFFER_FULL_FLAG. It returns the reply header and payload; the payload
// aliases c.buf and is valid until the next call. c.mu must be held.
//
// A command that overflows is simply issued again; for DM_TARGET_MSG that
// means the message is delivered again, which is what libdevmapper does
// too and is harmless for the read-only messages that produce long output.
func (c *Client) call(cmd uint32, h dmioctl.Header, payload []byte) (dmioctl.Header, []byte, error) {
	var rep dmioctl.Header
	if c.f == nil {
		return rep, nil, errClosed
	}
	size := max(c.hint[cmd], initialBufSize)
	for size < dmioctl.HeaderSize+len(payload) {
		size *= 2
	}
	for {
		if size > maxBufSize {
			return rep, nil, fmt.Errorf("reply does not fit in the %d MiB buffer limit", maxBufSize>>20)
		}
		if len(c.buf) < size {
			c.buf = make([]byte, size)
		}
		buf := c.buf[:size]
		req := h
		req.Version = [3]uint32{dmioctl.VersionMajor, dmioctl.VersionMinor, dmioctl.VersionPatch}
		if err := dmioctl.PrepareRequest(buf, &req, payload); err != nil {
			return rep, nil, err
		}
		if cmd == dmioctl.CmdListDevices {
			// Kernels 4.13-5.12 leave a word after each event number
			// unwritten; it must read as "no uuid flags", not as
			// whatever an earlier reply left in the buffer.
			clear(buf[dmioctl.HeaderSize:])
		}
		if err := c.ioctl(c.fd, dmioctl.Request(cmd), buf); err != nil {
			return rep, nil, err
		}
		if err := rep.Unmarshal(buf); err != nil {
			return rep, nil, err
		}
		if rep.Flags&dmioctl.BufferFullFlag != 0 {
			size *= 2
			c.hint[cmd] = size
			continue
		}
		data, err := dmioctl.ReplyData(buf, &rep)
		if err != nil {
			return rep, nil, err
		}
		// Let the starting size fall back once replies are small again.
		if c.hint[cmd] > initialBufSize && int(rep.DataSize) < c.hint[cmd]/4 {
			c.hint[cmd] /= 2
		}
		return rep, data, nil
	}
}

// callID is call for a command addressed to device id.
func (c *Client) callID(cmd uint32, id DevID, flags uint32, payload []byte) (dmioctl.Header, []byte, error) {
	var h dmioctl.Header
	if err := id.apply(&h); err != nil {
		return h, nil, err
	}
	h.Flags = flags
	return c.call(cmd, h, payload)
}

// fail wraps err as an *Error for op on the device described by dev.
func fail(op string, dev string, err error) error {
	return &Error{Op: op, Device: dev, Err: mapErrno(err, false)}
}

// Version is a version triple: of the ioctl interface or of a target.
type Version struct {
	// Major, Minor and Patch are the version numbers.
	Major, Minor, Patch uint32
}

// String renders "4.47.0".
func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Version returns the kernel's device-mapper ioctl interface version.
func (c *Client) Version() (Version, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rep, _, err := c.call(dmioctl.CmdVersion, dmioctl.Header{}, nil)
	if err != nil {
		return Version{}, fail("version", "", err)
	}
	return Version{rep.Version[0], rep.Version[1], rep.Version[2]}, nil
}

// Info describes a device's state.
type Info struct {
	// Name and UUID identify the device.
	Name, UUID string
	// Major and Minor are its device numbers.
	Major, Minor uint32
	// OpenCount is how many times the device is open.
	OpenCount int32
	// TargetCount is the number of segments in the live table.
	TargetCount uint32
	// EventNr counts the device's events.
	EventNr uint32
	// Suspended reports a suspended device.
	Suspended bool
	// ReadOnly reports a read-only device.
	ReadOnly bool
	// LiveTable reports that a table is active.
	LiveTable bool
	// InactiveTable reports a loaded table waiting for resume.
	InactiveTable bool
}

// DevPath is the device's node named after it, /dev/mapper/NAME.
func (i Info) DevPath() string { return MapperDir + "/" + i.Name }

// DevNode is the kernel's node for the device, /dev/dm-MINOR.
func (i Info) DevNode() string { return "/dev/dm-" + strconv.FormatUint(uint64(i.Minor), 10) }

// infoFrom converts a reply header.
func infoFrom(h *dmioctl.Header) Info {
	return Info{
		Name:          h.NameString(),
		UUID:          h.UUIDString(),
		Major:         unix.Major(h.Dev),
		Minor:         unix.Minor(h.Dev),
		OpenCount:     h.OpenCount,
		TargetCount:   h.TargetCount,
		EventNr:       h.EventNr,
		Suspended:     h.Flags&dmioctl.SuspendFlag != 0,
		ReadOnly:      h.Flags&dmioctl.ReadOnlyFlag != 0,
		LiveTable:     h.Flags&dmioctl.ActivePresentFlag != 0,
		InactiveTable: h.Flags&dmioctl.InactivePresentFlag != 0,
	}
}

// Info returns the state of a device (DM_DEV_STATUS).
func (c *Client) Info(id DevID) (Info, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	info, err := c.info(id)
	if err != nil {
		return Info{}, fail("info", id.String(), err)
	}
	return info, nil
}

// info is Info without locking or error wrapping.
func (c *Client) info(id DevID) (Info, error) {
	rep, _, err := c.callID(dmioctl.CmdDevStatus, id, 0, nil)
	if err != nil {
		return Info{}, err
	}
	return infoFrom(&rep), nil
}

// Device is one entry of List.
type Device struct {
	// Name and UUID identify the device.
	Name, UUID string
	// Major and Minor are its device numbers.
	Major, Minor uint32
}

// List returns all devices (DM_LIST_DEVICES), in name order. Kernels since
// Linux 5.13 return the uuids with the list; for older ones List asks for
// each device's uuid.
func (c *Client) List() ([]Device, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, data, err := c.call(dmioctl.CmdListDevices, dmioctl.Header{Flags: dmioctl.UUIDFlag}, nil)
	if err != nil {
		return nil, fail("list", "", err)
	}
	entries, err := dmioctl.ParseNameList(data)
	if err != nil {
		return nil, fail("list", "", err)
	}
	out := make([]Device, 0, len(entries))
	for _, e := range entries {
		d := Device{Name: e.Name, UUID: e.UUID, Major: unix.Major(e.Dev), Minor: unix.Minor(e.Dev)}
		if e.Flags&(dmioctl.NameListFlagHasUUID|dmioctl.NameListFlagDoesntHaveUUID) == 0 {
			info, err := c.info(ByName(e.Name))
			if errors.Is(err, unix.ENXIO) {
				continue // removed since the list was taken
			}
			if err != nil {
				return nil, fail("list", ByName(e.Name).String(), err)
			}
			d.UUID = info.UUID
		}
		out = append(out, d)
	}
	return out, nil
}

// TargetVersion is a target type the kernel has loaded, with its version.
type TargetVersion struct {
	// Name is the target type.
	Name string
	// Version is its version.
	Version Version
}

// Targets lists the target types the kernel has loaded (DM_LIST_VERSIONS).
func (c *Client) Targets() ([]TargetVersion, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, data, err := c.call(dmioctl.CmdListVersions, dmioctl.Header{}, nil)
	if err != nil {
		return nil, fail("targets", "", err)
	}
	vs, err := dmioctl.ParseTargetVersions(data)
	if err != nil {
		return nil, fail("targets", "", err)
	}
	out := make([]TargetVersion, len(vs))
	for i, v := range vs {
		out[i] = TargetVersion{Name: v.Name, Version: Version{v.Version[0], v.Version[1], v.Version[2]}}
	}
	return out, nil
}

// Create creates device name (with uuid, "" for none), loads table and
// resumes it, returning the live device's Info. On any failure it removes
// what it made. Without udev it also creates /dev/mapper/NAME.
func (c *Client) Create(name, uuid string, table Table) (Info, error) {
	id := ByName(name)
	if err := table.Validate(); err != nil {
		return Info{}, &Error{Op: "create", Device: id.String(), Err: fmt.Errorf("bad table: %w", err)}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.create(name, uuid); err != nil {
		return Info{}, err
	}
	undo := func(op string, err error) (Info, error) {
		if rerr := c.remove(id); rerr != nil {
			err = errors.Join(err, fmt.Errorf("and removing the half-made device failed: %w", rerr))
		}
		return Info{}, &Error{Op: "create", Device: id.String(), Err: fmt.Errorf("%s: %w", op, err)}
	}
	if err := c.load(id, table); err != nil {
		return undo("load table", err)
	}
	rep, _, err := c.callID(dmioctl.CmdDevSuspend, id, 0, nil)
	if err != nil {
		return undo("resume", mapErrno(err, false))
	}
	info := infoFrom(&rep)
	if c.manageNodes {
		if err := makeNode(c.mapperDir, name, info.Major, info.Minor); err != nil {
			return undo("node", err)
		}
	}
	return info, nil
}

// CreateEmpty creates device name with no table (DM_DEV_CREATE only); load
// a table with Load and activate it with Resume. Without udev it also
// creates /dev/mapper/NAME.
func (c *Client) CreateEmpty(name, uuid string) (Info, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	info, err := c.create(name, uuid)
	if err != nil {
		return Info{}, err
	}
	if c.manageNodes {
		if err := makeNode(c.mapperDir, name, info.Major, info.Minor); err != nil {
			if rerr := c.remove(ByName(name)); rerr != nil {
				err = errors.Join(err, fmt.Errorf("and removing the device failed: %w", rerr))
			}
			return Info{}, &Error{Op: "create", Device: ByName(name).String(), Err: err}
		}
	}
	return info, nil
}

// create issues DM_DEV_CREATE; its errors are *Error already.
func (c *Client) create(name, uuid string) (Info, error) {
	id := ByName(name)
	bad := func(err error) (Info, error) {
		return Info{}, &Error{Op: "create", Device: id.String(), Err: err}
	}
	if err := checkName(name); err != nil {
		return bad(err)
	}
	if err := checkUUID(uuid); err != nil {
		return bad(err)
	}
	var h dmioctl.Header
	if err := h.SetName(name); err != nil {
		return bad(err)
	}
	if err := h.SetUUID(uuid); err != nil {
		return bad(err)
	}
	rep, _, err := c.call(dmioctl.CmdDevCreate, h, nil)
	if err != nil {
		return bad(mapErrno(err, true))
	}
	return infoFrom(&rep), nil
}

// Load loads table into the device's inactive slot (DM_TABLE_LOAD); Resume
// makes it live.
func (c *Client) Load(id DevID, table Table) error {
	if err := table.Validate(); err != nil {
		return &Error{Op: "load", Device: id.String(), Err: fmt.Errorf("bad table: %w", err)}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.load(id, table); err != nil {
		return &Error{Op: "load", Device: id.String(), Err: err}
	}
	return nil
}

// load issues DM_TABLE_LOAD for a validated table; errors are mapped but
// not wrapped in *Error.
func (c *Client) load(id DevID, table Table) error {
	var h dmioctl.Header
	if err := id.apply(&h); err != nil {
		return err
	}
	h.TargetCount = uint32(len(table))
	payload, err := dmioctl.AppendTargetSpecs(c.payload[:0], table.specs())
	if err != nil {
		return err
	}
	c.payload = payload
	if _, _, err := c.call(dmioctl.CmdTableLoad, h, payload); err != nil {
		err = mapErrno(err, false)
		if errors.Is(err, unix.EINVAL) {
			err = fmt.Errorf("%w (the kernel log names the rejected target)", err)
		}
		return err
	}
	return nil
}

// Suspend suspends the device: I/O is queued until Resume.
func (c *Client) Suspend(id DevID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, _, err := c.callID(dmioctl.CmdDevSuspend, id, dmioctl.SuspendFlag, nil); err != nil {
		return fail("suspend", id.String(), err)
	}
	return nil
}

// Resume makes a loaded inactive table live, if there is one, and resumes
// I/O.
func (c *Client) Resume(id DevID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, _, err := c.callID(dmioctl.CmdDevSuspend, id, 0, nil); err != nil {
		return fail("resume", id.String(), err)
	}
	return nil
}

// Reload replaces the live table: suspend, load, resume. It resumes even if
// the load fails, so the device keeps running its old table.
func (c *Client) Reload(id DevID, table Table) error {
	if err := table.Validate(); err != nil {
		return &Error{Op: "reload", Device: id.String(), Err: fmt.Errorf("bad table: %w", err)}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, _, err := c.callID(dmioctl.CmdDevSuspend, id, dmioctl.SuspendFlag, nil); err != nil {
		return &Error{Op: "reload", Device: id.String(), Err: fmt.Errorf("suspend: %w", mapErrno(err, false))}
	}
	loadErr := c.load(id, table)
	if loadErr != nil {
		loadErr = fmt.Errorf("load table: %w", loadErr)
	}
	if _, _, err := c.callID(dmioctl.CmdDevSuspend, id, 0, nil); err != nil {
		return &Error{Op: "reload", Device: id.String(), Err: errors.Join(loadErr, fmt.Errorf("resume: %w", mapErrno(err, false)))}
	}
	if loadErr != nil {
		return &Error{Op: "reload", Device: id.String(), Err: loadErr}
	}
	return nil
}

// Remove removes the device (DM_DEV_REMOVE) and, without udev, its
// /dev/mapper node. An open device is not removed: the error wraps ErrBusy.
func (c *Client) Remove(id DevID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.remove(id); err != nil {
		return fail("remove", id.String(), err)
	}
	return nil
}

// remove is Remove without locking or *Error wrapping (errors are mapped).
func (c *Client) remove(id DevID) error {
	info, err := c.info(id)
	if err != nil {
		return mapErrno(err, false)
	}
	// Address the device by number: the name could change between the
	// two calls, the number cannot.
	if _, _, err := c.callID(dmioctl.CmdDevRemove, ByDevno(info.Major, info.Minor), 0, nil); err != nil {
		return mapErrno(err, false)
	}
	if c.manageNodes {
		return removeNode(c.mapperDir, info.Name, info.Major, info.Minor)
	}
	return nil
}

// TargetStatus is one segment's status line (DM_TABLE_STATUS).
type TargetStatus struct {
	// Start and Length place the segment, in sectors.
	Start, Length uint64
	// Type is the target type.
	Type string
	// Params is the target's status text.
	Params string
}

// Status returns the status line of each segment of the live table.
func (c *Client) Status(id DevID) ([]TargetStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	specs, err := c.tableStatus(id, 0)
	if err != nil {
		return nil, fail("status", id.String(), err)
	}
	out := make([]TargetStatus, len(specs))
	for i, s := range specs {
		out[i] = TargetStatus{Start: s.SectorStart, Length: s.Length, Type: s.TargetType, Params: s.Params}
	}
	return out, nil
}

// Table returns the live table as the kernel reports it (devices appear as
// major:minor). Segments whose parameters do not parse as their typed
// target are returned as Raw.
func (c *Client) Table(id DevID) (Table, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	specs, err := c.tableStatus(id, dmioctl.StatusTableFlag)
	if err != nil {
		return nil, fail("table", id.String(), err)
	}
	t := make(Table, len(specs))
	for i, s := range specs {
		tgt, err := ParseTarget(s.TargetType, s.Params)
		if err != nil {
			tgt = Raw{TargetType: s.TargetType, Args: s.Params}
		}
		t[i] = Segment{Start: s.SectorStart, Length: s.Length, Target: tgt}
	}
	return t, nil
}

// tableStatus issues DM_TABLE_STATUS with flags and decodes the specs.
func (c *Client) tableStatus(id DevID, flags uint32) ([]dmioctl.TargetSpec, error) {
	rep, data, err := c.callID(dmioctl.CmdTableStatus, id, flags, nil)
	if err != nil {
		return nil, err
	}
	if len(data) == 0 {
		return nil, nil // no live table
	}
	return dmioctl.ParseTargetSpecs(data, rep.TargetCount)
}

// Deps returns the device numbers (dev_t; split with unix.Major and
// unix.Minor) of the devices the live table uses.
func (c *Client) Deps(id DevID) ([]uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, data, err := c.callID(dmioctl.CmdTableDeps, id, 0, nil)
	if err != nil {
		return nil, fail("deps", id.String(), err)
	}
	deps, err := dmioctl.ParseDeps(data)
	if err != nil {
		return nil, fail("deps", id.String(), err)
	}
	return deps, nil
}

// Rename gives the device a new name (DM_DEV_RENAME) and, without udev,
// moves its /dev/mapper node.
func (c *Client) Rename(id DevID, newName string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	bad := func(err error) error { return &Error{Op: "rename", Device: id.String(), Err: err} }
	if err := checkName(newName); err != nil {
		return bad(fmt.Errorf("new name %q: %w", newName, err))
	}
	// The kernel finds the device to rename by name only.
	info, err := c.info(id)
	if err != nil {
		return bad(mapErrno(err, false))
	}
	c.payload = dmioctl.AppendString(c.payload[:0], newName)
	if _, _, err := c.callID(dmioctl.CmdDevRename, ByName(info.Name), 0, c.payload); err != nil {
		return bad(fmt.Errorf("to %q: %w", newName, mapErrno(err, true)))
	}
	if c.manageNodes {
		if err := removeNode(c.mapperDir, info.Name, info.Major, info.Minor); err != nil {
			return bad(err)
		}
		if err := makeNode(c.mapperDir, newName, info.Major, info.Minor); err != nil {
			return bad(err)
		}
	}
	return nil
}

// Message sends msg to the target at sector (or, for messages starting with
// '@' such as "@stats_list", to device-mapper itself) and returns the reply
// text, "" if there is none.
func (c *Client) Message(id DevID, sector uint64, msg string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.payload = dmioctl.AppendTargetMsg(c.payload[:0], sector, msg)
	rep, data, err := c.callID(dmioctl.CmdTargetMsg, id, 0, c.payload)
	if err != nil {
		return "", &Error{Op: "message", Device: id.String(), Err: fmt.Errorf("%q: %w", msg, mapErrno(err, false))}
	}
	if rep.Flags&dmioctl.DataOutFlag == 0 {
		return "", nil
	}
	return dmioctl.CString(data), nil
}
