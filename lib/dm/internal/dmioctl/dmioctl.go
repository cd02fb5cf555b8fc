// Package dmioctl is the raw device-mapper ioctl ABI, version 4, from the
// kernel's include/uapi/linux/dm-ioctl.h: the struct layouts, command
// numbers and flags, request encoding and reply decoding. It knows nothing
// about devices or tables beyond the bytes; package dm builds on it.
//
// Every command passes one buffer: a struct dm_ioctl header followed by a
// payload that starts at the header's data_start offset. The layout here is
// the little-endian 64-bit one (amd64, arm64): the header is 312 bytes and
// payload records are 8-byte aligned.
package dmioctl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Sizes from dm-ioctl.h.
const (
	// NameLen is DM_NAME_LEN: the name field including its NUL.
	NameLen = 128
	// UUIDLen is DM_UUID_LEN: the uuid field including its NUL.
	UUIDLen = 129
	// MaxTypeName is DM_MAX_TYPE_NAME: a target type including its NUL.
	MaxTypeName = 16

	// HeaderSize is sizeof(struct dm_ioctl).
	HeaderSize = 312
	// DataOffset is offsetof(struct dm_ioctl, data): the smallest
	// data_size the kernel accepts and what it reports for replies that
	// carry no payload.
	DataOffset = 305
	// TargetSpecSize is sizeof(struct dm_target_spec); the parameter
	// string follows it.
	TargetSpecSize = 40
	// TargetDepsSize is the fixed part of struct dm_target_deps (count,
	// padding); the dev_t array follows it.
	TargetDepsSize = 8
	// NameListSize is offsetof(struct dm_name_list, name).
	NameListSize = 12
	// TargetVersionsSize is the fixed part of struct dm_target_versions
	// (next, version[3]); the name follows it.
	TargetVersionsSize = 16
	// TargetMsgSize is the fixed part of struct dm_target_msg (sector);
	// the message follows it.
	TargetMsgSize = 8

	// Align is the alignment of payload records (the kernel's ALIGN_MASK+1).
	Align = 8
)

// Interface version. The kernel accepts a request if the major numbers match
// and the request's minor is not newer than its own; it always writes its own
// version back.
const (
	VersionMajor = 4
	// VersionMinor is the minor version this package asks for. 0 keeps
	// every version-4 kernel happy; newer features (uuids in the device
	// list) are detected from the replies instead.
	VersionMinor = 0
	// VersionPatch is the patch level sent.
	VersionPatch = 0
)

// Command numbers (enum in dm-ioctl.h, DM_*_CMD).
const (
	CmdVersion          = 0
	CmdRemoveAll        = 1
	CmdListDevices      = 2
	CmdDevCreate        = 3
	CmdDevRemove        = 4
	CmdDevRename        = 5
	CmdDevSuspend       = 6
	CmdDevStatus        = 7
	CmdDevWait          = 8
	CmdTableLoad        = 9
	CmdTableClear       = 10
	CmdTableDeps        = 11
	CmdTableStatus      = 12
	CmdListVersions     = 13
	CmdTargetMsg        = 14
	CmdDevSetGeometry   = 15
	CmdDevArmPoll       = 16
	CmdGetTargetVersion = 17
)

// ioctlType is DM_IOCTL, the ioctl "magic" byte.
const ioctlType = 0xfd

// Request returns the ioctl request number for command nr:
// _IOWR(DM_IOCTL, nr, struct dm_ioctl).
func Request(nr uint32) uint32 {
	const iocReadWrite = 3 // _IOC_READ|_IOC_WRITE
	return iocReadWrite<<30 | HeaderSize<<16 | ioctlType<<8 | nr
}

