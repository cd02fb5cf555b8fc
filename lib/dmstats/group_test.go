package dmstats

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestMembers(t *testing.T) {
	for _, tc := range []struct {
		ids  []uint64
		text string
	}{
		{[]uint64{0}, "0"},
		{[]uint64{0, 1, 3}, "0-1,3"},
		{[]uint64{0, 2, 3, 4, 7}, "0,2-4,7"},
		{[]uint64{5, 6}, "5-6"},
		{[]uint64{1, 3, 5}, "1,3,5"},
		{[]uint64{0, 1, 2, 3, 10, 11, 12, 20}, "0-3,10-12,20"},
		{[]uint64{18446744073709551614, 18446744073709551615}, "18446744073709551614-18446744073709551615"},
	} {
		if got := FormatMembers(tc.ids); got != tc.text {
			t.Errorf("FormatMembers(%v) = %q, want %q", tc.ids, got, tc.text)
		}
		got, err := ParseMembers(tc.text)
		if err != nil || !reflect.DeepEqual(got, tc.ids) {
			t.Errorf("ParseMembers(%q) = %v, %v; want %v", tc.text, got, err, tc.ids)
		}
	}
}

func TestParseMembersLenient(t *testing.T) {
	// Other writers may not sort or merge runs; read them anyway.
	for in, want := range map[string][]uint64{
		"3,1,2":     {1, 2, 3},
		"0,0,1":     {0, 1},
		"4-6,5,1-2": {1, 2, 4, 5, 6},
		"7-7":       {7},
	} {
		got, err := ParseMembers(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseMembers(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", ",", "1,", ",1", "a", "1-", "-1", "3-1", "1--2", "1 2", "0-4000000000", "18446744073709551616"} {
		if got, err := ParseMembers(in); err == nil || !errors.Is(err, ErrBadGroupTag) {
			t.Errorf("ParseMembers(%q) = %v, %v; want ErrBadGroupTag", in, got, err)
		}
	}
}

func TestParseGroupTag(t *testing.T) {
	for _, tc := range []struct {
		name string
		aux  string
		want Group
	}{
		// As lvm2 2.03.16 writes them.
		{"legacy", "DMS_GROUP=vm.img:0-2#-", Group{ID: 0, Alias: "vm.img", Members: []uint64{0, 1, 2}, Format: FormatLegacy}},
		{"legacy userdata", "DMS_GROUP=db:3,5-6#mydata", Group{ID: 3, Alias: "db", Members: []uint64{3, 5, 6}, UserData: "mydata", Format: FormatLegacy}},
		{"legacy no userdata sep", "DMS_GROUP=x:4", Group{ID: 4, Alias: "x", Members: []uint64{4}, Format: FormatLegacy}},
		{"legacy quote inside", `DMS_GROUP=a"b:1#-`, Group{ID: 1, Alias: `a"b`, Members: []uint64{1}, Format: FormatLegacy}},
		{"legacy leading quote", `DMS_GROUP="ab:1#-`, Group{ID: 1, Alias: `"ab`, Members: []uint64{1}, Format: FormatLegacy}},
		// Both generations without alias.
		{"no alias", "DMS_GROUP=:0-1#-", Group{ID: 0, Members: []uint64{0, 1}, Format: FormatQuoted}},
		// As lvm2 2.03.23 writes them.
		{"quoted", `DMS_GROUP="vm.img":0-2#-`, Group{ID: 0, Alias: "vm.img", Members: []uint64{0, 1, 2}, Format: FormatQuoted}},
		{"quoted spaces", `DMS_GROUP="my file.img":2-3#-`, Group{ID: 2, Alias: "my file.img", Members: []uint64{2, 3}, Format: FormatQuoted}},
		{"quoted raw quote (lvm2)", `DMS_GROUP="a"b":1#-`, Group{ID: 1, Alias: `a"b`, Members: []uint64{1}, Format: FormatQuoted}},
		{"quoted raw backslash (lvm2)", `DMS_GROUP="a\b":1#-`, Group{ID: 1, Alias: `a\b`, Members: []uint64{1}, Format: FormatQuoted}},
		// Written by this package.
		{"quoted escapes", `DMS_GROUP="q\"\\:#	x":0#u`, Group{ID: 0, Alias: "q\"\\:#\tx", Members: []uint64{0}, UserData: "u", Format: FormatQuoted}},
		{"quoted hash and colon", `DMS_GROUP="a#b:c":7-8#-`, Group{ID: 7, Alias: "a#b:c", Members: []uint64{7, 8}, Format: FormatQuoted}},
		{"quoted empty", `DMS_GROUP="":0#-`, Group{ID: 0, Members: []uint64{0}, Format: FormatQuoted}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, ok, err := ParseGroupTag(tc.aux)
			if !ok || err != nil {
				t.Fatalf("ParseGroupTag(%q) = ok %v, %v", tc.aux, ok, err)
			}
			if !reflect.DeepEqual(g, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", g, tc.want)
			}
		})
	}
}

func TestParseGroupTagNoTag(t *testing.T) {
	for _, aux := range []string{"-", "", "user data", "dms_group=x:0#-", " DMS_GROUP=x:0#-", "x DMS_GROUP=x:0#-"} {
		if g, ok, err := ParseGroupTag(aux); ok || err != nil {
			t.Errorf("ParseGroupTag(%q) = %+v, ok %v, %v; want no tag", aux, g, ok, err)
		}
	}
	for _, aux := range []string{"DMS_GROUP=", "DMS_GROUP=x", "DMS_GROUP=x:#-", "DMS_GROUP=x:a#-", `DMS_GROUP="x`} {
		if g, ok, err := ParseGroupTag(aux); !ok || !errors.Is(err, ErrBadGroupTag) {
			t.Errorf("ParseGroupTag(%q) = %+v, ok %v, %v; want ErrBadGroupTag", aux, g, ok, err)
		}
	}
}

func TestFormatGroupTag(t *testing.T) {
	for _, tc := range []struct {
		name   string
		g      Group
		f      TagFormat
		want   string
		errIs  error
		errMsg string
	}{
		{name: "quoted", g: Group{ID: 0, Alias: "vm.img", Members: []uint64{0, 1, 2}}, f: FormatQuoted, want: `DMS_GROUP="vm.img":0-2#-`},
		{name: "legacy", g: Group{ID: 0, Alias: "vm.img", Members: []uint64{0, 1, 2}}, f: FormatLegacy, want: `DMS_GROUP=vm.img:0-2#-`},
		{name: "no alias quoted", g: Group{ID: 3, Members: []uint64{3, 5}}, f: FormatQuoted, want: `DMS_GROUP=:3,5#-`},
		{name: "no alias legacy", g: Group{ID: 3, Members: []uint64{3, 5}}, f: FormatLegacy, want: `DMS_GROUP=:3,5#-`},
		{name: "userdata", g: Group{ID: 1, Alias: "a", Members: []uint64{1}, UserData: "keep"}, f: FormatQuoted, want: `DMS_GROUP="a":1#keep`},
		{name: "unsorted members", g: Group{ID: 0, Alias: "a", Members: []uint64{4, 0, 2, 3, 3}}, f: FormatLegacy, want: `DMS_GROUP=a:0,2-4#-`},
		{name: "quoted escapes", g: Group{ID: 0, Alias: "a \"b\" \\c\t:#", Members: []uint64{0}}, f: FormatQuoted, want: "DMS_GROUP=\"a \\\"b\\\" \\\\c\t:#\":0#-"},
		{name: "legacy utf8", g: Group{ID: 0, Alias: "à.img", Members: []uint64{0}}, f: FormatLegacy, want: "DMS_GROUP=à.img:0#-"},
		{name: "legacy space", g: Group{ID: 0, Alias: "my file", Members: []uint64{0}}, f: FormatLegacy, errIs: ErrAliasUnsafe, errMsg: `alias "my file": it contains whitespace`},
		{name: "legacy tab", g: Group{ID: 0, Alias: "a\tb", Members: []uint64{0}}, f: FormatLegacy, errIs: ErrAliasUnsafe, errMsg: "whitespace"},
		{name: "legacy colon", g: Group{ID: 0, Alias: "a:b", Members: []uint64{0}}, f: FormatLegacy, errIs: ErrAliasUnsafe, errMsg: `alias "a:b": it contains ':'`},
		{name: "legacy hash", g: Group{ID: 0, Alias: "a#b", Members: []uint64{0}}, f: FormatLegacy, errIs: ErrAliasUnsafe, errMsg: `it contains '#'`},
		{name: "legacy leading quote", g: Group{ID: 0, Alias: `"a"`, Members: []uint64{0}}, f: FormatLegacy, errIs: ErrAliasUnsafe, errMsg: "starts with"},
		{name: "id not lowest", g: Group{ID: 1, Alias: "a", Members: []uint64{0, 1}}, f: FormatQuoted, errMsg: "group id 1 is not its lowest member 0"},
		{name: "no members", g: Group{ID: 1}, f: FormatQuoted, errMsg: "group 1 has no members"},
		{name: "userdata space", g: Group{ID: 0, Members: []uint64{0}, UserData: "a b"}, f: FormatQuoted, errMsg: `user data "a b" contains whitespace`},
		{name: "alias newline", g: Group{ID: 0, Alias: "a\nb", Members: []uint64{0}}, f: FormatQuoted, errMsg: "contains a newline"},
		{name: "bad format", g: Group{ID: 0, Members: []uint64{0}}, f: TagFormat(7), errMsg: "unknown group tag format 7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FormatGroupTag(tc.g, tc.f)
			if tc.errMsg == "" {
				if err != nil || got != tc.want {
					t.Fatalf("got %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.errMsg) || (tc.errIs != nil && !errors.Is(err, tc.errIs)) {
				t.Fatalf("got %q, %v; want error containing %q (is %v)", got, err, tc.errMsg, tc.errIs)
			}
		})
	}
}

// Hard aliases go through the whole chain: tag -> kernel escaping -> kernel
// splitter -> stored aux printed in a listing row followed by options ->
// ParseList -> ParseGroupTag, and come back unchanged.
func TestQuotedAliasRoundTrip(t *testing.T) {
	aliases := []string{
		"plain", "with space", "tab\there", "colon:inside", "hash#inside", `back\slash`,
		`quote"inside`, `"fully quoted"`, `ends with backslash\`, `\"`, `":`, `":0#-`,
		"all \t:#\\\" of them", " leading and trailing ", "à la carte", "#", ":", "\"", "\\",
		"\v\f\r", "a  #  b",
	}
	for _, alias := range aliases {
		for _, user := range []string{"", "u#d:x"} {
			g := Group{ID: 4, Alias: alias, Members: []uint64{4, 5, 7}, UserData: user}
			tag, err := FormatGroupTag(g, FormatQuoted)
			if err != nil {
				t.Fatalf("FormatGroupTag(%q): %v", alias, err)
			}
			args := SplitArgs("@stats_set_aux 4 " + EscapeArg(tag))
			if len(args) != 3 || args[2] != tag {
				t.Fatalf("alias %q: kernel would receive %q, want %q", alias, args, tag)
			}
			row := "4: 0+8 8 dmstats " + args[2] + " precise_timestamps histogram:1,2\n"
			regions, err := ParseList(row, "")
			if err != nil {
				t.Fatalf("alias %q: %v", alias, err)
			}
			r := regions[0]
			if r.AuxData != tag || !r.Precise || !reflect.DeepEqual(r.Bounds, []uint64{1, 2}) || r.ExtraOptions != nil {
				t.Fatalf("alias %q: listing parsed as %+v", alias, r)
			}
			back, ok, err := ParseGroupTag(r.AuxData)
			g.Format = FormatQuoted
			if !ok || err != nil || !reflect.DeepEqual(back, g) {
				t.Fatalf("alias %q: read back %+v, %v, %v; want %+v", alias, back, ok, err, g)
			}
		}
	}
}

// Every alias the legacy format accepts round-trips through it too.
func TestLegacyAliasRoundTrip(t *testing.T) {
	for _, alias := range []string{"vm.img", `back\slash`, `a"b`, "à.img", "x-y_z.1", ""} {
		g := Group{ID: 0, Alias: alias, Members: []uint64{0, 1}}
		tag, err := FormatGroupTag(g, FormatLegacy)
		if err != nil {
			t.Fatalf("FormatGroupTag(%q): %v", alias, err)
		}
		regions, err := ParseList("0: 0+8 8 dmstats "+SplitArgs("m 0 " + EscapeArg(tag))[2]+"\n", "")
		if err != nil {
			t.Fatal(err)
		}
		back, ok, err := ParseGroupTag(regions[0].AuxData)
		want := g
		if alias != "" {
			want.Format = FormatLegacy
		}
		if !ok || err != nil || !reflect.DeepEqual(back, want) {
			t.Errorf("alias %q: read back %+v, %v, %v; want %+v", alias, back, ok, err, want)
		}
	}
}

func TestTagFormat(t *testing.T) {
	for in, want := range map[string]TagFormat{"quoted": FormatQuoted, "new": FormatQuoted, "Legacy": FormatLegacy, "old": FormatLegacy, "unquoted": FormatLegacy} {
		if got, err := ParseTagFormat(in); err != nil || got != want {
			t.Errorf("ParseTagFormat(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseTagFormat("fancy"); err == nil || !strings.Contains(err.Error(), `"fancy"`) {
		t.Errorf("ParseTagFormat(fancy) error = %v", err)
	}
	if FormatQuoted.String() != "quoted" || FormatLegacy.String() != "legacy" || TagFormat(9).String() != "TagFormat(9)" {
		t.Error("TagFormat.String")
	}
}

func TestGroups(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "groups", "*.txtar"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txtar"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var reply string
			var want []Group
			var wantWarn []string
			for _, s := range splitArchive(data) {
				switch s.Name {
				case "reply":
					reply = string(s.Data)
				case "want.json":
					if err := json.Unmarshal(s.Data, &want); err != nil {
						t.Fatal(err)
					}
				case "warnings":
					wantWarn = strings.Split(strings.TrimSuffix(string(s.Data), "\n"), "\n")
				}
			}
			regions, err := ParseList(reply, "")
			if err != nil {
				t.Fatal(err)
			}
			got, warn := Groups(regions)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("groups\ngot  %+v\nwant %+v", got, want)
			}
			if !reflect.DeepEqual(warn, wantWarn) {
				t.Errorf("warnings\ngot  %q\nwant %q", warn, wantWarn)
			}
		})
	}
}

