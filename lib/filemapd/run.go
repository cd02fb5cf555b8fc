package filemapd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Result says what one update did to the group.
type Result struct {
	GroupID      uint64 // the group's id after the update
	OldGroupID   uint64 // the id before, when GroupChanged
	GroupChanged bool   // the leader was replaced and the group id changed
	Regions      int    // regions in the group after the update
	Kept         int    // regions whose extent did not change
	Added        int    // regions created
	Removed      int    // regions deleted
	Empty        bool   // the file has no extents; the group is a placeholder
}

// Updater is the daemon's view of the group it keeps up to date. The real one
// is [NewStatsUpdater]; tests use fakes.
type Updater interface {
	// Update re-reads the extents of f and brings the group in line with
	// them. f is the file currently watched: in path mode, a replacement
	// file.
	Update(f *os.File) (Result, error)
	// GroupExists reports whether the group (with its id after the latest
	// update) still exists.
	GroupExists() (bool, error)
}

// Timing holds the daemon's delays; zero fields take the defaults.
type Timing struct {
	// Debounce is how long a burst of events is left to settle before the
	// file is looked at (default 15ms).
	Debounce time.Duration
	// MinInterval is the least time between two looks at the file, the
	// daemon's rate limit (default 500ms).
	MinInterval time.Duration
	// GroupCheck is how often the daemon checks, with no event, that the group
	// still exists, the file is still there, and nobody holds an unlinked
	// file (default 5s).
	GroupCheck time.Duration
	// Rescan is how often the extents are re-read even though nothing
	// visible changed, to catch reallocation in place (default 60s).
	Rescan time.Duration
	// VanishWait is how long path mode waits for a file to reappear at the
	// path before it exits (default 1s).
	VanishWait time.Duration
	// Retry is the first delay after a failed update; it doubles on each
	// failure in a row, up to Rescan (default 1s).
	Retry time.Duration
}

// DefaultTiming is the Timing used for zero fields.
var DefaultTiming = Timing{
	Debounce:    15 * time.Millisecond,
	MinInterval: 500 * time.Millisecond,
	GroupCheck:  5 * time.Second,
	Rescan:      60 * time.Second,
	VanishWait:  time.Second,
	Retry:       time.Second,
}

func (t Timing) withDefaults() Timing {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&t.Debounce, DefaultTiming.Debounce)
	def(&t.MinInterval, DefaultTiming.MinInterval)
	def(&t.GroupCheck, DefaultTiming.GroupCheck)
	def(&t.Rescan, DefaultTiming.Rescan)
	def(&t.VanishWait, DefaultTiming.VanishWait)
	def(&t.Retry, DefaultTiming.Retry)
	return t
}

// Reason says why [Run] returned without an error.
type Reason int

const (
	// ReasonStopped: the context was cancelled (SIGTERM, SIGINT).
	ReasonStopped Reason = iota
	// ReasonGroupDeleted: the group no longer exists.
	ReasonGroupDeleted
	// ReasonUnlinked: inode mode, the file was unlinked and nobody else holds
	// it open.
	ReasonUnlinked
	// ReasonVanished: path mode, nothing appeared at the path in time.
	ReasonVanished
	// ReasonUnmounted: the file's mount was detached (umount -l); the
	// daemon leaves so as not to keep the file system and its device busy.
	ReasonUnmounted
)

// String describes the reason in a few words.
func (r Reason) String() string {
	switch r {
	case ReasonStopped:
		return "stopped"
	case ReasonGroupDeleted:
		return "group deleted"
	case ReasonUnlinked:
		return "file unlinked and closed"
	case ReasonVanished:
		return "file gone from its path"
	case ReasonUnmounted:
		return "file system unmounted"
	}
	return "Reason(" + strconv.Itoa(int(r)) + ")"
}

