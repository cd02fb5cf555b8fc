//go:build lab

package filemapd

// Lab benchmarks of the daemon as shipped: the dmfilemapd tool built by
// `make build`, with its default timing, on xfs (allocsize=4k) and ext4.
//
//   - BenchmarkDaemonReaction: time from the fsync that changes a file's
//     allocation to the group matching the new extents.
//   - BenchmarkDaemonIdle: wakeups, ioctls and system calls per minute of a
//     daemon whose file does not change.
//   - BenchmarkDaemonCountedIO: writes the group counts while a writer
//     appends to the file, against a loop of one-shot exact (lvm2-layout)
//     updates.
//
// Every figure is a b.ReportMetric; ns/op is suppressed, as the loops are
// paced by the clock. `make bench` (ci/bench.sh) runs them in the lab VM.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dmfm/dmfm/lab"
	"github.com/dmfm/dmfm/lab/labtest"
	"github.com/dmfm/dmfm/lib/dm"
	"github.com/dmfm/dmfm/lib/dmstats"
	"github.com/dmfm/dmfm/lib/fiemap"
	"github.com/dmfm/dmfm/lib/filemap"
	"golang.org/x/sys/unix"
)

// lvm2's dmfilemapd sleeps 0.5 s between looks and lists every region at
// each: its design figures, quoted next to ours.
const (
	lvm2WakeupsPerMin  = 120
	lvm2ListingsPerMin = 120
	lvm2ReactionFloor  = 500 * time.Millisecond
)

var benchFS = []lab.FS{lab.FSXFS, lab.FSExt4}

// benchEnv is one lab stack and a dm-stats handle on its device.
type benchEnv struct {
	l  *lab.Lab
	st *dmstats.Stats
}

// benchLab brings up a 512 MiB lab with file system fs for the benchmark.
func benchLab(b *testing.B, fs lab.FS) *benchEnv {
	b.Helper()
	labtest.RequireDM(b)
	spec := lab.Spec{Size: 512 << 20, FS: fs, Dir: b.TempDir()}
	if fs == lab.FSXFS {
		spec.MountOpts = "allocsize=4k" // no speculative preallocation
	}
	l, err := lab.Up(context.Background(), spec)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := l.Close(); err != nil {
			b.Errorf("lab close: %v", err)
		}
	})
	e := &benchEnv{l: l, st: benchStats(b, l)}
	b.Cleanup(func() {
		regions, err := e.st.List("")
		if err != nil {
			b.Error(err)
		}
		for _, r := range regions {
			b.Errorf("region left behind: %+v", r)
			e.st.Delete(r.ID)
		}
	})
	return e
}

// benchStats opens a dm-stats handle of its own on the lab's device.
func benchStats(b *testing.B, l *lab.Lab) *dmstats.Stats {
	b.Helper()
	c, err := dm.Open()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return dmstats.New(dmstats.DeviceMessenger(c, dm.ByDevno(l.Major, l.Minor)))
}

// benchDaemonBinary is the dmfilemapd tool built by `make build`.
func benchDaemonBinary(b *testing.B) string {
	b.Helper()
	_, src, _, ok := runtime.Caller(0)
	if !ok {
		b.Fatal("no source path")
	}
	bin := filepath.Join(filepath.Dir(src), "..", "..", "bin", "dmfilemapd")
	if _, err := os.Stat(bin); err != nil {
		b.Fatalf("the dmfilemapd tool is not built (run make build): %v", err)
	}
	return bin
}

// benchMapFile maps path into a new group named alias; the group is deleted
// when the benchmark ends, if still there.
func benchMapFile(b *testing.B, e *benchEnv, f *os.File, path, alias string) uint64 {
	b.Helper()
	res, err := filemap.Create(e.st, f, path, filemap.Options{Alias: alias})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { benchDeleteGroup(e.st, alias) })
	return res.GroupID
}

// benchDeleteGroup deletes every member of the group named alias, if any.
func benchDeleteGroup(st *dmstats.Stats, alias string) error {
	regions, err := st.List("")
	if err != nil {
		return err
	}
	g, _, ok := benchGroupRanges(regions, alias)
	if !ok {
		return nil
	}
	var errs []error
	for _, id := range g.Members {
		errs = append(errs, st.Delete(id))
	}
	return errors.Join(errs...)
}

