// Package dmstats drives the kernel's device-mapper statistics (dm-stats)
// through its target messages: regions (@stats_create, @stats_delete,
// @stats_clear, @stats_list, @stats_print, @stats_print_clear,
// @stats_set_aux), their counters and histograms, and the region groups
// that lvm2's dmstats keeps in a DMS_GROUP tag in the leader's aux data.
//
// Every message is rendered with its arguments escaped for the kernel's
// argument splitter, and every reply is parsed into typed values without
// dropping fields. Metrics derived from the counters (r/s, await, util %,
// ...) are computed the way dmstats and iostat report them.
package dmstats

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Messenger sends one target message to sector 0 of one dm device and
// returns the reply.
type Messenger interface {
	Message(msg string) (string, error)
}

// Stats manages the dm-stats regions of one device.
type Stats struct {
	m Messenger
}

// New returns a Stats sending its messages through m.
func New(m Messenger) *Stats { return &Stats{m: m} }

func (s *Stats) send(msg string) (string, error) {
	reply, err := s.m.Message(msg)
	if err != nil {
		return "", fmt.Errorf("%s: %w", msgName(msg), err)
	}
	return reply, nil
}

// msgName returns the message keyword and region id, for errors that should
// not repeat a long aux data.
func msgName(msg string) string {
	f := strings.Fields(msg)
	if len(f) >= 2 && f[0] != "@stats_create" {
		return f[0] + " " + f[1]
	}
	if len(f) >= 1 {
		return f[0]
	}
	return "message"
}

// Create creates a region and returns its id.
func (s *Stats) Create(o CreateOptions) (uint64, error) {
	msg, err := createMessage(o)
	if err != nil {
		return 0, err
	}
	reply, err := s.send(msg)
	if err != nil {
		return 0, err
	}
	id, err := strconv.ParseUint(strings.TrimSpace(reply), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("@stats_create: unexpected reply %q (want a region id)", reply)
	}
	return id, nil
}

// Delete deletes region id.
func (s *Stats) Delete(id uint64) error {
	_, err := s.send("@stats_delete " + strconv.FormatUint(id, 10))
	return err
}

// Clear clears the counters of region id (all but in-flight).
func (s *Stats) Clear(id uint64) error {
	_, err := s.send("@stats_clear " + strconv.FormatUint(id, 10))
	return err
}

// List lists the regions of one program ("" lists the regions of all
// programs), in id order.
func (s *Stats) List(programID string) ([]Region, error) {
	msg := "@stats_list"
	if programID != "" {
		if err := checkArg("program id", programID); err != nil {
			return nil, err
		}
		msg += " " + EscapeArg(programID)
	}
	reply, err := s.send(msg)
	if err != nil {
		return nil, err
	}
	return ParseList(reply, programID)
}

// Region returns the listing of region id.
func (s *Stats) Region(id uint64) (Region, error) {
	regions, err := s.List("")
	if err != nil {
		return Region{}, err
	}
	for _, r := range regions {
		if r.ID == id {
			return r, nil
		}
	}
	return Region{}, fmt.Errorf("region %d does not exist", id)
}

// Print returns the counters of every area of region id; with clear, the
// counters are cleared in the same step (@stats_print_clear).
func (s *Stats) Print(id uint64, clear bool) ([]Area, error) {
	return s.print(printMessage(id, clear))
}

// PrintAreas is Print restricted to n areas from area first (0-based).
func (s *Stats) PrintAreas(id, first, n uint64, clear bool) ([]Area, error) {
	return s.print(printMessage(id, clear) + " " + strconv.FormatUint(first, 10) + " " + strconv.FormatUint(n, 10))
}

func printMessage(id uint64, clear bool) string {
	if clear {
		return "@stats_print_clear " + strconv.FormatUint(id, 10)
	}
	return "@stats_print " + strconv.FormatUint(id, 10)
}

func (s *Stats) print(msg string) ([]Area, error) {
	reply, err := s.send(msg)
	if err != nil {
		return nil, err
	}
	areas, err := ParsePrint(reply)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", msgName(msg), err)
	}
	return areas, nil
}

// RegionTotals returns the sum of the areas of region r (r comes from a
// listing and tells the time unit); with clear, the counters are cleared in
// the same step.
func (s *Stats) RegionTotals(r Region, clear bool) (Totals, error) {
	areas, err := s.Print(r.ID, clear)
	if err != nil {
		return Totals{}, err
	}
	c, h := SumAreas(areas)
	return Totals{Counters: c, Histogram: h, Precise: r.Precise}, nil
}

