// Package fiemap reads a file's extent map with the FS_IOC_FIEMAP ioctl
// (linux/fiemap.h): which byte ranges of the file live where on the block
// device that holds its filesystem.
package fiemap

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Request flags (struct fiemap.fm_flags), from linux/fiemap.h.
const (
	// FlagSync asks the kernel to write the file's dirty data back before
	// mapping it, so that delayed allocations get their real location.
	FlagSync uint32 = 0x00000001
	// FlagXattr maps the extended-attribute tree instead of the data.
	FlagXattr uint32 = 0x00000002
	// FlagCache asks the filesystem to cache the extents (ext4 only).
	FlagCache uint32 = 0x00000004
)

// Extent flags (struct fiemap_extent.fe_flags), from linux/fiemap.h.
const (
	// ExtentLast marks the last extent of the file.
	ExtentLast uint32 = 0x00000001
	// ExtentUnknown: the data's location is not known; Physical is meaningless.
	ExtentUnknown uint32 = 0x00000002
	// ExtentDelalloc: the location is still pending (delayed allocation);
	// the kernel also sets ExtentUnknown.
	ExtentDelalloc uint32 = 0x00000004
	// ExtentEncoded: the data cannot be read while the filesystem is unmounted.
	ExtentEncoded uint32 = 0x00000008
	// ExtentDataEncrypted: the data is encrypted by the filesystem.
	ExtentDataEncrypted uint32 = 0x00000080
	// ExtentNotAligned: the offsets may not be block aligned.
	ExtentNotAligned uint32 = 0x00000100
	// ExtentDataInline: the data is stored among metadata (sets ExtentNotAligned).
	ExtentDataInline uint32 = 0x00000200
	// ExtentDataTail: several files share the block (sets ExtentNotAligned).
	ExtentDataTail uint32 = 0x00000400
	// ExtentUnwritten: space is allocated but holds no data yet (reads as
	// zeros), as left by fallocate.
	ExtentUnwritten uint32 = 0x00000800
	// ExtentMerged: the filesystem does not track extents natively and the
	// kernel merged blocks into extents for the reply.
	ExtentMerged uint32 = 0x00001000
	// ExtentShared: the space is shared with other files (reflinks, snapshots).
	ExtentShared uint32 = 0x00002000
)

// MaxOffset is FIEMAP_MAX_OFFSET: the largest logical offset FIEMAP maps to.
const MaxOffset = ^uint64(0)

// DefaultBatch is the number of extents requested per ioctl call by Extents.
const DefaultBatch = 512

// ErrNotSupported is returned (wrapped) when the file's filesystem does not
// implement FIEMAP, or rejects the requested flags.
var ErrNotSupported = errors.New("filesystem does not support FIEMAP")

// Extent is one mapped extent of a file, in bytes, as FIEMAP returns it.
type Extent struct {
	Logical  uint64 // offset in the file
	Physical uint64 // offset on the filesystem's block device
	Length   uint64 // length of the extent
	Flags    uint32 // Extent* flags
}

// End returns the logical offset just past the extent.
func (e Extent) End() uint64 { return e.Logical + e.Length }

// String formats the extent as "logical+length@physical [flags]".
func (e Extent) String() string {
	s := fmt.Sprintf("%d+%d@%d", e.Logical, e.Length, e.Physical)
	if e.Flags != 0 {
		s += " [" + FlagNames(e.Flags) + "]"
	}
	return s
}

var extentFlagNames = []struct {
	flag uint32
	name string
}{
	{ExtentLast, "last"},
	{ExtentUnknown, "unknown"},
	{ExtentDelalloc, "delalloc"},
	{ExtentEncoded, "encoded"},
	{ExtentDataEncrypted, "encrypted"},
	{ExtentNotAligned, "not_aligned"},
	{ExtentDataInline, "inline"},
	{ExtentDataTail, "tail"},
	{ExtentUnwritten, "unwritten"},
	{ExtentMerged, "merged"},
	{ExtentShared, "shared"},
}

// FlagNames returns the names of the Extent* flags set in flags, comma
// separated in ascending bit order; bits without a name are shown in hex.
func FlagNames(flags uint32) string {
	var names []string
	for _, f := range extentFlagNames {
		if flags&f.flag != 0 {
			names = append(names, f.name)
			flags &^= f.flag
		}
	}
	if flags != 0 {
		names = append(names, fmt.Sprintf("%#x", flags))
	}
	return strings.Join(names, ",")
}