// benchDaemon is a running dmfilemapd tool.
type benchDaemon struct {
	pid  int
	log  *os.File
	once sync.Once
}

// benchStartDaemon starts the dmfilemapd tool on the file at path, following
// its inode, with its default timing; verbose > 0 logs to a file that is
// shown when the benchmark fails. The daemon is stopped at the end of the
// benchmark if stop was not called before.
func benchStartDaemon(b *testing.B, path string, gid uint64, verbose int) *benchDaemon {
	b.Helper()
	logf, err := os.CreateTemp(b.TempDir(), "dmfilemapd-*.log")
	if err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	pid, err := Start(f, gid, path, ModeInode, StartOptions{Binary: benchDaemonBinary(b), Verbose: verbose, Stderr: logf})
	f.Close()
	if err == nil && pid == 0 {
		err = errors.New("it reported no pid")
	}
	if err != nil {
		logf.Close()
		b.Fatalf("start dmfilemapd: %v", err)
	}
	d := &benchDaemon{pid: pid, log: logf}
	b.Cleanup(func() {
		d.stop(b)
		if b.Failed() {
			out, _ := os.ReadFile(logf.Name())
			b.Logf("dmfilemapd %d log:\n%s", pid, out)
		}
		logf.Close()
	})
	return d
}

// stop ends the daemon with SIGTERM (SIGKILL if it lingers) and waits until
// it is gone.
func (d *benchDaemon) stop(b *testing.B) {
	d.once.Do(func() {
		if err := syscall.Kill(d.pid, syscall.SIGTERM); err != nil {
			b.Errorf("stop dmfilemapd %d: %v", d.pid, err)
			return
		}
		deadline := time.Now().Add(10 * time.Second)
		for benchAlive(d.pid) {
			if time.Now().After(deadline) {
				b.Errorf("dmfilemapd %d ignored SIGTERM for 10s; killing it", d.pid)
				syscall.Kill(d.pid, syscall.SIGKILL)
				deadline = time.Now().Add(10 * time.Second)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// benchAlive reports whether process pid runs (a zombie does not).
func benchAlive(pid int) bool {
	ps, err := readProcStat(pid)
	return err == nil && ps.state != 'Z'
}

// benchMatch reports whether the group named alias covers exactly ranges.
func benchMatch(st *dmstats.Stats, alias string, ranges []filemap.Range) (bool, error) {
	regions, err := st.List("")
	if err != nil {
		return false, err
	}
	_, got, ok := benchGroupRanges(regions, alias)
	return ok && slices.Equal(got, benchUnion(ranges)), nil
}

// benchPoller polls a group until it covers exactly its file's ranges, and
// keeps count of its polls and of the time they took.
type benchPoller struct {
	st    *dmstats.Stats
	alias string
	every time.Duration
	polls int
	spent time.Duration
}

// wait polls the group every p.every until it covers exactly the current
// ranges of f, and returns how long after since it was seen doing so.
func (p *benchPoller) wait(b *testing.B, f *os.File, since time.Time, limit time.Duration) time.Duration {
	b.Helper()
	want, err := filemap.Ranges(f)
	if err != nil {
		b.Fatal(err)
	}
	for {
		t := time.Now()
		ok, err := benchMatch(p.st, p.alias, want)
		now := time.Now()
		p.polls++
		p.spent += now.Sub(t)
		if err != nil {
			b.Fatal(err)
		}
		if ok {
			return now.Sub(since)
		}
		if now.Sub(since) > limit {
			regions, _ := p.st.List("")
			_, got, _ := benchGroupRanges(regions, p.alias)
			b.Fatalf("group %q never matched its file within %v: it covers %v, the file is at %v", p.alias, limit, got, benchUnion(want))
		}
		time.Sleep(p.every)
	}
}

// benchWaitMatch waits until the group named alias covers exactly the
// current ranges of f, for at most 30 s.
func benchWaitMatch(b *testing.B, st *dmstats.Stats, alias string, f *os.File) {
	b.Helper()
	p := &benchPoller{st: st, alias: alias, every: 10 * time.Millisecond}
	p.wait(b, f, time.Now(), 30*time.Second)
}

// Reaction series: each b.Loop iteration measures reactionBatch changes,
// each after a pause drawn from [reactionGapMin, reactionGapMin+reactionGapJitter),
// longer than the daemon's rate limit (DefaultTiming.MinInterval) so that
// every change is measured on its own, at a random phase of the daemon's
// timers. The group is polled every reactionPoll, one @stats_list each:
// under TCG a poll costs milliseconds, and polling faster would take CPU
// from the daemon it measures.
const (
	reactionBatch     = 10
	reactionGapMin    = 600 * time.Millisecond
	reactionGapJitter = 400 * time.Millisecond
	reactionPoll      = 10 * time.Millisecond
	reactionWrite     = 16 << 10
)

// BenchmarkDaemonReaction: the daemon follows a file; each change is a 16
// KiB write at the end of the file, alternately right at the end (the last
// extent grows) and after a 64 KiB hole (a new extent), then fsync. Measured
// from the fsync's return to the first @stats_list in which the group
// covers exactly filemap.Ranges(file). Goal: p95 <= 100 ms (lvm2's floor is
// its 500 ms sleep). Also reported: the daemon's own time per update (from
// its log) and the cost of one poll, which tell what the reaction is made
// of.
func BenchmarkDaemonReaction(b *testing.B) {
	for i, fs := range benchFS {
		b.Run(string(fs), func(b *testing.B) {
			e := benchLab(b, fs)
			path := filepath.Join(e.l.Mountpoint, "reaction.dat")
			f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, reactionWrite)
			for i := range buf {
				buf[i] = byte(i * 7)
			}
			if _, err := f.WriteAt(buf, 0); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			alias := "bench-reaction"
			gid := benchMapFile(b, e, f, path, alias)
			d := benchStartDaemon(b, path, gid, 1)
			benchWaitMatch(b, e.st, alias, f)
			prev, err := filemap.Ranges(f)
			if err != nil {
				b.Fatal(err)
			}
			logged, err := os.Stat(d.log.Name())
			if err != nil {
				b.Fatal(err)
			}
			logStart := logged.Size()

			rng := rand.New(rand.NewPCG(1, uint64(i)))
			poller := &benchPoller{st: e.st, alias: alias, every: reactionPoll}
			var ms []float64
			for b.Loop() {
				for k := range reactionBatch {
					time.Sleep(reactionGapMin + time.Duration(rng.Int64N(int64(reactionGapJitter))))
					st, err := f.Stat()
					if err != nil {
						b.Fatal(err)
					}
					off := st.Size()
					if k%2 == 1 {
						off += 64 << 10
					}
					if _, err := f.WriteAt(buf, off); err != nil {
						b.Fatal(err)
					}
					if err := f.Sync(); err != nil {
						b.Fatal(err)
					}
					took := poller.wait(b, f, time.Now(), 30*time.Second)
					now, err := filemap.Ranges(f)
					if err != nil {
						b.Fatal(err)
					}
					if slices.Equal(benchUnion(now), benchUnion(prev)) {
						b.Fatalf("the write at %d did not change the file's allocation (%v): the sample proves nothing", off, now)
					}
					prev = now
					ms = append(ms, float64(took.Microseconds())/1000)
				}
			}
			if !benchAlive(d.pid) {
				b.Fatal("the daemon ended during the series")
			}
			log, err := os.ReadFile(d.log.Name())
			if err != nil {
				b.Fatal(err)
			}
			updates, err := benchUpdateTimes(string(log[min(logStart, int64(len(log))):]))
			if err != nil {
				b.Fatal(err)
			}
			if len(updates) < len(ms) {
				b.Fatalf("the daemon logged %d updates for %d changes", len(updates), len(ms))
			}
			pollMS := float64(poller.spent.Microseconds()) / 1000 / float64(max(poller.polls, 1))
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(benchPercentile(ms, 50), "reaction-p50-ms")
			b.ReportMetric(benchPercentile(ms, 95), "reaction-p95-ms")
			b.ReportMetric(benchPercentile(ms, 100), "reaction-max-ms")
			b.ReportMetric(benchPercentile(updates, 50), "update-p50-ms")
			b.ReportMetric(benchPercentile(updates, 95), "update-p95-ms")
			b.ReportMetric(pollMS, "poll-ms")
			b.ReportMetric(float64(len(ms)), "samples")
			b.Logf("%s: %d changes, reaction p50 %.1f ms, p95 %.1f ms, max %.1f ms (goal: p95 <= 100 ms; lvm2's dmfilemapd sleeps %v between looks); the daemon's %d updates took p50 %.1f ms, p95 %.1f ms; one poll %.1f ms",
				fs, len(ms), benchPercentile(ms, 50), benchPercentile(ms, 95), benchPercentile(ms, 100), lvm2ReactionFloor,
				len(updates), benchPercentile(updates, 50), benchPercentile(updates, 95), pollMS)
		})
	}
}

// idleWindow is what each b.Loop iteration of BenchmarkDaemonIdle watches;
// idleTick is how often the context switches are read in it.
const (
	idleWindow = 12 * time.Second
	idleTick   = 50 * time.Millisecond
)

// BenchmarkDaemonIdle: two daemons follow two files that do not change. The
// context switches of one (all threads, voluntary and not, from
// /proc/PID/task/*/status) are read every idleTick: wakeups/min counts the
// ticks in which it became active after a quiet one (each time it woke,
// however many threads the Go runtime ran for it), ctxsw/min the switches
// themselves. The other runs under `strace -f -c` over the same window: its
// ioctls and system calls. Goal: nothing but the slow group check (every
// DefaultTiming.GroupCheck, one @stats_list ioctl each); lvm2's daemon wakes
// and lists all regions 120 times a minute.
func BenchmarkDaemonIdle(b *testing.B) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		b.Fatalf("strace is needed to count the daemon's ioctls (ci/install-deps.sh installs it): %v", err)
	}
	for _, fs := range benchFS {
		b.Run(string(fs), func(b *testing.B) {
			e := benchLab(b, fs)
			var daemons []*benchDaemon
			for _, name := range []string{"idle-counted", "idle-traced"} {
				path := filepath.Join(e.l.Mountpoint, name+".dat")
				f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				if _, err := f.WriteAt(make([]byte, 1<<20), 0); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
				gid := benchMapFile(b, e, f, path, "bench-"+name)
				daemons = append(daemons, benchStartDaemon(b, path, gid, 0))
				benchWaitMatch(b, e.st, "bench-"+name, f)
			}
			time.Sleep(time.Second) // the daemons' first looks are done
			counted, traced := daemons[0], daemons[1]

			summary := filepath.Join(b.TempDir(), "strace.txt")
			cmd := exec.Command(strace, "-f", "-c", "-qq", "-o", summary, "-p", fmt.Sprint(traced.pid))
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				b.Fatalf("strace: %v", err)
			}
			traceStart := time.Now()
			stopped := false
			defer func() {
				if !stopped {
					cmd.Process.Kill()
					cmd.Wait()
				}
			}()
			cs, err := benchCtxSwitches(counted.pid)
			if err != nil {
				b.Fatal(err)
			}
			series := []uint64{cs}
			t0 := time.Now()
			for b.Loop() {
				tick := time.NewTicker(idleTick)
				for end := time.Now().Add(idleWindow); time.Now().Before(end); {
					<-tick.C
					cs, err := benchCtxSwitches(counted.pid)
					if err != nil {
						tick.Stop()
						b.Fatal(err)
					}
					series = append(series, cs)
				}
				tick.Stop()
			}
			window := time.Since(t0)
			if err := cmd.Process.Signal(os.Interrupt); err != nil {
				b.Fatal(err)
			}
			werr := cmd.Wait()
			stopped = true
			traceWindow := time.Since(traceStart)
			out, err := os.ReadFile(summary)
			if err != nil {
				b.Fatalf("strace: %v (%v)\n%s", err, werr, stderr.String())
			}
			calls, total, err := benchStraceSummary(string(out))
			if err != nil {
				b.Fatalf("%v (strace: %v)\n%s", err, werr, stderr.String())
			}
			if stderr.Len() > 0 {
				b.Fatalf("strace complained: %s", stderr.String())
			}
			for _, d := range daemons {
				if !benchAlive(d.pid) {
					b.Fatalf("dmfilemapd %d ended while idle", d.pid)
				}
			}
			perMin := func(n uint64, d time.Duration) float64 { return float64(n) / d.Minutes() }
			wakeups := perMin(uint64(benchWakeups(series)), window)
			ctxsw := perMin(series[len(series)-1]-series[0], window)
			ioctls := perMin(calls["ioctl"], traceWindow)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(wakeups, "wakeups/min")
			b.ReportMetric(ctxsw, "ctxsw/min")
			b.ReportMetric(ioctls, "ioctls/min")
			b.ReportMetric(perMin(total, traceWindow), "syscalls/min")
			b.Logf("%s, idle file, %v: %.1f wakeups/min (%.1f context switches/min), %.1f ioctls/min, %.1f syscalls/min %v; lvm2's dmfilemapd by design: %d wakeups/min, %d region listings/min",
				fs, window.Round(time.Second), wakeups, ctxsw, ioctls, perMin(total, traceWindow), calls, lvm2WakeupsPerMin, lvm2ListingsPerMin)
		})
	}
}

// Counted I/O: the writer appends growWrite-byte O_DIRECT writes, paced at
// one per growPace, for growFor per b.Loop iteration, into space it
// preallocates growChunk at a time (fallocate, keeping the size) as soon as
// it starts writing in the last chunk it allocated. Without preallocation no
// append could ever be covered by a region when issued: its blocks are
// allocated by the write itself.
const (
	growWrite   = 64 << 10
	growChunk   = 4 << 20
	growPace    = 10 * time.Millisecond
	growFor     = 5 * time.Second
	growSample  = 100 * time.Millisecond
	growChecked = 4 // first writes, whose counting is checked one by one
)

// growRun is what one growth run saw.
type growRun struct {
	issued   uint64 // writes issued
	paced    uint64 // of those, issued in the paced loop (not the checked ones)
	eligible uint64 // of those, issued while a region of the group covered them
	counted  uint64 // writes the group counted at the end
	sectors  uint64 // sectors it counted written
	decrease uint64 // samples whose total was below the one before
	lost     uint64 // writes those drops took away
	samples  uint64
	failed   uint64 // samples that could not be read (the group was changing)
	elapsed  time.Duration
}

func (r *growRun) add(o growRun) {
	r.issued += o.issued
	r.paced += o.paced
	r.eligible += o.eligible
	r.counted += o.counted
	r.sectors += o.sectors
	r.decrease += o.decrease
	r.lost += o.lost
	r.samples += o.samples
	r.failed += o.failed
	r.elapsed += o.elapsed
}

// BenchmarkDaemonCountedIO: a writer appends 64 KiB O_DIRECT writes while
// the group follows the file, kept by the daemon, or by a loop of one-shot
// exact updates (filemap.Update with Exact, lvm2's layout, every
// DefaultTiming.MinInterval: the daemon's rate limit and lvm2's sleep). The
// group's write total is sampled every growSample; at the end it is compared
// with the writes issued while a region of the group covered them (checked
// with a @stats_list before each write). Goal: no decrease between samples,
// counted >= 99%.
func BenchmarkDaemonCountedIO(b *testing.B) {
	for _, fs := range benchFS {
		b.Run(string(fs), func(b *testing.B) {
			e := benchLab(b, fs)
			for _, tracker := range []string{"daemon", "exact-loop"} {
				b.Run(tracker, func(b *testing.B) {
					var tot growRun
					n := 0
					for b.Loop() {
						n++
						tot.add(benchGrowth(b, e, tracker, n))
					}
					pct := func(a, b uint64) float64 { return 100 * float64(a) / float64(max(b, 1)) }
					b.ReportMetric(0, "ns/op")
					b.ReportMetric(pct(tot.counted, tot.eligible), "counted-%")
					b.ReportMetric(float64(tot.decrease), "decreases")
					b.ReportMetric(float64(tot.lost), "lost-writes")
					b.ReportMetric(pct(tot.eligible, tot.issued), "covered-%")
					b.ReportMetric(float64(tot.paced)/tot.elapsed.Seconds(), "writes/s")
					b.ReportMetric(float64(tot.sectors)/float64(max(tot.counted, 1)), "sectors/write")
					b.Logf("%s, %s: %d writes issued, %d while covered by a region, %d counted (%.2f%%); %d samples (%d unreadable), %d decreases losing %d writes (goal: none, and >= 99%% counted)",
						fs, tracker, tot.issued, tot.eligible, tot.counted, pct(tot.counted, tot.eligible), tot.samples, tot.failed, tot.decrease, tot.lost)
				})
			}
		})
	}
}

// benchGrowth is one growth run on a new file: the n-th with tracker
// ("daemon" or "exact-loop").
func benchGrowth(b *testing.B, e *benchEnv, tracker string, n int) growRun {
	b.Helper()
	name := fmt.Sprintf("grow-%s-%d", tracker, n)
	path := filepath.Join(e.l.Mountpoint, name+".dat")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|unix.O_DIRECT, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer os.Remove(path)
	defer f.Close()
	// O_DIRECT wants an aligned buffer: anonymous memory is page-aligned.
	buf, err := unix.Mmap(-1, 0, growWrite, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Munmap(buf)
	for i := range buf {
		buf[i] = byte(i % 251)
	}
	w := &growWriter{f: f, st: e.st, alias: "bench-" + name, buf: buf}
	// Two chunks: the checked writes below allocate nothing.
	for range 2 {
		if err := w.prealloc(); err != nil {
			b.Fatal(err)
		}
	}
	gid := benchMapFile(b, e, f, path, w.alias)
	defer func() {
		if err := benchDeleteGroup(e.st, w.alias); err != nil {
			b.Errorf("delete group %s: %v", w.alias, err)
		}
	}()

	var stopTracker func() error
	switch tracker {
	case "daemon":
		d := benchStartDaemon(b, path, gid, 1)
		stopTracker = func() error {
			d.stop(b)
			return nil
		}
	case "exact-loop":
		stopTracker = benchExactLoop(b, e.l, path, gid)
	default:
		b.Fatalf("unknown tracker %q", tracker)
	}
	defer func() {
		if stopTracker != nil {
			stopTracker()
		}
	}()
	benchWaitMatch(b, e.st, w.alias, f)

	// Each write is one 64 KiB I/O the group counts, or the figures mean
	// nothing: check the first few one by one.
	before, ok, err := benchGroupTotals(e.st, w.alias)
	if err != nil || !ok {
		b.Fatalf("group totals: %v (found %v)", err, ok)
	}
	for range growChecked {
		if err := w.write(); err != nil {
			b.Fatal(err)
		}
	}
	after, ok, err := benchGroupTotals(e.st, w.alias)
	if err != nil || !ok {
		b.Fatalf("group totals: %v (found %v)", err, ok)
	}
	if dw, ds := after.Writes-before.Writes, after.WriteSectors-before.WriteSectors; w.eligible != growChecked || dw != growChecked || ds != growChecked*growWrite/filemap.SectorSize {
		b.Fatalf("%d covered 64 KiB writes (of %d) were counted as %d writes of %d sectors; want each as one I/O of %d sectors",
			w.eligible, growChecked, dw, ds, growWrite/filemap.SectorSize)
	}

	sampler := startGrowSampler(b, e.l, w.alias)
	defer sampler.stop()
	start := time.Now()
	tick := time.NewTicker(growPace)
	defer tick.Stop()
	for time.Since(start) < growFor {
		<-tick.C
		if err := w.write(); err != nil {
			b.Fatal(err)
		}
	}
	tick.Stop()
	elapsed := time.Since(start)
	paced := w.issued - growChecked
	// Let the tracker catch up with the last allocation, then read the
	// final total.
	benchWaitMatch(b, e.st, w.alias, f)
	seen := sampler.stop()
	if err := stopTracker(); err != nil {
		b.Fatal(err)
	}
	stopTracker = nil
	final, ok, err := benchGroupTotals(e.st, w.alias)
	if err != nil || !ok {
		b.Fatalf("final group totals: %v (found %v)", err, ok)
	}
	if final.Writes < seen.last {
		seen.decrease++
		seen.lost += seen.last - final.Writes
	}
	if final.WriteSectors != final.Writes*growWrite/filemap.SectorSize {
		b.Errorf("the group counted %d writes of %d sectors in all: not all 64 KiB I/Os", final.Writes, final.WriteSectors)
	}
	return growRun{
		issued: w.issued, paced: paced, eligible: w.eligible, counted: final.Writes, sectors: final.WriteSectors,
		decrease: seen.decrease, lost: seen.lost, samples: seen.samples + 1, failed: seen.failed, elapsed: elapsed,
	}
}

// benchGroupTotals sums the counters of the group named alias; false when the
// listing shows no such group. A member deleted between the listing and its
// print fails the call.
func benchGroupTotals(st *dmstats.Stats, alias string) (dmstats.Counters, bool, error) {
	regions, err := st.List("")
	if err != nil {
		return dmstats.Counters{}, false, err
	}
	g, _, ok := benchGroupRanges(regions, alias)
	if !ok {
		return dmstats.Counters{}, false, nil
	}
	t, err := st.GroupTotals(g, regions, false)
	return t.Counters, err == nil, err
}

// growWriter appends 64 KiB O_DIRECT writes to its file, preallocating
// ahead, and counts the writes issued while the group covered them.
type growWriter struct {
	f        *os.File
	st       *dmstats.Stats
	alias    string
	buf      []byte // growWrite bytes, page-aligned
	off      uint64 // the next write's offset: the file's size
	alloc    uint64 // bytes preallocated
	exts     []fiemap.Extent
	issued   uint64
	eligible uint64
}

// prealloc allocates the next chunk past what is allocated, keeping the
// file's size, and re-reads the file's extents.
func (w *growWriter) prealloc() error {
	if err := unix.Fallocate(int(w.f.Fd()), unix.FALLOC_FL_KEEP_SIZE, int64(w.alloc), growChunk); err != nil {
		return fmt.Errorf("fallocate %d+%d: %w", w.alloc, growChunk, err)
	}
	w.alloc += growChunk
	exts, err := fiemap.Extents(w.f, false)
	if err != nil {
		return err
	}
	w.exts = exts
	return nil
}

// write appends one write, after checking whether a region of the group
// covers the sectors it goes to.
func (w *growWriter) write() error {
	if w.off+growWrite > w.alloc-growChunk {
		if err := w.prealloc(); err != nil {
			return err
		}
	}
	phys, err := benchPhysical(w.exts, w.off, growWrite)
	if err != nil {
		return err
	}
	regions, err := w.st.List("")
	if err != nil {
		return err
	}
	_, cover, ok := benchGroupRanges(regions, w.alias)
	covered := ok && benchCovers(cover, phys)
	n, err := w.f.WriteAt(w.buf, int64(w.off))
	if err != nil {
		return fmt.Errorf("O_DIRECT write at %d: %w", w.off, err)
	}
	if n != growWrite {
		return fmt.Errorf("O_DIRECT write at %d: %d bytes written, not %d", w.off, n, growWrite)
	}
	w.off += growWrite
	w.issued++
	if covered {
		w.eligible++
	}
	return nil
}

// growSampler reads the group's write total every growSample, with a
// dm-stats handle of its own, and notes every drop.
type growSampler struct {
	done   chan struct{}
	result chan growSamples
	once   sync.Once
	seen   growSamples
}

// growSamples is what a sampler saw.
type growSamples struct {
	samples, failed, decrease, lost uint64
	last                            uint64 // the latest total read
}

func startGrowSampler(b *testing.B, l *lab.Lab, alias string) *growSampler {
	st := benchStats(b, l)
	s := &growSampler{done: make(chan struct{}), result: make(chan growSamples, 1)}
	go func() {
		var r growSamples
		seen := false
		tick := time.NewTicker(growSample)
		defer tick.Stop()
		for {
			select {
			case <-s.done:
				s.result <- r
				return
			case <-tick.C:
			}
			c, ok, err := benchGroupTotals(st, alias)
			if err != nil || !ok {
				// The group changed under the reading (a member deleted, the
				// leader replaced): a sample missed, not a drop.
				r.failed++
				continue
			}
			r.samples++
			if seen && c.Writes < r.last {
				r.decrease++
				r.lost += r.last - c.Writes
			}
			r.last, seen = c.Writes, true
		}
	}()
	return s
}

// stop ends the sampling and returns what it saw; later calls return the
// same.
func (s *growSampler) stop() growSamples {
	s.once.Do(func() {
		close(s.done)
		s.seen = <-s.result
	})
	return s.seen
}

// benchExactLoop keeps group gid in line with the file at path by one-shot
// exact updates (lvm2's layout), one every DefaultTiming.MinInterval, until
// the returned function is called; that returns the first update error.
func benchExactLoop(b *testing.B, l *lab.Lab, path string, gid uint64) func() error {
	b.Helper()
	st := benchStats(b, l)
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		defer f.Close()
		for {
			res, err := filemap.Update(st, gid, f, filemap.UpdateOptions{Exact: true})
			if err != nil {
				done <- fmt.Errorf("exact update of group %d: %w", gid, err)
				return
			}
			gid = res.GroupID
			select {
			case <-stop:
				done <- nil
				return
			case <-time.After(DefaultTiming.MinInterval):
			}
		}
	}()
	var once sync.Once
	var result error
	return func() error {
		once.Do(func() {
			close(stop)
			result = <-done
		})
		return result
	}
}
