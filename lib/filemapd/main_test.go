package filemapd

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperSetup makes a file and a fileFake directory whose group exists.
func helperSetup(t *testing.T) (fakeDir, path string, f *os.File) {
	t.Helper()
	fakeDir = t.TempDir()
	writeFile(t, filepath.Join(fakeDir, "group"), 0)
	_, path = newTestFile(t, 4096)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return fakeDir, path, f
}

func TestMainSignals(t *testing.T) {
	t.Run("SIGHUP re-reads now", func(t *testing.T) {
		fakeDir, path, f := helperSetup(t)
		cmd := helperCmd(t, fakeDir, 0, "3", "5", path, "inode", "1")
		cmd.ExtraFiles = []*os.File{f}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		for n := 1; n <= 3; n++ {
			waitLog(t, fakeDir, fmt.Sprintf("update %d", n), func(l []string) bool { return countPrefix(l, "done ") == n })
			if n < 3 {
				// Nothing changed and rescans are an hour apart: only
				// the signal can cause the next update.
				if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr:\n%s", err, stderr.String())
		}
	})
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(signalName(sig)+" finishes the update", func(t *testing.T) {
			fakeDir, path, f := helperSetup(t)
			cmd := helperCmd(t, fakeDir, 500*time.Millisecond, "3", "5", path, "path", "1")
			cmd.ExtraFiles = []*os.File{f}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			waitLog(t, fakeDir, "an update to start", func(l []string) bool { return countPrefix(l, "start ") == 1 })
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("exit after %v: %v; stderr:\n%s", sig, err, stderr.String())
			}
			if l := helperLog(t, fakeDir); countPrefix(l, "done ") != 1 {
				t.Fatalf("the update in progress did not finish: %q", l)
			}
			if !strings.Contains(stderr.String(), "reason=stopped") {
				t.Fatalf("no exit line in the log:\n%s", stderr.String())
			}
		})
	}
}

func TestMainExitStatus(t *testing.T) {
	tests := []struct {
		name       string
		argv       func(path string) []string
		noGroup    bool
		after      func(t *testing.T, fakeDir, path string) // once the daemon runs
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "help", argv: func(string) []string { return []string{"--help"} }, wantStdout: "usage: dmfilemapd"},
		{name: "too few", argv: func(string) []string { return []string{"3", "5"} }, wantCode: 2, wantStderr: "need at least 4 arguments"},
		{name: "bad group", argv: func(p string) []string { return []string{"3", "5x", p, "inode"} }, wantCode: 2, wantStderr: `bad group_id "5x"`},
		{name: "bad mode", argv: func(p string) []string { return []string{"3", "5", p, "both", "1"} }, wantCode: 2, wantStderr: `bad mode "both"`},
		{name: "fd not open", argv: func(p string) []string { return []string{"9", "5", p, "inode", "1"} }, wantCode: 1, wantStderr: "fd 9: bad file descriptor"},
		{name: "fd not a file", argv: func(p string) []string { return []string{"0", "5", p, "inode", "1"} }, wantCode: 1, wantStderr: "fd 0 is not a regular file"},
		{name: "no such group", argv: func(p string) []string { return []string{"3", "12345678", p, "inode", "1"} }, noGroup: true, wantCode: 1, wantStderr: "group 12345678 does not exist"},
		{name: "group deleted", argv: func(p string) []string { return []string{"3", "12345678", p, "inode", "1"} },
			after: func(t *testing.T, fakeDir, _ string) {
				if err := os.Remove(filepath.Join(fakeDir, "group")); err != nil {
					t.Fatal(err)
				}
			}, wantStderr: `reason="group deleted"`},
		{name: "unlinked", argv: func(p string) []string { return []string{"3", "5", p, "inode", "1"} },
			after: func(t *testing.T, _, path string) {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			}, wantStderr: `reason="file unlinked and closed"`},
		{name: "vanished", argv: func(p string) []string { return []string{"3", "5", p, "path", "1"} },
			after: func(t *testing.T, _, path string) {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			}, wantStderr: `reason="file gone from its path"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fakeDir, path, f := helperSetup(t)
			if tc.noGroup {
				os.Remove(filepath.Join(fakeDir, "group"))
			}
			cmd := helperCmd(t, fakeDir, 0, tc.argv(path)...)
			cmd.ExtraFiles = []*os.File{f}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			f.Close() // the daemon's copy is the only one left
			if tc.after != nil {
				waitLog(t, fakeDir, "the first update", func(l []string) bool { return countPrefix(l, "done ") == 1 })
				tc.after(t, fakeDir, path)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("still running; stderr:\n%s", stderr.String())
			}
			if got := exitCode(err); got != tc.wantCode {
				t.Fatalf("exit %d (%v), want %d; stderr:\n%s", got, err, tc.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.wantStdout) {
				t.Errorf("stdout %q, want it to contain %q", stdout.String(), tc.wantStdout)
			}
			if !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("stderr %q, want it to contain %q", stderr.String(), tc.wantStderr)
			}
		})
	}
}

// Started the way lvm2's dmstats does (fork, exec with foreground 0 and the
// file under any descriptor number, wait), dmfilemapd detaches: the program
// started exits 0 once its daemon is ready, and the daemon runs on alone.
func TestMainDetachesLikeLvm2Expects(t *testing.T) {
	fakeDir, path, f := helperSetup(t)
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	cmd := helperCmd(t, fakeDir, 0, "5", "87654321", path, "inode", "0")
	cmd.ExtraFiles = []*os.File{devNull, devNull, f} // the file is fd 5
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("dmfilemapd: %v; stderr:\n%s", err, stderr.String())
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("detaching took %v", took)
	}
	lines := waitLog(t, fakeDir, "the daemon's first update", func(l []string) bool { return countPrefix(l, "done ") == 1 })
	pid := int(fieldsOf(t, lines[0])[0])
	if pid == cmd.Process.Pid {
		t.Fatal("the program started did not detach: it is the daemon")
	}
	checkDaemonProcess(t, pid, path, false)
	if stderr.Len() != 0 {
		t.Errorf("the daemon wrote to the caller's stderr: %q", stderr.String())
	}
	appendTo(t, path, 4096)
	waitLog(t, fakeDir, "an update after an append", func(l []string) bool { return countPrefix(l, "done ") == 2 })
	if err := os.Remove(filepath.Join(fakeDir, "group")); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)
}

// A detaching dmfilemapd whose daemon cannot start reports it and exits 1.
func TestMainDetachFailure(t *testing.T) {
	fakeDir, path, f := helperSetup(t)
	os.Remove(filepath.Join(fakeDir, "group"))
	cmd := helperCmd(t, fakeDir, 0, "3", "42", path, "inode", "0")
	cmd.ExtraFiles = []*os.File{f}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if exitCode(err) != 1 || !strings.Contains(stderr.String(), "group 42 does not exist") {
		t.Fatalf("exit %v, stderr %q; want 1 and the daemon's reason", err, stderr.String())
	}
}
