package script

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"
)

const daemonUsage = "daemon start [-follow inode|path] FILE GROUP | daemon running GROUP PATH | " +
	"daemon exited [-timeout D] GROUP PATH [REASON] | daemon stop GROUP PATH | daemon log GROUP PATH"

func init() {
	register("daemon", command{usage: daemonUsage, run: cmdDaemon})
}

// daemonProc is a dmfilemapd the script started in the foreground, with its
// log in a file.
type daemonProc struct {
	group uint64
	path  string
	cmd   *exec.Cmd
	log   string
	done  chan struct{}
}

func (d *daemonProc) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

func (d *daemonProc) readLog() string {
	b, _ := os.ReadFile(d.log)
	return string(b)
}

func cmdDaemon(ts *testscript.TestScript, st *state, _ bool, args []string) {
	if len(args) == 0 {
		usageErr(ts, daemonUsage, "daemon: missing subcommand")
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "start":
		daemonStart(ts, st, args)
	case "running":
		nargs(ts, daemonUsage, args, 2, 2)
		group, path := daemonKey(ts, args)
		if len(findDaemons(group, path)) == 0 {
			msg := fmt.Sprintf("daemon running: no dmfilemapd for group %d on %s is running", group, path)
			if log, ok := st.daemonLog(group, path); ok {
				msg += "; its log:\n" + log
			}
			ts.Fatalf("%s", msg)
		}
	case "exited":
		daemonExited(ts, st, args)
	case "stop":
		nargs(ts, daemonUsage, args, 2, 2)
		group, path := daemonKey(ts, args)
		ps := findDaemons(group, path)
		if len(ps) == 0 {
			ts.Fatalf("daemon stop: no dmfilemapd for group %d on %s is running", group, path)
		}
		for _, p := range ps {
			_ = unix.Kill(p.pid, unix.SIGTERM)
		}
		if !waitGone(group, path, 5*time.Second) {
			ts.Fatalf("daemon stop: dmfilemapd for group %d on %s ignored SIGTERM for 5s", group, path)
		}
	case "log":
		nargs(ts, daemonUsage, args, 2, 2)
		group, path := daemonKey(ts, args)
		log, ok := st.daemonLog(group, path)
		if !ok {
			ts.Fatalf("daemon log: no log of a dmfilemapd for group %d on %s (start it with `daemon start`, or through dmfm inside the lab VM, where syslog is kept)", group, path)
		}
		fmt.Fprint(ts.Stdout(), st.normalizer().apply(log))
	default:
		usageErr(ts, daemonUsage, "daemon: unknown subcommand %q", sub)
	}
}

func daemonKey(ts *testscript.TestScript, args []string) (uint64, string) {
	g, err := parseID("GROUP", args[0])
	if err != nil {
		usageErr(ts, daemonUsage, "daemon: %v", err)
	}
	return g, ts.MkAbs(args[1])
}

// daemonLog returns the log of the newest daemon for group and path: the
// file of one the script started, else what syslog kept.
func (st *state) daemonLog(group uint64, path string) (string, bool) {
	if d := st.daemon(group, path); d != nil {
		return cleanLog(d.readLog()), true
	}
	log, ok := daemonSyslog(group, path)
	return cleanLog(log), ok
}

// daemon returns the newest daemon the script started for group and path.
func (st *state) daemon(group uint64, path string) *daemonProc {
	for i := len(st.daemons) - 1; i >= 0; i-- {
		if d := st.daemons[i]; d.group == group && d.path == path {
			return d
		}
	}
	return nil
}

