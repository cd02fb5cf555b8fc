package filemap

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/dmfm/dmfm/lib/dmstats"
)

// Update brings group groupID in line with f's current extents (see
// UpdateOptions for the two strategies) and returns what it did; the group's
// id can change (Result.GroupChanged). It first takes over whatever an
// interrupted Create or Update of the group left behind (see doc.go), so it
// also converges after a crash. A file with no extents leaves the group as an
// empty placeholder (Result.Empty). If a message fails half-way, Update runs
// a second pass to leave a correct group; it returns the second pass's Result
// (Repaired set) together with the first error.
func Update(st *dmstats.Stats, groupID uint64, f *os.File, o UpdateOptions) (Result, error) {
	b, err := Bind(f)
	if err != nil {
		return Result{}, err
	}
	ranges, err := Ranges(f)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", f.Name(), err)
	}
	unlock, err := lockDevice(b)
	if err != nil {
		return Result{}, err
	}
	defer unlock()

	u := &updater{st: st, want: groupID, ranges: ranges, o: o}
	res, err := u.run()
	if err == nil {
		return res, nil
	}
	err = fmt.Errorf("update group %d of %s on %s: %w", groupID, f.Name(), b.DMName, err)
	if !u.touched {
		return Result{}, err
	}
	// Something changed before the failure: a second pass picks up the
	// pieces exactly as it would after a crash.
	again := &updater{st: st, want: u.anchor, ranges: ranges, o: o}
	res, rerr := again.run()
	if rerr != nil {
		return Result{}, errors.Join(err, fmt.Errorf("repair failed: %w", rerr))
	}
	res.OldGroupID = groupID
	res.GroupChanged = res.GroupID != groupID
	res.Repaired = true
	return res, err
}

type updater struct {
	st      *dmstats.Stats
	want    uint64
	ranges  []Range
	o       UpdateOptions
	touched bool   // a message that changes state was sent
	anchor  uint64 // the group id pending markers of this pass name
}

