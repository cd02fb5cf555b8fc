//go:build lab

package testscripts

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dmfm/dmfm/lab"
	"github.com/dmfm/dmfm/lab/labtest"
	"github.com/dmfm/dmfm/lab/script"
)

var update = flag.Bool("update", false, "rewrite the golden files of failing cmp commands (the repository must be writable: use `dmfm lab script -update` in the VM)")

var (
	report = &script.Report{Out: os.Stdout}
	binDir string
)

// defaultParallel is how many scripts run at once unless -test.parallel
// says otherwise: scripts spend much of their time waiting on the kernel
// and on dmfilemapd, so more than the lab VM's 2 CPUs pays.
const defaultParallel = 4

func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		flag.Set("test.parallel", fmt.Sprint(defaultParallel))
	}
	lab.CloseOnSignal()
	dir, cleanup, err := tools()
	if err != nil {
		fmt.Fprintf(os.Stderr, "testscripts: %v\n", err)
		os.Exit(1)
	}
	binDir = dir
	start := time.Now()
	code := m.Run()
	pass, fail, skip := report.Counts()
	if pass+fail+skip > 0 {
		fmt.Printf("scripts: %d passed, %d failed, %d skipped in %.1fs\n", pass, fail, skip, time.Since(start).Seconds())
		writeJUnit()
	}
	cleanup()
	os.Exit(code)
}

// tools returns the directory that holds the dmfm and dmfilemapd under
// test: $DMFM_BIN_DIR (the Makefile passes bin/, built on the host) or a
// fresh build.
func tools() (string, func(), error) {
	if dir := os.Getenv("DMFM_BIN_DIR"); dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return "", nil, err
		}
		for _, b := range []string{"dmfm", "dmfilemapd"} {
			if _, err := os.Stat(filepath.Join(abs, b)); err != nil {
				return "", nil, fmt.Errorf("DMFM_BIN_DIR=%s: %w (run `make build`)", dir, err)
			}
		}
		warnIfStale(abs)
		return abs, func() {}, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", nil, err
	}
	tmp, err := os.MkdirTemp("", "testscripts-bin-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	fmt.Fprintln(os.Stderr, "testscripts: building dmfm and dmfilemapd (set DMFM_BIN_DIR to use built ones)")
	cmd := exec.Command("go", "build", "-trimpath", "-o", tmp+"/", "./tools/dmfm", "./tools/dmfilemapd")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("go build: %v\n%s", err, out)
	}
	return tmp, cleanup, nil
}

// repoRoot finds the module root above the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// warnIfStale says when Go sources are newer than the binaries under test.
func warnIfStale(dir string) {
	root, err := repoRoot()
	if err != nil {
		return
	}
	oldest := time.Now()
	for _, b := range []string{"dmfm", "dmfilemapd"} {
		if st, err := os.Stat(filepath.Join(dir, b)); err == nil && st.ModTime().Before(oldest) {
			oldest = st.ModTime()
		}
	}
	var newer string
	for _, sub := range []string{"tools", "lib", "lab"} {
		filepath.WalkDir(filepath.Join(root, sub), func(p string, d fs.DirEntry, err error) error {
			if err != nil || newer != "" || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return nil
			}
			if st, err := d.Info(); err == nil && st.ModTime().After(oldest) {
				newer = p
			}
			return nil
		})
	}
	if newer != "" {
		fmt.Fprintf(os.Stderr, "testscripts: warning: %s is newer than the binaries in %s (run `make build`)\n", newer, dir)
	}
}

// suites lists the folders here that hold scripts.
func suites(t *testing.T) []string {
	ents, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if m, _ := filepath.Glob(filepath.Join(e.Name(), "*.txtar")); len(m) > 0 {
			out = append(out, e.Name())
		}
	}
	// The longest suite starts first, so that it does not end the run on
	// its own while the lab VM's CPUs idle.
	sort.Slice(out, func(i, j int) bool {
		if (out[i] == longestSuite) != (out[j] == longestSuite) {
			return out[i] == longestSuite
		}
		return out[i] < out[j]
	})
	if len(out) == 0 {
		t.Fatal("no suites (folders with .txtar files) in testscripts/")
	}
	return out
}

// longestSuite is the suite that takes longest (a minute per file system
// under emulation).
const longestSuite = "cycles"

// TestScripts runs every suite, its scripts in parallel, each with its
// own lab devices.
func TestScripts(t *testing.T) {
	labtest.RequireDM(t)
	for _, suite := range suites(t) {
		fss, err := script.Filesystems(suite)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(suite, func(t *testing.T) {
			t.Parallel()
			if fss == nil {
				runSuite(t, suite, suite, "")
				return
			}
			// One run per file system listed in the suite's FILESYSTEMS.
			for _, fs := range fss {
				t.Run(fs, func(t *testing.T) {
					t.Parallel()
					runSuite(t, suite, suite+"/"+fs, fs)
				})
			}
		})
	}
}

func runSuite(t *testing.T, dir, name, fs string) {
	cfg := script.Config{PathDirs: []string{binDir}}
	if fs != "" {
		cfg.Env = []string{"FS=" + fs}
	}
	p := script.Params(cfg)
	p.Dir = dir
	p.UpdateScripts = *update
	script.RunTest(t, name, p, report)
}

// writeJUnit writes the results to $DMFM_JUNIT, or by default to
// .cache/junit/testscripts.xml in the repository when that can be written
// (in the lab VM the repository is read-only unless shared).
func writeJUnit() {
	path := os.Getenv("DMFM_JUNIT")
	if path == "" {
		root, err := repoRoot()
		if err != nil {
			fmt.Printf("junit: not written: %v\n", err)
			return
		}
		path = filepath.Join(root, ".cache", "junit", "testscripts.xml")
	}
	var buf bytes.Buffer
	if err := report.WriteJUnit(&buf, "testscripts"); err != nil {
		fmt.Printf("junit: not written: %v\n", err)
		return
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		fmt.Printf("junit: not written (set DMFM_JUNIT to a writable path): %v\n", err)
		return
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		fmt.Printf("junit: not written (set DMFM_JUNIT to a writable path): %v\n", err)
		return
	}
	fmt.Printf("junit: %s\n", path)
}