// Config is what [Run] watches and how.
type Config struct {
	// File is the open file. Run owns it from the start: it closes it, or
	// in path mode the file that replaced it, before it returns.
	File *os.File
	// Path is the file's absolute path; path mode follows it, inode mode
	// only logs it.
	Path string
	// Mode says whether the inode or the path is followed.
	Mode Mode
	// Updater re-maps the group and checks that it exists.
	Updater Updater
	// Logger receives one line per update and the reasons for leaving; nil
	// discards.
	Logger *slog.Logger
	Timing Timing
	// Recheck, when not nil, asks for an immediate re-read of the extents on
	// every receive (SIGHUP).
	Recheck <-chan struct{}
	// Ready, when not nil, is called once the watches are in place and the
	// group is known to exist, before the first look at the file.
	Ready func()
}

// File masks: what changes the extents or the identity of the file, and, in
// path mode, what puts another file at its name.
const (
	fileMask     = unix.IN_MODIFY | unix.IN_CLOSE_WRITE | unix.IN_ATTRIB | unix.IN_MOVE_SELF | unix.IN_DELETE_SELF
	unlinkedMask = fileMask | unix.IN_CLOSE_NOWRITE // someone else's close may be the last
	dirMask      = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR
	levelTrace   = slog.LevelDebug - 4
)

// shape is what decides whether the extents may have changed.
type shape struct {
	dev, ino      uint64
	size, blocks  int64
	nlink         uint64
	valid, isFile bool
}

func shapeOf(st *unix.Stat_t) shape {
	return shape{
		dev: st.Dev, ino: st.Ino, size: st.Size, blocks: st.Blocks, nlink: uint64(st.Nlink),
		valid: true, isFile: st.Mode&unix.S_IFMT == unix.S_IFREG,
	}
}

// sameExtents reports whether two looks at the file need no re-read between
// them.
func (s shape) sameExtents(o shape) bool {
	return s.valid && o.valid && s.dev == o.dev && s.ino == o.ino && s.size == o.size && s.blocks == o.blocks
}

func fstat(f *os.File) (shape, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return shape{}, fmt.Errorf("fstat %s: %w", f.Name(), err)
	}
	return shapeOf(&st), nil
}

// daemon is the state of one Run.
type daemon struct {
	cfg Config
	t   Timing
	log *slog.Logger
	w   *watcher

	file   *os.File
	dev    uint64 // the device of the first file: replacements must share it
	fileWD int
	dirWD  int
	dir    shape // the watched directory, path mode

	last       shape     // the file at the latest successful update
	lastPass   time.Time // the latest look at the file
	lastUpdate time.Time // the latest update, successful or not
	lastMount  time.Time // the latest check that the file's mount is attached
	lastEmpty  bool      // the latest update left an empty placeholder group
	unlinked   bool      // inode mode: the file has no name left
	vanishedAt time.Time // path mode: when the path was first found empty

	pending  bool      // a look at the file is due at due
	force    bool      // that look re-reads the extents whatever the shape
	due      time.Time //
	failures int       // updates failed in a row
	retryAt  time.Time // no update before this, after a failure
}

