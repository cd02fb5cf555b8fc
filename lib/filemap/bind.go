package filemap

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Binding names the device-mapper device that holds a file.
type Binding struct {
	// Major and Minor are the dm device's numbers (the file's st_dev).
	Major, Minor uint32
	// DMName is the device's name, as in /dev/mapper/NAME.
	DMName string
}

// ErrNotDM matches (errors.Is) Bind's errors about files that are not on
// a device-mapper device, or on a filesystem that cannot map them.
var ErrNotDM = errors.New("not on a device-mapper device")

// notDMError is an error whose text says it all and that matches ErrNotDM.
type notDMError string

func (e notDMError) Error() string        { return string(e) }
func (e notDMError) Is(target error) bool { return target == ErrNotDM }

// Paths Bind reads; tests do not change them.
const (
	procDevices   = "/proc/devices"
	procMountinfo = "/proc/self/mountinfo"
	sysDevBlock   = "/sys/dev/block"
)

// Bind finds the device-mapper device under f, which must be a regular file
// on a filesystem that reports physical extent offsets. Errors name the file
// and say what is wrong: not a regular file, btrfs, a filesystem without a
// block device (tmpfs, proc, NFS, ...), or a block device that is not a dm
// device.
func Bind(f *os.File) (Binding, error) {
	name := f.Name()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return Binding{}, fmt.Errorf("%s: %w", name, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return Binding{}, fmt.Errorf("%s is not a regular file (%s)", name, fileType(st.Mode))
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &sfs); err != nil {
		return Binding{}, fmt.Errorf("%s: %w", name, err)
	}
	if sfs.Type == unix.BTRFS_SUPER_MAGIC {
		return Binding{}, notDMError(name + " is on btrfs: btrfs does not report physical extent offsets")
	}
	major, minor := unix.Major(st.Dev), unix.Minor(st.Dev)
	dmMajor, dmErr := deviceMapperMajor()
	if dmErr == nil && major == dmMajor {
		dmName, err := readTrim(filepath.Join(sysDevBlock, fmt.Sprintf("%d:%d", major, minor), "dm", "name"))
		if err != nil {
			return Binding{}, fmt.Errorf("%s is on dm device %d:%d, but its name cannot be read: %w", name, major, minor, err)
		}
		return Binding{Major: major, Minor: minor, DMName: dmName}, nil
	}
	var msg string
	if dev, ok := blockDevName(major, minor); ok {
		msg = fmt.Sprintf("%s is on %s, which is not a device-mapper device", name, dev)
	} else {
		msg = fmt.Sprintf("%s is on %s, not on a device-mapper device", name, fsTypeOf(major, minor, sfs.Type))
	}
	if dmErr != nil {
		msg += " (" + dmErr.Error() + ")"
	}
	return Binding{}, notDMError(msg)
}

// deviceMapperMajor returns the block major of device-mapper from
// /proc/devices.
func deviceMapperMajor() (uint32, error) {
	f, err := os.Open(procDevices)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	block := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasSuffix(line, "devices:") {
			block = line == "Block devices:"
			continue
		}
		fields := strings.Fields(line)
		if block && len(fields) == 2 && fields[1] == "device-mapper" {
			n, err := strconv.ParseUint(fields[0], 10, 32)
			if err != nil {
				return 0, fmt.Errorf("%s: bad device-mapper major %q", procDevices, fields[0])
			}
			return uint32(n), nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("the kernel has no device-mapper (not in %s)", procDevices)
}

// blockDevName returns "/dev/NAME" for a block device number, if the kernel
// knows one.
func blockDevName(major, minor uint32) (string, bool) {
	if major == 0 {
		return "", false
	}
	uevent, err := os.ReadFile(filepath.Join(sysDevBlock, fmt.Sprintf("%d:%d", major, minor), "uevent"))
	if err != nil {
		return "", false
	}
	for line := range strings.SplitSeq(string(uevent), "\n") {
		if v, ok := strings.CutPrefix(line, "DEVNAME="); ok && v != "" {
			return "/dev/" + v, true
		}
	}
	return fmt.Sprintf("block device %d:%d", major, minor), true
}

// fsTypeOf names the filesystem mounted from device major:minor, from
// /proc/self/mountinfo, or falls back to a name for its statfs magic.
func fsTypeOf(major, minor uint32, magic int64) string {
	if data, err := os.ReadFile(procMountinfo); err == nil {
		want := fmt.Sprintf("%d:%d", major, minor)
		for line := range strings.SplitSeq(string(data), "\n") {
			fields := strings.Fields(line)
			if len(fields) < 3 || fields[2] != want {
				continue
			}
			for i, f := range fields {
				if f == "-" && i+1 < len(fields) {
					return fields[i+1]
				}
			}
		}
	}
	if n, ok := magicNames[magic]; ok {
		return n
	}
	return fmt.Sprintf("a filesystem with magic %#x", magic)
}

var magicNames = map[int64]string{
	unix.TMPFS_MAGIC:           "tmpfs",
	unix.PROC_SUPER_MAGIC:      "proc",
	unix.SYSFS_MAGIC:           "sysfs",
	unix.OVERLAYFS_SUPER_MAGIC: "overlay",
	unix.NFS_SUPER_MAGIC:       "nfs",
	unix.RAMFS_MAGIC:           "ramfs",
	unix.FUSE_SUPER_MAGIC:      "fuse",
	unix.V9FS_MAGIC:            "9p",
	unix.CGROUP2_SUPER_MAGIC:   "cgroup2",
}

func fileType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFLNK:
		return "a symbolic link"
	}
	return fmt.Sprintf("mode %#o", mode&unix.S_IFMT)
}

func readTrim(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}