// Request selects what Map maps.
type Request struct {
	Start  uint64 // first logical byte to map
	Length uint64 // bytes to map from Start; 0 = to the end of the file
	Flags  uint32 // Flag* request flags
	Batch  int    // extents per ioctl call; 0 = DefaultBatch
}

// Extents returns every extent of f in file order, asking the kernel to sync
// the file's data first when sync is true.
func Extents(f *os.File, sync bool) ([]Extent, error) {
	r := Request{}
	if sync {
		r.Flags = FlagSync
	}
	return Map(f, r)
}

// ioctl number: _IOWR('f', 11, struct fiemap), struct fiemap being 32 bytes.
const fsIocFiemap = 0xC020660B

// header is struct fiemap without its flexible array.
type header struct {
	start         uint64
	length        uint64
	flags         uint32
	mappedExtents uint32
	extentCount   uint32
	reserved      uint32
}

// rawExtent is struct fiemap_extent.
type rawExtent struct {
	logical    uint64
	physical   uint64
	length     uint64
	reserved64 [2]uint64
	flags      uint32
	reserved   [3]uint32
}

const (
	headerSize = int(unsafe.Sizeof(header{}))
	extentSize = int(unsafe.Sizeof(rawExtent{}))
)

// Map returns the extents of f that intersect the request's range, in file
// order. It calls FS_IOC_FIEMAP repeatedly, r.Batch extents at a time,
// until an extent carries ExtentLast, the kernel returns no extent, or the
// range is exhausted.
func Map(f *os.File, r Request) ([]Extent, error) {
	batch := r.Batch
	if batch == 0 {
		batch = DefaultBatch
	}
	if batch < 0 {
		return nil, fmt.Errorf("fiemap %s: batch size %d is negative", f.Name(), batch)
	}
	end := MaxOffset
	if r.Length != 0 {
		if r.Length > MaxOffset-r.Start {
			return nil, fmt.Errorf("fiemap %s: range %d+%d overflows", f.Name(), r.Start, r.Length)
		}
		end = r.Start + r.Length
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("fiemap %s: %w", f.Name(), err)
	}
	// One buffer for the header and its extents, made of uint64s so that
	// it is 8-byte aligned like the kernel's structures.
	buf := make([]uint64, (headerSize+batch*extentSize)/8)
	hdr := (*header)(unsafe.Pointer(&buf[0]))
	raw := unsafe.Slice((*rawExtent)(unsafe.Pointer(&buf[headerSize/8])), batch)

	var out []Extent
	pos := r.Start
	for pos < end {
		clear(buf)
		hdr.start = pos
		hdr.length = end - pos
		hdr.flags = r.Flags
		hdr.extentCount = uint32(batch)
		var errno error
		cerr := rc.Control(func(fd uintptr) {
			for {
				_, _, e := unix.Syscall(unix.SYS_IOCTL, fd, fsIocFiemap, uintptr(unsafe.Pointer(&buf[0])))
				if e != unix.EINTR {
					if e != 0 {
						errno = e
					}
					return
				}
			}
		})
		if cerr != nil {
			return nil, fmt.Errorf("fiemap %s: %w", f.Name(), cerr)
		}
		if errno != nil {
			switch errno {
			case unix.EOPNOTSUPP, unix.ENOTTY:
				return nil, fmt.Errorf("fiemap %s: %w (%v)", f.Name(), ErrNotSupported, errno)
			case unix.EBADR:
				return nil, fmt.Errorf("fiemap %s: flags %#x: %w (%v)", f.Name(), r.Flags, ErrNotSupported, errno)
			}
			return nil, fmt.Errorf("fiemap %s at offset %d: %w", f.Name(), pos, errno)
		}
		n := int(hdr.mappedExtents)
		if n == 0 {
			break
		}
		if n > batch {
			return nil, fmt.Errorf("fiemap %s: kernel reported %d extents for a buffer of %d", f.Name(), n, batch)
		}
		last := false
		for _, x := range raw[:n] {
			out = append(out, Extent{Logical: x.logical, Physical: x.physical, Length: x.length, Flags: x.flags})
			if x.flags&ExtentLast != 0 {
				last = true
			}
		}
		if last {
			break
		}
		next := raw[n-1].logical + raw[n-1].length
		if next <= pos {
			return nil, fmt.Errorf("fiemap %s: kernel made no progress at offset %d", f.Name(), pos)
		}
		pos = next
	}
	return out, nil
}
