package filemap

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/dmfm/dmfm/lib/dmstats"
)

// Options tell Create how to map a file.
type Options struct {
	// Alias names the group; "" means the base name of the file's canonical
	// path (symbolic links resolved).
	Alias string
	// NoGroup creates independent regions and no group (Alias must be "").
	NoGroup bool
	// Precise and Bounds are passed to every region (see
	// dmstats.CreateOptions).
	Precise bool
	Bounds  []time.Duration
	// ProgramID is given to every region; "" means dmstats.DefaultProgramID.
	ProgramID string
	// UserData is kept in the group tag after the '#'.
	UserData string
	// Format is the DMS_GROUP tag generation to write.
	Format dmstats.TagFormat
}

// Result tells what Create or Update did.
type Result struct {
	// GroupID is the group's id afterwards (0 with Options.NoGroup; check
	// Regions then).
	GroupID uint64
	// Regions are the regions that map the file, in file order. It is empty
	// for a group whose file has no extents (the group is then an empty
	// placeholder).
	Regions []uint64
	// OldGroupID is the group id Update was given; GroupChanged is true
	// when the group's id is no longer that one.
	OldGroupID   uint64
	GroupChanged bool
	// Kept, Added and Removed count the regions Update kept, created and
	// deleted (Create only adds).
	Kept, Added, Removed int
	// Empty is true when the file has no extents and the group is kept as a
	// placeholder.
	Empty bool
	// Repaired is set when Update failed half-way and a second pass brought
	// the group back in line; Update then returns this Result together with
	// the error of the first pass.
	Repaired bool
}

// UpdateOptions tell Update how to follow a file.
type UpdateOptions struct {
	// Exact keeps lvm2's layout: one region per extent, a region kept only
	// while an extent has exactly its range. Otherwise regions that still
	// lie inside the file are kept (their counters survive the file's
	// growth) and only the uncovered parts get new regions.
	Exact bool
	// Format is the DMS_GROUP tag generation to write.
	Format dmstats.TagFormat
}

// Errors wrapped by Create and Update.
var (
	// ErrNoExtents: the file has no allocated extents to map.
	ErrNoExtents = errors.New("no allocated extents")
	// ErrNoGroup: the group does not exist (nor anything left of it by an
	// interrupted update).
	ErrNoGroup = errors.New("group does not exist")
)

// Create maps f (opened from path, as typed by the user) to dm-stats
// regions on its device, one region of one area per range, and groups them
// unless o.NoGroup. st must manage the device Bind(f) names. On failure
// every region made so far is deleted again.
func Create(st *dmstats.Stats, f *os.File, path string, o Options) (Result, error) {
	if path == "" {
		path = f.Name()
	}
	if o.NoGroup && o.Alias != "" {
		return Result{}, fmt.Errorf("%s: an alias needs a group (alias %q with no group)", path, o.Alias)
	}
	b, err := Bind(f)
	if err != nil {
		return Result{}, err
	}
	ranges, err := Ranges(f)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", path, err)
	}
	if len(ranges) == 0 {
		return Result{}, fmt.Errorf("cannot map %s: %w", path, ErrNoExtents)
	}
	alias := o.Alias
	if !o.NoGroup && alias == "" {
		abs, err := filepath.Abs(path)
		if err == nil {
			abs, err = filepath.EvalSymlinks(abs)
		}
		if err != nil {
			return Result{}, fmt.Errorf("%s: canonical path: %w", path, err)
		}
		alias = filepath.Base(abs)
	}
	programID := o.ProgramID
	if programID == "" {
		programID = dmstats.DefaultProgramID
	}
	base := dmstats.CreateOptions{Precise: o.Precise, Bounds: o.Bounds, ProgramID: programID}

	unlock, err := lockDevice(b)
	if err != nil {
		return Result{}, err
	}
	defer unlock()

	var res Result
	if o.NoGroup {
		res, err = createRegions(st, ranges, base)
	} else {
		res, err = createGroup(st, ranges, base, alias, o.UserData, o.Format)
	}
	if err != nil {
		return Result{}, fmt.Errorf("map %s on %s: %w", path, b.DMName, err)
	}
	return res, nil
}

// creation remembers the regions made so far, to undo them.
type creation struct {
	st  *dmstats.Stats
	ids []uint64
}

