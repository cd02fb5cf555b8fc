package dmstats

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Groups live only in userspace: the group's leader (its lowest region id,
// which is also the group id) carries a DMS_GROUP tag in its aux data.
//
// Two generations of the tag exist:
//
//	lvm2 >= 2.03.23:  DMS_GROUP="<alias>":<members>#<userdata>   (FormatQuoted)
//	lvm2 <= 2.03.22:  DMS_GROUP=<alias>:<members>#<userdata>     (FormatLegacy)
//	no alias (both):  DMS_GROUP=:<members>#<userdata>
//
// Inside the quotes this package escapes a backslash as \\ and a double
// quote as \"; every other byte (space, TAB, ':', '#', ...) is written as
// is. An alias without '\' and '"' is thus written exactly as lvm2 2.03.23
// writes it. The reader is lenient so that tags written by lvm2 (which does
// not escape) read back too: \\ and \" are unescaped, any other backslash is
// kept, and a '"' that is not followed by ':' is taken as part of the alias.
// lvm2 itself cuts a quoted alias at its first ':', so an alias containing
// ':' is read correctly only by this package.

const groupTagPrefix = "DMS_GROUP="

// maxMembers bounds the ids a member list may expand to, so that a corrupt
// run such as "0-4000000000" cannot exhaust memory. The kernel hands out
// ids from 0 and keeps every region in memory, so real groups are far
// smaller.
const maxMembers = 1 << 20

// TagFormat selects the DMS_GROUP tag generation to write.
type TagFormat int

const (
	// FormatQuoted is the tag of lvm2 >= 2.03.23: DMS_GROUP="alias":...
	FormatQuoted TagFormat = iota
	// FormatLegacy is the tag of lvm2 <= 2.03.22 (Debian 12's dmstats):
	// DMS_GROUP=alias:...
	FormatLegacy
)

// String returns "quoted" or "legacy".
func (f TagFormat) String() string {
	switch f {
	case FormatQuoted:
		return "quoted"
	case FormatLegacy:
		return "legacy"
	}
	return "TagFormat(" + strconv.Itoa(int(f)) + ")"
}

// ParseTagFormat parses a tag format name: "quoted" (also "new") or
// "legacy" (also "old", "unquoted").
func ParseTagFormat(s string) (TagFormat, error) {
	switch strings.ToLower(s) {
	case "quoted", "new":
		return FormatQuoted, nil
	case "legacy", "old", "unquoted":
		return FormatLegacy, nil
	}
	return 0, fmt.Errorf("unknown group tag format %q (want quoted or legacy)", s)
}

// ErrAliasUnsafe is wrapped by the error FormatGroupTag returns when the
// legacy tag cannot carry an alias.
var ErrAliasUnsafe = errors.New("alias cannot be written in the legacy group tag")

// ErrBadGroupTag is wrapped by errors about malformed DMS_GROUP tags.
var ErrBadGroupTag = errors.New("malformed DMS_GROUP tag")

// Group is a set of regions handled as one, described by the DMS_GROUP tag
// of its leader.
type Group struct {
	// ID is the group id: the leader's region id, the lowest member.
	ID uint64
	// Alias is the group's name ("" for none).
	Alias string
	// Members are the member region ids, ascending, leader first.
	Members []uint64
	// UserData is the aux data kept after the tag's '#' ("" for none,
	// written "-").
	UserData string
	// Format is the tag generation the group was read in. A tag without
	// alias is the same in both generations and reads as FormatQuoted.
	Format TagFormat
}

// FormatMembers writes ascending member ids with every run of two or more
// consecutive ids as M-N: {0,1,3} -> "0-1,3", {0,2,3,4,7} -> "0,2-4,7".
// ids must be sorted ascending without duplicates.
func FormatMembers(ids []uint64) string {
	b := make([]byte, 0, len(ids)*3)
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, ids[i], 10)
		if j > i {
			b = append(b, '-')
			b = strconv.AppendUint(b, ids[j], 10)
		}
		i = j + 1
	}
	return string(b)
}

// ParseMembers reads a member list of ids and M-N runs separated by commas,
// in any order, and returns the ids ascending without duplicates.
func ParseMembers(s string) ([]uint64, error) {
	if s == "" {
		return nil, fmt.Errorf("%w: empty member list", ErrBadGroupTag)
	}
	ids := make([]uint64, 0, strings.Count(s, ",")+1)
	sorted := true
	for rest := s; ; {
		lo, n := parseUint(rest)
		if n == 0 {
			return nil, fmt.Errorf("%w: bad member list %q", ErrBadGroupTag, s)
		}
		rest = rest[n:]
		hi := lo
		if rest != "" && rest[0] == '-' {
			if hi, n = parseUint(rest[1:]); n == 0 || hi < lo {
				return nil, fmt.Errorf("%w: bad member run in %q", ErrBadGroupTag, s)
			}
			rest = rest[n+1:]
		}
		if hi-lo >= maxMembers || len(ids)+int(hi-lo) >= maxMembers {
			return nil, fmt.Errorf("%w: member list %q names more than %d regions", ErrBadGroupTag, s, maxMembers)
		}
		for id := lo; ; id++ {
			if len(ids) > 0 && id <= ids[len(ids)-1] {
				sorted = false
			}
			ids = append(ids, id)
			if id == hi {
				break
			}
		}
		if rest == "" {
			break
		}
		if rest[0] != ',' {
			return nil, fmt.Errorf("%w: bad member list %q", ErrBadGroupTag, s)
		}
		rest = rest[1:]
	}
	if !sorted {
		slices.Sort(ids)
		ids = slices.Compact(ids)
	}
	return ids, nil
}

