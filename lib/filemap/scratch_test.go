package filemap

import (
	"testing"

	"github.com/dmfm/dmfm/lib/dmstats"
)

// TestCreateScratchGain: Create makes a scratch region for a large file,
// wherever the device's other regions are, unless a precise region already
// stops the kernel's rescans before the new regions.
func TestCreateScratchGain(t *testing.T) {
	regions := func(ids ...uint64) []dmstats.Region {
		var rs []dmstats.Region
		for _, id := range ids {
			rs = append(rs, dmstats.Region{ID: id, Length: 8, Step: 8})
		}
		return rs
	}
	span := func(from, n uint64) []uint64 {
		var out []uint64
		for i := uint64(0); i < n; i++ {
			out = append(out, from+i)
		}
		return out
	}
	precise := func(rs []dmstats.Region, i int) []dmstats.Region {
		rs[i].Precise = true
		return rs
	}
	for _, tc := range []struct {
		name    string
		regions []dmstats.Region
		ids     []uint64
		use     bool
	}{
		{"2000 extents, empty device", nil, span(0, 2000), true},
		{"2000 extents after 1000 regions", regions(span(0, 1000)...), span(1000, 2000), true},
		{"2000 extents below 1000 regions", regions(span(2000, 1000)...), span(0, 2000), true},
		{"300 extents", nil, span(0, 300), false},
		{"2 extents", nil, span(0, 2), false},
		{"precise region before", precise(regions(span(0, 10)...), 3), span(10, 2000), false},
		{"precise region after", precise(regions(span(2000, 10)...), 3), span(0, 2000), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gain := createScratchGain(tc.regions, tc.ids)
			if (gain >= dmstats.ScratchMinGain) != tc.use {
				t.Errorf("gain %d, want a scratch region: %v", gain, tc.use)
			}
		})
	}
}
