package dm

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/dmfm/dmfm/lib/dm/internal/dmioctl"
	"golang.org/x/sys/unix"
)

// DevID identifies a device by exactly one of its name, uuid or device
// number. Build one with ByName, ByUUID or ByDevno.
type DevID struct {
	// Name is the device name (as in /dev/mapper/NAME).
	Name string
	// UUID is the device uuid.
	UUID string
	// Dev is the device number in dev_t encoding (unix.Mkdev).
	Dev uint64
}

// ByName identifies a device by name.
func ByName(name string) DevID { return DevID{Name: name} }

// ByUUID identifies a device by uuid.
func ByUUID(uuid string) DevID { return DevID{UUID: uuid} }

// ByDevno identifies a device by its major and minor numbers.
func ByDevno(major, minor uint32) DevID { return DevID{Dev: unix.Mkdev(major, minor)} }

// String describes the device for messages: `"name"`, `uuid "u"` or
// `dev 253:0`.
func (d DevID) String() string {
	switch {
	case d.Name != "" && d.UUID == "" && d.Dev == 0:
		return strconv.Quote(d.Name)
	case d.UUID != "" && d.Name == "" && d.Dev == 0:
		return "uuid " + strconv.Quote(d.UUID)
	case d.Dev != 0 && d.Name == "" && d.UUID == "":
		return fmt.Sprintf("dev %d:%d", unix.Major(d.Dev), unix.Minor(d.Dev))
	case d == DevID{}:
		return "(no device)"
	}
	return fmt.Sprintf("(name %q, uuid %q, dev %d:%d)", d.Name, d.UUID, unix.Major(d.Dev), unix.Minor(d.Dev))
}

// apply puts the identifier into a request header.
func (d DevID) apply(h *dmioctl.Header) error {
	set := 0
	if d.Name != "" {
		set++
	}
	if d.UUID != "" {
		set++
	}
	if d.Dev != 0 {
		set++
	}
	switch set {
	case 0:
		return errors.New("empty device id: set one of name, uuid or device number")
	case 1:
	default:
		return errors.New("device id sets more than one of name, uuid and device number")
	}
	if err := h.SetName(d.Name); err != nil {
		return err
	}
	if err := h.SetUUID(d.UUID); err != nil {
		return err
	}
	h.Dev = d.Dev
	return nil
}

// checkName validates a name for a new device the way the kernel will,
// with a clearer message.
func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty device name")
	case len(name) >= dmioctl.NameLen:
		return fmt.Errorf("device name is %d bytes, the limit is %d", len(name), dmioctl.NameLen-1)
	case strings.ContainsRune(name, '/'):
		return errors.New("device name contains '/'")
	case strings.IndexByte(name, 0) >= 0:
		return errors.New("device name contains a NUL byte")
	case name == "." || name == ".." || name == "control":
		return fmt.Errorf("device name %q is reserved", name)
	}
	return nil
}

// checkUUID validates a uuid for a new device ("" means none).
func checkUUID(uuid string) error {
	switch {
	case len(uuid) >= dmioctl.UUIDLen:
		return fmt.Errorf("uuid is %d bytes, the limit is %d", len(uuid), dmioctl.UUIDLen-1)
	case strings.IndexByte(uuid, 0) >= 0:
		return errors.New("uuid contains a NUL byte")
	}
	return nil
}
