package dm

import (
	"errors"

	"golang.org/x/sys/unix"
)

// Sentinel errors. Errors returned by Client methods wrap one of these when
// the kernel's answer has that meaning, so errors.Is works on them; they
// also wrap the kernel's errno (unix.Errno).
var (
	// ErrNotFound: no device has the given name, uuid or number (ENXIO).
	ErrNotFound = errors.New("device not found")
	// ErrExists: the name or uuid is already taken. The kernel answers
	// EEXIST, or EBUSY when creating or renaming onto a used name.
	ErrExists = errors.New("device already exists")
	// ErrBusy: the device is open or otherwise in use (EBUSY).
	ErrBusy = errors.New("device or resource busy")
	// ErrNoDM: the kernel offers no device-mapper.
	ErrNoDM = errors.New("device-mapper is not available")
)

// Error is the error returned for a failed device-mapper operation. Its text
// is "dm <op> <device>: <err>".
type Error struct {
	// Op is the operation: "create", "remove", "message", ...
	Op string
	// Device names the device as DevID.String does ("" for operations on
	// no particular device).
	Device string
	// Err is the cause. It matches the sentinel errors and the kernel's
	// errno with errors.Is.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	s := "dm " + e.Op
	if e.Device != "" {
		s += " " + e.Device
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// sysError is an errno from the kernel together with the sentinel it means.
type sysError struct {
	errno unix.Errno
	kind  error // sentinel or nil
}

// Error names the sentinel's meaning when there is one.
func (e *sysError) Error() string {
	switch e.kind {
	case ErrNotFound:
		return "device not found"
	case ErrExists:
		if e.errno == unix.EBUSY {
			return "name or uuid already in use"
		}
		return "device already exists"
	}
	return e.errno.Error()
}

// Unwrap exposes both the sentinel and the errno.
func (e *sysError) Unwrap() []error {
	if e.kind == nil {
		return []error{e.errno}
	}
	return []error{e.kind, e.errno}
}

// mapErrno wraps an ioctl error with the sentinel its errno stands for.
// busyMeansExists is set for DM_DEV_CREATE and DM_DEV_RENAME, where the
// kernel reports a name or uuid clash as EBUSY.
func mapErrno(err error, busyMeansExists bool) error {
	// Only a bare errno straight from the ioctl is mapped; anything
	// already wrapped keeps its context (and its mapping, if it had one).
	errno, ok := err.(unix.Errno)
	if !ok {
		return err
	}
	e := &sysError{errno: errno}
	switch errno {
	case unix.ENXIO:
		e.kind = ErrNotFound
	case unix.EEXIST:
		e.kind = ErrExists
	case unix.EBUSY:
		if busyMeansExists {
			e.kind = ErrExists
		} else {
			e.kind = ErrBusy
		}
	}
	return e
}
