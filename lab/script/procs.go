package script

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// proc is a process found in /proc.
type proc struct {
	pid  int
	argv []string
}

func (p proc) String() string {
	return fmt.Sprintf("pid %d (%s)", p.pid, strings.Join(p.argv, " "))
}

func procArgv(pid int) []string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
}

func allPIDs() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// pid (comm) S ...: the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// usersOf lists the processes other than this one with a file, working
// directory or root on block device major:minor.
func usersOf(major, minor uint32) []proc {
	dev := unix.Mkdev(major, minor)
	self := os.Getpid()
	var out []proc
	for _, pid := range allPIDs() {
		if pid == self || !alive(pid) {
			continue
		}
		base := filepath.Join("/proc", strconv.Itoa(pid))
		paths := []string{filepath.Join(base, "cwd"), filepath.Join(base, "root")}
		if fds, err := os.ReadDir(filepath.Join(base, "fd")); err == nil {
			for _, fd := range fds {
				paths = append(paths, filepath.Join(base, "fd", fd.Name()))
			}
		}
		for _, p := range paths {
			var st unix.Stat_t
			if unix.Stat(p, &st) == nil && st.Dev == dev {
				out = append(out, proc{pid: pid, argv: procArgv(pid)})
				break
			}
		}
	}
	return out
}

// stopUsers ends the processes that keep the file system on major:minor
// busy: SIGTERM, then SIGKILL for those still there after grace. It
// returns what it stopped.
func stopUsers(major, minor uint32, grace time.Duration) []string {
	users := usersOf(major, minor)
	if len(users) == 0 {
		return nil
	}
	var sig []proc
	for _, p := range users {
		if unix.Kill(p.pid, unix.SIGTERM) == nil {
			sig = append(sig, p)
		}
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) && anyAlive(sig) {
		time.Sleep(20 * time.Millisecond)
	}
	stopped := make([]string, len(sig))
	for i, p := range sig {
		stopped[i] = p.String()
		if alive(p.pid) {
			_ = unix.Kill(p.pid, unix.SIGKILL)
			stopped[i] += " with SIGKILL"
		}
	}
	for end := time.Now().Add(time.Second); time.Now().Before(end) && anyAlive(sig); {
		time.Sleep(20 * time.Millisecond)
	}
	return stopped
}

func anyAlive(ps []proc) bool {
	for _, p := range ps {
		if alive(p.pid) {
			return true
		}
	}
	return false
}

// findDaemons lists running dmfilemapd processes for group on path (as
// given on their command line: fd group path mode ...).
func findDaemons(group uint64, path string) []proc {
	g := strconv.FormatUint(group, 10)
	var out []proc
	for _, pid := range allPIDs() {
		argv := procArgv(pid)
		if len(argv) < 5 || filepath.Base(argv[0]) != "dmfilemapd" {
			continue
		}
		if argv[2] == g && argv[3] == path && alive(pid) {
			out = append(out, proc{pid: pid, argv: argv})
		}
	}
	return out
}
