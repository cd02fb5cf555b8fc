package filemap

import (
	"encoding/hex"

	"github.com/dmfm/dmfm/lib/dmstats"
	"strconv"
	"strings"
)

// pendingPrefix starts the aux data of a region that an unfinished Create
// or Update made and has not yet committed to its group's tag. See doc.go.
const pendingPrefix = "DMFM_PENDING="

// Pending is what a pending marker records: the group the region was made
// for and what is needed to re-create that group's tag if its leader is gone.
type Pending struct {
	// Anchor is the id of the group's leader when the region was made.
	Anchor uint64
	// Alias and UserData are the group's, as in its tag.
	Alias, UserData string
}

// String renders the marker as aux data: DMFM_PENDING=<anchor>:<hex alias>:<hex user data>.
// Hex keeps it one word whatever the alias holds.
func (p Pending) String() string {
	return pendingPrefix + strconv.FormatUint(p.Anchor, 10) + ":" +
		hex.EncodeToString([]byte(p.Alias)) + ":" + hex.EncodeToString([]byte(p.UserData))
}

// ParsePending reads a pending marker from aux data; ok is false when aux is
// not one.
func ParsePending(aux string) (p Pending, ok bool) {
	rest, found := strings.CutPrefix(aux, pendingPrefix)
	if !found {
		return Pending{}, false
	}
	parts := strings.Split(rest, ":")
	if len(parts) != 3 {
		return Pending{}, false
	}
	anchor, err := strconv.ParseUint(parts[0], 10, 64)
	if err != nil {
		return Pending{}, false
	}
	alias, err1 := hex.DecodeString(parts[1])
	user, err2 := hex.DecodeString(parts[2])
	if err1 != nil || err2 != nil {
		return Pending{}, false
	}
	return Pending{Anchor: anchor, Alias: string(alias), UserData: string(user)}, true
}

// intentPrefix starts the tag user data of a group while Create or Update
// makes regions for it: the regions about to be made, each by the id the
// kernel is expected to give it and its range. See doc.go.
const intentPrefix = "DMFM_INTENT="

// Planned is a region about to be made: the id predicted for it and the
// range it will map.
type Planned struct {
	ID    uint64
	Range Range
}

// zipPlanned pairs predicted ids with the ranges they are for, in order.
func zipPlanned(ids []uint64, ranges []Range) []Planned {
	out := make([]Planned, len(ranges))
	for i, r := range ranges {
		out[i] = Planned{ID: ids[i], Range: r}
	}
	return out
}

// WithIntent returns tag user data ud prefixed with the intent to make
// planned: DMFM_INTENT=<id>:<start>+<length>,...; then ud. With nothing
// planned it returns ud unchanged.
func WithIntent(planned []Planned, ud string) string {
	if len(planned) == 0 {
		return ud
	}
	b := make([]byte, 0, len(intentPrefix)+len(planned)*24+len(ud))
	b = append(b, intentPrefix...)
	for i, p := range planned {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, p.ID, 10)
		b = append(b, ':')
		b = strconv.AppendUint(b, p.Range.Start, 10)
		b = append(b, '+')
		b = strconv.AppendUint(b, p.Range.Length, 10)
	}
	b = append(b, ';')
	return string(append(b, ud...))
}

// SplitIntent separates the intent WithIntent put in tag user data from the
// rest. planned maps each predicted id to its range; ok is false (and rest
// is ud) when ud carries no well-formed intent.
func SplitIntent(ud string) (planned map[uint64]Range, rest string, ok bool) {
	body, found := strings.CutPrefix(ud, intentPrefix)
	if !found {
		return nil, ud, false
	}
	list, rest, found := strings.Cut(body, ";")
	if !found {
		return nil, ud, false
	}
	planned = map[uint64]Range{}
	for item := range strings.SplitSeq(list, ",") {
		id, rng, found := strings.Cut(item, ":")
		start, length, found2 := strings.Cut(rng, "+")
		n, err1 := strconv.ParseUint(id, 10, 64)
		st, err2 := strconv.ParseUint(start, 10, 64)
		ln, err3 := strconv.ParseUint(length, 10, 64)
		if !found || !found2 || err1 != nil || err2 != nil || err3 != nil {
			return nil, ud, false
		}
		planned[n] = Range{Start: st, Length: ln}
	}
	return planned, rest, true
}

// Claims is a dmstats.Claims for file-mapped groups: a group claims every
// region its tag lists, except an id that the tag's intent (left by an
// interrupted Create or Update) announced for another range than the
// region maps: that region was made by another tool after the id was
// announced. Pass it to dmstats.GroupsClaiming.
func Claims(g dmstats.Group) func(member dmstats.Region) bool {
	planned, _, ok := SplitIntent(g.UserData)
	if !ok {
		return nil
	}
	return func(r dmstats.Region) bool {
		want, announced := planned[r.ID]
		return !announced || (r.Start == want.Start && r.Length == want.Length)
	}
}

// emptyMark is the user data of the tag of a group whose file has no
// extents: the leader is then a placeholder. The caller's own user data
// follows after a '+'. See doc.go.
const emptyMark = "DMFM_EMPTY"

// EncodeUserData returns the tag user data for the caller's user data and
// the group's empty state.
func EncodeUserData(user string, empty bool) string {
	switch {
	case !empty:
		return user
	case user == "":
		return emptyMark
	}
	return emptyMark + "+" + user
}

// DecodeUserData splits tag user data into the caller's user data and
// whether the group is an empty placeholder (its file has no extents, and
// the leader's counters do not describe the file).
//
// An intent left by an interrupted Create or Update (see SplitIntent) is
// not part of either.
func DecodeUserData(ud string) (user string, empty bool) {
	_, ud, _ = SplitIntent(ud)
	if ud == emptyMark {
		return "", true
	}
	if rest, ok := strings.CutPrefix(ud, emptyMark+"+"); ok {
		return rest, true
	}
	return ud, false
}