func (c *creation) create(o dmstats.CreateOptions, r Range, aux string) (uint64, error) {
	o.Start, o.Length, o.AuxData = r.Start, r.Length, aux
	id, err := c.st.Create(o)
	if err != nil {
		return 0, fmt.Errorf("create region %s: %w", r, err)
	}
	c.ids = append(c.ids, id)
	return id, nil
}

// undo deletes the regions made, highest id first (a group's leader, the
// lowest, goes last), and joins any failure to err.
func (c *creation) undo(err error) error {
	ids := slices.Sorted(slices.Values(c.ids))
	slices.Reverse(ids)
	var errs []error
	for _, id := range ids {
		if derr := c.st.Delete(id); derr != nil {
			errs = append(errs, fmt.Errorf("delete region %d: %w", id, derr))
		}
	}
	if len(errs) > 0 {
		return errors.Join(err, fmt.Errorf("cleanup failed, regions may be left behind: %w", errors.Join(errs...)))
	}
	return err
}

func createRegions(st *dmstats.Stats, ranges []Range, base dmstats.CreateOptions) (Result, error) {
	c := &creation{st: st}
	for _, r := range ranges {
		if _, err := c.create(base, r, ""); err != nil {
			return Result{}, c.undo(err)
		}
	}
	return Result{Regions: c.ids, Added: len(c.ids)}, nil
}

// createGroup makes the group's regions and their tag. The fast way
// (createWithIntent) needs the kernel to hand out the ids it predicts; when
// another tool takes one meanwhile it undoes its regions and tries once
// more, then falls back to marking each region pending (createWithMarkers),
// which does not depend on the prediction. See doc.go for both.
func createGroup(st *dmstats.Stats, ranges []Range, base dmstats.CreateOptions, alias, user string, f dmstats.TagFormat) (Result, error) {
	tag := func(ids []uint64, planned []Planned) (string, error) {
		ids = slices.Sorted(slices.Values(ids))
		return dmstats.FormatGroupTag(dmstats.Group{ID: ids[0], Alias: alias, Members: ids, UserData: WithIntent(planned, user)}, f)
	}
	// Refuse an alias the format cannot carry before touching anything.
	if _, err := tag([]uint64{0}, nil); err != nil {
		return Result{}, err
	}
	for range 2 {
		res, mispredicted, err := createWithIntent(st, ranges, base, tag)
		if !mispredicted {
			return res, err
		}
	}
	return createWithMarkers(st, ranges, base, alias, user, tag)
}

// createWithIntent makes the leader with a tag that already lists the ids
// the kernel will give the other regions and records, as the tag's intent,
// the range each of them is for; then it makes them with plain aux data and
// writes the final tag. That is one message per region and two more, as for
// lvm2. If an id differs from the prediction it deletes what it made and
// reports mispredicted.
//
// For a large file a scratch region (see dmstats) takes the second id right
// after the leader, so that the kernel's rescan for a precise region, which
// every @stats_create does, stops there instead of running over the regions
// made so far; the second region is made last, once the scratch region is
// gone, and gets its id back. The ids, and so the intent, are the same.
func createWithIntent(st *dmstats.Stats, ranges []Range, base dmstats.CreateOptions, tag func([]uint64, []Planned) (string, error)) (res Result, mispredicted bool, err error) {
	regions, err := listLive(st)
	if err != nil {
		return Result{}, false, err
	}
	ids := PredictIDs(regionIDs(regions), nil, len(ranges))
	leaderTag, err := tag(ids, zipPlanned(ids[1:], ranges[1:]))
	if err != nil {
		return Result{}, false, err
	}
	c := &creation{st: st}
	var sc *dmstats.Scratch
	defer func() {
		if serr := sc.Drop(); serr != nil {
			err = errors.Join(err, serr)
		}
	}()
	// mk makes the regions of ranges[from:to] in order, checking each id.
	mk := func(from, to int) (ok bool, err error) {
		for i := from; i < to; i++ {
			aux := ""
			if i == 0 {
				aux = leaderTag
			}
			id, err := c.create(base, ranges[i], aux)
			if err != nil {
				return false, c.undo(err)
			}
			if id != ids[i] {
				return false, c.undo(nil)
			}
		}
		return true, nil
	}
	n := len(ranges)
	from, to := 0, n // the regions still to make, in file order
	// Precise regions stop the kernel's rescans themselves.
	if n >= 3 && !base.Precise && createScratchGain(regions, ids) >= scratchMinGain {
		if ok, err := mk(0, 1); !ok {
			return Result{}, err == nil, err
		}
		from = 1
		var made bool
		if sc, made = st.MakeScratch(); made {
			if sc.ID() == ids[1] {
				if ok, err := mk(2, n); !ok {
					return Result{}, err == nil, err
				}
				to = 2
			}
			// Either way it goes now: before the second region, or because
			// another tool took the id (the next create then misses).
			if err := sc.Drop(); err != nil {
				return Result{}, false, c.undo(err)
			}
		}
	}
	if ok, err := mk(from, to); !ok {
		return Result{}, err == nil, err
	}
	if len(ids) > 1 {
		if err := writeTag(st, ids[0], func(m []uint64) (string, error) { return tag(m, nil) }, ids); err != nil {
			return Result{}, false, c.undo(err)
		}
	}
	return Result{GroupID: ids[0], Regions: ids, Added: len(c.ids)}, false, nil
}

