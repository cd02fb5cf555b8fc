package dm

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// archive loads testdata/name, a txtar archive (a comment, then files each
// introduced by a "-- NAME --" line), as a map from file name to content.
func archive(t *testing.T, name string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	cur := ""
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if strings.HasPrefix(line, "-- ") && strings.HasSuffix(strings.TrimRight(line, "\n"), " --") {
			cur = strings.TrimSuffix(strings.TrimPrefix(strings.TrimRight(line, "\n"), "-- "), " --")
			if _, dup := files[cur]; dup {
				t.Fatalf("%s: duplicate file %q", name, cur)
			}
			files[cur] = ""
			continue
		}
		if cur != "" {
			files[cur] += line
		}
	}
	if len(files) == 0 {
		t.Fatalf("%s has no files", name)
	}
	return files
}

func TestTableRoundTrip(t *testing.T) {
	// Typed values expected for some of the canonical tables.
	typed := map[string]Table{
		"linear.table": {{0, 2048, Linear{Device: "7:0", Offset: 0}}},
		"multi.table": {
			{0, 2048, Linear{Device: "7:0"}},
			{2048, 1024, Zero{}},
			{3072, 4096, Flakey{Device: "7:1", Offset: 8, Up: 1, Down: 2, Features: []string{"drop_writes"}}},
			{7168, 8, ErrorTarget{}},
		},
		"flakey-corrupt.table": {{0, 8192, Flakey{Device: "253:4", Up: 5, Down: 1,
			Features: []string{"corrupt_bio_byte", "32", "r", "1", "0"}}}},
		"flakey-nofeatures.table": {{0, 8192, Flakey{Device: "7:2", Offset: 16, Up: 3}}},
		"log-writes.table":        {{0, 409600, LogWrites{Device: "7:0", LogDevice: "7:1"}}},
		"thin-pool.table": {{0, 20971520, ThinPool{MetadataDev: "7:0", DataDev: "7:1", BlockSize: 128, LowWater: 32768,
			Features: []string{"skip_block_zeroing"}}}},
		"thin.table":        {{0, 2097152, Thin{PoolDev: "253:2", DevID: 1}}},
		"thin-origin.table": {{0, 2097152, Thin{PoolDev: "253:2", DevID: 7, ExternalOrigin: "253:9"}}},
		"mirror.table":      {{0, 1024, Mirror{Args: strings.Fields("core 1 1024 2 7:0 0 7:1 0 1 handle_errors")}}},
		"raw-striped.table": {{0, 4096, Raw{TargetType: "striped", Args: "2 128 7:0 0 7:1 0"}}},
		"raw-noargs.table":  {{0, 100, Raw{TargetType: "some-target"}}},
	}
	files := archive(t, "tables.txtar")
	for name, text := range files {
		t.Run(name, func(t *testing.T) {
			text = strings.TrimSuffix(text, "\n")
			tab, err := ParseTable(text)
			if err != nil {
				t.Fatal(err)
			}
			if got := tab.String(); got != text {
				t.Errorf("String() = %q, want %q", got, text)
			}
			if want, ok := typed[name]; ok && !reflect.DeepEqual(tab, want) {
				t.Errorf("parsed %#v, want %#v", tab, want)
			}
			if err := tab.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
	for name := range typed {
		if _, ok := files[name]; !ok {
			t.Errorf("typed expectation for missing file %s", name)
		}
	}
}

func TestTableNonCanonical(t *testing.T) {
	files := archive(t, "noncanonical.txtar")
	for name, in := range files {
		base, ok := strings.CutSuffix(name, ".in")
		if !ok {
			continue
		}
		t.Run(base, func(t *testing.T) {
			want, ok := files[base+".out"]
			if !ok {
				t.Fatalf("no %s.out", base)
			}
			tab, err := ParseTable(in)
			if err != nil {
				t.Fatal(err)
			}
			if got := tab.String(); got != strings.TrimSuffix(want, "\n") {
				t.Errorf("String() = %q, want %q", got, want)
			}
			// The canonical form is a fixed point.
			again, err := ParseTable(tab.String())
			if err != nil || again.String() != tab.String() {
				t.Errorf("canonical form does not round-trip: %v", err)
			}
		})
	}
}

func TestTableBad(t *testing.T) {
	files := archive(t, "bad.txtar")
	for name, in := range files {
		base, ok := strings.CutSuffix(name, ".table")
		if !ok {
			continue
		}
		t.Run(base, func(t *testing.T) {
			want, ok := files[base+".err"]
			if !ok {
				t.Fatalf("no %s.err", base)
			}
			want = strings.TrimSuffix(want, "\n")
			tab, err := ParseTable(in)
			if err == nil {
				t.Fatalf("ParseTable accepted it: %v", tab)
			}
			if !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "table line ") {
				t.Errorf("error %q lacks %q or the line number", err, want)
			}
		})
	}
}

func TestParseTargetDirect(t *testing.T) {
	tgt, err := ParseTarget("linear", "  /dev/loop0   16 ")
	if err != nil || tgt != (Linear{Device: "/dev/loop0", Offset: 16}) {
		t.Errorf("ParseTarget(linear) = %#v, %v", tgt, err)
	}
	for _, typ := range []string{"", "with space", strings.Repeat("x", 16)} {
		if _, err := ParseTarget(typ, ""); err == nil {
			t.Errorf("ParseTarget(%q) accepted a bad type", typ)
		}
	}
}

func TestFeatureWordsCounted(t *testing.T) {
	// A feature element holding several words counts as several arguments.
	f := Flakey{Device: "7:0", Up: 1, Down: 1, Features: []string{"corrupt_bio_byte 32 r 1 0", "drop_writes"}}
	want := "7:0 0 1 1 6 corrupt_bio_byte 32 r 1 0 drop_writes"
	if got := f.Params(); got != want {
		t.Errorf("Params() = %q, want %q", got, want)
	}
}

func TestTableValidate(t *testing.T) {
	lin := Linear{Device: "7:0"}
	cases := []struct {
		name  string
		table Table
		want  string // "" for valid
	}{
		{"valid", Table{{0, 8, lin}, {8, 8, Zero{}}}, ""},
		{"empty", nil, "empty table"},
		{"not at zero", Table{{8, 8, lin}}, "segment 0 starts at sector 8, not 0"},
		{"gap", Table{{0, 8, lin}, {16, 8, lin}}, "segment 1 starts at sector 16, but the previous one ends at 8"},
		{"overlap", Table{{0, 8, lin}, {4, 8, lin}}, "segment 1 starts at sector 4"},
		{"zero length", Table{{0, 0, lin}}, "segment 0 (linear) has length 0"},
		{"nil target", Table{{0, 8, nil}}, "segment 0: no target"},
		{"bad type", Table{{0, 8, Raw{TargetType: "a b"}}}, "contains whitespace"},
		{"newline in params", Table{{0, 8, Raw{TargetType: "x", Args: "a\nb"}}}, "NUL or newline"},
		{"overflow", Table{{0, 8, lin}, {8, ^uint64(0), lin}}, "end overflows"},
	}
	for _, c := range cases {
		err := c.table.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
}

func TestTableSizeAndSegmentString(t *testing.T) {
	tab := Table{{0, 8, Linear{Device: "7:0"}}, {8, 100, ErrorTarget{}}}
	if tab.Size() != 108 {
		t.Errorf("Size() = %d, want 108", tab.Size())
	}
	if Table(nil).Size() != 0 {
		t.Error("empty table has a size")
	}
	if got := tab[1].String(); got != "8 100 error" {
		t.Errorf("Segment.String() = %q", got)
	}
	if got := (Segment{Start: 0, Length: 1}).String(); got != "0 1 <nil>" {
		t.Errorf("nil target segment = %q", got)
	}
}