// Ioctl request numbers (DM_VERSION, DM_LIST_DEVICES, ...).
var (
	ReqVersion          = Request(CmdVersion)
	ReqRemoveAll        = Request(CmdRemoveAll)
	ReqListDevices      = Request(CmdListDevices)
	ReqDevCreate        = Request(CmdDevCreate)
	ReqDevRemove        = Request(CmdDevRemove)
	ReqDevRename        = Request(CmdDevRename)
	ReqDevSuspend       = Request(CmdDevSuspend)
	ReqDevStatus        = Request(CmdDevStatus)
	ReqDevWait          = Request(CmdDevWait)
	ReqTableLoad        = Request(CmdTableLoad)
	ReqTableClear       = Request(CmdTableClear)
	ReqTableDeps        = Request(CmdTableDeps)
	ReqTableStatus      = Request(CmdTableStatus)
	ReqListVersions     = Request(CmdListVersions)
	ReqTargetMsg        = Request(CmdTargetMsg)
	ReqDevSetGeometry   = Request(CmdDevSetGeometry)
	ReqDevArmPoll       = Request(CmdDevArmPoll)
	ReqGetTargetVersion = Request(CmdGetTargetVersion)
)

// Header flags (DM_*_FLAG).
const (
	// ReadOnlyFlag: in, load a read-only table; out, the device is
	// read-only.
	ReadOnlyFlag = 1 << 0
	// SuspendFlag: in, suspend (DM_DEV_SUSPEND) instead of resume; out,
	// the device is suspended.
	SuspendFlag = 1 << 1
	// PersistentDevFlag: in, DM_DEV_CREATE uses the minor number in dev.
	PersistentDevFlag = 1 << 3
	// StatusTableFlag: in, DM_TABLE_STATUS returns the table, not status.
	StatusTableFlag = 1 << 4
	// ActivePresentFlag: out, the device has a live table.
	ActivePresentFlag = 1 << 5
	// InactivePresentFlag: out, the device has an inactive table loaded.
	InactivePresentFlag = 1 << 6
	// BufferFullFlag: out, the reply did not fit; retry with a bigger
	// buffer.
	BufferFullFlag = 1 << 8
	// SkipBdgetFlag is obsolete and ignored by the kernel.
	SkipBdgetFlag = 1 << 9
	// SkipLockfsFlag: in, suspend without freezing the file system.
	SkipLockfsFlag = 1 << 10
	// NoflushFlag: in, suspend without flushing queued I/O.
	NoflushFlag = 1 << 11
	// QueryInactiveTableFlag: in, status/table/deps describe the inactive
	// table.
	QueryInactiveTableFlag = 1 << 12
	// UeventGeneratedFlag: out, the command emitted a uevent.
	UeventGeneratedFlag = 1 << 13
	// UUIDFlag: in, DM_DEV_RENAME sets the uuid instead of the name, and
	// DM_LIST_DEVICES appends uuids to the name list.
	UUIDFlag = 1 << 14
	// SecureDataFlag: in, the kernel wipes the buffers it used.
	SecureDataFlag = 1 << 15
	// DataOutFlag: out, DM_TARGET_MSG returned text at data_start.
	DataOutFlag = 1 << 16
	// DeferredRemove: in, DM_DEV_REMOVE of an open device removes it on
	// last close; out, a deferred remove is pending.
	DeferredRemove = 1 << 17
	// InternalSuspendFlag: out, the device is suspended internally.
	InternalSuspendFlag = 1 << 18
	// IMAMeasurementFlag: in, DM_TABLE_STATUS returns IMA measurement
	// text.
	IMAMeasurementFlag = 1 << 19
)

// Flags of a dm_name_list entry (after its event number).
const (
	// NameListFlagHasUUID: a uuid string follows the flags.
	NameListFlagHasUUID = 1
	// NameListFlagDoesntHaveUUID: the device has no uuid.
	NameListFlagDoesntHaveUUID = 2
)