// Groups reads a listing in any order and keeps the lower group on conflict.
func TestGroupsUnsorted(t *testing.T) {
	regions := []Region{
		{ID: 3, AuxData: "DMS_GROUP=b:3-4#-"},
		{ID: 4, AuxData: "-"},
		{ID: 1, AuxData: "DMS_GROUP=a:1,3#-"},
	}
	got, warn := Groups(regions)
	want := []Group{{ID: 1, Alias: "a", Members: []uint64{1, 3}, Format: FormatLegacy}}
	if !reflect.DeepEqual(got, want) || len(warn) != 1 || !strings.Contains(warn[0], "region 3: ignoring its group tag: the region already belongs to group 1") {
		t.Fatalf("Groups = %+v, %q", got, warn)
	}
	if regions[0].ID != 3 {
		t.Fatal("Groups reordered its input")
	}
}

// GroupsClaiming leaves out the listed regions the caller's claims reject,
// which then stay free to lead or join another group.
func TestGroupsClaiming(t *testing.T) {
	regions := []Region{
		{ID: 0, Start: 100, Length: 8, AuxData: "DMS_GROUP=a:0-2#-"},
		{ID: 1, Start: 200, Length: 8, AuxData: "-"},
		{ID: 2, Start: 900, Length: 8, AuxData: "DMS_GROUP=b:2-3#-"},
		{ID: 3, Start: 908, Length: 8, AuxData: "-"},
	}
	notTwo := func(g Group) func(Region) bool {
		if g.ID != 0 {
			return nil
		}
		return func(r Region) bool { return r.ID != 2 }
	}
	tests := []struct {
		name   string
		claims Claims
		want   []Group
		warn   string
	}{
		{"no say: the lower group wins", nil,
			[]Group{{ID: 0, Alias: "a", Members: []uint64{0, 1, 2}, Format: FormatLegacy}},
			"region 2: ignoring its group tag: the region already belongs to group 0"},
		{"group 0 does not claim 2", notTwo,
			[]Group{{ID: 0, Alias: "a", Members: []uint64{0, 1}, Format: FormatLegacy}, {ID: 2, Alias: "b", Members: []uint64{2, 3}, Format: FormatLegacy}},
			"group 0: member region 2 is not the group's (its tag says so); ignored"},
	}
	for _, tc := range tests {
		got, warn := GroupsClaiming(regions, tc.claims)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: groups\ngot  %+v\nwant %+v", tc.name, got, tc.want)
		}
		if len(warn) != 1 || warn[0] != tc.warn {
			t.Errorf("%s: warnings %q, want [%q]", tc.name, warn, tc.warn)
		}
	}
}
