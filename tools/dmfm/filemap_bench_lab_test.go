//go:build lab

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dmfm/dmfm/lab"
	"github.com/dmfm/dmfm/lab/labtest"
)

// benchExtents is the size of the benchmark's file map, and benchGrowth
// the extents added before update_filemap.
const (
	benchExtents = 2000
	benchGrowth  = 200
)

// benchTool runs one side of the benchmark as a separate process, as a
// user would: lvm2's dmstats, or this test binary acting as dmfm.
type benchTool struct {
	name string
	cmd  func(args ...string) *exec.Cmd
	// extra options of create and update_filemap
	createArgs []string
	times      map[string]time.Duration
	runs       int
}

func (bt *benchTool) run(b *testing.B, op string, args ...string) string {
	b.Helper()
	cmd := bt.cmd(args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		b.Fatalf("%s %s: %v\n%s%s", bt.name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	if op != "" {
		bt.times[op] += d
	}
	return out.String()
}

// cycle maps the file, grows it, updates the map, reports and deletes
// every region; the file is cut back to its first benchExtents extents
// afterwards. Only the four commands are timed.
func (bt *benchTool) cycle(b *testing.B, dev, path string, baseSize int64, timed bool) {
	b.Helper()
	op := func(name string) string {
		if timed {
			return name
		}
		return ""
	}
	out := bt.run(b, op("create"), append(append([]string{"create", "--filemap", "--nomonitor"}, bt.createArgs...), path)...)
	m := createdRE.FindStringSubmatch(out)
	if m == nil {
		b.Fatalf("%s create printed %q", bt.name, out)
	}
	benchFragment(b, path, benchExtents+1, benchGrowth)
	out = bt.run(b, op("update"), "update_filemap", "--nomonitor", "--groupid", m[3], path)
	if !regexp.MustCompile(`Updated group ID \d+ with \d+ region\(s\)\.`).MatchString(out) {
		b.Fatalf("%s update_filemap printed %q", bt.name, out)
	}
	if rep := bt.run(b, op("report"), "report", dev); strings.Count(rep, "\n") < benchExtents {
		b.Fatalf("%s report has %d lines", bt.name, strings.Count(rep, "\n"))
	}
	bt.run(b, op("delete"), "delete", "--allregions", dev)
	if err := os.Truncate(path, baseSize); err != nil {
		b.Fatal(err)
	}
	if timed {
		bt.runs++
	}
}

// benchFragment writes n 4 KiB blocks from block 2*from on, a hole after
// each, syncing each so that each gets its own extent.
func benchFragment(b *testing.B, path string, from, n int) {
	b.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := bytes.Repeat([]byte{0x5a}, 4096)
	for i := 0; i < n; i++ {
		if _, err := f.WriteAt(buf, int64(2*(from+i))*4096); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFilemapVsDmstats times dmfm and lvm2's dmstats side by side on
// a file of about 2000 extents (xfs, allocsize=4k): create --filemap,
// update_filemap after 200 more extents, report, and delete --allregions.
// Each iteration runs both tools, alternating which goes first, after an
// untimed warm-up of each. It reports ms per command for each tool and the
// ratio dmfm/dmstats (the goal is 0.5 or less).
func BenchmarkFilemapVsDmstats(b *testing.B) {
	l := benchLab(b)
	dev := l.DMName
	path := filepath.Join(l.Mountpoint, "bench.img")
	benchFragment(b, path, 1, benchExtents)
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	baseSize := st.Size()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	dmfm := &benchTool{name: "dmfm", times: map[string]time.Duration{},
		createArgs: []string{"--group-format", "legacy"},
		cmd: func(args ...string) *exec.Cmd {
			c := exec.Command(exe, args...)
			c.Env = append(os.Environ(), "DMFM_TEST_AS_DMFM=1")
			return c
		}}
	dmstats := &benchTool{name: "dmstats", times: map[string]time.Duration{},
		cmd: func(args ...string) *exec.Cmd {
			c := exec.Command("dmstats", args...)
			c.Env = append(os.Environ(), "DM_DISABLE_UDEV=1")
			return c
		}}
	tools := []*benchTool{dmfm, dmstats}
	for _, t := range tools {
		t.cycle(b, dev, path, baseSize, false)
	}
	b.ResetTimer()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		order := tools
		if i%2 == 1 {
			order = []*benchTool{dmstats, dmfm}
		}
		for _, t := range order {
			t.cycle(b, dev, path, baseSize, true)
		}
	}
	for _, op := range []string{"create", "update", "report", "delete"} {
		ours := float64(dmfm.times[op].Microseconds()) / 1000 / float64(dmfm.runs)
		theirs := float64(dmstats.times[op].Microseconds()) / 1000 / float64(dmstats.runs)
		b.ReportMetric(ours, "dmfm-"+op+"-ms/op")
		b.ReportMetric(theirs, "dmstats-"+op+"-ms/op")
		b.ReportMetric(ours/theirs, op+"-ratio")
	}
}

func benchLab(b *testing.B) *lab.Lab {
	b.Helper()
	labtest.RequireDM(b)
	l, err := lab.Up(b.Context(), lab.Spec{Size: 512 << 20, FS: lab.FSXFS, MountOpts: "allocsize=4k", Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := l.Close(); err != nil {
			b.Errorf("lab close: %v", err)
		}
	})
	return l
}