// Header is struct dm_ioctl. Its Go layout matches the C one (checked by a
// test), but it is encoded field by field with Marshal and Unmarshal.
type Header struct {
	// Version is the interface version: in, what the caller speaks; out,
	// the kernel's.
	Version [3]uint32
	// DataSize is the size of the whole buffer (in) or of the valid part
	// of the reply (out), header included.
	DataSize uint32
	// DataStart is the offset of the payload from the buffer start.
	DataStart uint32
	// TargetCount is the number of target specs in a table load or reply.
	TargetCount uint32
	// OpenCount is how many openers the device has (out).
	OpenCount int32
	// Flags holds the *Flag bits.
	Flags uint32
	// EventNr is the device's event counter (out) or a udev cookie (in).
	EventNr uint32
	// Padding is unused.
	Padding uint32
	// Dev is the device number in the kernel's huge_encode_dev format,
	// which equals the glibc dev_t encoding (unix.Mkdev) for 32-bit values.
	Dev uint64
	// Name is the NUL-padded device name.
	Name [NameLen]byte
	// UUID is the NUL-padded device uuid.
	UUID [UUIDLen]byte
	// Data is padding that rounds the struct up to 8 bytes.
	Data [7]byte
}

// Compile-time check that the Go struct has the C size.
var _ [HeaderSize - unsafe.Sizeof(Header{})]struct{}
var _ [unsafe.Sizeof(Header{}) - HeaderSize]struct{}

var le = binary.LittleEndian

// Marshal encodes h into the first HeaderSize bytes of b.
func (h *Header) Marshal(b []byte) {
	_ = b[HeaderSize-1]
	le.PutUint32(b[0:], h.Version[0])
	le.PutUint32(b[4:], h.Version[1])
	le.PutUint32(b[8:], h.Version[2])
	le.PutUint32(b[12:], h.DataSize)
	le.PutUint32(b[16:], h.DataStart)
	le.PutUint32(b[20:], h.TargetCount)
	le.PutUint32(b[24:], uint32(h.OpenCount))
	le.PutUint32(b[28:], h.Flags)
	le.PutUint32(b[32:], h.EventNr)
	le.PutUint32(b[36:], h.Padding)
	le.PutUint64(b[40:], h.Dev)
	copy(b[48:176], h.Name[:])
	copy(b[176:305], h.UUID[:])
	copy(b[305:312], h.Data[:])
}

// Unmarshal decodes a header from the first HeaderSize bytes of b.
func (h *Header) Unmarshal(b []byte) error {
	if len(b) < HeaderSize {
		return fmt.Errorf("dm ioctl header: %d bytes, need %d", len(b), HeaderSize)
	}
	h.Version[0] = le.Uint32(b[0:])
	h.Version[1] = le.Uint32(b[4:])
	h.Version[2] = le.Uint32(b[8:])
	h.DataSize = le.Uint32(b[12:])
	h.DataStart = le.Uint32(b[16:])
	h.TargetCount = le.Uint32(b[20:])
	h.OpenCount = int32(le.Uint32(b[24:]))
	h.Flags = le.Uint32(b[28:])
	h.EventNr = le.Uint32(b[32:])
	h.Padding = le.Uint32(b[36:])
	h.Dev = le.Uint64(b[40:])
	copy(h.Name[:], b[48:176])
	copy(h.UUID[:], b[176:305])
	copy(h.Data[:], b[305:312])
	return nil
}

// SetName stores name NUL-padded; it fails if name does not fit with its
// NUL or contains a NUL.
func (h *Header) SetName(name string) error {
	return putCString(h.Name[:], name, "name")
}

// SetUUID stores uuid NUL-padded; it fails if uuid does not fit with its
// NUL or contains a NUL.
func (h *Header) SetUUID(uuid string) error {
	return putCString(h.UUID[:], uuid, "uuid")
}

// NameString returns the name up to its NUL.
func (h *Header) NameString() string { return CString(h.Name[:]) }

// UUIDString returns the uuid up to its NUL.
func (h *Header) UUIDString() string { return CString(h.UUID[:]) }