func (u *updater) run() (Result, error) {
	u.anchor = u.want
	regions, err := listLive(u.st)
	if err != nil {
		return Result{}, err
	}
	v, err := resolve(regions, u.want)
	if err != nil {
		return Result{}, err
	}
	u.anchor = v.id
	tagWith := func(members []uint64, empty bool, planned []Planned) (string, error) {
		return dmstats.FormatGroupTag(dmstats.Group{
			ID: members[0], Alias: v.alias, Members: members,
			UserData: WithIntent(planned, EncodeUserData(v.user, empty)),
		}, u.o.Format)
	}
	tagFor := func(members []uint64, empty bool) (string, error) { return tagWith(members, empty, nil) }
	if _, err := tagFor([]uint64{0}, true); err != nil {
		return Result{}, err
	}

	state := State{Leader: v.id, HasLeader: v.hasLeader, Empty: v.empty, Used: regionIDs(regions)}
	byID := map[uint64]dmstats.Region{}
	for _, r := range v.members {
		state.Members = append(state.Members, Member{ID: r.ID, Start: r.Start, Length: r.Length, Aux: auxKind(r.AuxData), Shared: v.shared[r.ID]})
		byID[r.ID] = r
	}
	plan := PlanUpdate(state, u.ranges, u.o.Exact)

	marker := Pending{Anchor: v.id, Alias: v.alias, UserData: v.user}.String()
	for _, id := range plan.Mark {
		u.touched = true
		if err := u.st.SetAux(id, marker); err != nil {
			return Result{}, fmt.Errorf("mark region %d pending: %w", id, err)
		}
	}
	if err := u.deleteRegions(regions, plan.Delete); err != nil {
		return Result{}, err
	}
	base := dmstats.CreateOptions{
		ProgramID: programOf(v.template), Precise: v.template.Precise, Bounds: v.template.BoundDurations(),
	}
	// While the leader stays the leader, the regions to make are announced
	// in its tag (their predicted ids, and an intent naming their ranges)
	// and made with plain aux data, one message each; otherwise, and from
	// the first id the kernel did not give as predicted, each is made with
	// a pending marker, to be reset after the tag is written (doc.go).
	intent := v.hasLeader && len(plan.Create) > 0 && len(plan.Mark) == 0 &&
		plan.GroupID == v.id && slices.Contains(plan.Keep, v.id)
	if intent {
		t, err := tagWith(plan.Members, false, zipPlanned(plan.NewIDs, plan.Create))
		if err != nil {
			return Result{}, err
		}
		u.touched = true
		if err := u.st.SetAux(v.id, t); err != nil {
			return Result{}, fmt.Errorf("announce new regions in the tag of region %d: %w", v.id, err)
		}
		r := byID[v.id]
		r.AuxData = t
		byID[v.id] = r
	}
	var created []uint64
	plain := map[uint64]bool{} // created regions made without a marker
	for i, r := range plan.Create {
		u.touched = true
		o := base
		o.Start, o.Length, o.AuxData = r.Start, r.Length, marker
		if intent {
			o.AuxData = ""
		}
		id, err := u.st.Create(o)
		if err != nil {
			return Result{}, fmt.Errorf("create region %s: %w", r, err)
		}
		created = append(created, id)
		byID[id] = dmstats.Region{ID: id, Start: r.Start, Length: r.Length, AuxData: o.AuxData}
		if !intent {
			continue
		}
		if id == plan.NewIDs[i] {
			plain[id] = true
			continue
		}
		// Another tool took the predicted id: this region is not in the
		// tag's intent, so it gets a marker at once, and so do the rest.
		intent = false
		if err := u.st.SetAux(id, marker); err != nil {
			return Result{}, fmt.Errorf("mark region %d pending: %w", id, err)
		}
		byID[id] = dmstats.Region{ID: id, Start: r.Start, Length: r.Length, AuxData: marker}
	}

	kinds := map[uint64]AuxKind{}
	for _, m := range state.Members {
		kinds[m.ID] = m.Aux
	}
	members, leader, reset := finish(plan.Keep, created, kinds, plan.Mark)
	reset = slices.DeleteFunc(reset, func(id uint64) bool { return plain[id] })
	if len(members) == 0 {
		return Result{}, fmt.Errorf("group %d: nothing left to keep: %w", u.want, ErrNoGroup)
	}
	tag, err := tagFor(members, plan.Empty)
	if err != nil {
		return Result{}, err
	}
	if byID[leader].AuxData != tag || slices.Contains(plan.Mark, leader) {
		u.touched = true
		if err := u.st.SetAux(leader, tag); err != nil {
			return Result{}, fmt.Errorf("write group tag on region %d: %w", leader, err)
		}
	}
	for _, id := range reset {
		u.touched = true
		if err := u.st.SetAux(id, ""); err != nil {
			return Result{}, fmt.Errorf("reset aux data of region %d: %w", id, err)
		}
	}
	for _, id := range plan.ClearCounters {
		u.touched = true
		if err := u.st.Clear(id); err != nil {
			return Result{}, fmt.Errorf("clear placeholder region %d: %w", id, err)
		}
	}

	res := Result{
		GroupID: leader, OldGroupID: u.want, GroupChanged: leader != u.want,
		Kept: len(plan.Keep), Added: len(created), Removed: len(plan.Delete), Empty: plan.Empty,
	}
	if plan.Empty {
		res.Kept = 0
	} else {
		res.Regions = fileOrder(members, byID, u.ranges)
	}
	return res, nil
}

