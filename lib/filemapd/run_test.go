package filemapd

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testTiming keeps the loop fast; Rescan is long so that only the test's own
// changes cause updates.
var testTiming = Timing{
	Debounce:    2 * time.Millisecond,
	MinInterval: 10 * time.Millisecond,
	GroupCheck:  50 * time.Millisecond,
	Rescan:      time.Hour,
	VanishWait:  150 * time.Millisecond,
	Retry:       20 * time.Millisecond,
}

type outcome struct {
	reason Reason
	err    error
}

// loop is a Run in a goroutine of the test.
type loop struct {
	fake   *fakeUpdater
	done   chan outcome
	cancel context.CancelFunc
	ready  chan struct{}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// startLoop runs Run on a fresh open of path; cfg may set Mode, Timing,
// Recheck, Logger and a fake (Updater). It waits until Run is ready, unless the fake's
// group does not exist.
func startLoop(t *testing.T, path string, cfg Config) *loop {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return startLoopFile(t, f, path, cfg)
}

func startLoopFile(t *testing.T, f *os.File, path string, cfg Config) *loop {
	t.Helper()
	l := &loop{done: make(chan outcome, 1), ready: make(chan struct{})}
	if cfg.Updater == nil {
		cfg.Updater = newFake()
	}
	l.fake, _ = cfg.Updater.(*fakeUpdater)
	if cfg.Timing == (Timing{}) {
		cfg.Timing = testTiming
	}
	cfg.File, cfg.Path = f, path
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: levelTrace}))
	}
	cfg.Ready = func() { close(l.ready) }
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go func() {
		r, err := Run(ctx, cfg)
		l.done <- outcome{r, err}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-l.done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not stop after cancel")
		}
	})
	if l.fake == nil || l.fake.exists {
		select {
		case <-l.ready:
		case o := <-l.done:
			t.Fatalf("Run ended before ready: %v, %v", o.reason, o.err)
		case <-time.After(10 * time.Second):
			t.Fatal("Run not ready")
		}
	}
	return l
}

// wantEnd waits for Run to end with reason r.
func (l *loop) wantEnd(t *testing.T, r Reason) {
	t.Helper()
	select {
	case o := <-l.done:
		l.done <- o // for the cleanup
		if o.err != nil || o.reason != r {
			t.Fatalf("Run ended with %v, %v; want %v", o.reason, o.err, r)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Run still running; want it to end: %v", r)
	}
}

// wantRunning checks that Run is still running after the fake has seen n
// more group checks (so that several looks at the file happened).
func (l *loop) wantRunning(t *testing.T, n int) {
	t.Helper()
	_, c0, _ := l.fake.snapshot()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case o := <-l.done:
			l.done <- o
			t.Fatalf("Run ended: %v, %v; want it running", o.reason, o.err)
		case <-deadline:
			t.Fatalf("no %d group checks in 10s", n)
		case <-time.After(5 * time.Millisecond):
		}
		if _, c, _ := l.fake.snapshot(); c >= c0+n {
			return
		}
	}
}

func writeFile(t *testing.T, path string, size int) {
	t.Helper()
	if err := os.WriteFile(path, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendTo(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, n)); err != nil {
		t.Fatal(err)
	}
}

func inoOf(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// newTestFile makes dir/file of size bytes.
func newTestFile(t *testing.T, size int) (dir, path string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, "file")
	writeFile(t, path, size)
	return dir, path
}

func forModes(t *testing.T, fn func(t *testing.T, m Mode)) {
	for _, m := range []Mode{ModeInode, ModePath} {
		t.Run(m.String(), func(t *testing.T) { fn(t, m) })
	}
}