// Run watches cfg.File and keeps its group up to date until the group is
// deleted, the file goes away as cfg.Mode says, or ctx is cancelled; an update
// in progress is always finished. It looks at the file once at the start, so a
// change made before it started is not missed. An error means the daemon could
// not go on (or could not start); the reasons of a normal end are in Reason.
func Run(ctx context.Context, cfg Config) (reason Reason, err error) {
	if cfg.File == nil {
		return 0, errors.New("filemapd: no file")
	}
	d := &daemon{cfg: cfg, t: cfg.Timing.withDefaults(), log: cfg.Logger, file: cfg.File, fileWD: -1, dirWD: -1}
	defer func() {
		if cerr := d.file.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", d.file.Name(), cerr)
		}
	}()
	if cfg.Updater == nil {
		return 0, errors.New("filemapd: no updater")
	}
	if cfg.Mode != ModeInode && cfg.Mode != ModePath {
		return 0, fmt.Errorf("filemapd: bad mode %d", int(cfg.Mode))
	}
	if cfg.Mode == ModePath && !filepath.IsAbs(cfg.Path) {
		return 0, fmt.Errorf("filemapd: path mode needs an absolute path, got %q", cfg.Path)
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	st, err := fstat(d.file)
	if err != nil {
		return 0, err
	}
	if !st.isFile {
		return 0, fmt.Errorf("%s is not a regular file", d.file.Name())
	}
	d.dev = st.dev

	if d.w, err = newWatcher(); err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	defer func() {
		close(stop)
		wg.Wait() // nobody may wake the watcher once it is closed
		if cerr := d.w.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if d.fileWD, err = d.w.add(procFD(d.file), fileMask); err != nil {
		return 0, err
	}
	if cfg.Mode == ModePath {
		if err := d.watchDir(); err != nil {
			return 0, err
		}
	}
	ok, err := cfg.Updater.GroupExists()
	if err != nil {
		return 0, fmt.Errorf("check group: %w", err)
	}
	if !ok {
		return ReasonGroupDeleted, nil
	}
	if cfg.Ready != nil {
		cfg.Ready()
	}

	var recheck atomic.Bool
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				d.w.wake()
				return
			case <-cfg.Recheck: // nil: never
				recheck.Store(true)
				d.w.wake()
			case <-stop:
				return
			}
		}
	}()

	now := time.Now()
	d.lastUpdate = now
	d.want(now, true, false) // the first look, at once
	for {
		if ctx.Err() != nil {
			return ReasonStopped, nil
		}
		now = time.Now()
		if recheck.Swap(false) {
			d.log.Debug("re-check requested")
			d.want(now, true, false)
		}
		d.timers(now)
		if d.pending && !now.Before(d.due) {
			if r, done, err := d.pass(now); done || err != nil {
				return r, err
			}
			continue
		}
		events, err := d.w.wait(d.next().Sub(now))
		if err != nil {
			return 0, err
		}
		for _, e := range events {
			d.handle(e)
		}
	}
}

// procFD names the open file f by its /proc/self/fd link, so that a watch is
// added on the very inode that is open even if the path changed meanwhile.
func procFD(f *os.File) string {
	return "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
}

// want schedules a look at the file: after the debounce delay (or at once),
// but never sooner than the rate limit or the retry delay allow. An earlier
// schedule is kept.
func (d *daemon) want(now time.Time, force, debounce bool) {
	if force {
		d.force = true
	}
	if d.pending {
		return
	}
	d.pending = true
	d.due = now
	if debounce {
		d.due = now.Add(d.t.Debounce)
	}
	if !d.lastPass.IsZero() {
		if earliest := d.lastPass.Add(d.t.MinInterval); earliest.After(d.due) {
			d.due = earliest
		}
	}
	if d.retryAt.After(d.due) {
		d.due = d.retryAt
	}
}

// timers schedules the looks that no event asks for.
func (d *daemon) timers(now time.Time) {
	if d.pending {
		return
	}
	switch {
	case !now.Before(d.lastUpdate.Add(d.t.Rescan)):
		d.want(now, true, false)
	case !now.Before(d.lastPass.Add(d.t.GroupCheck)):
		d.want(now, false, false)
	case !d.vanishedAt.IsZero() && !now.Before(d.vanishedAt.Add(d.t.VanishWait)):
		d.want(now, false, false)
	}
}

// next is when the loop must wake up with no event.
func (d *daemon) next() time.Time {
	if d.pending {
		return d.due
	}
	t := d.lastUpdate.Add(d.t.Rescan)
	if g := d.lastPass.Add(d.t.GroupCheck); g.Before(t) {
		t = g
	}
	if !d.vanishedAt.IsZero() {
		if v := d.vanishedAt.Add(d.t.VanishWait); v.Before(t) {
			t = v
		}
	}
	return t
}

// handle takes one inotify event.
func (d *daemon) handle(e event) {
	d.log.Log(context.Background(), levelTrace, "inotify event", "wd", e.wd, "mask", fmt.Sprintf("%#x", e.mask), "name", e.name)
	now := time.Now()
	switch {
	case e.mask&unix.IN_Q_OVERFLOW != 0:
		d.want(now, false, true)
	case e.wd == d.fileWD:
		if e.mask&unix.IN_IGNORED != 0 {
			d.fileWD = -1
		}
		d.want(now, false, true)
	case e.wd == d.dirWD:
		if e.mask&unix.IN_IGNORED != 0 {
			d.dirWD = -1
		}
		if e.name == "" || e.name == filepath.Base(d.cfg.Path) {
			d.want(now, false, true)
		}
	}
}

