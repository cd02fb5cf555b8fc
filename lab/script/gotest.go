package script

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// RunTest runs the scripts of one suite as parallel subtests of t (named
// after the scripts) and adds each script's result to rep. p.Dir or p.Files
// say which scripts.
func RunTest(t *testing.T, suite string, p testscript.Params, rep *Report) {
	if d, ok := t.Deadline(); ok && p.Deadline.IsZero() {
		p.Deadline = d
	}
	testscript.RunT(&goT{t: t, suite: suite, rep: rep}, p)
}

// goT is testscript's T over *testing.T that also records each script's
// log, time and outcome.
type goT struct {
	t     *testing.T
	suite string
	rep   *Report

	mu    sync.Mutex
	log   strings.Builder
	start time.Time
}

func (g *goT) Skip(args ...any) {
	g.record(fmt.Sprintln(args...))
	g.t.Skip(args...)
}

func (g *goT) Fatal(args ...any) {
	g.record(fmt.Sprintln(args...))
	g.t.Fatal(args...)
}

// Error marks the script failed without stopping it (teardown uses it).
func (g *goT) Error(args ...any) {
	g.record(fmt.Sprintln(args...))
	g.t.Error(args...)
}

func (g *goT) Parallel() {
	g.t.Parallel()
	g.mu.Lock()
	g.start = time.Now()
	g.mu.Unlock()
}

func (g *goT) Log(args ...any) {
	g.record(fmt.Sprintln(args...))
	g.t.Log(args...)
}

func (g *goT) FailNow() { g.t.FailNow() }

func (g *goT) Verbose() bool { return testing.Verbose() }

func (g *goT) record(s string) {
	g.mu.Lock()
	g.log.WriteString(s)
	g.mu.Unlock()
}

func (g *goT) Run(name string, f func(testscript.T)) {
	g.t.Run(name, func(t *testing.T) {
		c := &goT{t: t, suite: g.suite, rep: g.rep, start: time.Now()}
		defer func() {
			st := Pass
			switch {
			case t.Failed():
				st = Fail
			case t.Skipped():
				st = Skip
			}
			c.mu.Lock()
			res := Result{Suite: c.suite, Name: name, Status: st, Duration: time.Since(c.start), Log: c.log.String()}
			c.mu.Unlock()
			if c.rep != nil {
				c.rep.Add(res)
			}
		}()
		f(c)
	})
}