// GroupTotals returns the sum over the members of g; regions is a listing
// that holds every member (it tells their time units). With clear, each
// member's counters are cleared as it is read.
func (s *Stats) GroupTotals(g Group, regions []Region, clear bool) (Totals, error) {
	byID := make(map[uint64]Region, len(regions))
	for _, r := range regions {
		byID[r.ID] = r
	}
	for _, m := range g.Members {
		if _, ok := byID[m]; !ok {
			return Totals{}, fmt.Errorf("group %d: member region %d is not in the listing", g.ID, m)
		}
	}
	parts := make([]Totals, 0, len(g.Members))
	for _, m := range g.Members {
		t, err := s.RegionTotals(byID[m], clear)
		if err != nil {
			return Totals{}, fmt.Errorf("group %d: %w", g.ID, err)
		}
		parts = append(parts, t)
	}
	return SumTotals(parts), nil
}

// SetAux replaces the aux data of region id. aux is escaped for the kernel;
// "" is stored as "-" (none). A newline or NUL cannot be stored.
func (s *Stats) SetAux(id uint64, aux string) error {
	if err := checkArg("aux data", aux); err != nil {
		return fmt.Errorf("@stats_set_aux %d: %w", id, err)
	}
	_, err := s.send("@stats_set_aux " + strconv.FormatUint(id, 10) + " " + wireValue(aux))
	return err
}

// SetGroup makes g a group by writing its tag, in format f, to the leader
// (g.ID, which must be the lowest member). Every member must exist and
// belong to no other group. When g.UserData is empty, the leader's current
// user data is kept: its aux data, or the user data of the tag it carries.
func (s *Stats) SetGroup(g Group, f TagFormat) error {
	if len(g.Members) == 0 {
		return fmt.Errorf("group %d has no members", g.ID)
	}
	g.Members = slices.Compact(slices.Sorted(slices.Values(g.Members)))
	if g.ID != g.Members[0] {
		return fmt.Errorf("group id %d must be the lowest member (%d)", g.ID, g.Members[0])
	}
	regions, err := s.List("")
	if err != nil {
		return fmt.Errorf("group %d: %w", g.ID, err)
	}
	exists := make(map[uint64]bool, len(regions))
	for _, r := range regions {
		exists[r.ID] = true
	}
	for _, m := range g.Members {
		if !exists[m] {
			return fmt.Errorf("group %d: member region %d does not exist", g.ID, m)
		}
	}
	groups, _ := Groups(regions)
	in := make(map[uint64]bool, len(g.Members))
	for _, m := range g.Members {
		in[m] = true
	}
	for _, o := range groups {
		if o.ID == g.ID {
			continue
		}
		for _, m := range o.Members {
			if in[m] {
				return fmt.Errorf("group %d: region %d already belongs to group %d", g.ID, m, o.ID)
			}
		}
	}
	if g.UserData == "" {
		for _, r := range regions {
			if r.ID != g.ID {
				continue
			}
			old, ok, err := ParseGroupTag(r.AuxData)
			switch {
			case ok && err == nil:
				g.UserData = old.UserData
			case !ok && r.AuxData != "-":
				g.UserData = r.AuxData
			}
		}
	}
	tag, err := FormatGroupTag(g, f)
	if err != nil {
		return fmt.Errorf("group %d: %w", g.ID, err)
	}
	return s.SetAux(g.ID, tag)
}

// Ungroup dissolves group groupID: the leader's aux data goes back to the
// user data the tag kept ("-" when none). The member regions stay.
func (s *Stats) Ungroup(groupID uint64) error {
	r, err := s.Region(groupID)
	if err != nil {
		return fmt.Errorf("ungroup %d: %w", groupID, err)
	}
	g, ok, err := ParseGroupTag(r.AuxData)
	switch {
	case !ok:
		return fmt.Errorf("ungroup %d: region %d carries no group tag", groupID, groupID)
	case err != nil:
		return fmt.Errorf("ungroup %d: %w (overwrite the aux data with SetAux to drop it)", groupID, err)
	case g.ID != groupID:
		return fmt.Errorf("ungroup %d: region %d carries an invalid group tag %q (first member %d)", groupID, groupID, r.AuxData, g.ID)
	}
	return s.SetAux(groupID, g.UserData)
}