// pass is one look at the group and the file, and an update when the file's
// shape changed or the look is forced.
func (d *daemon) pass(now time.Time) (Reason, bool, error) {
	force := d.force
	d.pending, d.force, d.lastPass = false, false, now

	ok, err := d.cfg.Updater.GroupExists()
	if err != nil {
		d.log.Warn("cannot check the group", "err", err)
		d.failed(now, force)
		return 0, false, nil
	}
	if !ok {
		return ReasonGroupDeleted, true, nil
	}
	if now.Sub(d.lastMount) >= d.t.GroupCheck {
		d.lastMount = now
		if gone, err := mountDetached(d.file); err != nil {
			d.log.Warn("cannot check the file's mount", "err", err)
		} else if gone {
			return ReasonUnmounted, true, nil
		}
	}

	switch d.cfg.Mode {
	case ModeInode:
		st, err := fstat(d.file)
		if err != nil {
			return 0, true, err
		}
		if st.nlink == 0 {
			if r, done, err := d.checkUnlinked(st); done || err != nil {
				return r, done, err
			}
		}
	case ModePath:
		replaced, r, done, err := d.followPath(now)
		if done || err != nil {
			return r, done, err
		}
		if !d.vanishedAt.IsZero() {
			return 0, false, nil // nothing at the path to update from
		}
		force = force || replaced
	}

	st, err := fstat(d.file)
	if err != nil {
		return 0, true, err
	}
	if !force && st.sameExtents(d.last) {
		return 0, false, nil
	}
	d.update(now, st, force)
	return 0, false, nil
}

// checkUnlinked handles a file with no name left (inode mode): end unless
// another process holds it open, and meanwhile hear every close of it.
func (d *daemon) checkUnlinked(st shape) (Reason, bool, error) {
	if !d.unlinked {
		d.unlinked = true
		d.log.Info("file unlinked; watching for its last close")
		// Hear other processes' closes from now on; the check below comes
		// after, so a close between the two is not missed.
		wd, err := d.w.add(procFD(d.file), unlinkedMask)
		if err != nil {
			return 0, true, err
		}
		d.fileWD = wd
	}
	held, err := heldElsewhere("/proc", st.dev, st.ino, int(d.file.Fd()))
	if err != nil {
		return 0, true, fmt.Errorf("look for other holders of %s: %w", d.file.Name(), err)
	}
	if !held {
		return ReasonUnlinked, true, nil
	}
	return 0, false, nil
}

// followPath (path mode) makes the watched file the one at the path: it
// re-opens a replacement, and notes when the path is empty, ending the
// daemon if it stays empty for VanishWait.
func (d *daemon) followPath(now time.Time) (replaced bool, r Reason, done bool, err error) {
	d.checkDir()
	var pst unix.Stat_t
	serr := unix.Stat(d.cfg.Path, &pst)
	if serr == nil && shapeOf(&pst).isFile {
		cur, err := fstat(d.file)
		if err != nil {
			return false, 0, true, err
		}
		if pst.Dev == cur.dev && pst.Ino == cur.ino {
			d.appeared()
			return false, 0, false, nil
		}
		ok, err := d.reopen()
		if err != nil {
			return false, 0, true, err
		}
		if ok {
			d.appeared()
			return true, 0, false, nil
		}
	} else if serr != nil && !errors.Is(serr, unix.ENOENT) && !errors.Is(serr, unix.ENOTDIR) {
		d.log.Warn("cannot stat the path", "err", serr)
	}
	if d.vanishedAt.IsZero() {
		d.vanishedAt = now
		d.log.Debug("no file at the path; waiting for one", "wait", d.t.VanishWait)
		return false, 0, false, nil
	}
	if now.Sub(d.vanishedAt) >= d.t.VanishWait {
		return false, ReasonVanished, true, nil
	}
	return false, 0, false, nil
}

func (d *daemon) appeared() {
	if !d.vanishedAt.IsZero() {
		d.log.Debug("file back at the path")
		d.vanishedAt = time.Time{}
	}
}

