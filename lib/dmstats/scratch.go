package dmstats

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// A scratch region makes many deletes cheap. The kernel keeps a device's
// regions in one list sorted by id, and every @stats_delete rescans that
// list from its head for a region with precise_timestamps, stopping at the
// first one. Without such a region each delete walks the whole list, so
// deleting n regions costs n²/2 steps under the device's stats lock. A
// one-sector precise region at the head of the list (the lowest free id)
// stops every rescan at once; deleting the regions lowest id first then also
// finds each at the head. The scratch region counts nothing anyone reads and
// is deleted when the bulk delete ends.
//
// Its program id is ScratchProgramID and its aux data names the process
// that made it (see Owner), so that a scratch region left by a process that
// died is recognised and removed by the next one (StaleScratch).

// ScratchMinGain is the number of kernel list steps a scratch region should
// save to be worth making: a step costs about half a microsecond in a TCG
// guest, a few nanoseconds on hardware, always under the device's stats
// lock.
const ScratchMinGain = 50_000

// ScratchFixedCost is what making and deleting a scratch region costs
// beyond its list walks (two messages and a device suspend), in list steps.
const ScratchFixedCost = 6_000

// ScratchProgramID is the program id of scratch regions.
const ScratchProgramID = "dmfm-scratch"

// scratchPrefix starts the aux data of a scratch region:
// DMFM_SCRATCH=<pid namespace>:<pid>:<start time>.
const scratchPrefix = "DMFM_SCRATCH="

// Owner names a process in a way that survives pid reuse: its pid
// namespace (the inode of /proc/PID/ns/pid), its pid there and its start
// time (field 22 of /proc/PID/stat, clock ticks after boot).
type Owner struct {
	PIDNS uint64
	PID   int
	Start uint64
}

// SelfOwner returns the Owner of the calling process.
func SelfOwner() (Owner, error) {
	return OwnerOf(os.Getpid())
}

// OwnerOf returns the Owner of process pid (of this pid namespace).
func OwnerOf(pid int) (Owner, error) {
	ns, err := pidNamespace("/proc/" + strconv.Itoa(pid) + "/ns/pid")
	if err != nil {
		return Owner{}, err
	}
	start, err := startTime(pid)
	if err != nil {
		return Owner{}, err
	}
	return Owner{PIDNS: ns, PID: pid, Start: start}, nil
}

// pidNamespace reads the inode of a pid namespace link ("pid:[N]").
func pidNamespace(link string) (uint64, error) {
	target, err := os.Readlink(link)
	if err != nil {
		return 0, fmt.Errorf("pid namespace: %w", err)
	}
	s, ok := strings.CutPrefix(target, "pid:[")
	s, ok2 := strings.CutSuffix(s, "]")
	n, err := strconv.ParseUint(s, 10, 64)
	if !ok || !ok2 || err != nil {
		return 0, fmt.Errorf("pid namespace: %s reads %q, want pid:[N]", link, target)
	}
	return n, nil
}

// startTime reads the start time of process pid from /proc/PID/stat.
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("start time of process %d: %w", pid, err)
	}
	return parseStartTime(string(b))
}

// parseStartTime takes field 22 (starttime) of a /proc/PID/stat line. The
// command name (field 2) is in parentheses and may hold spaces and ')', so
// fields are counted after its last ')'.
func parseStartTime(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("start time: no command name in /proc/PID/stat")
	}
	// After ") " come fields 3 (state) onwards: starttime is the 20th.
	f := strings.Fields(stat[i+1:])
	if len(f) < 20 {
		return 0, fmt.Errorf("start time: /proc/PID/stat has %d fields after the command name, want at least 20", len(f))
	}
	n, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("start time: %w", err)
	}
	return n, nil
}

// String renders o as scratch aux data.
func (o Owner) String() string {
	return scratchPrefix + strconv.FormatUint(o.PIDNS, 10) + ":" + strconv.Itoa(o.PID) + ":" + strconv.FormatUint(o.Start, 10)
}

