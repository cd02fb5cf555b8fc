package main

import (
	"fmt"
	"slices"

	"github.com/dmfm/dmfm/lib/dmstats"
)

// devState is one device's regions and groups as one listing shows them.
type devState struct {
	dev     device
	st      *dmstats.Stats
	regions []dmstats.Region // every program's, ascending id
	index   map[uint64]int   // region id -> index in regions
	groups  []dmstats.Group  // valid groups, ascending id
	groupOf map[uint64]int   // region id -> index in groups
	warns   []string         // problems met reading the group tags
}

// loadState lists the regions of d (every program: a group's members may be
// of any program) and reads the groups they form.
func loadState(d device, st *dmstats.Stats) (*devState, error) {
	regions, err := st.List("")
	if err != nil {
		return nil, fmt.Errorf("list regions of %s: %w", d.Name, err)
	}
	s := &devState{dev: d, st: st, regions: regions, index: make(map[uint64]int, len(regions))}
	for i, r := range regions {
		s.index[r.ID] = i
	}
	s.groups, s.warns = dmstats.Groups(regions)
	s.groupOf = make(map[uint64]int, len(regions))
	for gi, g := range s.groups {
		for _, m := range g.Members {
			s.groupOf[m] = gi
		}
	}
	return s, nil
}

// region returns region id, if it exists.
func (s *devState) region(id uint64) (dmstats.Region, bool) {
	i, ok := s.index[id]
	if !ok {
		return dmstats.Region{}, false
	}
	return s.regions[i], true
}

// group returns the group with id, if there is one.
func (s *devState) group(id uint64) (dmstats.Group, bool) {
	gi, ok := s.groupOf[id]
	if !ok || s.groups[gi].ID != id {
		return dmstats.Group{}, false
	}
	return s.groups[gi], true
}

// groupOfRegion returns the group region id belongs to, if any.
func (s *devState) groupOfRegion(id uint64) (dmstats.Group, bool) {
	gi, ok := s.groupOf[id]
	if !ok {
		return dmstats.Group{}, false
	}
	return s.groups[gi], true
}

// needGroup returns group id or an error that says what id is instead.
func (s *devState) needGroup(id uint64) (dmstats.Group, error) {
	if g, ok := s.group(id); ok {
		return g, nil
	}
	r, exists := s.region(id)
	switch {
	case !exists:
		return dmstats.Group{}, fmt.Errorf("group %d does not exist on %s", id, s.dev.Name)
	case s.inGroup(id):
		g, _ := s.groupOfRegion(id)
		return dmstats.Group{}, fmt.Errorf("%d on %s is not a group id: region %d is a member of group %d", id, s.dev.Name, id, g.ID)
	}
	if _, tagged, _ := dmstats.ParseGroupTag(r.AuxData); tagged {
		return dmstats.Group{}, fmt.Errorf("region %d on %s carries an invalid group tag %q", id, s.dev.Name, r.AuxData)
	}
	return dmstats.Group{}, fmt.Errorf("%d on %s is not a group id: region %d is a plain region, in no group", id, s.dev.Name, id)
}

func (s *devState) inGroup(id uint64) bool {
	_, ok := s.groupOf[id]
	return ok
}

// ofProgram returns the regions of program p ("" for all).
func (s *devState) ofProgram(p string) []dmstats.Region {
	n := 0
	for i := range s.regions {
		if s.regions[i].ProgramID == p {
			n++
		}
	}
	if p == "" || n == len(s.regions) {
		return s.regions
	}
	out := make([]dmstats.Region, 0, n)
	for _, r := range s.regions {
		if r.ProgramID == p {
			out = append(out, r)
		}
	}
	return out
}

// deleteRegions deletes the regions in del (which may hold duplicates)
// and keeps every group that survives true: a group whose leader stays but
// loses members gets its tag rewritten first, without them. Regions go
// highest id first, so that a group's leader, and with it its tag, goes
// last.
func (s *devState) deleteRegions(del []uint64, f dmstats.TagFormat, explicit bool) error {
	gone := make(map[uint64]bool, len(del))
	for _, id := range del {
		gone[id] = true
	}
	for _, g := range s.groups {
		if gone[g.ID] {
			continue
		}
		var keep []uint64
		for _, m := range g.Members {
			if !gone[m] {
				keep = append(keep, m)
			}
		}
		if len(keep) == len(g.Members) {
			continue
		}
		ng := g
		ng.Members = keep
		if err := s.writeTag(ng, f, explicit); err != nil {
			return err
		}
	}
	ids := slices.Sorted(func(yield func(uint64) bool) {
		for id := range gone {
			if !yield(id) {
				return
			}
		}
	})
	slices.Reverse(ids)
	for _, id := range ids {
		if err := s.st.Delete(id); err != nil {
			return fmt.Errorf("delete region %d on %s: %w", id, s.dev.Name, err)
		}
	}
	return nil
}

// writeTag writes g's tag to its leader: in format f when the user chose
// one, else in the format the group already has.
func (s *devState) writeTag(g dmstats.Group, f dmstats.TagFormat, explicit bool) error {
	if !explicit {
		f = g.Format
	}
	tag, err := dmstats.FormatGroupTag(g, f)
	if err != nil {
		return fmt.Errorf("group %d on %s: %w", g.ID, s.dev.Name, err)
	}
	if err := s.st.SetAux(g.ID, tag); err != nil {
		return fmt.Errorf("group %d on %s: %w", g.ID, s.dev.Name, err)
	}
	return nil
}