// putCString copies s into dst and NUL-pads the rest.
func putCString(dst []byte, s, what string) error {
	if len(s) >= len(dst) {
		return fmt.Errorf("%s %q is %d bytes, the limit is %d", what, s, len(s), len(dst)-1)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%s %q contains a NUL byte", what, s)
	}
	n := copy(dst, s)
	clear(dst[n:])
	return nil
}

// CString returns the bytes of b before the first NUL (all of b if none).
func CString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// AlignUp rounds n up to a multiple of Align.
func AlignUp(n int) int { return (n + Align - 1) &^ (Align - 1) }

// TargetSpec is one struct dm_target_spec with the parameter string that
// follows it.
type TargetSpec struct {
	// SectorStart and Length place the target, in 512-byte sectors.
	SectorStart, Length uint64
	// Status is set by the kernel in replies (always 0 today).
	Status int32
	// TargetType is the target name, e.g. "linear".
	TargetType string
	// Params is the target's parameter string (table line or status).
	Params string
}

// AppendTargetSpecs appends the DM_TABLE_LOAD payload for specs to dst,
// which must end on an 8-byte boundary relative to the header start (true
// when dst is a header plus aligned payload). Each spec is followed by its
// NUL-terminated parameters and padding to the next 8-byte boundary; its
// next field is the distance from the start of this spec to the next one
// (for the last spec: to the end of its record).
func AppendTargetSpecs(dst []byte, specs []TargetSpec) ([]byte, error) {
	for i, s := range specs {
		if s.TargetType == "" {
			return dst, fmt.Errorf("target %d: empty target type", i)
		}
		if len(s.TargetType) >= MaxTypeName {
			return dst, fmt.Errorf("target %d: type %q is longer than %d bytes", i, s.TargetType, MaxTypeName-1)
		}
		if strings.IndexByte(s.TargetType, 0) >= 0 || strings.IndexByte(s.Params, 0) >= 0 {
			return dst, fmt.Errorf("target %d: NUL byte in type or parameters", i)
		}
		recLen := AlignUp(TargetSpecSize + len(s.Params) + 1)
		start := len(dst)
		dst = append(dst, make([]byte, recLen)...)
		rec := dst[start:]
		le.PutUint64(rec[0:], s.SectorStart)
		le.PutUint64(rec[8:], s.Length)
		le.PutUint32(rec[16:], uint32(s.Status))
		le.PutUint32(rec[20:], uint32(recLen))
		copy(rec[24:24+MaxTypeName], s.TargetType)
		copy(rec[TargetSpecSize:], s.Params)
	}
	return dst, nil
}

// AppendTargetMsg appends a struct dm_target_msg: the sector, then the
// NUL-terminated message.
func AppendTargetMsg(dst []byte, sector uint64, msg string) []byte {
	dst = le.AppendUint64(dst, sector)
	dst = append(dst, msg...)
	return append(dst, 0)
}

// AppendString appends s and its NUL terminator (the payload of
// DM_DEV_RENAME and DM_DEV_SET_GEOMETRY).
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, s...)
	return append(dst, 0)
}

// ReplyData returns the payload of a reply in buf whose header is h: the
// bytes from data_start to data_size. It is empty when the command returned
// no payload (data_size at or below data_start).
func ReplyData(buf []byte, h *Header) ([]byte, error) {
	if h.DataSize <= h.DataStart {
		return nil, nil
	}
	if h.DataStart < DataOffset || int(h.DataSize) > len(buf) {
		return nil, fmt.Errorf("dm ioctl reply: data %d..%d outside the %d-byte buffer", h.DataStart, h.DataSize, len(buf))
	}
	return buf[h.DataStart:h.DataSize], nil
}

// errTruncated is wrapped by the parse errors for records cut short.
var errTruncated = errors.New("record runs past the end of the reply")

