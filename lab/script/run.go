package script

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dmfm/dmfm/lab"
	"github.com/rogpeppe/go-internal/testscript"
)

// RunOptions tune RunFiles.
type RunOptions struct {
	Config
	// Verbose shows every script's full log (testscript's verbose mode).
	Verbose bool
	// Keep leaves the scripts' work directories in place and says where.
	Keep bool
	// WorkRoot, with Keep, is where the work directories go; default a new
	// temporary directory.
	WorkRoot string
	// Update rewrites the golden files of failing cmp commands inside the
	// scripts.
	Update bool
	// Run, if set, selects the scripts whose SUITE/NAME it matches.
	Run *regexp.Regexp
	// Parallel is how many scripts run at once; default GOMAXPROCS.
	Parallel int
	// Timeout bounds the whole run; default 10 minutes.
	Timeout time.Duration
	// Out receives one line per script and the failing scripts' logs;
	// default os.Stdout.
	Out io.Writer
}

// ErrNoScripts is returned by RunFiles when no script was given or -run
// selected none.
var ErrNoScripts = errors.New("no scripts to run")

// SuiteOf names the suite of a script file: its directory's base name.
func SuiteOf(file string) string {
	abs, err := filepath.Abs(file)
	if err != nil {
		abs = file
	}
	return filepath.Base(filepath.Dir(abs))
}

// ScriptName is the name testscript gives a file: its base name without
// .txtar or .txt.
func ScriptName(file string) string {
	name := filepath.Base(file)
	for _, ext := range []string{".txtar", ".txt"} {
		if n, ok := strings.CutSuffix(name, ext); ok {
			return n
		}
	}
	return name
}

// RunFiles runs script files without go test, in parallel, and returns the
// report. An error means the run itself failed (bad file, timeout); failed
// scripts are in the report.
func RunFiles(files []string, o RunOptions) (*Report, error) {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Parallel <= 0 {
		o.Parallel = runtime.GOMAXPROCS(0)
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	bySuite := map[string][]string{}
	suiteFS := map[string]string{} // suite -> $FS
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return nil, fmt.Errorf("script %s: %w", f, err)
		}
		if st.IsDir() {
			return nil, fmt.Errorf("script %s is a directory (give its .txtar files)", f)
		}
		abs, err := filepath.Abs(f)
		if err != nil {
			return nil, err
		}
		fss, err := Filesystems(filepath.Dir(abs))
		if err != nil {
			return nil, err
		}
		if fss == nil {
			fss = []string{""}
		}
		for _, fs := range fss {
			suite := SuiteOf(abs)
			if fs != "" {
				suite += "/" + fs
			}
			if o.Run != nil && !o.Run.MatchString(suite+"/"+ScriptName(abs)) {
				continue
			}
			bySuite[suite] = append(bySuite[suite], abs)
			suiteFS[suite] = fs
		}
	}
	if len(bySuite) == 0 {
		return nil, ErrNoScripts
	}
	rep := &Report{Out: o.Out, Logs: true, AllLogs: o.Verbose}
	run := &cliRun{rep: rep, sem: make(chan struct{}, o.Parallel), verbose: o.Verbose, running: map[*cliT]bool{}}
	deadline := time.Now().Add(o.Timeout)
	var workRoot string
	if o.Keep {
		workRoot = o.WorkRoot
		if workRoot == "" {
			var err error
			if workRoot, err = os.MkdirTemp("", "dmfm-script-"); err != nil {
				return nil, err
			}
		}
		fmt.Fprintf(o.Out, "work directories are kept in %s\n", workRoot)
	}
	suites := make([]string, 0, len(bySuite))
	for s := range bySuite {
		suites = append(suites, s)
	}
	sort.Strings(suites)
	for _, suite := range suites {
		cfg := o.Config
		if fs := suiteFS[suite]; fs != "" {
			cfg.Env = append(append([]string(nil), cfg.Env...), "FS="+fs)
		}
		p := Params(cfg)
		p.Files = bySuite[suite]
		p.UpdateScripts = o.Update
		p.Deadline = deadline
		if workRoot != "" {
			p.WorkdirRoot = filepath.Join(workRoot, filepath.FromSlash(suite))
			if err := os.MkdirAll(p.WorkdirRoot, 0o755); err != nil {
				return nil, err
			}
		}
		root := &cliT{run: run, suite: suite, name: "(setup)"}
		run.wg.Add(1)
		go func() {
			defer run.wg.Done()
			defer root.finishRoot()
			testscript.RunT(root, p)
		}()
	}
	done := make(chan struct{})
	go func() {
		run.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return rep, nil
	case <-time.After(time.Until(deadline) + 30*time.Second):
		names := run.stuck()
		lab.CloseAll()
		return rep, fmt.Errorf("scripts still running after %v: %s", o.Timeout, strings.Join(names, ", "))
	}
}

