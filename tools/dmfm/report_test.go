package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dmfm/dmfm/lib/dmstats"
	"github.com/rogpeppe/go-internal/txtar"
	"github.com/urfave/cli/v2"
)

var update = flag.Bool("update", false, "rewrite the golden outputs in testdata/report")

// fixtureMessenger answers dm-stats messages for one device from recorded
// replies: the files "<device>: <message>" of a txtar archive.
type fixtureMessenger struct {
	dev     string
	replies map[string]string
}

func (m fixtureMessenger) Message(msg string) (string, error) {
	r, ok := m.replies[m.dev+": "+msg]
	if !ok {
		return "", fmt.Errorf("fixture has no reply to %q on %s", msg, m.dev)
	}
	return r, nil
}

// parseReportArgs runs the real command-line parser of list or report on
// args and returns the options and the command's context.
func parseReportArgs(t *testing.T, args []string, out *bytes.Buffer) (reportOpts, *cli.Context) {
	t.Helper()
	list := args[0] == "list"
	var o reportOpts
	var ctx *cli.Context
	var perr error
	cmd := statsCommand(args[0], "", "", "", reportFlags(!list), func(c *cli.Context) error {
		ctx = c
		o, perr = parseReport(c, list)
		return nil
	})
	app := &cli.App{Name: "dmfm", Commands: []*cli.Command{cmd}, Writer: out, ErrWriter: out}
	if err := app.Run(append([]string{"dmfm"}, args...)); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	if perr != nil {
		t.Fatalf("%v: %v", args, perr)
	}
	return o, ctx
}

// fixtureDevices reads "name major minor [uuid]" lines.
func fixtureDevices(t *testing.T, text string) []device {
	t.Helper()
	var devs []device
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			t.Fatalf("bad device line %q", line)
		}
		maj, err1 := strconv.ParseUint(f[1], 10, 32)
		min, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil {
			t.Fatalf("bad device line %q", line)
		}
		d := device{Name: f[0], Major: uint32(maj), Minor: uint32(min)}
		if len(f) > 3 {
			d.UUID = f[3]
		}
		devs = append(devs, d)
	}
	return devs
}

// fixtureTime is the time stamped on JSON reports made from fixtures.
var fixtureTime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// TestReportFixtures runs list and report over recorded kernel replies and
// compares the output with the golden "want" file of each archive. The
// archive's comment is the command line.
func TestReportFixtures(t *testing.T) {
	paths, err := filepath.Glob("testdata/report/*.txtar")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(path)
			if err != nil {
				t.Fatal(err)
			}
			files := map[string]string{}
			for _, f := range ar.Files {
				files[f.Name] = string(f.Data)
			}
			args := splitWords(strings.TrimSpace(string(ar.Comment)))
			var out bytes.Buffer
			o, ctx := parseReportArgs(t, args, &out)
			devs := fixtureDevices(t, files["devices"])
			rp := newReporter(o, devs, func(d device) *dmstats.Stats {
				return dmstats.New(fixtureMessenger{dev: d.Name, replies: files})
			})
			rows, err := rp.collect(true, o.interval)
			if err != nil {
				t.Fatal(err)
			}
			if err := rp.render(ctx, rows, fixtureTime, o.interval, false, false); err != nil {
				t.Fatal(err)
			}
			got := out.String()
			if *update {
				var kept []txtar.File
				for _, f := range ar.Files {
					if f.Name != "want" {
						kept = append(kept, f)
					}
				}
				ar.Files = append(kept, txtar.File{Name: "want", Data: []byte(got)})
				if err := os.WriteFile(path, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, ok := files["want"]
			if !ok {
				t.Fatalf("%s has no want file (run with -update to write it, then check it)", path)
			}
			if got != want {
				t.Errorf("%s: output differs\n--- got\n%s--- want\n%s", strings.Join(args, " "), got, want)
			}
		})
	}
}
