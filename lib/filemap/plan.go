package filemap

import (
	"slices"
)

// AuxKind classifies a region's aux data for planning.
type AuxKind int

const (
	// AuxPlain: ordinary aux data ("-" for file-mapped regions); a committed
	// member keeps it.
	AuxPlain AuxKind = iota
	// AuxPending: a pending marker (DMFM_PENDING=...): the region was made
	// by an unfinished Create or Update, or marked before its leader was
	// deleted.
	AuxPending
	// AuxTag: a DMS_GROUP tag: the leader's, or the stale tag of a former
	// leader.
	AuxTag
)

// Member is a region that planning treats as part of a file's group: a
// member listed in the group's tag, or a pending region made for the group.
type Member struct {
	ID, Start, Length uint64
	Aux               AuxKind
	// Shared is true when another group's tag lists the region too (a
	// crash can leave a stale listing of an id that another group has
	// since been given). A shared region is kept if it fits the file and
	// otherwise only left out of the tag, never deleted or marked: it may
	// be the other group's.
	Shared bool
}

func (m Member) end() uint64 { return m.Start + m.Length }

// State is what Update knows about a group before it changes anything.
type State struct {
	// Leader is the group's leader; HasLeader is false when the leader is
	// gone and the group is being rebuilt from pending regions.
	Leader    uint64
	HasLeader bool
	// Empty is true when the group is a placeholder for a file that had no
	// extents.
	Empty bool
	// Members are the candidate members (the leader included when alive).
	Members []Member
	// Used holds the id of every region on the device, of any program: the
	// kernel hands out the lowest id not in use.
	Used []uint64
}

// Plan is the sequence of changes that brings a group in line with its
// file's ranges, in the order Update performs them. Ids of regions to be
// created are predictions (the kernel hands out the lowest free id); Update
// works with the ids it actually gets.
type Plan struct {
	// Mark lists kept members to mark pending before any region is deleted:
	// done only when the leader itself is deleted, so that a crash before
	// the new tag is written leaves every survivor recognisable.
	Mark []uint64
	// Delete lists the regions to delete, highest id first.
	Delete []uint64
	// Keep lists the members that stay, ascending.
	Keep []uint64
	// Release lists shared members that do not fit the file: they are left
	// out of the tag but not deleted.
	Release []uint64
	// Create lists the ranges that need new regions, in file order, and
	// NewIDs the ids the kernel is expected to give them.
	Create []Range
	NewIDs []uint64
	// Members is the group afterwards, ascending; GroupID its lowest id.
	Members []uint64
	GroupID uint64
	// Reset lists the members, other than the new leader, whose aux data
	// must go back to "-" once the new tag is written: stale tags first,
	// then pending markers.
	Reset []uint64
	// Empty is true when the file has no ranges: Members is then the
	// placeholder leader alone.
	Empty bool
	// ClearCounters lists the placeholder leader when the group stops being
	// empty and the placeholder is kept as a real member: what it counted
	// while the file had no extents was not the file's I/O.
	ClearCounters []uint64
}

// PlanUpdate decides how a group follows its file's current ranges.
//
// Exact (lvm2's layout): a member is kept only when a range has exactly its
// start and length (each range keeps at most one member); ranges without a
// member get a new region each.
//
// Preserve: a member is kept while it lies wholly inside one range (and does
// not overlap a member kept before it); the parts of the ranges that no kept
// member covers get new regions. A file that grows keeps its counters.
//
// With no ranges at all the group keeps its leader (or, when rebuilding,
// its lowest candidate) as an empty placeholder and drops everything else.
func PlanUpdate(s State, ranges []Range, exact bool) Plan {
	members := slices.Clone(s.Members)
	slices.SortFunc(members, func(a, b Member) int { return cmpU(a.ID, b.ID) })
	byID := make(map[uint64]Member, len(members))
	for _, m := range members {
		byID[m.ID] = m
	}
	var p Plan
	keep := map[uint64]bool{}
	switch {
	case len(ranges) == 0:
		p.Empty = true
		for _, m := range members {
			if !m.Shared {
				ph := m.ID
				if s.HasLeader {
					ph = s.Leader
				}
				keep[ph] = true
				break
			}
		}
	case exact:
		claimed := make([]bool, len(ranges))
		// Each range goes to at most one member, the first unclaimed one in
		// file order with exactly the member's start and length.
		unclaimed := make(map[Range][]int, len(ranges))
		for j, r := range ranges {
			unclaimed[r] = append(unclaimed[r], j)
		}
		// lvm2 walks the members from the highest id down.
		for i := len(members) - 1; i >= 0; i-- {
			m := members[i]
			key := Range{Start: m.Start, Length: m.Length}
			if q := unclaimed[key]; len(q) > 0 {
				claimed[q[0]] = true
				unclaimed[key] = q[1:]
				keep[m.ID] = true
			}
		}
		for j, r := range ranges {
			if !claimed[j] {
				p.Create = append(p.Create, r)
			}
		}
	default:
		ix := newRangeIndex(ranges)
		var kept []Member // by start; they never overlap
		for _, m := range members {
			if ix.containing(m.Start, m.end()) < 0 {
				continue
			}
			at, overlaps := overlapsKept(m, kept)
			if overlaps {
				continue
			}
			kept = slices.Insert(kept, at, m)
			keep[m.ID] = true
		}
		p.Create = gaps(ranges, kept)
	}

	for _, m := range members {
		switch {
		case keep[m.ID]:
			p.Keep = append(p.Keep, m.ID)
		case m.Shared:
			p.Release = append(p.Release, m.ID)
		default:
			p.Delete = append(p.Delete, m.ID)
		}
	}
	slices.Reverse(p.Delete)
	if s.HasLeader && !keep[s.Leader] {
		for _, id := range p.Keep {
			if byID[id].Aux != AuxPending && !byID[id].Shared {
				p.Mark = append(p.Mark, id)
			}
		}
	}
	p.NewIDs = PredictIDs(s.Used, p.Delete, len(p.Create))
	kinds := make(map[uint64]AuxKind, len(members))
	for _, m := range members {
		kinds[m.ID] = m.Aux
	}
	p.Members, p.GroupID, p.Reset = finish(p.Keep, p.NewIDs, kinds, p.Mark)
	if s.Empty && !p.Empty && s.HasLeader && keep[s.Leader] {
		p.ClearCounters = []uint64{s.Leader}
	}
	return p
}

