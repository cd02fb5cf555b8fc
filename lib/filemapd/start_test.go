package filemapd

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestStart(t *testing.T) {
	forModes(t, func(t *testing.T, m Mode) {
		fakeDir, path, f := helperSetup(t)
		t.Setenv(helperEnv, fakeDir)
		// A descriptor the caller forgot to mark close-on-exec must not reach
		// the daemon.
		leakPath := filepath.Join(t.TempDir(), "leaky")
		writeFile(t, leakPath, 0)
		leak, err := unix.Open(leakPath, unix.O_RDONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := Start(f, 12345678901, path, m, StartOptions{Binary: os.Args[0]})
		unix.Close(leak)
		if err != nil {
			t.Fatal(err)
		}
		if pid <= 0 {
			t.Fatalf("Start returned pid %d", pid)
		}
		f.Close()
		lines := waitLog(t, fakeDir, "the first update", func(l []string) bool { return countPrefix(l, "done ") == 1 })
		if got := int(fieldsOf(t, lines[0])[0]); got != pid {
			t.Fatalf("Start returned pid %d, the daemon is %d", pid, got)
		}
		checkDaemonProcess(t, pid, path, false)
		if cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); err != nil ||
			!strings.Contains(string(cmdline), "\x0012345678901\x00") {
			t.Errorf("daemon command line %q, %v: want the 11-digit group id", cmdline, err)
		}

		// The daemon follows the file.
		if m == ModePath {
			tmp := filepath.Join(filepath.Dir(path), "tmp")
			writeFile(t, tmp, 100)
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		} else {
			appendTo(t, path, 4096)
		}
		lines = waitLog(t, fakeDir, "an update after the change", func(l []string) bool { return countPrefix(l, "done ") == 2 })
		want := []uint64{uint64(pid), inoOf(t, path), 8192}
		if m == ModePath {
			want[2] = 100
		}
		if got := fieldsOf(t, lines[2]); got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
			t.Fatalf("update after the change: %q, want pid ino size %v", lines[2], want)
		}
		if err := os.Remove(filepath.Join(fakeDir, "group")); err != nil {
			t.Fatal(err)
		}
		waitGone(t, pid)
	})
}

// With verbose, the daemon keeps the caller's stderr to log to.
func TestStartVerbose(t *testing.T) {
	fakeDir, path, f := helperSetup(t)
	t.Setenv(helperEnv, fakeDir)
	pid, err := Start(f, 3, path, ModeInode, StartOptions{Binary: os.Args[0], Verbose: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		os.Remove(filepath.Join(fakeDir, "group"))
		waitGone(t, pid)
	}()
	// The daemon closes its end of the ready pipe just after it wrote to it.
	waitLog(t, fakeDir, "the first update", func(l []string) bool { return countPrefix(l, "done ") == 1 })
	checkDaemonProcess(t, pid, path, true)
}

func TestStartFailures(t *testing.T) {
	fakeDir, path, f := helperSetup(t)
	t.Setenv(helperEnv, fakeDir)
	self := StartOptions{Binary: os.Args[0]}
	tests := []struct {
		name    string
		f       *os.File
		path    string
		mode    Mode
		opts    StartOptions
		noGroup bool
		want    string
	}{
		{"no file", nil, path, ModeInode, self, false, "no file"},
		{"relative path", f, "file", ModeInode, self, false, `path "file" is not absolute`},
		{"bad mode", f, path, Mode(3), self, false, "bad mode 3"},
		{"bad verbose", f, path, ModeInode, StartOptions{Binary: os.Args[0], Verbose: 4}, false, "verbose 4 out of 0..3"},
		{"no binary", f, path, ModeInode, StartOptions{Binary: "/nonexistent/dmfilemapd"}, false, "/nonexistent/dmfilemapd"},
		{"no group", f, path, ModeInode, self, true, "group 99 did not start: group 99 does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.noGroup {
				os.Remove(filepath.Join(fakeDir, "group"))
			}
			pid, err := Start(tc.f, 99, tc.path, tc.mode, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start = %d, %v; want an error containing %q", pid, err, tc.want)
			}
			if pid != 0 {
				t.Fatalf("Start failed with pid %d", pid)
			}
		})
	}
	if l := helperLog(t, fakeDir); len(l) != 0 {
		t.Fatalf("a daemon ran: %q", l)
	}
}

func TestFindDaemon(t *testing.T) {
	if got, err := findDaemon("/x/y"); err != nil || got != "/x/y" {
		t.Fatalf("findDaemon(/x/y) = %q, %v", got, err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	next := filepath.Join(filepath.Dir(exe), "dmfilemapd")
	if _, err := os.Stat(next); err == nil {
		t.Skipf("%s exists; cannot test the search", next)
	}
	bin := t.TempDir()
	t.Setenv("PATH", bin)
	if _, err := findDaemon(""); err == nil || !strings.Contains(err.Error(), "nor in $PATH") {
		t.Fatalf("findDaemon with none anywhere: %v", err)
	}
	inPath := filepath.Join(bin, "dmfilemapd")
	if err := os.WriteFile(inPath, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := findDaemon(""); err != nil || got != inPath {
		t.Fatalf("findDaemon = %q, %v; want %s from $PATH", got, err, inPath)
	}
	if err := os.WriteFile(next, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Skipf("cannot write next to the test binary: %v", err)
	}
	defer os.Remove(next)
	if got, err := findDaemon(""); err != nil || got != next {
		t.Fatalf("findDaemon = %q, %v; want %s next to the executable", got, err, next)
	}
}