// quotedAliasEnd looks at s, the text after "DMS_GROUP=", and returns the
// index just past the closing quote of a quoted alias, or 0 when s does not
// hold a well-formed quoted alias followed by ':'.
func quotedAliasEnd(s string) int {
	if len(s) < 2 || s[0] != '"' {
		return 0
	}
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) && (s[i+1] == '\\' || s[i+1] == '"') {
				i++
			}
		case '"':
			if i+1 < len(s) && s[i+1] == ':' {
				return i + 1
			}
		}
	}
	return 0
}

// unquoteAlias undoes the escaping inside the quotes (q holds the text
// between them).
func unquoteAlias(q string) string {
	if strings.IndexByte(q, '\\') < 0 {
		return q
	}
	b := make([]byte, 0, len(q))
	for i := 0; i < len(q); i++ {
		if q[i] == '\\' && i+1 < len(q) && (q[i+1] == '\\' || q[i+1] == '"') {
			i++
		}
		b = append(b, q[i])
	}
	return string(b)
}

// quoteAlias escapes backslashes and double quotes and adds the quotes.
func quoteAlias(a string) string {
	var b strings.Builder
	b.Grow(len(a) + 2)
	b.WriteByte('"')
	for i := 0; i < len(a); i++ {
		if a[i] == '\\' || a[i] == '"' {
			b.WriteByte('\\')
		}
		b.WriteByte(a[i])
	}
	b.WriteByte('"')
	return b.String()
}

// ParseGroupTag reads the DMS_GROUP tag at the start of aux data, in either
// generation. ok is false when aux carries no tag (then err is nil). The
// group's ID is its lowest member; callers that know which region carries
// the tag must check that it is that region (see Groups).
func ParseGroupTag(aux string) (g Group, ok bool, err error) {
	if !strings.HasPrefix(aux, groupTagPrefix) {
		return Group{}, false, nil
	}
	s := aux[len(groupTagPrefix):]
	var rest string
	if q := quotedAliasEnd(s); q > 0 {
		g.Alias = unquoteAlias(s[1 : q-1])
		g.Format = FormatQuoted
		rest = s[q+1:]
	} else {
		i := strings.IndexByte(s, ':')
		if i < 0 {
			return Group{}, true, fmt.Errorf("%w: no ':' after the alias in %q", ErrBadGroupTag, aux)
		}
		g.Alias = s[:i]
		if g.Alias != "" {
			g.Format = FormatLegacy
		}
		rest = s[i+1:]
	}
	members := rest
	if h := strings.IndexByte(rest, '#'); h >= 0 {
		members = rest[:h]
		g.UserData = rest[h+1:]
		if g.UserData == "-" {
			g.UserData = ""
		}
	}
	if g.Members, err = ParseMembers(members); err != nil {
		return Group{}, true, fmt.Errorf("tag %q: %w", aux, err)
	}
	g.ID = g.Members[0]
	return g, true, nil
}

// checkLegacyAlias explains why the legacy tag cannot carry alias, or
// returns nil when it can.
func checkLegacyAlias(alias string) error {
	why := ""
	switch {
	case strings.ContainsAny(alias, asciiSpace):
		why = "it contains whitespace, which lvm2 2.03.16 neither escapes nor reads back"
	case strings.Contains(alias, ":"):
		why = "it contains ':', which ends the alias in the legacy tag"
	case strings.Contains(alias, "#"):
		why = "it contains '#', which starts the user data in the legacy tag"
	case strings.HasPrefix(alias, `"`):
		why = "it starts with '\"', which readers take for the quoted tag"
	default:
		return nil
	}
	return fmt.Errorf("%w: alias %q: %s; use the quoted format", ErrAliasUnsafe, alias, why)
}

// asciiSpace is the ASCII whitespace; the byte 0xA0, whitespace to the
// kernel, is escaped on the wire but harmless in a listing, and is part of
// many UTF-8 characters, so it is allowed in aliases and user data.
const asciiSpace = " \t\n\v\f\r"

