package filemap

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dmfm/dmfm/lib/dmstats"
	"github.com/rogpeppe/go-internal/txtar"
)

// Each testdata/resolve/*.txtar holds "list" (a @stats_list reply as the
// kernel writes it), "want" (the group id Update is given) and "view" (what
// resolve must find, as renderView writes it, or "error <text>").
func TestResolve(t *testing.T) {
	files, err := filepath.Glob("testdata/resolve/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no test cases in testdata/resolve")
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
			regions, err := dmstats.ParseList(sections["list"], "")
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			want, err := strconv.ParseUint(strings.TrimSpace(sections["want"]), 10, 64)
			if err != nil {
				t.Fatalf("want: %v", err)
			}
			var got string
			v, err := resolve(regions, want)
			if err != nil {
				if !errors.Is(err, ErrNoGroup) {
					t.Errorf("error %v does not wrap ErrNoGroup", err)
				}
				got = "error " + err.Error()
			} else {
				got = renderView(v)
			}
			if exp := strings.TrimSpace(sections["view"]); got != exp {
				t.Errorf("%s\ngot:\n%s\nwant:\n%s", strings.TrimSpace(string(ar.Comment)), got, exp)
			}
		})
	}
}

func sharedLine(v view) string {
	var ids []string
	for _, r := range v.members {
		if v.shared[r.ID] {
			ids = append(ids, strconv.FormatUint(r.ID, 10))
		}
	}
	return strings.TrimSpace("shared " + strings.Join(ids, " "))
}

func renderView(v view) string {
	kinds := []string{"plain", "pending", "tag"}
	var ms []string
	for _, r := range v.members {
		ms = append(ms, fmt.Sprintf("%d:%s", r.ID, kinds[auxKind(r.AuxData)]))
	}
	return strings.Join([]string{
		fmt.Sprintf("id %d", v.id),
		fmt.Sprintf("leader %v", v.hasLeader),
		fmt.Sprintf("alias %q", v.alias),
		fmt.Sprintf("user %q", v.user),
		fmt.Sprintf("empty %v", v.empty),
		"members " + strings.Join(ms, " "),
		sharedLine(v),
		fmt.Sprintf("template %d %s precise=%v bounds=%v", v.template.ID, v.template.ProgramID, v.template.Precise, v.template.Bounds),
	}, "\n")
}
