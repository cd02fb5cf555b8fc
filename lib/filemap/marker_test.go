package filemap

import "testing"

func TestPendingRoundTrip(t *testing.T) {
	for _, p := range []Pending{
		{Anchor: 0},
		{Anchor: 7, Alias: "data.img"},
		{Anchor: 123456789012, Alias: "a b:c#d\\e\"", UserData: "x y"},
	} {
		s := p.String()
		for _, c := range s {
			if c == ' ' || c == '\t' || c == '\\' {
				t.Errorf("marker %q is not one plain word", s)
			}
		}
		got, ok := ParsePending(s)
		if !ok || got != p {
			t.Errorf("ParsePending(%q) = %+v, %v; want %+v", s, got, ok, p)
		}
	}
}

func TestParsePendingRejects(t *testing.T) {
	for _, aux := range []string{
		"-", "", "DMS_GROUP=x:0#-", "DMFM_PENDING=", "DMFM_PENDING=1", "DMFM_PENDING=1:", "DMFM_PENDING=x::",
		"DMFM_PENDING=1:zz:", "DMFM_PENDING=1:00:00:00", "dmfm_pending=1::",
	} {
		if p, ok := ParsePending(aux); ok {
			t.Errorf("ParsePending(%q) = %+v, want not a marker", aux, p)
		}
	}
}

func TestUserData(t *testing.T) {
	tests := []struct {
		user    string
		empty   bool
		encoded string
	}{
		{"", false, ""},
		{"note", false, "note"},
		{"", true, "DMFM_EMPTY"},
		{"note", true, "DMFM_EMPTY+note"},
		{"a+b", true, "DMFM_EMPTY+a+b"},
	}
	for _, tc := range tests {
		if got := EncodeUserData(tc.user, tc.empty); got != tc.encoded {
			t.Errorf("EncodeUserData(%q, %v) = %q, want %q", tc.user, tc.empty, got, tc.encoded)
		}
		user, empty := DecodeUserData(tc.encoded)
		if user != tc.user || empty != tc.empty {
			t.Errorf("DecodeUserData(%q) = %q, %v; want %q, %v", tc.encoded, user, empty, tc.user, tc.empty)
		}
	}
}