// reopen opens the file now at the path in place of the watched one. It
// returns false when what is there is no regular file (or went away again).
func (d *daemon) reopen() (bool, error) {
	fd, err := unix.Open(d.cfg.Path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return false, nil
		}
		return false, fmt.Errorf("re-open %s: %w", d.cfg.Path, err)
	}
	nf := os.NewFile(uintptr(fd), d.cfg.Path)
	st, err := fstat(nf)
	if err != nil || !st.isFile {
		nf.Close()
		return false, err
	}
	if st.dev != d.dev {
		nf.Close()
		return false, fmt.Errorf("the file now at %s is on another device (%d:%d, not %d:%d)",
			d.cfg.Path, unix.Major(st.dev), unix.Minor(st.dev), unix.Major(d.dev), unix.Minor(d.dev))
	}
	wd, err := d.w.add(procFD(nf), fileMask)
	if err != nil {
		nf.Close()
		return false, err
	}
	if wd != d.fileWD {
		if err := d.w.remove(d.fileWD); err != nil {
			d.log.Warn("cannot drop the old file's watch", "err", err)
		}
	}
	d.fileWD = wd
	old := d.file
	d.file = nf
	if err := old.Close(); err != nil {
		d.log.Warn("close the replaced file", "err", err)
	}
	d.log.Info("following the new file at the path", "ino", st.ino)
	return true, nil
}

// watchDir watches the directory of the path (path mode).
func (d *daemon) watchDir() error {
	dir := filepath.Dir(d.cfg.Path)
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return fmt.Errorf("stat %s: %w", dir, err)
	}
	wd, err := d.w.add(dir, dirMask)
	if err != nil {
		return err
	}
	if d.dirWD >= 0 && wd != d.dirWD {
		if err := d.w.remove(d.dirWD); err != nil {
			d.log.Warn("cannot drop the old directory's watch", "err", err)
		}
	}
	d.dirWD, d.dir = wd, shapeOf(&st)
	return nil
}

// checkDir moves the directory watch when another directory took the place of
// the watched one (path mode).
func (d *daemon) checkDir() {
	var st unix.Stat_t
	if unix.Stat(filepath.Dir(d.cfg.Path), &st) != nil {
		return // nothing to watch; the path is empty too
	}
	if d.dirWD >= 0 && st.Dev == d.dir.dev && st.Ino == d.dir.ino {
		return
	}
	if err := d.watchDir(); err != nil {
		d.log.Warn("cannot watch the directory", "err", err)
	}
}

// update re-maps the group from the file, whose shape before the update was
// st, and schedules another look if the file changed while it ran.
func (d *daemon) update(now time.Time, st shape, forced bool) {
	d.lastUpdate = now
	start := time.Now()
	res, err := d.cfg.Updater.Update(d.file)
	took := time.Since(start)
	if err != nil {
		d.log.Error("update failed", "err", err, "took", took)
		d.failed(time.Now(), true)
		return
	}
	d.failures, d.retryAt = 0, time.Time{}
	d.last = st
	defer func() { d.lastEmpty = res.Empty }()
	level := slog.LevelInfo
	if res.Added == 0 && res.Removed == 0 && !res.GroupChanged && res.Empty == d.lastEmpty {
		level = slog.LevelDebug // a look that changed nothing
	}
	attrs := []any{"group", res.GroupID, "regions", res.Regions, "kept", res.Kept, "added", res.Added, "removed", res.Removed, "took", took.Round(time.Microsecond)}
	if res.GroupChanged {
		attrs = append(attrs, "old_group", res.OldGroupID)
	}
	if res.Empty {
		attrs = append(attrs, "empty", true)
	}
	if forced {
		attrs = append(attrs, "forced", true)
	}
	d.log.Log(context.Background(), level, "updated", attrs...)

	after, err := fstat(d.file)
	if err == nil && !after.sameExtents(st) {
		d.log.Debug("file changed during the update")
		d.want(time.Now(), false, false)
	}
}

// failed schedules a retry after an update or a group check failed, backing
// off up to Rescan.
func (d *daemon) failed(now time.Time, force bool) {
	d.failures++
	delay := d.t.Retry
	for i := 1; i < d.failures && delay < d.t.Rescan; i++ {
		delay *= 2
	}
	delay = min(delay, d.t.Rescan)
	d.retryAt = now.Add(delay)
	d.want(now, force, false)
}
