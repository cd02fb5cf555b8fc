package filemapd

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/dmfm/dmfm/lib/dm"
	"github.com/dmfm/dmfm/lib/dmstats"
	"github.com/dmfm/dmfm/lib/filemap"
)

// StatsUpdater is the real [Updater]: it keeps a file-map group on the file's
// device-mapper device in step with the file, through dm-stats messages
// (lib/filemap.Update with its default strategy, which keeps the regions
// that still fit so their counters survive the file's growth).
type StatsUpdater struct {
	c       *dm.Client
	st      *dmstats.Stats
	dev     dm.DevID
	groupID uint64
	opts    filemap.UpdateOptions
	log     *slog.Logger
}

// NewStatsUpdater binds f to its dm device (filemap.Bind) and returns an
// updater for group groupID there. It writes group tags in the generation
// the group's tag already has (lvm2's older unquoted form stays unquoted), or
// the quoted form when the group cannot be read now. log (nil: none) hears
// about updates that failed half-way and were repaired.
func NewStatsUpdater(f *os.File, groupID uint64, log *slog.Logger) (*StatsUpdater, error) {
	b, err := filemap.Bind(f)
	if err != nil {
		return nil, err
	}
	c, err := dm.Open()
	if err != nil {
		return nil, fmt.Errorf("open device-mapper: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	id := dm.ByDevno(b.Major, b.Minor)
	u := &StatsUpdater{c: c, st: dmstats.New(dmstats.DeviceMessenger(c, id)), dev: id, groupID: groupID, log: log}
	regions, err := u.st.List("")
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("list regions of %s: %w", b.DMName, err)
	}
	for _, r := range regions {
		if r.ID != groupID {
			continue
		}
		if g, ok, err := dmstats.ParseGroupTag(r.AuxData); ok && err == nil {
			u.opts.Format = g.Format
		}
	}
	return u, nil
}

// NewStatsUpdaterFunc is the [NewUpdaterFunc] of the dmfilemapd tool.
func NewStatsUpdaterFunc(f *os.File, a Args, log *slog.Logger) (Updater, error) {
	return NewStatsUpdater(f, a.GroupID, log)
}

// GroupID is the group's id now: an update can change it.
func (u *StatsUpdater) GroupID() uint64 { return u.groupID }

// Update re-maps the group from f's extents. An update that failed half-way
// but whose repair pass left a correct group counts as done.
func (u *StatsUpdater) Update(f *os.File) (Result, error) {
	res, err := filemap.Update(u.st, u.groupID, f, u.opts)
	if err != nil && !res.Repaired {
		return Result{}, err
	}
	if err != nil {
		u.log.Warn("update failed half-way; the group was repaired", "group", res.GroupID, "err", err)
	}
	u.groupID = res.GroupID
	return Result{
		GroupID: res.GroupID, OldGroupID: res.OldGroupID, GroupChanged: res.GroupChanged,
		Regions: len(res.Regions), Kept: res.Kept, Added: res.Added, Removed: res.Removed, Empty: res.Empty,
	}, nil
}

// GroupExists reports whether the group still exists; a device that is gone
// has no groups.
func (u *StatsUpdater) GroupExists() (bool, error) {
	ok, err := filemap.GroupExists(u.st, u.groupID)
	if errors.Is(err, dm.ErrNotFound) {
		return false, nil
	}
	return ok, err
}

// Close releases the device-mapper control handle.
func (u *StatsUpdater) Close() error { return u.c.Close() }
