package filemapd

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// StartOptions tune [Start].
type StartOptions struct {
	// Verbose (0..MaxVerbose) is passed to the daemon; above 0 the daemon
	// logs to the caller's stderr instead of syslog.
	Verbose int
	// Stderr is where a verbose daemon logs; nil means the caller's stderr.
	// Unused when Verbose is 0.
	Stderr *os.File
	// Binary is the dmfilemapd to run. Empty: the one next to the running
	// executable, else the first in $PATH.
	Binary string
}

// Start starts a dmfilemapd that keeps group groupID in step with f, whose
// absolute path is path, following it as mode says. The daemon runs detached:
// in its own session, stdio on /dev/null (stderr kept when verbose), f as its
// only inherited descriptor (3), and not a child of the caller, so that it
// leaves no zombie behind. Start returns once the daemon watches the file,
// with its pid; or with an error when it could not start, so that the caller
// can warn and update the map once instead. A daemon that does not report its
// pid (lvm2's dmfilemapd) started when it detached without error; its pid is
// then 0.
func Start(f *os.File, groupID uint64, path string, mode Mode, opts StartOptions) (int, error) {
	switch {
	case f == nil:
		return 0, errors.New("start dmfilemapd: no file")
	case !filepath.IsAbs(path):
		return 0, fmt.Errorf("start dmfilemapd: path %q is not absolute", path)
	case mode != ModeInode && mode != ModePath:
		return 0, fmt.Errorf("start dmfilemapd: bad mode %d", int(mode))
	case opts.Verbose < 0 || opts.Verbose > MaxVerbose:
		return 0, fmt.Errorf("start dmfilemapd: verbose %d out of 0..%d", opts.Verbose, MaxVerbose)
	}
	bin, err := findDaemon(opts.Binary)
	if err != nil {
		return 0, fmt.Errorf("start dmfilemapd: %w", err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("start dmfilemapd: ready pipe: %w", err)
	}
	defer pr.Close()
	var stderr *os.File
	if opts.Verbose > 0 {
		stderr = opts.Stderr
		if stderr == nil {
			stderr = os.Stderr
		}
	}
	// The program we start detaches (foreground 0) and exits: we reap it
	// here, and its daemon is left to init.
	cmd := command(bin, Args{FD: 3, GroupID: groupID, Path: path, Mode: mode, Verbose: opts.Verbose}, f, pw, stderr)
	err = cmd.Start()
	pw.Close()
	if err != nil {
		return 0, fmt.Errorf("start dmfilemapd %s: %w", bin, err)
	}
	werr := cmd.Wait()
	// What the detaching program relayed is in the pipe by now. A daemon of
	// another kind may keep the pipe open without writing: do not wait on it.
	if err := pr.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		return 0, fmt.Errorf("start dmfilemapd: ready pipe: %w", err)
	}
	line, _ := readLine(pr)
	if line != "" {
		pid, err := parseReady(line)
		if err != nil {
			return 0, fmt.Errorf("dmfilemapd for group %d did not start: %w", groupID, err)
		}
		return pid, nil
	}
	if werr != nil {
		return 0, fmt.Errorf("dmfilemapd for group %d did not start: %w", groupID, werr)
	}
	return 0, nil
}

// findDaemon picks the dmfilemapd binary: bin if set, else the one next to
// the running executable, else the first in $PATH.
func findDaemon(bin string) (string, error) {
	if bin != "" {
		return bin, nil
	}
	exe, err := os.Executable()
	if err == nil {
		p := filepath.Join(filepath.Dir(exe), "dmfilemapd")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := exec.LookPath("dmfilemapd")
	if err != nil {
		return "", fmt.Errorf("no dmfilemapd next to %s nor in $PATH", exe)
	}
	return p, nil
}
