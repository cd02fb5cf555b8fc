package dmstats

import (
	"reflect"
	"strings"
	"testing"
)

func TestEscapeArg(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"a b", `a\ b`},
		{"a\tb", "a\\\tb"},
		{`a\b`, `a\\b`},
		{`\`, `\\`},
		{"x\vy\fz\r", "x\\\vy\\\fz\\\r"},
		// 0xA0 is whitespace to the kernel; in UTF-8 "à" is C3 A0.
		{"à", "\xc3\\\xa0"},
		{`DMS_GROUP="a b":0#-`, `DMS_GROUP="a\ b":0#-`},
		{"#:\"'$", "#:\"'$"},
	} {
		if got := EscapeArg(tc.in); got != tc.want {
			t.Errorf("EscapeArg(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// What EscapeArg produces comes back unchanged, as one argument, from a
// model of the kernel's splitter.
func TestEscapeRoundTrip(t *testing.T) {
	for _, s := range []string{
		"a", "a b", " lead", "trail ", "  ", "\t", `\`, `\\`, `a\ b`, `end\`,
		"tab\there", "all \t\v\f\r\\ of them", "àé ü", "\xa0", `"quoted alias":0-2#-`,
		`DMS_GROUP="sp ace\\ \"q\" #h:c	t":0-1,3#-`,
	} {
		args := SplitArgs("@stats_set_aux 0 " + EscapeArg(s))
		if len(args) != 3 || args[2] != s {
			t.Errorf("escaped %q splits into %q", s, args)
		}
	}
}

func TestSplitArgs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"   ", nil},
		{"@stats_list", []string{"@stats_list"}},
		{"  a   b\t\tc  ", []string{"a", "b", "c"}},
		{`a\ b c`, []string{"a b", "c"}},
		{`a\\ b`, []string{`a\`, "b"}},
		{`\x\y`, []string{"xy"}},
		{`trailing\`, []string{`trailing\`}},
		{"nb\xa0sp", []string{"nb", "sp"}},
	} {
		if got := SplitArgs(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitArgs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCheckArg(t *testing.T) {
	for _, tc := range []struct {
		in, err string
	}{
		{"fine value", ""},
		{"", ""},
		{"a\nb", "a newline at byte 1"},
		{"a\x00", "NUL at byte 1"},
	} {
		err := checkArg("aux data", tc.in)
		if tc.err == "" {
			if err != nil {
				t.Errorf("checkArg(%q) = %v", tc.in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "aux data") {
			t.Errorf("checkArg(%q) = %v, want error containing %q", tc.in, err, tc.err)
		}
	}
}
