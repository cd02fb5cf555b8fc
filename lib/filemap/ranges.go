package filemap

import (
	"fmt"
	"os"

	"github.com/dmfm/dmfm/lib/fiemap"
)

// SectorSize is the unit of dm-stats ranges: 512 bytes.
const SectorSize = 512

// Range is a run of 512-byte sectors on the dm device that holds a file.
type Range struct {
	Start, Length uint64
}

// End returns the first sector after the range.
func (r Range) End() uint64 { return r.Start + r.Length }

// String formats the range as dm-stats writes it: "start+length".
func (r Range) String() string { return fmt.Sprintf("%d+%d", r.Start, r.Length) }

// skipFlags are the extents that have no place on the device yet (or no
// place of their own): they cannot be mapped to a region.
const skipFlags = fiemap.ExtentUnknown | fiemap.ExtentDelalloc | fiemap.ExtentDataInline

// Ranges returns the sector ranges that hold f's data on its device, in file
// order: FIEMAP (with sync) extents, without those whose location is unknown
// or delayed (and inline data, which lives inside metadata), unwritten
// (fallocated) extents included, physically adjacent extents merged.
func Ranges(f *os.File) ([]Range, error) {
	exts, err := fiemap.Extents(f, true)
	if err != nil {
		return nil, err
	}
	return RangesFromExtents(exts), nil
}

// RangesFromExtents turns FIEMAP extents (bytes, file order) into sector
// ranges on the device. Extents flagged unknown, delalloc or inline are
// skipped. An extent that starts exactly where the previous kept one ended
// on the device is merged into it, even across a hole in the file. A range
// covers every sector its extent touches: the start is rounded down and the
// end up to whole sectors (for the usual block-aligned extents this is
// exactly physical>>9 and length>>9).
func RangesFromExtents(exts []fiemap.Extent) []Range {
	var out []Range
	for _, e := range exts {
		if e.Flags&skipFlags != 0 || e.Length == 0 {
			continue
		}
		start := e.Physical / SectorSize
		end := (e.Physical + e.Length + SectorSize - 1) / SectorSize
		if n := len(out); n > 0 && out[n-1].End() == start {
			out[n-1].Length += end - start
			continue
		}
		out = append(out, Range{Start: start, Length: end - start})
	}
	return out
}
