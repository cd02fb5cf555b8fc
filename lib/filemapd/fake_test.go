package filemapd

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeCall is what the fake updater saw of the file at one update.
type fakeCall struct {
	ino  uint64
	size int64
}

// fakeUpdater records the calls of the watch loop. The group exists until
// deleted; updates can be slowed down or made to fail.
type fakeUpdater struct {
	mu       sync.Mutex
	exists   bool
	checkErr error
	updates  []fakeCall
	checks   int
	delay    time.Duration
	fail     int // fail this many updates from now on
	active   bool
	notify   chan struct{}
}

func newFake() *fakeUpdater {
	return &fakeUpdater{exists: true, notify: make(chan struct{}, 1)}
}

func (f *fakeUpdater) poke() {
	select {
	case f.notify <- struct{}{}:
	default:
	}
}

func (f *fakeUpdater) Update(file *os.File) (Result, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(file.Fd()), &st); err != nil {
		return Result{}, err
	}
	f.mu.Lock()
	if f.active {
		f.mu.Unlock()
		panic("concurrent updates")
	}
	if f.fail > 0 {
		f.fail--
		f.mu.Unlock()
		f.poke()
		return Result{}, errors.New("injected failure")
	}
	f.active = true
	f.updates = append(f.updates, fakeCall{ino: st.Ino, size: st.Size})
	delay := f.delay
	n := len(f.updates)
	f.mu.Unlock()
	f.poke()
	time.Sleep(delay)
	f.mu.Lock()
	f.active = false
	f.mu.Unlock()
	f.poke()
	return Result{GroupID: 7, Regions: n, Kept: n - 1, Added: 1, Removed: 1}, nil
}

func (f *fakeUpdater) GroupExists() (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checks++
	f.poke()
	return f.exists, f.checkErr
}

func (f *fakeUpdater) deleteGroup() {
	f.mu.Lock()
	f.exists = false
	f.mu.Unlock()
}

func (f *fakeUpdater) snapshot() (updates []fakeCall, checks int, active bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeCall(nil), f.updates...), f.checks, f.active
}

// waitFake waits until cond holds for the fake's state.
func (f *fakeUpdater) wait(t *testing.T, what string, cond func(updates []fakeCall, checks int) bool) []fakeCall {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		u, c, _ := f.snapshot()
		if cond(u, c) {
			return u
		}
		select {
		case <-f.notify:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s: %d updates %v, %d group checks", what, len(u), u, c)
		}
	}
}

// waitUpdates waits for at least n updates and returns them all.
func (f *fakeUpdater) waitUpdates(t *testing.T, n int) []fakeCall {
	t.Helper()
	return f.wait(t, fmt.Sprintf("%d updates", n), func(u []fakeCall, _ int) bool { return len(u) >= n })
}

// The test binary doubles as dmfilemapd for the tests that need a process of
// their own (signals, the launcher): with helperEnv set it runs Program.Main
// with a fileFake and fast timings.
const (
	helperEnv   = "FILEMAPD_TEST_HELPER" // the directory of the fileFake
	helperDelay = "FILEMAPD_TEST_DELAY"  // how long each update takes
)

var helperTiming = Timing{
	Debounce:    2 * time.Millisecond,
	MinInterval: 20 * time.Millisecond,
	GroupCheck:  100 * time.Millisecond,
	Rescan:      time.Hour,
	VanishWait:  200 * time.Millisecond,
	Retry:       50 * time.Millisecond,
}

// realHelperEnv makes the test binary a dmfilemapd with the real updater and
// labTiming, for the lab tests.
const realHelperEnv = "FILEMAPD_TEST_REAL"

// labTiming is quick but keeps lvm2's one second for path mode.
var labTiming = Timing{
	Debounce:    10 * time.Millisecond,
	MinInterval: 50 * time.Millisecond,
	GroupCheck:  500 * time.Millisecond,
	Rescan:      time.Hour,
	VanishWait:  time.Second,
	Retry:       200 * time.Millisecond,
}

func TestMain(m *testing.M) {
	if os.Getenv(realHelperEnv) != "" {
		os.Exit(Program{NewUpdater: NewStatsUpdaterFunc, Timing: labTiming}.Main(os.Args[1:]))
	}
	if dir := os.Getenv(helperEnv); dir != "" {
		delay, _ := time.ParseDuration(os.Getenv(helperDelay))
		p := Program{
			NewUpdater: func(*os.File, Args, *slog.Logger) (Updater, error) {
				return &fileFake{dir: dir, delay: delay}, nil
			},
			Timing: helperTiming,
		}
		os.Exit(p.Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fileFake is a fake updater for a daemon in another process: its group
// exists while DIR/group does, and it appends a line per update to DIR/log:
// "start PID INO SIZE" and "done PID".
type fileFake struct {
	dir   string
	delay time.Duration
}

func (f *fileFake) logLine(line string) error {
	lf, err := os.OpenFile(filepath.Join(f.dir, "log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = lf.WriteString(line + "\n")
	if cerr := lf.Close(); err == nil {
		err = cerr
	}
	return err
}

func (f *fileFake) Update(file *os.File) (Result, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(file.Fd()), &st); err != nil {
		return Result{}, err
	}
	if err := f.logLine(fmt.Sprintf("start %d %d %d", os.Getpid(), st.Ino, st.Size)); err != nil {
		return Result{}, err
	}
	time.Sleep(f.delay)
	return Result{GroupID: 1, Regions: 1, Kept: 1}, f.logLine(fmt.Sprintf("done %d", os.Getpid()))
}

func (f *fileFake) GroupExists() (bool, error) {
	_, err := os.Stat(filepath.Join(f.dir, "group"))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// helperLog returns the lines the helper daemons wrote to dir/log.
func helperLog(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "log"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// waitLog waits until the helper log has a line for which match holds and
// returns the log.
func waitLog(t *testing.T, dir, what string, match func(lines []string) bool) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		lines := helperLog(t, dir)
		if match(lines) {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; log: %q", what, lines)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// countPrefix counts the lines that start with prefix.
func countPrefix(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// fieldsOf splits a log line and converts its numeric fields.
func fieldsOf(t *testing.T, line string) []uint64 {
	t.Helper()
	var out []uint64
	for _, f := range strings.Fields(line)[1:] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			t.Fatalf("bad log line %q", line)
		}
		out = append(out, v)
	}
	return out
}