func waitGone(group uint64, path string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for len(findDaemons(group, path)) > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// lookPath finds prog on the script's PATH.
func lookPath(ts *testscript.TestScript, prog string) (string, error) {
	for _, dir := range filepath.SplitList(ts.Getenv("PATH")) {
		p := filepath.Join(dir, prog)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not on the script's PATH", prog)
}

// daemonStart runs dmfilemapd in the foreground (a child of this process,
// verbose 1, its log in a file under $WORK) and waits until it watches the
// file.
func daemonStart(ts *testscript.TestScript, st *state, args []string) {
	mode := "inode"
	if len(args) > 0 && args[0] == "-follow" {
		if len(args) < 2 || (args[1] != "inode" && args[1] != "path") {
			usageErr(ts, daemonUsage, "daemon start: -follow wants inode or path")
		}
		mode, args = args[1], args[2:]
	}
	nargs(ts, daemonUsage, args, 2, 2)
	path := ts.MkAbs(args[0])
	group, err := parseID("GROUP", args[1])
	if err != nil {
		usageErr(ts, daemonUsage, "daemon start: %v", err)
	}
	bin, err := lookPath(ts, "dmfilemapd")
	if err != nil {
		ts.Fatalf("daemon start: %v", err)
	}
	f, err := os.Open(path)
	if err != nil {
		ts.Fatalf("daemon start: %v", err)
	}
	defer f.Close()
	dir := filepath.Join(st.work, ".daemons")
	ts.Check(os.MkdirAll(dir, 0o755))
	logPath := filepath.Join(dir, fmt.Sprintf("%d-group%d.log", len(st.daemons), group))
	logf, err := os.Create(logPath)
	ts.Check(err)
	defer logf.Close()

	cmd := exec.Command(bin, "3", strconv.FormatUint(group, 10), path, mode, "1", "1")
	cmd.ExtraFiles = []*os.File{f}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), "PATH="+ts.Getenv("PATH"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		ts.Fatalf("daemon start: %v", err)
	}
	d := &daemonProc{group: group, path: path, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(d.done)
	}()
	st.daemons = append(st.daemons, d)
	ts.Defer(func() { st.stopDaemon(ts, d) })

	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(d.readLog(), "msg=watching") {
		if d.exited() || time.Now().After(deadline) {
			why := "did not say it was watching within 15s"
			if d.exited() {
				why = "exited: " + cmd.ProcessState.String()
			}
			ts.Fatalf("daemon start: dmfilemapd for group %d on %s %s; its log:\n%s", group, path, why, cleanLog(d.readLog()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopDaemon ends a daemon at the end of the script and logs its log.
func (st *state) stopDaemon(ts *testscript.TestScript, d *daemonProc) {
	if !d.exited() {
		_ = unix.Kill(d.cmd.Process.Pid, unix.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(5 * time.Second):
			_ = unix.Kill(d.cmd.Process.Pid, unix.SIGKILL)
			<-d.done
		}
	}
	ts.Logf("dmfilemapd for group %d on %s (%s); its log:\n%s", d.group, d.path, d.cmd.ProcessState, cleanLog(d.readLog()))
}

func daemonExited(ts *testscript.TestScript, st *state, args []string) {
	wait := DefaultWait
	if len(args) > 0 && args[0] == "-timeout" {
		if len(args) < 2 {
			usageErr(ts, daemonUsage, "daemon exited: -timeout wants a duration")
		}
		d, err := parseTimeout(args[1])
		if err != nil {
			usageErr(ts, daemonUsage, "daemon exited: %v", err)
		}
		wait, args = d, args[2:]
	}
	nargs(ts, daemonUsage, args, 2, 3)
	group, path := daemonKey(ts, args)
	var reasonRE *regexp.Regexp
	if len(args) == 3 {
		re, err := regexp.Compile(args[2])
		if err != nil {
			usageErr(ts, daemonUsage, "daemon exited: REASON: %v", err)
		}
		reasonRE = re
	}
	if !waitGone(group, path, wait) {
		msg := fmt.Sprintf("daemon exited: dmfilemapd for group %d on %s still runs after %v", group, path, wait)
		if log, ok := st.daemonLog(group, path); ok {
			msg += "; its log:\n" + log
		}
		ts.Fatalf("%s", msg)
	}
	if d := st.daemon(group, path); d != nil {
		<-d.done
	}
	log, ok := st.daemonLog(group, path)
	for end := time.Now().Add(2 * time.Second); ok && !strings.Contains(log, "msg=exiting") && !strings.Contains(log, "giving up") && time.Now().Before(end); {
		// syslog may deliver the last line a moment after the exit
		time.Sleep(50 * time.Millisecond)
		log, ok = st.daemonLog(group, path)
	}
	if !ok {
		if reasonRE != nil {
			ts.Fatalf("daemon exited: no log of the dmfilemapd for group %d on %s tells its reason (start it with `daemon start`, or through dmfm inside the lab VM, where syslog is kept)", group, path)
		}
		return
	}
	reason := exitReason(log)
	fmt.Fprintf(ts.Stdout(), "reason: %s\n", reason)
	if reasonRE != nil && !reasonRE.MatchString(reason) {
		ts.Fatalf("daemon exited: dmfilemapd for group %d on %s exited with reason %q, want %q; its log:\n%s",
			group, path, reason, reasonRE, log)
	}
}

var (
	timeField   = regexp.MustCompile(`(?m)^time=\S+ | pid=\d+`)
	reasonField = regexp.MustCompile(`reason=("(?:[^"\\]|\\.)*"|\S+)`)
	errField    = regexp.MustCompile(`err=("(?:[^"\\]|\\.)*"|\S+)`)
)

// cleanLog drops the timestamps and pids of a slog text log.
func cleanLog(s string) string { return timeField.ReplaceAllString(s, "") }

// exitReason finds why the daemon ended in its log: the reason of its
// "exiting" line, "error: ..." for "giving up", or "no exit line".
func exitReason(log string) string {
	field := func(re *regexp.Regexp, line string) string {
		m := re.FindStringSubmatch(line)
		if m == nil {
			return ""
		}
		if v, err := strconv.Unquote(m[1]); err == nil {
			return v
		}
		return m[1]
	}
	lines := strings.Split(log, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := lines[i]
		switch {
		case strings.Contains(l, "msg=exiting"):
			if r := field(reasonField, l); r != "" {
				return r
			}
		case strings.Contains(l, `msg="giving up"`):
			return "error: " + field(errField, l)
		}
	}
	if strings.Contains(log, "dmfilemapd: ") {
		for i := len(lines) - 1; i >= 0; i-- {
			if strings.HasPrefix(lines[i], "dmfilemapd: ") {
				return "error: " + strings.TrimPrefix(lines[i], "dmfilemapd: ")
			}
		}
	}
	return "no exit line in its log"
}