func TestRunUpdatesAtStartAndOnAppend(t *testing.T) {
	forModes(t, func(t *testing.T, m Mode) {
		_, path := newTestFile(t, 4096)
		l := startLoop(t, path, Config{Mode: m})
		ino := inoOf(t, path)
		u := l.fake.waitUpdates(t, 1)
		if u[0] != (fakeCall{ino, 4096}) {
			t.Fatalf("first update saw %+v, want ino %d size 4096", u[0], ino)
		}
		appendTo(t, path, 8192)
		u = l.fake.waitUpdates(t, 2)
		if u[1] != (fakeCall{ino, 4096 + 8192}) {
			t.Fatalf("update after append saw %+v, want ino %d size %d", u[1], ino, 4096+8192)
		}
		if err := unix.Truncate(path, 0); err != nil {
			t.Fatal(err)
		}
		u = l.fake.waitUpdates(t, 3)
		if u[2] != (fakeCall{ino, 0}) {
			t.Fatalf("update after truncate saw %+v", u[2])
		}
		l.wantRunning(t, 3)
		// truncate(2) sets the size before it frees the blocks, so a look
		// in between sees size 0 with blocks still allocated, and the next
		// look rightly re-reads. Every update after the truncate must see
		// the empty file, and there must be no other.
		u, _, _ = l.fake.snapshot()
		for i, c := range u[2:] {
			if c != (fakeCall{ino, 0}) {
				t.Fatalf("update %d after the truncate saw %+v; all updates: %v", i+1, c, u)
			}
		}
		if len(u) > 4 {
			t.Fatalf("%d updates, want 3 (4 when the truncate is seen half-done): %v", len(u), u)
		}
	})
}

