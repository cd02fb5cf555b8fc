//go:build lab

package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkReportKernel runs `dmfm report` in-process on a device with a
// file map of benchExtents regions, for profiling the whole path against the
// real kernel (go test -cpuprofile).
func BenchmarkReportKernel(b *testing.B) {
	l := benchLab(b)
	path := filepath.Join(l.Mountpoint, "bench.img")
	benchFragment(b, path, 1, benchExtents)
	if out, errs, code := runCLI(b, "create", "--filemap", "--nomonitor", path); code != 0 {
		b.Fatalf("create: %s%s", out, errs)
	}
	b.Cleanup(func() { runCLI(b, "delete", "--allregions", l.DMName) })
	for b.Loop() {
		out, errs, code := runCLI(b, "report", l.DMName)
		if code != 0 || strings.Count(out, "\n") < benchExtents {
			b.Fatalf("report: exit %d, %d lines, %s", code, strings.Count(out, "\n"), errs)
		}
	}
}
