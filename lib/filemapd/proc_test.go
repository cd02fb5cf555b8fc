package filemapd

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// procStat is what /proc/PID/stat says of a process.
type procStat struct {
	state           byte
	ppid, pgrp, sid int
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("bad stat")
	}
	f := strings.Fields(string(b[i+1:]))
	var ps procStat
	ps.state = f[0][0]
	ps.ppid, _ = strconv.Atoi(f[1])
	ps.pgrp, _ = strconv.Atoi(f[2])
	ps.sid, _ = strconv.Atoi(f[3])
	return ps, nil
}

// waitGone waits until process pid ran to its end. A daemon is not the
// caller's child: if whoever adopted it has not reaped it yet, it may linger
// as a zombie, but never as ours.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ps, err := readProcStat(pid)
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		if err == nil && ps.state == 'Z' {
			if ps.ppid == os.Getpid() {
				t.Fatalf("process %d is a zombie of the test process", pid)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running (state %c)", pid, ps.state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fdLinks maps each descriptor of process pid to what it links to.
func fdLinks(t *testing.T, pid int) map[int]string {
	t.Helper()
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	links := map[int]string{}
	for _, e := range ents {
		fd, _ := strconv.Atoi(e.Name())
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil {
			links[fd] = l
		}
	}
	return links
}

// checkDaemonProcess checks that pid runs detached as a daemon for file:
// its own session, not our child, stdio on /dev/null (stderr too unless
// keepStderr), the working directory at /, and file as descriptor 3 with
// nothing else inherited.
func checkDaemonProcess(t *testing.T, pid int, file string, keepStderr bool) {
	t.Helper()
	ps, err := readProcStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	if ps.sid != pid {
		t.Errorf("daemon %d is in session %d, want its own", pid, ps.sid)
	}
	if ours, _ := readProcStat(os.Getpid()); ps.sid == ours.sid {
		t.Errorf("daemon shares the test's session %d", ps.sid)
	}
	if ps.ppid == os.Getpid() {
		t.Errorf("daemon %d is the test's child: it would be the test's zombie", pid)
	}
	// Found by its program's name (pgrep), not as "exe".
	wantComm := filepath.Base(os.Args[0])
	if len(wantComm) > 15 {
		wantComm = wantComm[:15]
	}
	if comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); err != nil || strings.TrimSpace(string(comm)) != wantComm {
		t.Errorf("daemon's process name %q, %v; want %q", comm, err, wantComm)
	}
	if cwd, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd"); err != nil || cwd != "/" {
		t.Errorf("daemon's working directory %q, %v; want /", cwd, err)
	}
	links := fdLinks(t, pid)
	want := map[int]string{0: "/dev/null", 1: "/dev/null", 2: "/dev/null", 3: file}
	if keepStderr {
		want[2], _ = os.Readlink("/proc/self/fd/2")
	}
	for fd, w := range want {
		if links[fd] != w {
			t.Errorf("daemon fd %d -> %q, want %q", fd, links[fd], w)
		}
	}
	for fd, l := range links {
		if _, ok := want[fd]; ok {
			continue
		}
		// Its own kernel objects (inotify, eventfd, epoll), its syslog
		// socket and the cgroup CPU limit files the Go runtime keeps open
		// are not inherited.
		if !strings.HasPrefix(l, "anon_inode:") && !strings.HasPrefix(l, "socket:") && !strings.HasPrefix(l, "/sys/fs/cgroup/") {
			t.Errorf("daemon has fd %d -> %q beyond stdio and the file", fd, l)
		}
	}
}

// helperCmd prepares the test binary as dmfilemapd with a fileFake in dir.
func helperCmd(t *testing.T, dir string, delay time.Duration, argv ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], argv...)
	cmd.Env = append(os.Environ(), helperEnv+"="+dir, helperDelay+"="+delay.String())
	return cmd
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func signalName(s syscall.Signal) string { return s.String() }
