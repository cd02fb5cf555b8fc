package dm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Paths of the device-mapper and udev nodes.
const (
	// MapperDir is where device nodes are named after devices.
	MapperDir = "/dev/mapper"
	// ControlPath is the device-mapper control node.
	ControlPath = MapperDir + "/control"
	// udevControl exists while udevd runs; then udev manages the nodes.
	udevControl = "/run/udev/control"
	// miscMajor is the character major of misc devices like the control
	// node.
	miscMajor = 10
)

// udevRunning reports whether udevd runs (and so creates and removes
// /dev/mapper nodes itself).
func udevRunning() bool {
	_, err := os.Stat(udevControl)
	return err == nil
}

// makeNode creates dir/name as a block node for major:minor (mode 0600),
// replacing a stale node or symlink of that name. An existing node with the
// right numbers is kept.
func makeNode(dir, name string, major, minor uint32) error {
	path := filepath.Join(dir, name)
	dev := unix.Mkdev(major, minor)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create node %s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err == nil {
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFBLK:
			if st.Rdev == dev {
				return nil
			}
		case unix.S_IFLNK:
		default:
			return fmt.Errorf("create node %s: a non-device file is in the way", path)
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("create node %s: remove stale node: %w", path, err)
		}
	}
	if err := unix.Mknod(path, unix.S_IFBLK|0o600, int(dev)); err != nil {
		return fmt.Errorf("create node %s: %w", path, &fs.PathError{Op: "mknod", Path: path, Err: err})
	}
	return nil
}

// removeNode removes dir/name if it is a block node for major:minor (or a
// symlink, as udev would have made); anything else is left alone. A missing
// node is not an error.
func removeNode(dir, name string, major, minor uint32) error {
	path := filepath.Join(dir, name)
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("remove node %s: %w", path, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		if st.Rdev != unix.Mkdev(major, minor) {
			return nil
		}
	case unix.S_IFLNK:
		var target unix.Stat_t
		if err := unix.Stat(path, &target); err == nil && target.Rdev != unix.Mkdev(major, minor) {
			return nil
		}
	default:
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove node %s: %w", path, err)
	}
	return nil
}