// checkUserData rejects user data that cannot survive a listing: it ends at
// the first space after the tag's '#'.
func checkUserData(u string) error {
	if i := strings.IndexAny(u, asciiSpace+"\x00"); i >= 0 {
		return fmt.Errorf("group user data %q contains whitespace or NUL at byte %d: it would be cut when the listing is read", u, i)
	}
	return nil
}

// FormatGroupTag writes g's DMS_GROUP tag in format f. g.Members are sorted
// and deduplicated first; g.ID must be the lowest member. The legacy format
// refuses aliases it cannot carry with an error wrapping ErrAliasUnsafe.
func FormatGroupTag(g Group, f TagFormat) (string, error) {
	if len(g.Members) == 0 {
		return "", fmt.Errorf("group %d has no members", g.ID)
	}
	members := g.Members
	if !slices.IsSorted(members) || len(slices.Compact(slices.Clone(members))) != len(members) {
		members = slices.Compact(slices.Sorted(slices.Values(members)))
	}
	if members[0] != g.ID {
		return "", fmt.Errorf("group id %d is not its lowest member %d: the tag belongs to the lowest member", g.ID, members[0])
	}
	if err := checkArg("group alias", g.Alias); err != nil {
		return "", err
	}
	if err := checkUserData(g.UserData); err != nil {
		return "", err
	}
	var alias string
	switch f {
	case FormatQuoted:
		if g.Alias != "" {
			alias = quoteAlias(g.Alias)
		}
	case FormatLegacy:
		if err := checkLegacyAlias(g.Alias); err != nil {
			return "", err
		}
		alias = g.Alias
	default:
		return "", fmt.Errorf("unknown group tag format %d", f)
	}
	user := g.UserData
	if user == "" {
		user = "-"
	}
	return groupTagPrefix + alias + ":" + FormatMembers(members) + "#" + user, nil
}

// Groups returns the valid groups described by the tags in a listing (pass
// the listing of all programs, or members of other programs look missing),
// ordered by id, and one warning for each problem met: a malformed tag, a
// tag whose first member is not the region carrying it (the group is
// dropped), members that no longer exist (ignored) and regions claimed by
// two groups (kept in the lower one).
func Groups(regions []Region) (groups []Group, warnings []string) {
	return GroupsClaiming(regions, nil)
}

// Claims lets a caller decide which of the regions a group's tag lists the
// group really claims. It is called once for each valid group and returns a
// test for each listed region that exists, or nil when the group claims all
// of them. (File mapping uses it for the ids an interrupted update
// announced but another tool got.)
type Claims func(g Group) func(member Region) bool

// GroupsClaiming is Groups where claims (nil: every listed region) has a
// say in membership: a listed region it rejects is left out of the group,
// with a warning, and stays free to belong to another group or to lead
// one.
func GroupsClaiming(regions []Region, claims Claims) (groups []Group, warnings []string) {
	order := regions
	if !slices.IsSortedFunc(order, byID) {
		order = slices.Clone(regions)
		slices.SortFunc(order, byID)
	}
	// owner[i] is 1 + the id of the group that region order[i] joined.
	var owner []uint64
	for i := range order {
		r := &order[i]
		g, ok, err := ParseGroupTag(r.AuxData)
		if !ok {
			continue
		}
		if owner == nil {
			owner = make([]uint64, len(order))
		}
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("region %d: ignoring group: %v", r.ID, err))
			continue
		}
		if g.ID != r.ID {
			warnings = append(warnings, fmt.Sprintf("region %d: ignoring invalid group tag %q: its first member %d is not the region itself", r.ID, r.AuxData, g.ID))
			continue
		}
		if o := owner[i]; o != 0 {
			warnings = append(warnings, fmt.Sprintf("region %d: ignoring its group tag: the region already belongs to group %d", r.ID, o-1))
			continue
		}
		var claimed func(Region) bool
		if claims != nil {
			claimed = claims(g)
		}
		// Members are ascending and start at the leader: walk the sorted
		// listing alongside them.
		kept := g.Members[:0]
		j := i
		for _, m := range g.Members {
			for j < len(order) && order[j].ID < m {
				j++
			}
			switch {
			case j == len(order) || order[j].ID != m:
				warnings = append(warnings, fmt.Sprintf("group %d: member region %d does not exist; ignored", g.ID, m))
			case owner[j] != 0:
				warnings = append(warnings, fmt.Sprintf("group %d: member region %d already belongs to group %d; ignored", g.ID, m, owner[j]-1))
			case claimed != nil && !claimed(order[j]):
				warnings = append(warnings, fmt.Sprintf("group %d: member region %d is not the group's (its tag says so); ignored", g.ID, m))
			default:
				owner[j] = g.ID + 1
				kept = append(kept, m)
			}
		}
		g.Members = kept
		groups = append(groups, g)
	}
	return groups, warnings
}

func byID(a, b Region) int { return cmp.Compare(a.ID, b.ID) }
