package script

import (
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// The daemons that dmfm starts detached log to syslog. Inside the lab VM
// nothing listens on /dev/log, so the first script that needs it starts a
// small sink there and keeps what dmfilemapd says; on a host with its own
// syslog, journalctl is asked instead.
var sink struct {
	once  sync.Once
	err   error
	mu    sync.Mutex
	lines []syslogLine
}

const devLog = "/dev/log"

// syslogLine is one message: the sender's tag and pid, and the text.
type syslogLine struct {
	tag string
	pid int
	msg string
}

// startSink listens on /dev/log when nothing else does. It is harmless to
// call more than once.
func startSink() {
	sink.once.Do(func() {
		if _, err := os.Stat(devLog); err == nil || os.Geteuid() != 0 {
			sink.err = os.ErrExist
			return
		}
		c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: devLog, Net: "unixgram"})
		if err != nil {
			sink.err = err
			return
		}
		go func() {
			buf := make([]byte, 64<<10)
			for {
				n, _, err := c.ReadFromUnix(buf)
				if err != nil {
					return
				}
				if l, ok := parseSyslog(string(buf[:n])); ok {
					sink.mu.Lock()
					sink.lines = append(sink.lines, l)
					sink.mu.Unlock()
				}
			}
		}()
	})
}

// syslogRE reads what log/syslog (and glibc's syslog) send to /dev/log:
// "<PRI>Mmm dd hh:mm:ss TAG[PID]: MESSAGE", the date optionally with a
// hostname or in RFC 3339.
var syslogRE = regexp.MustCompile(`^<\d+>(?:\S+ +\d+ \d\d:\d\d:\d\d |\d{4}-\S+ )(?:\S+ )?([^\[\s:]+)\[(\d+)\]: ?(.*?)\n?$`)

func parseSyslog(s string) (syslogLine, bool) {
	m := syslogRE.FindStringSubmatch(s)
	if m == nil {
		return syslogLine{}, false
	}
	pid, _ := strconv.Atoi(m[2])
	return syslogLine{tag: m[1], pid: pid, msg: m[3]}, true
}

// daemonSyslog returns what the last dmfilemapd that watched group on path
// logged to syslog, or ok=false when no log of it can be found.
func daemonSyslog(group uint64, path string) (log string, ok bool) {
	var lines []syslogLine
	if sink.err == nil {
		sink.mu.Lock()
		lines = append(lines, sink.lines...)
		sink.mu.Unlock()
	} else if out, err := exec.Command("journalctl", "-q", "-o", "short", "-t", "dmfilemapd", "--no-pager", "-b").Output(); err == nil {
		for _, s := range strings.Split(string(out), "\n") {
			// Mmm dd hh:mm:ss HOST dmfilemapd[PID]: MSG
			if l, ok := parseSyslog("<0>" + s); ok {
				lines = append(lines, l)
			}
		}
	}
	pid := 0
	watch := "msg=watching group=" + strconv.FormatUint(group, 10) + " path=" + strconv.Quote(path)
	watchBare := "msg=watching group=" + strconv.FormatUint(group, 10) + " path=" + path + " "
	for _, l := range lines {
		if l.tag == "dmfilemapd" && (strings.Contains(l.msg, watch) || strings.Contains(l.msg+" ", watchBare)) {
			pid = l.pid
		}
	}
	if pid == 0 {
		return "", false
	}
	var b strings.Builder
	for _, l := range lines {
		if l.tag == "dmfilemapd" && l.pid == pid {
			b.WriteString(l.msg + "\n")
		}
	}
	return b.String(), true
}
