package filemap

import (
	"fmt"
	"testing"

	"github.com/dmfm/dmfm/lib/fiemap"
)

func TestRangesFromExtents(t *testing.T) {
	const k = 4096
	ext := func(logical, physical, length uint64, flags uint32) fiemap.Extent {
		return fiemap.Extent{Logical: logical, Physical: physical, Length: length, Flags: flags}
	}
	tests := []struct {
		name string
		exts []fiemap.Extent
		want []Range
	}{
		{"none", nil, nil},
		{"one", []fiemap.Extent{ext(0, 1<<20, 8*k, fiemap.ExtentLast)},
			[]Range{{2048, 64}}},
		{"bytes to sectors", []fiemap.Extent{ext(0, 512, 1024, 0), ext(4*k, 16*k, k, 0)},
			[]Range{{1, 2}, {128, 8}}},
		{"physically adjacent merge", []fiemap.Extent{ext(0, 10*k, k, 0), ext(k, 11*k, 2*k, 0)},
			[]Range{{80, 24}}},
		{"adjacent across a logical hole", []fiemap.Extent{ext(0, 10*k, k, 0), ext(100*k, 11*k, k, fiemap.ExtentLast)},
			[]Range{{80, 16}}},
		{"not adjacent", []fiemap.Extent{ext(0, 10*k, k, 0), ext(k, 12*k, k, 0)},
			[]Range{{80, 8}, {96, 8}}},
		{"adjacent only in reverse file order stays apart", []fiemap.Extent{ext(0, 11*k, k, 0), ext(k, 10*k, k, 0)},
			[]Range{{88, 8}, {80, 8}}},
		{"file order kept", []fiemap.Extent{ext(0, 50*k, k, 0), ext(k, 10*k, k, 0), ext(2*k, 30*k, k, 0)},
			[]Range{{400, 8}, {80, 8}, {240, 8}}},
		{"unwritten kept and merged", []fiemap.Extent{ext(0, 10*k, k, 0), ext(k, 11*k, 4*k, fiemap.ExtentUnwritten|fiemap.ExtentLast)},
			[]Range{{80, 40}}},
		{"unknown and delalloc skipped", []fiemap.Extent{
			ext(0, 10*k, k, 0),
			ext(k, 0, k, fiemap.ExtentUnknown|fiemap.ExtentDelalloc),
			ext(2*k, 0, k, fiemap.ExtentUnknown),
			ext(3*k, 20*k, k, fiemap.ExtentLast)},
			[]Range{{80, 8}, {160, 8}}},
		{"skipped extent does not break adjacency", []fiemap.Extent{
			ext(0, 10*k, k, 0),
			ext(k, 0, k, fiemap.ExtentDelalloc|fiemap.ExtentUnknown),
			ext(2*k, 11*k, k, 0)},
			[]Range{{80, 16}}},
		{"inline data skipped", []fiemap.Extent{ext(0, 123456, 60, fiemap.ExtentDataInline|fiemap.ExtentNotAligned|fiemap.ExtentLast)},
			nil},
		{"unaligned tail covers its sector", []fiemap.Extent{ext(0, 10*k, 1000, fiemap.ExtentNotAligned)},
			[]Range{{80, 2}}},
		{"only delalloc", []fiemap.Extent{ext(0, 0, 8*k, fiemap.ExtentDelalloc|fiemap.ExtentUnknown|fiemap.ExtentLast)},
			nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := RangesFromExtents(tc.exts)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
