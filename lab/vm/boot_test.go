package vm_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// These tests boot real VMs through the dmfm binary, built here statically as
// `make` builds it: qemu-system-x86_64 and the lab kernel (fetched on first
// use) are needed, and `make deps` installs them. Nothing here is skipped: a
// host that cannot boot the lab fails.

var (
	buildOnce sync.Once
	dmfmBin   string
	buildErr  error
)

func dmfm(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dmfm-vm-test-")
		if err != nil {
			buildErr = err
			return
		}
		dmfmBin = filepath.Join(dir, "dmfm")
		cmd := exec.Command("go", "build", "-o", dmfmBin, "github.com/dmfm/dmfm/tools/dmfm")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = err
			dmfmBin = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build dmfm: %v\n%s", buildErr, dmfmBin)
	}
	return dmfmBin
}

type result struct {
	code           int
	stdout, stderr string
}

func labRun(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(dmfm(t), append([]string{"lab", "run"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, o.String(), e.String()}
}

func TestRun(t *testing.T) {
	script := filepath.Join(t.TempDir(), "hello.sh") // under the host's /tmp: shared automatically
	if err := os.WriteFile(script, []byte("echo hello from $(uname -n)\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		env        []string // for dmfm lab run
		args       []string
		code       int
		stdout     string // substring
		stderr     string // substring
		notStdout  string
		consoleLog bool // the error names a kept console log
	}{
		{name: "exit status and separate streams", args: []string{"--", "sh", "-c", "echo out; echo err >&2; exit 7"},
			code: 7, stdout: "out\n", stderr: "err\n", notStdout: "err"},
		{name: "dm driver", args: []string{"--", "dmsetup", "version"}, stdout: "Driver version:"},
		{name: "script under host tmp", args: []string{"--", "sh", script}, stdout: "hello from dmfm-lab"},
		{name: "command not found", args: []string{"--", "no-such-command-xyz"}, code: 127, stderr: "command not found"},
		{name: "leak check", args: []string{"--leak-check", "--", "sh", "-c", "truncate -s 1M /tmp/f && losetup -f /tmp/f"},
			code: 124, stderr: "loop device loop0 backed by /tmp/f"},
		{name: "kernel panic", args: []string{"--", "sh", "-c", "echo c > /proc/sysrq-trigger; sleep 30"},
			code: 125, stderr: "kernel panic", consoleLog: true},
		{name: "timeout", args: []string{"--timeout", "40s", "--", "sleep", "600"},
			code: 125, stderr: "timed out after 40s", consoleLog: true},
		// The guest's test hook stops the first boot before it is done;
		// the watchdog kills it and boots again.
		{name: "boot hang retried", env: []string{"DMFM_LAB_APPEND=dmfm.hang_boot=1"},
			args: []string{"--boot-timeout", "45s", "--", "sh", "-c", "echo booted; exit 7"},
			code: 7, stdout: "booted\n", stderr: "did not boot within 45s (no panic in the console log); booting once more", consoleLog: true},
		{name: "boot hang twice", env: []string{"DMFM_LAB_APPEND=dmfm.hang_boot=2"},
			args: []string{"--boot-timeout", "15s", "--", "true"},
			code: 125, stderr: "did not boot within 15s, twice", consoleLog: true},
		{name: "bad env flag", args: []string{"--env", "NOEQUALS", "--", "true"}, code: 1, stderr: `--env "NOEQUALS": want K=V`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := labRun(t, tc.env, tc.args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tc.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout, tc.stdout) {
				t.Errorf("stdout %q lacks %q", r.stdout, tc.stdout)
			}
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr %q lacks %q", r.stderr, tc.stderr)
			}
			if tc.notStdout != "" && strings.Contains(r.stdout, tc.notStdout) {
				t.Errorf("stdout %q has %q", r.stdout, tc.notStdout)
			}
			if tc.consoleLog {
				i := strings.Index(r.stderr, "console log: ")
				if i < 0 {
					t.Fatalf("no console log named in %q", r.stderr)
				}
				log := strings.Fields(r.stderr[i+len("console log: "):])[0]
				if _, err := os.Stat(log); err != nil {
					t.Errorf("console log: %v", err)
				}
				os.RemoveAll(filepath.Dir(log))
			}
		})
	}
}

// BenchmarkBootToCommand measures `dmfm lab run -- true`: boot, run, power off.
func BenchmarkBootToCommand(b *testing.B) {
	bin := dmfm(b)
	if out, err := exec.Command(bin, "lab", "run", "--", "true").CombinedOutput(); err != nil {
		b.Fatalf("warm-up: %v\n%s", err, out)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if out, err := exec.Command(bin, "lab", "run", "--", "true").CombinedOutput(); err != nil {
			b.Fatalf("%v\n%s", err, out)
		}
	}
}