// Events that change neither size, blocks nor inode cause no update.
func TestRunSkipsUnchangedFile(t *testing.T) {
	forModes(t, func(t *testing.T, m Mode) {
		_, path := newTestFile(t, 4096)
		l := startLoop(t, path, Config{Mode: m})
		l.fake.waitUpdates(t, 1)
		for i := range 5 {
			if err := os.Chmod(path, 0o600+os.FileMode(i)); err != nil {
				t.Fatal(err)
			}
			// Rewrite the same bytes in place: IN_MODIFY, IN_CLOSE_WRITE.
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt([]byte("x"), 10); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
		l.wantRunning(t, 3)
		if u, _, _ := l.fake.snapshot(); len(u) != 1 {
			t.Fatalf("%d updates for changes that keep the extents, want 1: %v", len(u), u)
		}
	})
}

// A change made between the group's creation and the daemon's start is
// picked up: the daemon looks once at the start.
func TestRunChecksOnceAtStart(t *testing.T) {
	forModes(t, func(t *testing.T, m Mode) {
		dir, path := newTestFile(t, 4096)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		// Changed before the daemon starts; in path mode even replaced.
		appendTo(t, path, 4096)
		if m == ModePath {
			tmp := filepath.Join(dir, "new")
			writeFile(t, tmp, 12288)
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}
		l := startLoopFile(t, f, path, Config{Mode: m})
		want := fakeCall{inoOf(t, path), 8192}
		if m == ModePath {
			want.size = 12288
		}
		if u := l.fake.waitUpdates(t, 1); u[0] != want {
			t.Fatalf("first update saw %+v, want %+v", u[0], want)
		}
	})
}

func TestRunInodeFollowsRenameAndMove(t *testing.T) {
	dir, path := newTestFile(t, 4096)
	ino := inoOf(t, path)
	l := startLoop(t, path, Config{Mode: ModeInode})
	l.fake.waitUpdates(t, 1)

	renamed := filepath.Join(dir, "renamed")
	if err := os.Rename(path, renamed); err != nil {
		t.Fatal(err)
	}
	appendTo(t, renamed, 4096)
	if u := l.fake.waitUpdates(t, 2); u[1] != (fakeCall{ino, 8192}) {
		t.Fatalf("after rename: %+v", u[1])
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(sub, "moved")
	if err := os.Rename(renamed, moved); err != nil {
		t.Fatal(err)
	}
	// A new file at the old path is not the one the daemon follows.
	writeFile(t, path, 100)
	appendTo(t, moved, 4096)
	if u := l.fake.waitUpdates(t, 3); u[2] != (fakeCall{ino, 12288}) {
		t.Fatalf("after move: %+v", u[2])
	}
	l.wantRunning(t, 2)
}

func TestRunInodeExitsOnUnlink(t *testing.T) {
	_, path := newTestFile(t, 4096)
	l := startLoop(t, path, Config{Mode: ModeInode})
	l.fake.waitUpdates(t, 1)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	l.wantEnd(t, ReasonUnlinked)
}

// An unlinked file that this process still holds open through another
// descriptor keeps the daemon running and updating, until that closes.
func TestRunInodeUnlinkedButHeldHere(t *testing.T) {
	_, path := newTestFile(t, 4096)
	ino := inoOf(t, path)
	l := startLoop(t, path, Config{Mode: ModeInode, Timing: Timing{
		Debounce: time.Millisecond, MinInterval: time.Millisecond, GroupCheck: time.Hour, Rescan: time.Hour,
	}})
	l.fake.waitUpdates(t, 1)
	// A reader holds the file; its close is no IN_CLOSE_WRITE, so only the
	// watch the daemon adds once the file is unlinked can hear it.
	held, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	w, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt(make([]byte, 4096), 4096); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if u := l.fake.waitUpdates(t, 2); u[1] != (fakeCall{ino, 8192}) {
		t.Fatalf("update of the unlinked file saw %+v", u[1])
	}
	select {
	case o := <-l.done:
		t.Fatalf("Run ended while the file is held: %v %v", o.reason, o.err)
	case <-time.After(100 * time.Millisecond):
	}
	// The close is an event: no timer is needed (GroupCheck is an hour).
	held.Close()
	l.wantEnd(t, ReasonUnlinked)
}

// The same with the holder in another process, which is killed.
func TestRunInodeUnlinkedButHeldElsewhere(t *testing.T) {
	_, path := newTestFile(t, 4096)
	l := startLoop(t, path, Config{Mode: ModeInode})
	l.fake.waitUpdates(t, 1)
	held, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "60")
	cmd.ExtraFiles = []*os.File{held}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	held.Close()
	defer cmd.Process.Kill()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	l.wantRunning(t, 3)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	l.wantEnd(t, ReasonUnlinked)
}

func TestRunPathFollowsReplacement(t *testing.T) {
	tests := []struct {
		name    string
		replace func(t *testing.T, dir, path string)
	}{
		{"rename over", func(t *testing.T, dir, path string) {
			tmp := filepath.Join(dir, ".file.tmp")
			writeFile(t, tmp, 12288)
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"unlink and create", func(t *testing.T, dir, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			writeFile(t, path, 12288)
		}},
		{"unlink, wait, rename in", func(t *testing.T, dir, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			time.Sleep(testTiming.VanishWait / 3)
			tmp := filepath.Join(dir, ".file.tmp")
			writeFile(t, tmp, 12288)
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, path := newTestFile(t, 4096)
			old := inoOf(t, path)
			l := startLoop(t, path, Config{Mode: ModePath})
			l.fake.waitUpdates(t, 1)
			tc.replace(t, dir, path)
			ino := inoOf(t, path)
			if ino == old {
				t.Fatal("the replacement reused the inode number; the test cannot tell them apart")
			}
			if u := l.fake.waitUpdates(t, 2); u[1] != (fakeCall{ino, 12288}) {
				t.Fatalf("update after replacement saw %+v, want ino %d", u[1], ino)
			}
			// And follows the new file's changes.
			appendTo(t, path, 4096)
			if u := l.fake.waitUpdates(t, 3); u[2] != (fakeCall{ino, 16384}) {
				t.Fatalf("update after append to the replacement saw %+v", u[2])
			}
			// The replaced file is no longer held open by the daemon.
			if held, err := heldElsewhere("/proc", devOf(t, path), old, -1); err != nil || held {
				t.Fatalf("replaced file still held: %v %v", held, err)
			}
			l.wantRunning(t, 2)
		})
	}
}

func devOf(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Dev
}

func TestRunPathExitsWhenNothingReappears(t *testing.T) {
	tests := []struct {
		name   string
		remove func(dir, path string) error
	}{
		{"unlink", func(_, path string) error { return os.Remove(path) }},
		{"rename away", func(dir, path string) error { return os.Rename(path, filepath.Join(dir, "elsewhere")) }},
		{"directory in its place", func(_, path string) error {
			if err := os.Remove(path); err != nil {
				return err
			}
			return os.Mkdir(path, 0o755)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, path := newTestFile(t, 4096)
			l := startLoop(t, path, Config{Mode: ModePath})
			l.fake.waitUpdates(t, 1)
			start := time.Now()
			if err := tc.remove(dir, path); err != nil {
				t.Fatal(err)
			}
			l.wantEnd(t, ReasonVanished)
			if took := time.Since(start); took < testTiming.VanishWait {
				t.Fatalf("exited %v after the file went, before the %v wait", took, testTiming.VanishWait)
			}
			if u, _, _ := l.fake.snapshot(); len(u) != 1 {
				t.Fatalf("updates without a file: %v", u)
			}
		})
	}
}

// A file renamed away and back within the wait is the same file: the daemon
// stays and does not re-map it.
func TestRunPathRenameAwayAndBack(t *testing.T) {
	dir, path := newTestFile(t, 4096)
	l := startLoop(t, path, Config{Mode: ModePath})
	l.fake.waitUpdates(t, 1)
	away := filepath.Join(dir, "away")
	if err := os.Rename(path, away); err != nil {
		t.Fatal(err)
	}
	time.Sleep(testTiming.VanishWait / 3)
	if err := os.Rename(away, path); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * testTiming.VanishWait)
	l.wantRunning(t, 2)
	if u, _, _ := l.fake.snapshot(); len(u) != 1 {
		t.Fatalf("updates %v, want just the first", u)
	}
}

// Path mode ends at once, not after a second, when the group is gone too; and
// an empty path at the start is waited for like any other.
func TestRunPathEmptyAtStart(t *testing.T) {
	_, path := newTestFile(t, 4096)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	l := startLoopFile(t, f, path, Config{Mode: ModePath})
	l.wantEnd(t, ReasonVanished)
	if u, _, _ := l.fake.snapshot(); len(u) != 0 {
		t.Fatalf("updates without a file: %v", u)
	}
}

// A replacement on another file system (through a symlink at the path) cannot
// belong to the group's device: the daemon gives up with a clear error.
func TestRunPathReplacementOnAnotherDevice(t *testing.T) {
	dir, path := newTestFile(t, 4096)
	other, err := os.CreateTemp("/dev/shm", "filemapd-test-")
	if err != nil {
		t.Skipf("no second file system for the test: %v", err)
	}
	defer os.Remove(other.Name())
	other.Close()
	if devOf(t, other.Name()) == devOf(t, dir) {
		t.Skip("/dev/shm is on the same device as the test directory")
	}
	l := startLoop(t, path, Config{Mode: ModePath})
	l.fake.waitUpdates(t, 1)
	tmp := filepath.Join(dir, "link")
	if err := os.Symlink(other.Name(), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-l.done:
		l.done <- o
		if o.err == nil || !strings.Contains(o.err.Error(), "another device") {
			t.Fatalf("Run ended with %v, %v; want an error about another device", o.reason, o.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run still running")
	}
}

func TestRunExitsWhenGroupDeleted(t *testing.T) {
	forModes(t, func(t *testing.T, m Mode) {
		t.Run("periodic check", func(t *testing.T) {
			_, path := newTestFile(t, 4096)
			l := startLoop(t, path, Config{Mode: m})
			l.fake.waitUpdates(t, 1)
			l.fake.deleteGroup()
			l.wantEnd(t, ReasonGroupDeleted)
		})
		t.Run("on an event", func(t *testing.T) {
			_, path := newTestFile(t, 4096)
			tm := testTiming
			tm.GroupCheck = time.Hour
			l := startLoop(t, path, Config{Mode: m, Timing: tm})
			l.fake.waitUpdates(t, 1)
			l.fake.deleteGroup()
			appendTo(t, path, 4096)
			l.wantEnd(t, ReasonGroupDeleted)
			if u, _, _ := l.fake.snapshot(); len(u) != 1 {
				t.Fatalf("updated a deleted group: %v", u)
			}
		})
	})
}

func TestRunGroupMissingAtStart(t *testing.T) {
	_, path := newTestFile(t, 4096)
	fake := newFake()
	fake.exists = false
	l := startLoop(t, path, Config{Updater: fake})
	l.wantEnd(t, ReasonGroupDeleted)
	select {
	case <-l.ready:
		t.Fatal("Ready called for a group that does not exist")
	default:
	}
	if u, _, _ := fake.snapshot(); len(u) != 0 {
		t.Fatalf("updates: %v", u)
	}
}

// With a group check failing, the daemon neither updates nor gives up: it
// retries until the check works again.
func TestRunGroupCheckFailure(t *testing.T) {
	_, path := newTestFile(t, 4096)
	l := startLoop(t, path, Config{})
	l.fake.waitUpdates(t, 1)
	l.fake.mu.Lock()
	l.fake.checkErr = os.ErrPermission
	l.fake.mu.Unlock()
	appendTo(t, path, 4096)
	l.wantRunning(t, 3)
	if u, _, _ := l.fake.snapshot(); len(u) != 1 {
		t.Fatalf("updated while the group check failed: %v", u)
	}
	l.fake.mu.Lock()
	l.fake.checkErr = nil
	l.fake.mu.Unlock()
	if u := l.fake.waitUpdates(t, 2); u[1].size != 8192 {
		t.Fatalf("after the check recovered: %+v", u[1])
	}
}

// A burst of writes makes a few updates, not one per write, and the last one
// sees the final size.
func TestRunRateLimit(t *testing.T) {
	_, path := newTestFile(t, 4096)
	tm := testTiming
	tm.MinInterval = 300 * time.Millisecond
	l := startLoop(t, path, Config{Timing: tm})
	l.fake.waitUpdates(t, 1)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range 100 {
		if _, err := f.Write(make([]byte, 4096)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	f.Close()
	burst := time.Since(start)
	final := int64(4096 * 101)
	u := l.fake.wait(t, "an update with the final size", func(u []fakeCall, _ int) bool {
		return u[len(u)-1].size == final
	})
	// One update per MinInterval during the burst, plus the first and the
	// last.
	if limit := 2 + int(burst/tm.MinInterval) + 1; len(u) > limit {
		t.Fatalf("%d updates for a %v burst, want at most %d: %v", len(u), burst, limit, u)
	}
}

// A change that lands during an update is re-mapped right after it, not at
// the next rescan (an hour away).
func TestRunChangeDuringUpdate(t *testing.T) {
	forModes(t, func(t *testing.T, m Mode) {
		_, path := newTestFile(t, 4096)
		fake := newFake()
		fake.delay = 200 * time.Millisecond
		l := startLoop(t, path, Config{Mode: m, Updater: fake})
		fake.wait(t, "the first update to start", func(u []fakeCall, _ int) bool { return len(u) == 1 })
		appendTo(t, path, 4096)
		if _, _, active := fake.snapshot(); !active {
			t.Fatal("the first update was over before the change; the test proves nothing")
		}
		if u := fake.waitUpdates(t, 2); u[1].size != 8192 {
			t.Fatalf("second update saw %+v", u[1])
		}
		_ = l
	})
}

// Without any change, extents are re-read every Rescan.
func TestRunRescan(t *testing.T) {
	_, path := newTestFile(t, 4096)
	tm := testTiming
	tm.Rescan = 100 * time.Millisecond
	l := startLoop(t, path, Config{Timing: tm})
	start := time.Now()
	u := l.fake.waitUpdates(t, 4)
	if took := time.Since(start); took < 3*tm.Rescan {
		t.Fatalf("4 updates in %v with a rescan every %v", took, tm.Rescan)
	}
	for _, c := range u {
		if c != u[0] {
			t.Fatalf("rescans saw different files: %v", u)
		}
	}
}

// A failed update is retried (with back-off) without any new event.
func TestRunRetriesFailedUpdate(t *testing.T) {
	_, path := newTestFile(t, 4096)
	fake := newFake()
	fake.fail = 3
	l := startLoop(t, path, Config{Updater: fake})
	start := time.Now()
	fake.waitUpdates(t, 1)
	// Retry, then twice and four times that: 20+40+80 ms.
	if took := time.Since(start); took < 140*time.Millisecond {
		t.Fatalf("three failures retried within %v; no back-off", took)
	}
	l.wantRunning(t, 1)
}

func TestRunRecheck(t *testing.T) {
	_, path := newTestFile(t, 4096)
	recheck := make(chan struct{})
	l := startLoop(t, path, Config{Recheck: recheck})
	l.fake.waitUpdates(t, 1)
	recheck <- struct{}{}
	l.fake.waitUpdates(t, 2)
	recheck <- struct{}{}
	l.fake.waitUpdates(t, 3)
}

// Stopping waits for the update in progress.
func TestRunStopFinishesUpdate(t *testing.T) {
	_, path := newTestFile(t, 4096)
	fake := newFake()
	fake.delay = 300 * time.Millisecond
	l := startLoop(t, path, Config{Updater: fake})
	fake.wait(t, "the first update to start", func(u []fakeCall, _ int) bool { return len(u) == 1 })
	l.cancel()
	o := <-l.done
	l.done <- o
	if o.err != nil || o.reason != ReasonStopped {
		t.Fatalf("Run = %v, %v; want stopped", o.reason, o.err)
	}
	if _, _, active := fake.snapshot(); active {
		t.Fatal("Run returned during an update")
	}
}

// After a lazy unmount the daemon leaves, so that its descriptor does not
// keep the file system (and the device under it) busy.
func TestRunExitsWhenUnmounted(t *testing.T) {
	forModes(t, func(t *testing.T, m Mode) {
		mnt := t.TempDir()
		if err := unix.Mount("filemapd-test", mnt, "tmpfs", 0, "size=1m"); err != nil {
			t.Skipf("cannot mount a tmpfs for the test: %v", err)
		}
		defer unix.Unmount(mnt, unix.MNT_DETACH)
		path := filepath.Join(mnt, "file")
		writeFile(t, path, 4096)
		l := startLoop(t, path, Config{Mode: m})
		l.fake.waitUpdates(t, 1)
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			t.Fatal(err)
		}
		l.wantEnd(t, ReasonUnmounted)
	})
}

func TestRunBadConfig(t *testing.T) {
	_, path := newTestFile(t, 10)
	open := func() *os.File {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	dirFile, err := os.Open(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no file", Config{Updater: newFake()}, "no file"},
		{"no updater", Config{File: open()}, "no updater"},
		{"bad mode", Config{File: open(), Updater: newFake(), Mode: 5}, "bad mode"},
		{"relative path", Config{File: open(), Updater: newFake(), Mode: ModePath, Path: "file"}, "absolute path"},
		{"directory", Config{File: dirFile, Updater: newFake()}, "not a regular file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want an error containing %q", err, tc.want)
			}
			if tc.cfg.File != nil {
				if err := tc.cfg.File.Close(); err == nil {
					t.Fatal("Run left the file open")
				}
			}
		})
	}
}

func TestReasonString(t *testing.T) {
	seen := map[string]bool{}
	for r := ReasonStopped; r <= ReasonUnmounted; r++ {
		s := r.String()
		if s == "" || strings.HasPrefix(s, "Reason(") || seen[s] {
			t.Errorf("Reason(%d).String() = %q", int(r), s)
		}
		seen[s] = true
	}
	if s := Reason(42).String(); s != "Reason(42)" {
		t.Errorf("Reason(42).String() = %q", s)
	}
}