// finish works out the group that results from keeping keep and creating
// created: its members (ascending), its leader (the lowest member) and the
// members other than the leader whose aux data must be reset to "-" once
// the leader's tag is written, stale tags first, then pending markers (the
// regions created, and the kept ones that were pending or marked).
func finish(keep, created []uint64, kinds map[uint64]AuxKind, marked []uint64) (members []uint64, leader uint64, reset []uint64) {
	members = slices.Sorted(slices.Values(append(slices.Clone(keep), created...)))
	if len(members) == 0 {
		return nil, 0, nil
	}
	leader = members[0]
	isMarked := make(map[uint64]bool, len(marked))
	for _, id := range marked {
		isMarked[id] = true
	}
	var stale, pending []uint64
	for _, id := range keep {
		switch {
		case id == leader:
		case isMarked[id] || kinds[id] == AuxPending:
			pending = append(pending, id)
		case kinds[id] == AuxTag:
			stale = append(stale, id)
		}
	}
	for _, id := range created {
		if id != leader {
			pending = append(pending, id)
		}
	}
	slices.Sort(stale)
	slices.Sort(pending)
	return members, leader, append(stale, pending...)
}

// PredictIDs returns the ids the kernel hands out to n new regions after the
// regions in deleted are removed from used: always the lowest free id.
func PredictIDs(used, deleted []uint64, n int) []uint64 {
	taken := map[uint64]bool{}
	for _, id := range used {
		taken[id] = true
	}
	for _, id := range deleted {
		delete(taken, id)
	}
	var out []uint64
	for id := uint64(0); len(out) < n; id++ {
		if !taken[id] {
			taken[id] = true
			out = append(out, id)
		}
	}
	return out
}

// rangeIndex finds the ranges that contain a span of sectors without
// walking every range: the ranges sorted by start, with the furthest end
// reached so far along that order. Ranges of one file normally do not
// overlap, but a file can map one extent twice (a reflink within the file),
// and the index stays right then too.
type rangeIndex struct {
	ranges  []Range
	byStart []int    // indexes into ranges, ascending start
	maxEnd  []uint64 // maxEnd[k]: the largest end of ranges[byStart[0..k]]
}

func newRangeIndex(ranges []Range) rangeIndex {
	ix := rangeIndex{ranges: ranges, byStart: make([]int, len(ranges)), maxEnd: make([]uint64, len(ranges))}
	for i := range ranges {
		ix.byStart[i] = i
	}
	slices.SortStableFunc(ix.byStart, func(a, b int) int { return cmpU(ranges[a].Start, ranges[b].Start) })
	var reach uint64
	for k, i := range ix.byStart {
		reach = max(reach, ranges[i].End())
		ix.maxEnd[k] = reach
	}
	return ix
}

// containing returns the index, in file order, of the first range that
// holds the sectors [start, end), or -1 if none does.
func (ix rangeIndex) containing(start, end uint64) int {
	// The ranges that start at or before start, walked back from the last
	// one while some range among them still reaches end.
	k, _ := slices.BinarySearchFunc(ix.byStart, start+1, func(i int, target uint64) int {
		return cmpU(ix.ranges[i].Start, target)
	})
	best := -1
	for k--; k >= 0 && ix.maxEnd[k] >= end; k-- {
		if i := ix.byStart[k]; ix.ranges[i].End() >= end && (best < 0 || i < best) {
			best = i
		}
	}
	return best
}

// overlapsKept reports whether m overlaps a member of kept (sorted by start,
// none overlapping another, so their ends ascend too) and where m would go
// in that order.
func overlapsKept(m Member, kept []Member) (at int, overlaps bool) {
	// kept[:at] start before m ends; of those only the last can reach past
	// m's start.
	at, _ = slices.BinarySearchFunc(kept, m.end(), func(k Member, target uint64) int {
		if k.Start < target {
			return -1
		}
		return 1
	})
	return at, at > 0 && kept[at-1].end() > m.Start
}

// gaps returns the parts of each range, in range order, that no kept member
// covers. kept is sorted by start and its members do not overlap.
func gaps(ranges []Range, kept []Member) []Range {
	var out []Range
	for _, r := range ranges {
		pos := r.Start
		// The first kept member that ends after the range starts.
		i, _ := slices.BinarySearchFunc(kept, r.Start, func(k Member, target uint64) int {
			if k.end() <= target {
				return -1
			}
			return 1
		})
		for ; i < len(kept) && kept[i].Start < r.End(); i++ {
			k := kept[i]
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

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
