package filemap

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/dmfm/dmfm/lib/dmstats"
)

// The planner's indexed lookups against the plain walks they replace, on
// random layouts: ranges of a file that may overlap (a reflink inside the
// file) and members that may or may not fit them.

func naiveContaining(ranges []Range, start, end uint64) int {
	for i, r := range ranges {
		if r.Start <= start && end <= r.End() {
			return i
		}
	}
	return -1
}

func naiveGaps(ranges []Range, kept []Member) []Range {
	var out []Range
	for _, r := range ranges {
		pos := r.Start
		for _, k := range kept {
			if k.end() <= pos || k.Start >= r.End() {
				continue
			}
			if k.Start > pos {
				out = append(out, Range{Start: pos, Length: k.Start - pos})
			}
			pos = max(pos, k.end())
		}
		if pos < r.End() {
			out = append(out, Range{Start: pos, Length: r.End() - pos})
		}
	}
	return out
}

func randomRanges(rng *rand.Rand, n int, overlap bool) []Range {
	var out []Range
	pos := uint64(rng.IntN(64))
	for range n {
		r := Range{Start: pos, Length: uint64(1 + rng.IntN(40))}
		if overlap && rng.IntN(5) == 0 && len(out) > 0 {
			// Map part of an earlier range again.
			e := out[rng.IntN(len(out))]
			r = Range{Start: e.Start + uint64(rng.IntN(int(e.Length))), Length: uint64(1 + rng.IntN(40))}
		} else {
			pos += r.Length + uint64(rng.IntN(30))
		}
		out = append(out, r)
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func TestRangeIndexMatchesWalk(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		ranges := randomRanges(rng, 1+rng.IntN(60), trial%2 == 1)
		ix := newRangeIndex(ranges)
		for range 200 {
			start := uint64(rng.IntN(3000))
			end := start + uint64(1+rng.IntN(50))
			if got, want := ix.containing(start, end), naiveContaining(ranges, start, end); got != want {
				t.Fatalf("trial %d: containing(%d, %d) = %d, want %d in %v", trial, start, end, got, want, ranges)
			}
		}
	}
}

func TestOverlapsKeptAndGapsMatchWalk(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 300 {
		ranges := randomRanges(rng, 1+rng.IntN(40), trial%2 == 1)
		var kept []Member
		for id := range uint64(80) {
			m := Member{ID: id, Start: uint64(rng.IntN(2500)), Length: uint64(1 + rng.IntN(30))}
			naive := false
			for _, k := range kept {
				if m.Start < k.end() && k.Start < m.end() {
					naive = true
				}
			}
			at, overlaps := overlapsKept(m, kept)
			if overlaps != naive {
				t.Fatalf("trial %d: overlapsKept(%+v) = %v, want %v; kept %+v", trial, m, overlaps, naive, kept)
			}
			if !overlaps {
				kept = slices.Insert(kept, at, m)
				if !slices.IsSortedFunc(kept, func(a, b Member) int { return cmpU(a.Start, b.Start) }) {
					t.Fatalf("trial %d: inserting %+v at %d unsorts kept", trial, m, at)
				}
			}
		}
		if got, want := gaps(ranges, kept), naiveGaps(ranges, kept); !slices.Equal(got, want) {
			t.Fatalf("trial %d: gaps = %v, want %v", trial, got, want)
		}
	}
}

func TestFileOrderMatchesWalk(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := range 200 {
		ranges := randomRanges(rng, 1+rng.IntN(40), trial%2 == 1)
		byID := map[uint64]dmstats.Region{}
		var ids []uint64
		for id := range uint64(50) {
			byID[id] = dmstats.Region{ID: id, Start: uint64(rng.IntN(2500)), Length: 8}
			ids = append(ids, id)
		}
		rank := func(id uint64) (int, uint64) {
			r := byID[id]
			if i := naiveContaining(ranges, r.Start, r.Start+1); i >= 0 {
				return i, r.Start
			}
			return len(ranges), r.Start
		}
		want := slices.Clone(ids)
		slices.SortStableFunc(want, func(a, b uint64) int {
			ia, sa := rank(a)
			ib, sb := rank(b)
			if ia != ib {
				return ia - ib
			}
			return cmpU(sa, sb)
		})
		if got := fileOrder(ids, byID, ranges); !slices.Equal(got, want) {
			t.Fatalf("trial %d: fileOrder = %v, want %v", trial, got, want)
		}
	}
}

// BenchmarkPlanUpdate2000 plans the benchmark's update: a 2000-region group
// whose file gained 200 extents.
func BenchmarkPlanUpdate2000(b *testing.B) {
	var s State
	var ranges []Range
	for i := range uint64(2200) {
		r := Range{Start: 64 + 16*i, Length: 8}
		ranges = append(ranges, r)
		if i < 2000 {
			s.Members = append(s.Members, Member{ID: i, Start: r.Start, Length: r.Length})
			s.Used = append(s.Used, i)
		}
	}
	s.Leader, s.HasLeader = 0, true
	for _, exact := range []bool{false, true} {
		name := "preserve"
		if exact {
			name = "exact"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if p := PlanUpdate(s, ranges, exact); len(p.Create) != 200 {
					b.Fatalf("plan creates %d regions", len(p.Create))
				}
			}
		})
	}
}
