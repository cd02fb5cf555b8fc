//go:build !lab

// The leak test needs no device-mapper: it runs on the host (make unit). In
// the lab VM, under emulation, its 20 000 cycles would take many minutes.

package filemapd

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// openFDs counts this process's descriptors, and among them inotify
// instances.
func openFDs(t *testing.T) (fds, inotify int) {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		link, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // the directory's own descriptor, closed by now
		}
		fds++
		if strings.Contains(link, "inotify") {
			inotify++
		}
	}
	return fds, inotify
}

// 10 000 update cycles leave the descriptors, and the one inotify instance,
// as they were.
func TestRunNoLeaks(t *testing.T) {
	const cycles = 10000
	fast := Timing{Debounce: time.Nanosecond, MinInterval: time.Nanosecond, GroupCheck: time.Hour, Rescan: time.Hour, VanishWait: time.Hour}
	tests := []struct {
		mode   Mode
		change func(t *testing.T, dir, path string, i int)
	}{
		{ModeInode, func(t *testing.T, _, path string, _ int) { appendTo(t, path, 1) }},
		{ModePath, func(t *testing.T, dir, path string, i int) {
			tmp := filepath.Join(dir, "tmp")
			writeFile(t, tmp, i)
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.mode.String(), func(t *testing.T) {
			dir, path := newTestFile(t, 0)
			fds0, in0 := openFDs(t)
			l := startLoop(t, path, Config{Mode: tc.mode, Timing: fast, Logger: slog.New(slog.DiscardHandler)})
			l.fake.waitUpdates(t, 1)
			fds1, in1 := openFDs(t)
			if in1 != in0+1 {
				t.Fatalf("%d inotify instances while running, want %d", in1, in0+1)
			}
			for i := 1; i <= cycles; i++ {
				tc.change(t, dir, path, i)
				u := l.fake.waitUpdates(t, i+1)
				if got := u[i].size; got != int64(i) {
					t.Fatalf("cycle %d: update saw size %d", i, got)
				}
				if i%1000 == 0 {
					if fds, in := openFDs(t); fds != fds1 || in != in1 {
						t.Fatalf("after %d cycles: %d descriptors (%d inotify), want %d (%d)", i, fds, in, fds1, in1)
					}
				}
			}
			l.cancel()
			l.wantEnd(t, ReasonStopped)
			if fds, in := openFDs(t); fds != fds0 || in != in0 {
				t.Fatalf("after Run: %d descriptors (%d inotify), want %d (%d)", fds, in, fds0, in0)
			}
		})
	}
}
