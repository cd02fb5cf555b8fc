package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/dmfm/dmfm/lib/dmstats"
	"github.com/dmfm/dmfm/lib/filemap"
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
	// scratch are the scratch regions of bulk deletes (dmstats.ParseScratch),
	// kept out of regions: no command shows or selects them.
	scratch []dmstats.Region
}

// loadState lists the regions of d (every program: a group's members may be
// of any program) and reads the groups they form.
func loadState(d device, st *dmstats.Stats) (*devState, error) {
	regions, err := st.List("")
	if err != nil {
		return nil, fmt.Errorf("list regions of %s: %w", d.Name, err)
	}
	s := &devState{dev: d, st: st, index: make(map[uint64]int, len(regions))}
	for _, r := range regions {
		if dmstats.IsScratch(r) {
			s.scratch = append(s.scratch, r)
			continue
		}
		s.index[r.ID] = len(s.regions)
		s.regions = append(s.regions, r)
	}
	s.groups, s.warns = dmstats.GroupsClaiming(regions, filemap.Claims)
	s.groupOf = make(map[uint64]int, len(regions))
	for gi, g := range s.groups {
		for _, m := range g.Members {
			s.groupOf[m] = gi
		}
	}
	return s, nil
}

// removeStaleScratch deletes the scratch regions left by dmfm processes
// that died (dmstats.StaleScratch), so that their ids are free again.
func (s *devState) removeStaleScratch() error {
	if _, err := s.st.RemoveStaleScratch(s.scratch); err != nil {
		return fmt.Errorf("%s: %w", s.dev.Name, err)
	}
	s.scratch = nil
	return nil
}

// removeStaleScratch lists device d's regions and deletes the scratch
// regions of dmfm processes that died; commands that create regions call
// it first, so that the new regions get the ids dmstats would give them. It
// lists every program's regions: the session's list cache then serves the
// command's own listing.
func removeStaleScratch(d device, st *dmstats.Stats) error {
	regions, err := st.List("")
	if err != nil {
		return fmt.Errorf("list regions of %s: %w", d.Name, err)
	}
	if _, err := st.RemoveStaleScratch(regions); err != nil {
		return fmt.Errorf("%s: %w", d.Name, err)
	}
	return nil
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
// loses members gets its tag rewritten first, without them. The leaders of
// groups go last, so that a group's tag outlives its members. Other regions
// go lowest id first: the kernel keeps a device's regions in a list sorted
// by id and walks it from the start to find the one to delete, so this
// order costs one step per delete where the reverse costs the whole list.
// Many regions are deleted over several control handles at once (workers,
// when not nil, gives handle w >= 1; see parallelDo). When ctx is done or
// a delete fails, no further region is deleted and every group whose
// members were going away with it gets its tag rewritten to the members
// left, so that no tag names a deleted region.
func (s *devState) deleteRegions(ctx context.Context, del []uint64, f dmstats.TagFormat, explicit bool, workers func(w int) (*dmstats.Stats, error), parallel int) error {
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
	var members, leaders []uint64
	for id := range gone {
		if _, ok := s.group(id); ok {
			leaders = append(leaders, id)
		} else {
			members = append(members, id)
		}
	}
	slices.Sort(members)
	slices.Sort(leaders)
	var mu sync.Mutex
	deleted := make(map[uint64]bool, len(gone))
	del1 := func(st *dmstats.Stats, id uint64) error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("stopped: %w", context.Cause(ctx))
		}
		if err := st.Delete(id); err != nil {
			return fmt.Errorf("delete region %d on %s: %w", id, s.dev.Name, err)
		}
		mu.Lock()
		deleted[id] = true
		mu.Unlock()
		return nil
	}
	if err := s.deleteMany(members, del1, workers, parallel); err != nil {
		return errors.Join(err, s.keepGroupsTrue(gone, deleted, f, explicit))
	}
	for _, id := range leaders {
		if err := del1(s.st, id); err != nil {
			return err
		}
	}
	return nil
}

// keepGroupsTrue rewrites the tag of every group that was to be deleted
// (its leader is in gone) and has lost members (deleted) to list only the
// members left; the leader, deleted last, is still there.
func (s *devState) keepGroupsTrue(gone, deleted map[uint64]bool, f dmstats.TagFormat, explicit bool) error {
	var errs []error
	for _, g := range s.groups {
		if !gone[g.ID] || deleted[g.ID] {
			continue
		}
		keep := slices.DeleteFunc(slices.Clone(g.Members), func(id uint64) bool { return deleted[id] })
		if len(keep) == len(g.Members) {
			continue
		}
		ng := g
		ng.Members = keep
		if err := s.writeTag(ng, f, explicit); err != nil {
			errs = append(errs, fmt.Errorf("group %d now names deleted regions: %w", g.ID, err))
		}
	}
	return errors.Join(errs...)
}

// deleteMany deletes ids (ascending, none of them a scratch region) with
// del1, in parallel for many. When a scratch region pays for itself (see
// dmstats.DeleteScratchGain) the lowest id goes first, alone, so that the
// scratch region takes its place at the head of the kernel's list; the
// scratch region is deleted at the end whatever happens. A scratch region that cannot be made
// only costs speed.
func (s *devState) deleteMany(ids []uint64, del1 func(*dmstats.Stats, uint64) error, workers func(w int) (*dmstats.Stats, error), parallel int) (err error) {
	if len(ids) > 1 && dmstats.DeleteScratchGain(append(slices.Clone(s.regions), s.scratch...), ids) >= dmstats.ScratchMinGain {
		if err := del1(s.st, ids[0]); err != nil {
			return err
		}
		ids = ids[1:]
		sc, _ := s.st.MakeScratch()
		defer func() {
			if derr := sc.Drop(); derr != nil {
				err = errors.Join(err, fmt.Errorf("%s: %w", s.dev.Name, derr))
			}
		}()
	}
	return parallelDo(s.st, workers, parallel, len(ids), func(st *dmstats.Stats, i int) error {
		return del1(st, ids[i])
	})
}

// minParallel is the number of messages from which a command sends them
// over several control handles at once.
const minParallel = 256

// parallelDo runs job(st, i) for i in 0..n-1, in order on handle first, or,
// for n >= minParallel, on up to parallel handles at once (first, then
// workers(1), workers(2), ...): each dm.Client runs one ioctl at a time, and
// parallel ioctls overlap their entry, copies and the parsing of their
// replies. Jobs are taken in order. The first error stops the others and is
// returned, with any other.
func parallelDo(first *dmstats.Stats, workers func(w int) (*dmstats.Stats, error), parallel, n int, job func(st *dmstats.Stats, i int) error) error {
	handles := []*dmstats.Stats{first}
	if workers != nil && n >= minParallel {
		for w := 1; w < parallel; w++ {
			h, err := workers(w)
			if err != nil {
				break // fewer workers, then
			}
			handles = append(handles, h)
		}
	}
	if len(handles) == 1 {
		for i := 0; i < n; i++ {
			if err := job(first, i); err != nil {
				return err
			}
		}
		return nil
	}
	var next atomic.Int64
	errs := make([]error, len(handles))
	var wg sync.WaitGroup
	for w, h := range handles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if err := job(h, int(i)); err != nil {
					errs[w] = err
					next.Store(int64(n)) // stop the others
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
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
