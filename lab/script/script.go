package script

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/dmfm/dmfm/lab"
	"github.com/dmfm/dmfm/lib/dmstats"
	"github.com/rogpeppe/go-internal/testscript"
)

// Config says what every script's environment holds.
type Config struct {
	// PathDirs are put in front of every script's PATH: the directories
	// holding the dmfm and dmfilemapd under test.
	PathDirs []string
	// Env are extra KEY=VALUE pairs for every script.
	Env []string
}

// passEnv are host variables scripts inherit (testscript starts them from an
// almost empty environment): what dmsetup needs without udev, and the lab's
// own knobs.
var passEnv = []string{"DM_DISABLE_UDEV", "DMFM_LAB_GUEST", "DMFM_LAB_APPEND", "LANG", "LC_ALL"}

// Params returns testscript parameters with the lab's commands, conditions
// and Setup. Callers add Dir or Files, and the flags they want.
func Params(cfg Config) testscript.Params {
	return testscript.Params{
		Setup:              setup(cfg),
		Cmds:               Commands(),
		Condition:          Condition,
		RequireUniqueNames: true,
	}
}

// stateKey finds a script's state among its testscript values.
type stateKey struct{}

// state is what the commands of one script share.
type state struct {
	t        any    // the script's testscript.T; see failLater
	work     string // $WORK
	labDir   string // where this script's labs keep their files ($LABDIR)
	labs     []*labEntry
	held     map[string]*os.File
	daemons  []*daemonProc
	counters map[string]dmstats.Counters
	// exclusive and shared record which side of labLock the script holds.
	exclusive, shared bool
}

func setup(cfg Config) func(*testscript.Env) error {
	return func(e *testscript.Env) error {
		// Lab backing files stay out of $WORK, which -keep may put on a
		// share that cannot back a loop device well.
		base := lab.DefaultDir()
		if err := os.MkdirAll(base, 0o755); err != nil {
			return fmt.Errorf("lab directory: %w", err)
		}
		labDir, err := os.MkdirTemp(base, "script-")
		if err != nil {
			return fmt.Errorf("lab directory: %w", err)
		}
		st := &state{
			t:        e.T(),
			work:     e.WorkDir,
			labDir:   labDir,
			held:     map[string]*os.File{},
			counters: map[string]dmstats.Counters{},
		}
		e.Values[stateKey{}] = st
		// Deferred first, so it runs last: after every lab is down.
		e.Defer(func() {
			if m, _ := mountsUnder(labDir); len(m) > 0 {
				e.T().Log(fmt.Sprintf("keeping %s: still mounted: %s", labDir, strings.Join(m, ", ")))
				return
			}
			os.RemoveAll(labDir)
		})
		path := e.Getenv("PATH")
		if len(cfg.PathDirs) > 0 {
			path = strings.Join(cfg.PathDirs, string(os.PathListSeparator)) + string(os.PathListSeparator) + path
		}
		e.Setenv("PATH", path)
		for _, k := range passEnv {
			if v, ok := os.LookupEnv(k); ok {
				e.Setenv(k, v)
			}
		}
		// `exec dmfm lab up` in a script keeps its state beside the
		// script's own labs, where leaks and teardown look.
		e.Setenv("DMFM_LAB_DIR", st.labDir)
		for _, kv := range cfg.Env {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return fmt.Errorf("script config: env %q: want KEY=VALUE", kv)
			}
			e.Setenv(k, v)
		}
		e.Setenv("LABDIR", labDir)
		startSink()
		labLock.RLock()
		st.shared = true
		e.Defer(st.releaseLock)
		return nil
	}
}

func getState(ts *testscript.TestScript) *state {
	st, ok := ts.Value(stateKey{}).(*state)
	if !ok {
		ts.Fatalf("the lab commands need script.Params' Setup (no script state)")
	}
	return st
}

// failLater marks the script failed from a deferred teardown, where
// ts.Fatalf cannot be used (it would panic outside a command). The T that
// testscript hands out (ours, or testscript's wrapper of *testing.T) has an
// Error method.
func (st *state) failLater(ts *testscript.TestScript, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	ts.Logf("FAIL: teardown: %s", msg)
	if e, ok := st.t.(interface{ Error(...any) }); ok {
		e.Error("teardown: " + msg)
	}
}

// command is one script command: its usage line, whether it takes the !
// prefix, and what it does.
type command struct {
	usage string
	neg   bool
	run   func(ts *testscript.TestScript, st *state, neg bool, args []string)
}

// commands is filled by the files that define them.
var (
	commandsMu sync.Mutex
	commands   = map[string]command{}
)

func register(name string, c command) {
	commandsMu.Lock()
	defer commandsMu.Unlock()
	if _, dup := commands[name]; dup {
		panic("script: command " + name + " registered twice")
	}
	commands[name] = c
}

// Commands returns the lab's script commands, for testscript.Params.Cmds.
func Commands() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	commandsMu.Lock()
	defer commandsMu.Unlock()
	out := make(map[string]func(*testscript.TestScript, bool, []string), len(commands))
	for name, c := range commands {
		out[name] = func(ts *testscript.TestScript, neg bool, args []string) {
			if neg && !c.neg {
				ts.Fatalf("%s does not take the ! prefix (usage: %s)", name, c.usage)
			}
			c.run(ts, getState(ts), neg, args)
		}
	}
	return out
}

// Usage returns the usage lines of every command, sorted by name.
func Usage() []string {
	commandsMu.Lock()
	defer commandsMu.Unlock()
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = commands[n].usage
	}
	return out
}

// usageErr fails the script with the command's usage and why it was wrong.
func usageErr(ts *testscript.TestScript, usage, format string, args ...any) {
	ts.Fatalf("%s (usage: %s)", fmt.Sprintf(format, args...), usage)
}

// nargs fails unless len(args) is within [lo, hi].
func nargs(ts *testscript.TestScript, usage string, args []string, lo, hi int) {
	switch {
	case len(args) < lo:
		usageErr(ts, usage, "missing arguments")
	case len(args) > hi:
		usageErr(ts, usage, "too many arguments: %q", args[hi:])
	}
}