// deleteRegions deletes ids (a listing's regions) in ascending order but
// the lowest last: when the leader goes it goes last, so that its tag
// lists the others while they are deleted (the order lvm2's highest first
// gives). Ascending order finds each region near the head of the kernel's
// list; when many go, a scratch region made after the first delete stops
// the rescan every delete does (see dmstats.DeleteScratchGain) and is
// deleted before the last.
func (u *updater) deleteRegions(regions []dmstats.Region, ids []uint64) error {
	if len(ids) == 0 {
		return nil
	}
	order := slices.Sorted(slices.Values(ids))
	last, order := order[0], order[1:]
	del := func(id uint64) error {
		u.touched = true
		if err := u.st.Delete(id); err != nil {
			return fmt.Errorf("delete region %d: %w", id, err)
		}
		return nil
	}
	var sc *dmstats.Scratch
	if len(order) > 1 && dmstats.DeleteScratchGain(regions, order) >= scratchMinGain {
		if err := del(order[0]); err != nil {
			return err
		}
		order = order[1:]
		sc, _ = u.st.MakeScratch()
	}
	for _, id := range order {
		if err := del(id); err != nil {
			return errors.Join(err, sc.Drop())
		}
	}
	if err := sc.Drop(); err != nil {
		return err
	}
	return del(last)
}

// view is what resolve found of a group in a listing.
type view struct {
	id        uint64 // the leader, or the anchor of the pending regions when rebuilding
	hasLeader bool
	alias     string
	user      string
	empty     bool
	members   []dmstats.Region // candidate members, ascending id
	shared    map[uint64]bool  // candidates that another group's tag lists too
	template  dmstats.Region   // where new regions take their program id, precision and histogram
}

// resolve finds group want in a listing, together with what interrupted
// operations left of it. In order:
//
//   - want leads a valid group: that group, unless a valid group with a
//     lower leader also lists want (a regroup whose old tag was not yet
//     reset): then that one;
//   - want carries a tag that lists it, but not first (lvm2's bug): that
//     group, to be regrouped under its lowest member;
//   - want is listed by a valid group: that group (its leader changed);
//   - regions pending for want are listed by a valid group: that group (the
//     old leader was deleted after the new tag was written);
//   - regions pending for want exist but no group lists them: the group is
//     rebuilt from them (the leader was deleted before the new tag was
//     written);
//   - otherwise ErrNoGroup.
//
// The candidate members are the group's existing members plus every region
// pending for want or for the group found. Candidates that another group
// lists too are marked shared (see Member).
func resolve(regions []dmstats.Region, want uint64) (view, error) {
	byID := map[uint64]dmstats.Region{}
	for _, r := range regions {
		byID[r.ID] = r
	}
	groups := map[uint64]dmstats.Group{}
	listedBy := map[uint64][]uint64{} // region -> leaders of other groups that list it
	for _, r := range regions {
		g, ok := validTag(r)
		if !ok {
			continue
		}
		// An id an interrupted pass announced but another tool got is not
		// the group's (see Claims).
		if claimed := Claims(g); claimed != nil {
			g.Members = slices.DeleteFunc(slices.Clone(g.Members), func(m uint64) bool {
				r, exists := byID[m]
				return exists && !claimed(r)
			})
		}
		groups[r.ID] = g
		for _, m := range g.Members[1:] {
			if _, exists := byID[m]; exists {
				listedBy[m] = append(listedBy[m], r.ID)
			}
		}
	}
	pendingFor := func(anchor uint64) []dmstats.Region {
		var out []dmstats.Region
		for _, r := range regions {
			if p, ok := ParsePending(r.AuxData); ok && p.Anchor == anchor {
				out = append(out, r)
			}
		}
		return out
	}
	lowest := func(ids []uint64) uint64 { return slices.Min(ids) }

	var v view
	found := false
	if _, ok := groups[want]; ok {
		v.id, found = want, true
		if l := listedBy[want]; len(l) > 0 && lowest(l) < want {
			v.id = lowest(l)
		}
	} else if g, ok := brokenTag(byID[want], want); ok {
		// A tag that lists its carrier but not first (lvm2 gives a new
		// region a free id below the leader and writes such tags): take the
		// group as it stands; the new tag will be led by its lowest member.
		groups[want] = g
		v.id, found = want, true
	} else if l := listedBy[want]; len(l) > 0 {
		v.id, found = lowest(l), true
	} else {
		for _, r := range pendingFor(want) {
			if l := listedBy[r.ID]; len(l) > 0 {
				v.id, found = lowest(l), true
				break
			}
		}
	}

	seen := map[uint64]bool{}
	add := func(r dmstats.Region) {
		if !seen[r.ID] {
			seen[r.ID] = true
			v.members = append(v.members, r)
		}
	}
	// Pending regions belong to this group unless another group lists them.
	addPending := func(anchor uint64) {
		for _, r := range pendingFor(anchor) {
			if l := listedBy[r.ID]; len(l) == 0 || slices.Contains(l, v.id) {
				add(r)
			}
		}
	}
	if found {
		g := groups[v.id]
		v.hasLeader = true
		v.alias = g.Alias
		v.user, v.empty = DecodeUserData(g.UserData)
		v.template = byID[v.id]
		for _, m := range g.Members {
			if r, ok := byID[m]; ok {
				add(r)
			}
		}
		addPending(want)
		addPending(v.id)
	} else {
		pend := pendingFor(want)
		if len(pend) == 0 {
			return view{}, fmt.Errorf("group %d: %w", want, ErrNoGroup)
		}
		p, _ := ParsePending(pend[0].AuxData)
		v.id, v.alias, v.user = want, p.Alias, p.UserData
		v.template = pend[0]
		addPending(want)
	}
	slices.SortFunc(v.members, func(a, b dmstats.Region) int { return cmpU(a.ID, b.ID) })
	// A candidate is shared when a group other than ours lists it; the
	// stale tag of one of our own candidates (a former leader) does not
	// count.
	v.shared = map[uint64]bool{}
	for _, r := range v.members {
		for _, l := range listedBy[r.ID] {
			if l != v.id && !seen[l] {
				v.shared[r.ID] = true
			}
		}
	}
	return v, nil
}

