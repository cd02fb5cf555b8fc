package filemapd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// NewUpdaterFunc makes the Updater for the file a command line names. f is the
// open file (descriptor a.FD). An Updater that is also an io.Closer is closed
// when the daemon ends.
type NewUpdaterFunc func(f *os.File, a Args, log *slog.Logger) (Updater, error)

// Program is the dmfilemapd command: the tool runs it with
// [NewStatsUpdater], tests with fakes and short timings.
type Program struct {
	// NewUpdater makes the daemon's Updater once the file is known.
	NewUpdater NewUpdaterFunc
	// Timing tunes the watch loop; zero fields take DefaultTiming's.
	Timing Timing
}

// readyTimeout bounds the wait of a detaching dmfilemapd for the daemon it
// started to say it is ready.
const readyTimeout = 30 * time.Second

// Main runs dmfilemapd with the arguments that follow the program name and
// returns its exit status: 0 when it ran and ended normally (or printed
// help), 1 when it failed, 2 for a bad command line.
//
// With foreground 0, a dmfilemapd that is not a session leader detaches: it
// starts itself again in a new session, with stdio on /dev/null (stderr kept
// when verbose), the working directory at / and only the file as
// descriptor 3, waits until that daemon is ready and exits 0, or 1 with the
// daemon's error. This is what lvm2's dmstats expects of the daemon it
// starts, and what [Start] relies on.
func (p Program) Main(argv []string) int {
	a, err := ParseArgs(argv)
	if errors.Is(err, ErrHelp) {
		fmt.Fprint(os.Stdout, Usage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "dmfilemapd: %v\nRun 'dmfilemapd --help' for usage.\n", err)
		return 2
	}
	rp := readyFromEnv()
	if !a.Foreground && !sessionLeader() {
		return detach(a, rp)
	}
	return p.serve(a, rp)
}

// serve is the daemon itself.
func (p Program) serve(a Args, rp *readyPipe) int {
	fail := func(err error) int {
		rp.fail(err)
		fmt.Fprintf(os.Stderr, "dmfilemapd: %v\n", err)
		return 1
	}
	f, err := fileFromFD(a.FD, a.Path)
	if err != nil {
		return fail(err)
	}
	log := NewLogger(a, os.Stderr)
	if p.NewUpdater == nil {
		f.Close()
		return fail(errors.New("no updater"))
	}
	u, err := p.NewUpdater(f, a, log)
	if err != nil {
		f.Close()
		return fail(fmt.Errorf("group %d, %s: %w", a.GroupID, a.Path, err))
	}
	if c, ok := u.(io.Closer); ok {
		defer c.Close()
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	recheck := make(chan struct{}, 1)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-hup:
				select {
				case recheck <- struct{}{}:
				default:
				}
			case <-done:
				return
			}
		}
	}()

	ready := false
	reason, err := Run(ctx, Config{
		File: f, Path: a.Path, Mode: a.Mode, Updater: u, Logger: log, Timing: p.Timing, Recheck: recheck,
		Ready: func() {
			ready = true
			rp.ready(os.Getpid())
			log.Info("watching", "group", a.GroupID, "path", a.Path, "mode", a.Mode.String(), "pid", os.Getpid())
		},
	})
	switch {
	case err != nil && !ready:
		return fail(fmt.Errorf("group %d, %s: %w", a.GroupID, a.Path, err))
	case err != nil:
		log.Error("giving up", "path", a.Path, "err", err)
		return 1
	case !ready:
		return fail(fmt.Errorf("group %d does not exist", a.GroupID))
	}
	log.Info("exiting", "path", a.Path, "reason", reason.String())
	return 0
}

// sessionLeader reports whether this process leads its session, which is how
// a daemon started detached finds it need not detach again.
func sessionLeader() bool {
	sid, err := unix.Getsid(0)
	return err == nil && sid == unix.Getpid()
}

// fileFromFD takes over descriptor fd, which must be an open regular file.
func fileFromFD(fd int, path string) (*os.File, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("fd %d: %w", fd, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("fd %d is not a regular file", fd)
	}
	unix.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), path), nil
}

// detach starts this program again as a daemon in its own session and waits
// until it is ready; see Main.
func detach(a Args, rp *readyPipe) int {
	fail := func(err error) int {
		rp.fail(err)
		fmt.Fprintf(os.Stderr, "dmfilemapd: %v\n", err)
		return 1
	}
	f, err := fileFromFD(a.FD, a.Path)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	// Whatever the caller leaked to us stays out of the daemon.
	closeOnExecAll()
	pr, pw, err := os.Pipe()
	if err != nil {
		return fail(fmt.Errorf("ready pipe: %w", err))
	}
	defer pr.Close()
	child := a
	child.FD = 3
	var stderr *os.File
	if a.Verbose > 0 {
		stderr = os.Stderr
	}
	cmd := command(selfExe(), child, f, pw, stderr)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	pw.Close()
	if err != nil {
		return fail(fmt.Errorf("start the daemon: %w", err))
	}
	if err := pr.SetReadDeadline(time.Now().Add(readyTimeout)); err != nil {
		return fail(fmt.Errorf("ready pipe: %w", err))
	}
	line, rerr := readLine(pr)
	pid, err := parseReady(line)
	if err == nil {
		rp.ready(pid)
		// The daemon is on its own from here: it is reparented when we exit.
		cmd.Process.Release()
		return 0
	}
	if errors.Is(rerr, os.ErrDeadlineExceeded) {
		cmd.Process.Kill()
		err = fmt.Errorf("the daemon was not ready within %v", readyTimeout)
	}
	if werr := cmd.Wait(); line == "" && werr != nil {
		err = fmt.Errorf("the daemon failed: %w", werr)
	}
	return fail(err)
}

// selfExe is the file to run this program again from: its path, so that the
// daemon's process name is the program's (pgrep dmfilemapd finds it), or
// /proc/self/exe when that path is gone.
func selfExe() string {
	if exe, err := os.Executable(); err == nil {
		if _, err := os.Stat(exe); err == nil {
			return exe
		}
	}
	return "/proc/self/exe"
}

// closeOnExecAll marks every descriptor above stderr close-on-exec.
func closeOnExecAll() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}