// NameListEntry is one struct dm_name_list record of a DM_LIST_DEVICES reply.
type NameListEntry struct {
	// Dev is the device number (huge_encode_dev).
	Dev uint64
	// Name is the device name.
	Name string
	// HasEventNr reports whether the kernel appended the event number and
	// flags (Linux 4.13+ appends the event number; 5.13+ the flags).
	HasEventNr bool
	// EventNr is the device's event counter.
	EventNr uint32
	// Flags holds NameListFlag* bits; 0 from kernels that do not report
	// uuids or when UUIDFlag was not requested.
	Flags uint32
	// UUID is the device uuid when Flags has NameListFlagHasUUID.
	UUID string
}

// ParseNameList decodes a DM_LIST_DEVICES reply payload. Each record is
// dev (u64), next (u32, offset of the next record from this one, 0 for the
// last), the NUL-terminated name; then, aligned to 8, event_nr (u32) and
// flags (u32) when the record has room for them; then, when flags has
// NameListFlagHasUUID, the NUL-terminated uuid.
func ParseNameList(data []byte) ([]NameListEntry, error) {
	// An empty list is data_size == data_start (nothing copied back) or,
	// from older kernels, a single record with dev == 0.
	if len(data) < NameListSize || le.Uint64(data) == 0 {
		return nil, nil
	}
	var out []NameListEntry
	off := 0
	for {
		if off+NameListSize > len(data) {
			return out, fmt.Errorf("name list entry at %d: %w", off, errTruncated)
		}
		rec := data[off:]
		next := int(le.Uint32(rec[8:]))
		end := len(rec)
		if next != 0 {
			if next < NameListSize || next > len(rec) || next%Align != 0 {
				return out, fmt.Errorf("name list entry at %d: bad next offset %d", off, next)
			}
			end = next
		}
		rec = rec[:end]
		nameEnd := indexNUL(rec, NameListSize)
		if nameEnd < 0 {
			return out, fmt.Errorf("name list entry at %d: name not NUL-terminated: %w", off, errTruncated)
		}
		e := NameListEntry{Dev: le.Uint64(rec), Name: string(rec[NameListSize:nameEnd])}
		// The extra fields start at the next 8-byte boundary after the
		// name. Offsets within data are relative to data_start, which is
		// itself 8-aligned, so aligning the record offset is enough.
		p := AlignUp(off+nameEnd+1) - off
		if p+8 <= len(rec) {
			e.HasEventNr = true
			e.EventNr = le.Uint32(rec[p:])
			e.Flags = le.Uint32(rec[p+4:])
			if e.Flags&NameListFlagHasUUID != 0 {
				u := p + 8
				uEnd := indexNUL(rec, u)
				if uEnd < 0 {
					return out, fmt.Errorf("name list entry %q: uuid not NUL-terminated: %w", e.Name, errTruncated)
				}
				e.UUID = string(rec[u:uEnd])
			}
		}
		out = append(out, e)
		if next == 0 {
			return out, nil
		}
		off += next
	}
}

// indexNUL returns the index of the first NUL in b at or after from, or -1.
func indexNUL(b []byte, from int) int {
	if from > len(b) {
		return -1
	}
	for i := from; i < len(b); i++ {
		if b[i] == 0 {
			return i
		}
	}
	return -1
}

// TargetVersion is one struct dm_target_versions record.
type TargetVersion struct {
	// Name is the target type name.
	Name string
	// Version is the target's major, minor, patch version.
	Version [3]uint32
}

// ParseTargetVersions decodes a DM_LIST_VERSIONS reply payload: records of
// next (u32, offset of the next record from this one, 0 for the last),
// version[3] (u32) and the NUL-terminated name, each 8-byte aligned.
func ParseTargetVersions(data []byte) ([]TargetVersion, error) {
	var out []TargetVersion
	if len(data) == 0 {
		return nil, nil
	}
	off := 0
	for {
		if off+TargetVersionsSize > len(data) {
			return out, fmt.Errorf("target version record at %d: %w", off, errTruncated)
		}
		rec := data[off:]
		next := int(le.Uint32(rec))
		if next != 0 && (next < TargetVersionsSize || next > len(rec) || next%Align != 0) {
			return out, fmt.Errorf("target version record at %d: bad next offset %d", off, next)
		}
		end := indexNUL(rec, TargetVersionsSize)
		if end < 0 || (next != 0 && end >= next) {
			return out, fmt.Errorf("target version record at %d: name not NUL-terminated: %w", off, errTruncated)
		}
		out = append(out, TargetVersion{
			Name:    string(rec[TargetVersionsSize:end]),
			Version: [3]uint32{le.Uint32(rec[4:]), le.Uint32(rec[8:]), le.Uint32(rec[12:])},
		})
		if next == 0 {
			return out, nil
		}
		off += next
	}
}