// cliRun is the shared state of one RunFiles.
type cliRun struct {
	rep     *Report
	sem     chan struct{}
	verbose bool
	wg      sync.WaitGroup

	mu      sync.Mutex
	running map[*cliT]bool
}

func (r *cliRun) stuck() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for t := range r.running {
		out = append(out, t.suite+"/"+t.name)
	}
	sort.Strings(out)
	return out
}

// cliT is testscript's T for runs outside go test: every script runs in a
// goroutine of its own, at most Parallel at once.
type cliT struct {
	run         *cliRun
	suite, name string

	mu              sync.Mutex
	log             strings.Builder
	failed, skipped bool
	parallel        bool
	start           time.Time
}

func (t *cliT) record(s string) {
	t.mu.Lock()
	t.log.WriteString(s)
	t.mu.Unlock()
}

func (t *cliT) Skip(args ...any) {
	t.record(fmt.Sprintln(args...))
	t.mu.Lock()
	t.skipped = true
	t.mu.Unlock()
	runtime.Goexit()
}

func (t *cliT) Fatal(args ...any) {
	t.record(fmt.Sprintln(args...))
	t.FailNow()
}

// Error marks the script failed without stopping it (teardown uses it).
func (t *cliT) Error(args ...any) {
	t.record(fmt.Sprintln(args...))
	t.mu.Lock()
	t.failed = true
	t.mu.Unlock()
}

func (t *cliT) FailNow() {
	t.mu.Lock()
	t.failed = true
	t.mu.Unlock()
	runtime.Goexit()
}

func (t *cliT) Parallel() {
	t.run.sem <- struct{}{}
	t.mu.Lock()
	t.parallel = true
	t.start = time.Now()
	t.mu.Unlock()
}

func (t *cliT) Log(args ...any) { t.record(fmt.Sprintln(args...)) }

func (t *cliT) Verbose() bool { return t.run.verbose }

func (t *cliT) Run(name string, f func(testscript.T)) {
	c := &cliT{run: t.run, suite: t.suite, name: name, start: time.Now()}
	t.run.wg.Add(1)
	t.run.mu.Lock()
	t.run.running[c] = true
	t.run.mu.Unlock()
	go func() {
		defer t.run.wg.Done()
		defer c.finish()
		f(c)
	}()
}

func (t *cliT) finish() {
	t.run.mu.Lock()
	delete(t.run.running, t)
	t.run.mu.Unlock()
	t.mu.Lock()
	st := Pass
	switch {
	case t.failed:
		st = Fail
	case t.skipped:
		st = Skip
	}
	res := Result{Suite: t.suite, Name: t.name, Status: st, Duration: time.Since(t.start), Log: t.log.String()}
	parallel := t.parallel
	t.mu.Unlock()
	if parallel {
		<-t.run.sem
	}
	t.run.rep.Add(res)
}

// finishRoot reports a failure of the suite itself (testscript could not
// read the scripts).
func (t *cliT) finishRoot() {
	t.mu.Lock()
	failed, log := t.failed, t.log.String()
	t.mu.Unlock()
	if failed {
		t.run.rep.Add(Result{Suite: t.suite, Name: t.name, Status: Fail, Log: log})
	}
}