// ParseScratch reports whether r is a scratch region and, if so, its owner.
func ParseScratch(r Region) (Owner, bool) {
	if r.ProgramID != ScratchProgramID {
		return Owner{}, false
	}
	rest, ok := strings.CutPrefix(r.AuxData, scratchPrefix)
	if !ok {
		return Owner{}, false
	}
	f := strings.Split(rest, ":")
	if len(f) != 3 {
		return Owner{}, false
	}
	ns, err1 := strconv.ParseUint(f[0], 10, 64)
	pid, err2 := strconv.Atoi(f[1])
	start, err3 := strconv.ParseUint(f[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || pid <= 0 {
		return Owner{}, false
	}
	return Owner{PIDNS: ns, PID: pid, Start: start}, true
}

// IsScratch reports whether r is a scratch region.
func IsScratch(r Region) bool {
	_, ok := ParseScratch(r)
	return ok
}

// gone reports whether o has certainly exited, as seen from pid namespace
// ns: a process of another namespace is never judged.
func (o Owner) gone(ns uint64) bool {
	if o.PIDNS != ns {
		return false
	}
	cur, err := OwnerOf(o.PID)
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	return cur.Start != o.Start
}

// StaleScratch returns the ids of the scratch regions in regions whose
// owners have exited (in this process's pid namespace; a scratch region
// made from another namespace is left to its owner).
func StaleScratch(regions []Region) []uint64 {
	var ns uint64
	var stale []uint64
	for _, r := range regions {
		o, ok := ParseScratch(r)
		if !ok {
			continue
		}
		if ns == 0 {
			self, err := SelfOwner()
			if err != nil {
				return nil
			}
			ns = self.PIDNS
		}
		if o.gone(ns) {
			stale = append(stale, r.ID)
		}
	}
	return stale
}

// RemoveStaleScratch deletes the scratch regions of listing regions whose
// processes died (StaleScratch) and returns the listing without them. One
// that is gone already (another tool removed it) is no error.
func (s *Stats) RemoveStaleScratch(regions []Region) ([]Region, error) {
	stale := StaleScratch(regions)
	if len(stale) == 0 {
		return regions, nil
	}
	for _, id := range stale {
		if err := s.Delete(id); err != nil && !errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("delete the scratch region %d a dead process left: %w", id, err)
		}
	}
	return slices.DeleteFunc(slices.Clone(regions), func(r Region) bool { return slices.Contains(stale, r.ID) }), nil
}

// CreateScratch makes a scratch region owned by o on the first sector of
// the device and returns its id (the lowest free one).
func (s *Stats) CreateScratch(o Owner) (uint64, error) {
	id, err := s.Create(CreateOptions{Start: 0, Length: 1, Areas: 1, Precise: true,
		ProgramID: ScratchProgramID, AuxData: o.String()})
	if err != nil {
		return 0, fmt.Errorf("scratch region: %w", err)
	}
	return id, nil
}

// DeleteScratch deletes region id if it is still o's scratch region (a
// tool that took it for stale may have deleted it, and the id been given
// out again). The check lists only scratch regions.
func (s *Stats) DeleteScratch(id uint64, o Owner) error {
	regions, err := s.List(ScratchProgramID)
	if err != nil {
		return fmt.Errorf("scratch region %d: %w", id, err)
	}
	for _, r := range regions {
		if r.ID != id {
			continue
		}
		if got, ok := ParseScratch(r); !ok || got != o {
			return nil
		}
		if err := s.Delete(id); err != nil {
			return fmt.Errorf("scratch region %d: %w", id, err)
		}
		return nil
	}
	return nil
}

// Scratch is a scratch region this process made, while it exists.
type Scratch struct {
	st    *Stats
	id    uint64
	owner Owner
	live  bool
}

// MakeScratch makes a scratch region owned by this process (CreateScratch)
// and returns it; ok is false when none could be made, which only costs
// speed.
func (s *Stats) MakeScratch() (sc *Scratch, ok bool) {
	o, err := SelfOwner()
	if err != nil {
		return nil, false
	}
	id, err := s.CreateScratch(o)
	if err != nil {
		return nil, false
	}
	return &Scratch{st: s, id: id, owner: o, live: true}, true
}

// ID returns the scratch region's id.
func (sc *Scratch) ID() uint64 { return sc.id }

// Drop deletes the scratch region if it is still there and still this
// process's (DeleteScratch). It does nothing on a nil Scratch or once it
// has succeeded, so a deferred Drop may follow an explicit one; after a
// failure it tries again.
func (sc *Scratch) Drop() error {
	if sc == nil || !sc.live {
		return nil
	}
	if err := sc.st.DeleteScratch(sc.id, sc.owner); err != nil {
		return err
	}
	sc.live = false
	return nil
}

// DeleteScratchGain estimates the list steps a scratch region saves when
// the regions ids (ascending, all in regions) are deleted lowest first
// from a device whose regions are regions: ids[0] goes alone, the scratch
// region takes the lowest free id then, and every later delete's rescan
// stops there instead of running to the first precise region or the end.
// The regions that stay below the scratch region's id are the scan left.
// Compare the result with ScratchMinGain.
func DeleteScratchGain(regions []Region, ids []uint64) int {
	if len(ids) < 2 {
		return 0
	}
	del := make(map[uint64]bool, len(ids))
	for _, id := range ids {
		del[id] = true
	}
	taken := make(map[uint64]bool, len(regions))
	for _, r := range regions {
		if r.ID != ids[0] {
			taken[r.ID] = true
		}
	}
	var next uint64 // the id the scratch region will take
	for taken[next] {
		next++
	}
	all := slices.SortedFunc(slices.Values(regions), func(a, b Region) int { return cmp.Compare(a.ID, b.ID) })
	before := 0              // regions that stay and come before the scratch region
	firstPrecise := len(all) // the place of the first precise region that stays
	for i, r := range all {
		if del[r.ID] {
			continue
		}
		if r.Precise && firstPrecise == len(all) {
			firstPrecise = i
		}
		if r.ID < next {
			before++
		}
	}
	gain := 0
	for i := 1; i < len(ids); i++ {
		scan := min(len(all)-i, firstPrecise) // the rescan without a scratch region
		gain += scan - (before + 1)
	}
	return gain - 3*len(all) - ScratchFixedCost
}
