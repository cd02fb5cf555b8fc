package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dmfm/dmfm/lib/dm"
)

// TestMain lets a test run this binary as the dmfm command itself
// (DMFM_TEST_AS_DMFM=1), to try it under another user id.
func TestMain(m *testing.M) {
	if os.Getenv("DMFM_TEST_AS_DMFM") == "1" {
		os.Exit(run(os.Args))
	}
	os.Exit(m.Run())
}

// runCLI runs dmfm in-process with args, as run does, and returns what it
// wrote and its exit status.
func runCLI(t testing.TB, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	app := newApp()
	var out, errb bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errb
	err := app.Run(append([]string{"dmfm"}, args...))
	var ec exitCode
	switch {
	case err == nil:
	case errors.As(err, &ec):
		code = int(ec)
	default:
		fmt.Fprintf(&errb, "dmfm: %v\n", err)
		code = 1
	}
	return out.String(), errb.String(), code
}

// hasDM reports whether this kernel offers device-mapper (inside the lab).
func hasDM() bool {
	c, err := dm.Open()
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// splitWords splits a command line on blanks; '...' and "..." quote.
func splitWords(s string) []string {
	var out []string
	var cur strings.Builder
	in := false
	var quote byte
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quote == 0 && (ch == '\'' || ch == '"'):
			quote, in = ch, true
		case quote != 0 && ch == quote:
			quote = 0
		case (ch == ' ' || ch == '\t') && quote == 0:
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(ch)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

// readCases reads "ARGS ==> WANT" lines (# comments, blank lines skipped).
func readCases(t *testing.T, path string) [][2]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][2]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		args, want, ok := strings.Cut(line, "==>")
		if !ok {
			t.Fatalf("%s: line without ==>: %q", path, line)
		}
		out = append(out, [2]string{strings.TrimSpace(args), strings.TrimSpace(want)})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestOptionErrors checks that every bad command line fails with exit
// status 1, a message naming the problem, and no output, before anything
// touches the kernel: on a host without device-mapper the messages are the
// same as in the lab.
func TestOptionErrors(t *testing.T) {
	for _, tc := range readCases(t, "testdata/option_errors.txt") {
		t.Run(tc[0], func(t *testing.T) {
			stdout, stderr, code := runCLI(t, splitWords(tc[0])...)
			if code != 1 {
				t.Errorf("exit status %d, want 1 (stderr %q)", code, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if !strings.HasPrefix(stderr, "dmfm: ") || !strings.Contains(stderr, tc[1]) {
				t.Errorf("stderr %q, want it to contain %q", stderr, tc[1])
			}
			if strings.Contains(stderr, "device-mapper is not available") || strings.Contains(stderr, "not found") {
				t.Errorf("options were not rejected before the kernel was asked: %q", stderr)
			}
		})
	}
}

// TestOptionsAccepted checks command lines that are valid: they get as far
// as the kernel, which has no such device (lab) or no device-mapper at all
// (host), or as the file, which is not on a dm device.
func TestOptionsAccepted(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "data")
	if err := os.WriteFile(file, []byte("data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	withDM := hasDM()
	for _, tc := range readCases(t, "testdata/option_ok.txt") {
		args := splitWords(strings.ReplaceAll(tc[0], "$FILE", file))
		t.Run(tc[0], func(t *testing.T) {
			_, stderr, code := runCLI(t, args...)
			if code != 1 {
				t.Fatalf("exit status %d, want 1 (stderr %q)", code, stderr)
			}
			var want string
			switch {
			case tc[1] == "file":
				want = "device-mapper device" // "not on a ..." or "which is not a ..."
			case withDM:
				want = `device "dmfm-no-such-dev" not found`
			default:
				want = fmt.Sprintf("%s: device-mapper is not available on this kernel; try `dmfm lab run -- dmfm %s ...`", args[0], args[0])
			}
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr %q, want it to contain %q", stderr, want)
			}
		})
	}
}

// TestHelp checks that every command prints its help and exits 0.
func TestHelp(t *testing.T) {
	names := []string{""}
	for _, c := range statsCommands() {
		names = append(names, c.Name)
	}
	for _, name := range names {
		for _, h := range []string{"--help", "-h"} {
			args := []string{h}
			if name != "" {
				args = []string{name, h}
			}
			stdout, stderr, code := runCLI(t, args...)
			if code != 0 || stderr != "" {
				t.Errorf("dmfm %s %s: exit %d, stderr %q", name, h, code, stderr)
			}
			if !strings.Contains(stdout, "USAGE") || !strings.Contains(stdout, "dmfm "+name) {
				t.Errorf("dmfm %s %s: no usage in %q", name, h, stdout)
			}
		}
	}
	// The global options come after the command name too.
	stdout, _, code := runCLI(t, "create", "--help")
	if code != 0 || !strings.Contains(stdout, "--group-format") || !strings.Contains(stdout, "--filemap") {
		t.Errorf("create --help does not list its options: %q", stdout)
	}
}

// TestFieldHelp checks that -o help lists the fields and exits 0.
func TestFieldHelp(t *testing.T) {
	stdout, stderr, code := runCLI(t, "report", "-o", "help")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, f := range []string{"region_id", "reads_per_sec", "hist_count", "util", "read_count"} {
		if !strings.Contains(stdout, "  "+f+" ") {
			t.Errorf("report -o help does not list %s", f)
		}
	}
	stdout, _, _ = runCLI(t, "list", "-o", "help")
	if strings.Contains(stdout, "reads_per_sec") || !strings.Contains(stdout, "region_len") {
		t.Errorf("list -o help lists counter fields or misses region_len: %q", stdout)
	}
}

// TestNotRoot runs dmfm as an unprivileged user: it must refuse with a
// clear message once the options are valid, and before that report bad
// options as usual.
func TestNotRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to another user")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "dmfm-nonroot-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "dmfm")
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"list", "dmfm-no-such-dev"}, "list: must be run as root"},
		{[]string{"delete", "--allregions", "dmfm-no-such-dev"}, "delete: must be run as root"},
		{[]string{"delete", "dmfm-no-such-dev"}, "say which regions"},
	} {
		cmd := exec.Command(bin, tc.args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "DMFM_TEST_AS_DMFM=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("%v: %v, want exit status 1 (stderr %q)", tc.args, err, errb.String())
		}
		if !strings.Contains(errb.String(), tc.want) || out.Len() != 0 {
			t.Errorf("%v: stdout %q, stderr %q, want only %q", tc.args, out.String(), errb.String(), tc.want)
		}
	}
}
