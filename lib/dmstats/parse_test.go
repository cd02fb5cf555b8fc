package dmstats

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fixture is one testdata/*/*.txtar case: a kernel reply and either the
// parsed value expected (want.json) or an error substring (error).
type fixture struct {
	name    string
	program string
	reply   string
	want    []byte
	err     string
}

func loadFixtures(t *testing.T, dir string) []fixture {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.txtar"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in testdata/%s: %v", dir, err)
	}
	var out []fixture
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fx := fixture{name: strings.TrimSuffix(filepath.Base(f), ".txtar")}
		seen := false
		for _, s := range splitArchive(data) {
			switch s.Name {
			case "program":
				fx.program = strings.TrimSuffix(string(s.Data), "\n")
			case "reply":
				fx.reply = string(s.Data)
				seen = true
			case "want.json":
				fx.want = s.Data
			case "error":
				fx.err = strings.TrimSuffix(string(s.Data), "\n")
			default:
				t.Fatalf("%s: unknown section %q", f, s.Name)
			}
		}
		if !seen || (fx.want == nil) == (fx.err == "") {
			t.Fatalf("%s: need a reply and exactly one of want.json or error", f)
		}
		out = append(out, fx)
	}
	return out
}

func TestParseList(t *testing.T) {
	for _, fx := range loadFixtures(t, "list") {
		t.Run(fx.name, func(t *testing.T) {
			got, err := ParseList(fx.reply, fx.program)
			if fx.err != "" {
				if err == nil || !strings.Contains(err.Error(), fx.err) {
					t.Fatalf("error = %v, want one containing %q", err, fx.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var want []Region
			if err := json.Unmarshal(fx.want, &want); err != nil {
				t.Fatalf("want.json: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestParsePrint(t *testing.T) {
	for _, fx := range loadFixtures(t, "print") {
		t.Run(fx.name, func(t *testing.T) {
			got, err := ParsePrint(fx.reply)
			if fx.err != "" {
				if err == nil || !strings.Contains(err.Error(), fx.err) {
					t.Fatalf("error = %v, want one containing %q", err, fx.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var want []Area
			if err := json.Unmarshal(fx.want, &want); err != nil {
				t.Fatalf("want.json: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// A reply whose last row lacks its newline parses the same.
func TestParseNoTrailingNewline(t *testing.T) {
	l, err := ParseList("0: 0+8 8 p a\n1: 8+8 8 p b precise_timestamps", "")
	if err != nil || len(l) != 2 || l[1].AuxData != "b" || !l[1].Precise {
		t.Fatalf("ParseList = %+v, %v", l, err)
	}
	p, err := ParsePrint("0+8 1 2 3 4 5 6 7 8 9 10 11 12 13 4:5")
	if err != nil || len(p) != 1 || p[0].Counters.WritesInFlightTicks != 13 || !reflect.DeepEqual(p[0].Histogram, []uint64{4, 5}) {
		t.Fatalf("ParsePrint = %+v, %v", p, err)
	}
}

func TestParseInt(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		n    int
	}{
		{"0", 0, 1},
		{"-1 ", -1, 2},
		{"9223372036854775807", 9223372036854775807, 19},
		{"-9223372036854775808", -9223372036854775808, 20},
		{"9223372036854775808", 0, 0},
		{"-", 0, 0},
		{"x", 0, 0},
	} {
		v, n := parseInt(tc.in)
		if v != tc.want || n != tc.n {
			t.Errorf("parseInt(%q) = %d, %d; want %d, %d", tc.in, v, n, tc.want, tc.n)
		}
	}
}

func TestRegionAreas(t *testing.T) {
	for _, tc := range []struct {
		length, step, want uint64
	}{
		{2048, 2048, 1}, {2048, 512, 4}, {2049, 512, 5}, {1, 1, 1}, {10, 0, 0}, {3, 7, 1},
	} {
		r := Region{Length: tc.length, Step: tc.step}
		if got := r.Areas(); got != tc.want {
			t.Errorf("Region{Length: %d, Step: %d}.Areas() = %d, want %d", tc.length, tc.step, got, tc.want)
		}
	}
}

type section struct {
	Name string
	Data []byte
}

// splitArchive reads the txtar format: a comment, then sections each
// introduced by a "-- name --" line. (go-internal's txtar would pull in a
// module this project does not otherwise need.)
func splitArchive(data []byte) []section {
	var out []section
	cur := -1
	for len(data) > 0 {
		line := data
		if i := strings.IndexByte(string(data), '\n'); i >= 0 {
			line, data = data[:i+1], data[i+1:]
		} else {
			data = nil
		}
		l := strings.TrimSuffix(string(line), "\n")
		if strings.HasPrefix(l, "-- ") && strings.HasSuffix(l, " --") && len(l) > 6 {
			out = append(out, section{Name: l[3 : len(l)-3], Data: []byte{}})
			cur = len(out) - 1
			continue
		}
		if cur >= 0 {
			out[cur].Data = append(out[cur].Data, line...)
		}
	}
	return out
}