// ParseDeps decodes a DM_TABLE_DEPS reply payload: count (u32), padding
// (u32), then count device numbers (u64, huge_encode_dev).
func ParseDeps(data []byte) ([]uint64, error) {
	if len(data) == 0 {
		return nil, nil // no table: the kernel returns no payload
	}
	if len(data) < TargetDepsSize {
		return nil, fmt.Errorf("deps header: %w", errTruncated)
	}
	n := le.Uint32(data)
	if uint64(len(data)-TargetDepsSize) < uint64(n)*8 {
		return nil, fmt.Errorf("deps: %d devices do not fit in %d bytes: %w", n, len(data), errTruncated)
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = le.Uint64(data[TargetDepsSize+8*i:])
	}
	return out, nil
}

// ParseTargetSpecs decodes the count target specs of a DM_TABLE_STATUS (or
// DM_DEV_WAIT) reply payload. In replies a spec's next field is the offset of
// the following spec from the start of the payload, not from the spec.
func ParseTargetSpecs(data []byte, count uint32) ([]TargetSpec, error) {
	if count == 0 {
		return nil, nil
	}
	out := make([]TargetSpec, 0, count)
	off := 0
	for i := range count {
		if off+TargetSpecSize > len(data) {
			return out, fmt.Errorf("target spec %d at %d: %w", i, off, errTruncated)
		}
		rec := data[off:]
		end := indexNUL(rec, TargetSpecSize)
		if end < 0 {
			return out, fmt.Errorf("target spec %d: parameters not NUL-terminated: %w", i, errTruncated)
		}
		out = append(out, TargetSpec{
			SectorStart: le.Uint64(rec[0:]),
			Length:      le.Uint64(rec[8:]),
			Status:      int32(le.Uint32(rec[16:])),
			TargetType:  CString(rec[24 : 24+MaxTypeName]),
			Params:      string(rec[TargetSpecSize:end]),
		})
		next := int(le.Uint32(rec[20:]))
		if i+1 < count && (next <= off || next%Align != 0) {
			return out, fmt.Errorf("target spec %d: bad next offset %d", i, next)
		}
		off = next
	}
	return out, nil
}

// Ioctl issues request req on the control file descriptor fd with buf as
// the dm_ioctl buffer. buf must hold at least HeaderSize bytes and its
// header's data_size must not exceed len(buf).
func Ioctl(fd uintptr, req uint32, buf []byte) error {
	if len(buf) < HeaderSize {
		return fmt.Errorf("dm ioctl buffer of %d bytes is smaller than the header", len(buf))
	}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, uintptr(req), uintptr(unsafe.Pointer(&buf[0])))
	if errno != 0 {
		return errno
	}
	return nil
}

// PrepareRequest lays out a request in buf: h with DataStart set to
// HeaderSize and DataSize to len(buf) (the room the kernel may use for its
// reply), followed by payload. Bytes after the payload are left as they are;
// the kernel reads only what the command defines.
func PrepareRequest(buf []byte, h *Header, payload []byte) error {
	if len(buf) < HeaderSize+len(payload) {
		return fmt.Errorf("dm ioctl buffer of %d bytes cannot hold the header and a %d-byte payload", len(buf), len(payload))
	}
	h.DataStart = HeaderSize
	h.DataSize = uint32(len(buf))
	h.Marshal(buf)
	copy(buf[HeaderSize:], payload)
	return nil
}
