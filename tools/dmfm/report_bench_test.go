package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dmfm/dmfm/lib/dmstats"
	"github.com/urfave/cli/v2"
)

// benchReplies records a device with a file map of n one-area regions,
// grouped, as the kernel lists and prints them.
func benchReplies(n int) map[string]string {
	var list strings.Builder
	replies := map[string]string{}
	for i := 0; i < n; i++ {
		aux := "-"
		if i == 0 {
			aux = fmt.Sprintf("DMS_GROUP=bench.img:0-%d#-", n-1)
		}
		start := uint64(1000 + 16*i)
		fmt.Fprintf(&list, "%d: %d+8 8 dmstats %s\n", i, start, aux)
		replies[fmt.Sprintf("d: @stats_print %d", i)] = fmt.Sprintf("%d+8 %d 0 %d 3 1 0 8 2 0 5 5 3 2\n", start, i%7, 8*(i%7))
	}
	replies["d: @stats_list"] = list.String()
	return replies
}

// BenchmarkReport measures a default report of a 2000-region file map
// without the kernel: listing and counters are recorded replies.
func BenchmarkReport(b *testing.B) {
	replies := benchReplies(2000)
	var out bytes.Buffer
	var o reportOpts
	var ctx *cli.Context
	cmd := statsCommand("report", "", "", "", reportFlags(true), func(c *cli.Context) error {
		ctx = c
		var err error
		o, err = parseReport(c, false)
		return err
	})
	app := &cli.App{Name: "dmfm", Commands: []*cli.Command{cmd}, Writer: &out}
	if err := app.Run([]string{"dmfm", "report", "d"}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out.Reset()
		rp := newReporter(o, []device{{Name: "d"}}, func(d device) *dmstats.Stats {
			return dmstats.New(fixtureMessenger{dev: d.Name, replies: replies})
		})
		rows, err := rp.collect(true, time.Second)
		if err != nil {
			b.Fatal(err)
		}
		if err := rp.render(ctx, rows, time.Now(), time.Second, false, false); err != nil {
			b.Fatal(err)
		}
	}
	if lines := strings.Count(out.String(), "\n"); lines != 2002 {
		b.Fatalf("%d lines", lines)
	}
}

// TestReportParallel checks that reading the counters over several handles
// gives the same report as one handle.
func TestReportParallel(t *testing.T) {
	replies := benchReplies(minParallel * 3)
	render := func(parallel int) string {
		var out bytes.Buffer
		o, ctx := parseReportArgs(t, []string{"report", "-o", "+read_count,members", "d"}, &out)
		statsFor := func(d device) *dmstats.Stats {
			return dmstats.New(fixtureMessenger{dev: d.Name, replies: replies})
		}
		rp := newReporter(o, []device{{Name: "d"}}, statsFor)
		var used []int
		if parallel > 1 {
			rp.parallel = parallel
			rp.workerStats = func(d device, w int) (*dmstats.Stats, error) {
				used = append(used, w)
				return statsFor(d), nil
			}
		}
		rows, err := rp.collect(true, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := rp.render(ctx, rows, fixtureTime, time.Second, false, false); err != nil {
			t.Fatal(err)
		}
		if parallel > 1 && len(used) != parallel-1 {
			t.Errorf("%d workers asked for, %v handles opened", parallel, used)
		}
		return out.String()
	}
	one := render(1)
	if strings.Count(one, "\n") != minParallel*3+2 {
		t.Fatalf("sequential report has %d lines", strings.Count(one, "\n"))
	}
	if four := render(4); four != one {
		t.Errorf("parallel report differs from the sequential one")
	}
}