// brokenTag returns the group described by r's tag when the tag lists r
// but not as its first member (which makes it invalid for lvm2 and for
// Groups).
func brokenTag(r dmstats.Region, id uint64) (dmstats.Group, bool) {
	if r.ID != id {
		return dmstats.Group{}, false
	}
	g, ok, err := dmstats.ParseGroupTag(r.AuxData)
	if !ok || err != nil || len(g.Members) == 0 || g.Members[0] == id || !slices.Contains(g.Members, id) {
		return dmstats.Group{}, false
	}
	return g, true
}

func auxKind(aux string) AuxKind {
	if _, ok := ParsePending(aux); ok {
		return AuxPending
	}
	if _, ok, _ := dmstats.ParseGroupTag(aux); ok {
		return AuxTag
	}
	return AuxPlain
}

func programOf(r dmstats.Region) string {
	if r.ProgramID == "-" {
		return ""
	}
	return r.ProgramID
}

// fileOrder sorts region ids by where they map the file: by the range that
// holds them, then by start.
func fileOrder(ids []uint64, byID map[uint64]dmstats.Region, ranges []Range) []uint64 {
	ix := newRangeIndex(ranges)
	type ranked struct {
		id    uint64
		rng   int
		start uint64
	}
	rs := make([]ranked, len(ids))
	for n, id := range ids {
		r := byID[id]
		i := ix.containing(r.Start, r.Start+1)
		if i < 0 {
			i = len(ranges)
		}
		rs[n] = ranked{id: id, rng: i, start: r.Start}
	}
	slices.SortStableFunc(rs, func(a, b ranked) int {
		if a.rng != b.rng {
			return a.rng - b.rng
		}
		return cmpU(a.start, b.start)
	})
	out := make([]uint64, len(rs))
	for n, r := range rs {
		out[n] = r.id
	}
	return out
}