// createWithMarkers makes the leader first, carrying its tag from birth,
// then the other regions with a pending marker; then it writes the full tag
// and resets the markers.
func createWithMarkers(st *dmstats.Stats, ranges []Range, base dmstats.CreateOptions, alias, user string, tagWith func([]uint64, []Planned) (string, error)) (Result, error) {
	tag := func(ids []uint64) (string, error) { return tagWith(ids, nil) }
	regions, err := listLive(st)
	if err != nil {
		return Result{}, err
	}
	predicted := PredictIDs(regionIDs(regions), nil, 1)[0]
	leaderTag, err := tag([]uint64{predicted})
	if err != nil {
		return Result{}, err
	}
	c := &creation{st: st}
	first, err := c.create(base, ranges[0], leaderTag)
	if err != nil {
		return Result{}, c.undo(err)
	}
	if first != predicted {
		// Someone else took the id meanwhile: the tag must name its carrier.
		if err := writeTag(st, first, tag, []uint64{first}); err != nil {
			return Result{}, c.undo(err)
		}
	}
	marker := Pending{Anchor: first, Alias: alias, UserData: user}.String()
	for _, r := range ranges[1:] {
		if _, err := c.create(base, r, marker); err != nil {
			return Result{}, c.undo(err)
		}
	}
	members, leader, reset := finish([]uint64{first}, c.ids[1:], map[uint64]AuxKind{first: AuxTag}, nil)
	if len(members) > 1 {
		if err := writeTag(st, leader, tag, members); err != nil {
			return Result{}, c.undo(err)
		}
	}
	for _, id := range reset {
		if err := st.SetAux(id, ""); err != nil {
			return Result{}, c.undo(fmt.Errorf("reset aux data of region %d: %w", id, err))
		}
	}
	return Result{GroupID: leader, Regions: c.ids, Added: len(c.ids)}, nil
}

// writeTag writes the tag of members on region id, their leader.
func writeTag(st *dmstats.Stats, id uint64, tag func([]uint64) (string, error), members []uint64) error {
	t, err := tag(members)
	if err != nil {
		return err
	}
	if err := st.SetAux(id, t); err != nil {
		return fmt.Errorf("write group tag on region %d: %w", id, err)
	}
	return nil
}

func regionIDs(regions []dmstats.Region) []uint64 {
	ids := make([]uint64, len(regions))
	for i, r := range regions {
		ids[i] = r.ID
	}
	return ids
}

// GroupExists reports whether group groupID exists: region groupID carries
// a valid DMS_GROUP tag that names it as the leader.
func GroupExists(st *dmstats.Stats, groupID uint64) (bool, error) {
	regions, err := st.List("")
	if err != nil {
		return false, err
	}
	for _, r := range regions {
		if r.ID == groupID {
			_, ok := validTag(r)
			return ok, nil
		}
	}
	return false, nil
}

// validTag returns the group r leads, if its aux data is a DMS_GROUP tag
// whose first member is r itself.
func validTag(r dmstats.Region) (dmstats.Group, bool) {
	g, ok, err := dmstats.ParseGroupTag(r.AuxData)
	if !ok || err != nil || len(g.Members) == 0 || g.Members[0] != r.ID {
		return dmstats.Group{}, false
	}
	return g, true
}
