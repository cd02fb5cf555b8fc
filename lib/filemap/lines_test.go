package filemap

import (
	"strings"
	"testing"
)

func TestLines(t *testing.T) {
	created := Result{GroupID: 3, Regions: []uint64{3, 4, 5}}
	if got, want := CreatedLine("data/x.img", created), "data/x.img: Created new group with 3 region(s) as group ID 3."; got != want {
		t.Errorf("CreatedLine = %q, want %q", got, want)
	}
	lines := RegionLines("x", Result{Regions: []uint64{0, 2}})
	if got, want := strings.Join(lines, "\n"), "x: Created new region with 1 area as region ID 0.\nx: Created new region with 1 area as region ID 2."; got != want {
		t.Errorf("RegionLines = %q, want %q", got, want)
	}
	tests := []struct {
		res  Result
		want string
	}{
		{Result{GroupID: 0, OldGroupID: 0, Regions: []uint64{0, 1}}, "/f: Updated group ID 0 with 2 region(s)."},
		{Result{GroupID: 1, OldGroupID: 4, GroupChanged: true, Regions: []uint64{1, 4, 5}},
			"Group ID changed from 4 to 1/f: Updated group ID 1 with 3 region(s)."},
		{Result{GroupID: 2, OldGroupID: 2, Empty: true}, "/f: Updated group ID 2 with 0 region(s)."},
	}
	for _, tc := range tests {
		if got := UpdatedLine("/f", tc.res); got != tc.want {
			t.Errorf("UpdatedLine(%+v) = %q, want %q", tc.res, got, tc.want)
		}
	}
}
