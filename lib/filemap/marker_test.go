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

func TestIntent(t *testing.T) {
	tests := []struct {
		name    string
		planned []Planned
		ud      string
		encoded string
	}{
		{"nothing planned", nil, "note", "note"},
		{"one", []Planned{{ID: 3, Range: Range{Start: 400, Length: 8}}}, "", "DMFM_INTENT=3:400+8;"},
		{"several, user data with separators", []Planned{
			{ID: 1, Range: Range{Start: 200, Length: 8}},
			{ID: 7, Range: Range{Start: 1 << 40, Length: 1 << 20}},
		}, "a;b,c:d", "DMFM_INTENT=1:200+8,7:1099511627776+1048576;a;b,c:d"},
		{"empty group's user data", []Planned{{ID: 2, Range: Range{Start: 8, Length: 8}}}, "DMFM_EMPTY+x", "DMFM_INTENT=2:8+8;DMFM_EMPTY+x"},
	}
	for _, tc := range tests {
		got := WithIntent(tc.planned, tc.ud)
		if got != tc.encoded {
			t.Errorf("%s: WithIntent = %q, want %q", tc.name, got, tc.encoded)
		}
		planned, rest, ok := SplitIntent(got)
		if ok != (len(tc.planned) > 0) || rest != tc.ud || len(planned) != len(tc.planned) {
			t.Errorf("%s: SplitIntent(%q) = %v, %q, %v", tc.name, got, planned, rest, ok)
		}
		for _, p := range tc.planned {
			if planned[p.ID] != p.Range {
				t.Errorf("%s: SplitIntent(%q)[%d] = %v, want %v", tc.name, got, p.ID, planned[p.ID], p.Range)
			}
		}
	}
	for _, ud := range []string{"DMFM_INTENT=", "DMFM_INTENT=1:2+3", "DMFM_INTENT=x:2+3;", "DMFM_INTENT=1:2;", "DMFM_INTENT=1:2+3,;", "dmfm_intent=1:2+3;"} {
		if planned, rest, ok := SplitIntent(ud); ok || rest != ud || planned != nil {
			t.Errorf("SplitIntent(%q) = %v, %q, %v; want no intent", ud, planned, rest, ok)
		}
	}
	if user, empty := DecodeUserData("DMFM_INTENT=2:8+8;DMFM_EMPTY+x"); user != "x" || !empty {
		t.Errorf("DecodeUserData with an intent = %q, %v; want \"x\", true", user, empty)
	}
}
