package filemap

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
)

// Each testdata/plan/*.txtar holds a "state" file (the group before the
// update and the file's ranges) and a "plan" file (what must be done). The
// archive comment says what the case is about.
//
// state:
//
//	mode exact|preserve
//	used ID...                  every region id on the device
//	leader ID|none
//	empty                       the group is an empty placeholder
//	member ID START+LEN [plain|pending|tag] [shared]
//	ranges START+LEN...         the file's ranges (none: no extents)
//
// plan: one line per Plan field, as renderPlan writes it.
func TestPlanUpdate(t *testing.T) {
	files, err := filepath.Glob("testdata/plan/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no test cases in testdata/plan")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			sections := map[string]string{}
			for _, f := range ar.Files {
				sections[f.Name] = string(f.Data)
			}
			state, ranges, exact, err := parseState(sections["state"])
			if err != nil {
				t.Fatalf("%s: state: %v", file, err)
			}
			got := renderPlan(PlanUpdate(state, ranges, exact))
			want := strings.TrimSpace(sections["plan"])
			if got != want {
				t.Errorf("%s\n%s\ngot:\n%s\nwant:\n%s", file, strings.TrimSpace(string(ar.Comment)), got, want)
			}
		})
	}
}

func parseState(text string) (State, []Range, bool, error) {
	var s State
	var ranges []Range
	exact := false
	for n, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		bad := func(err error) (State, []Range, bool, error) {
			return State{}, nil, false, fmt.Errorf("line %d %q: %w", n+1, line, err)
		}
		switch f[0] {
		case "mode":
			if len(f) != 2 || (f[1] != "exact" && f[1] != "preserve") {
				return bad(fmt.Errorf("want mode exact|preserve"))
			}
			exact = f[1] == "exact"
		case "used":
			ids, err := parseIDs(f[1:])
			if err != nil {
				return bad(err)
			}
			s.Used = ids
		case "leader":
			if len(f) != 2 {
				return bad(fmt.Errorf("want leader ID|none"))
			}
			if f[1] != "none" {
				id, err := strconv.ParseUint(f[1], 10, 64)
				if err != nil {
					return bad(err)
				}
				s.Leader, s.HasLeader = id, true
			}
		case "empty":
			s.Empty = true
		case "member":
			if len(f) < 3 || len(f) > 5 {
				return bad(fmt.Errorf("want member ID START+LEN [kind] [shared]"))
			}
			id, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return bad(err)
			}
			r, err := parseRange(f[2])
			if err != nil {
				return bad(err)
			}
			m := Member{ID: id, Start: r.Start, Length: r.Length}
			if len(f) == 5 {
				if f[4] != "shared" {
					return bad(fmt.Errorf("unknown member flag %q", f[4]))
				}
				m.Shared = true
			}
			if len(f) >= 4 {
				switch f[3] {
				case "plain":
				case "pending":
					m.Aux = AuxPending
				case "tag":
					m.Aux = AuxTag
				default:
					return bad(fmt.Errorf("unknown aux kind %q", f[3]))
				}
			}
			s.Members = append(s.Members, m)
		case "ranges":
			for _, a := range f[1:] {
				if a == "none" {
					continue
				}
				r, err := parseRange(a)
				if err != nil {
					return bad(err)
				}
				ranges = append(ranges, r)
			}
		default:
			return bad(fmt.Errorf("unknown keyword"))
		}
	}
	return s, ranges, exact, nil
}

func parseIDs(args []string) ([]uint64, error) {
	var ids []uint64
	for _, a := range args {
		id, err := strconv.ParseUint(a, 10, 64)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func parseRange(s string) (Range, error) {
	a, b, ok := strings.Cut(s, "+")
	if !ok {
		return Range{}, fmt.Errorf("range %q is not START+LEN", s)
	}
	start, err1 := strconv.ParseUint(a, 10, 64)
	n, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil || n == 0 {
		return Range{}, fmt.Errorf("bad range %q", s)
	}
	return Range{Start: start, Length: n}, nil
}

func renderPlan(p Plan) string {
	ids := func(key string, v []uint64) string {
		parts := []string{key}
		for _, id := range v {
			parts = append(parts, strconv.FormatUint(id, 10))
		}
		return strings.Join(parts, " ")
	}
	rs := []string{"create"}
	for _, r := range p.Create {
		rs = append(rs, r.String())
	}
	lines := []string{
		ids("mark", p.Mark),
		ids("delete", p.Delete),
		ids("keep", p.Keep),
		ids("release", p.Release),
		strings.Join(rs, " "),
		ids("newids", p.NewIDs),
		ids("members", p.Members),
		fmt.Sprintf("group %d", p.GroupID),
		ids("reset", p.Reset),
		fmt.Sprintf("empty %v", p.Empty),
		ids("clear", p.ClearCounters),
	}
	return strings.Join(lines, "\n")
}

func TestPredictIDs(t *testing.T) {
	tests := []struct {
		used, deleted []uint64
		n             int
		want          string
	}{
		{nil, nil, 3, "[0 1 2]"},
		{[]uint64{0, 1, 2}, nil, 2, "[3 4]"},
		{[]uint64{0, 2, 4}, nil, 3, "[1 3 5]"},
		{[]uint64{0, 1, 2}, []uint64{1}, 2, "[1 3]"},
		{[]uint64{5}, []uint64{5}, 1, "[0]"},
		{[]uint64{0}, nil, 0, "[]"},
	}
	for _, tc := range tests {
		if got := fmt.Sprint(PredictIDs(tc.used, tc.deleted, tc.n)); got != tc.want {
			t.Errorf("PredictIDs(%v, %v, %d) = %s, want %s", tc.used, tc.deleted, tc.n, got, tc.want)
		}
	}
}
