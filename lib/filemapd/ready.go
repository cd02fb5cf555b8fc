package filemapd

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The ready handshake: whoever starts a dmfilemapd may pass the write end of
// a pipe and name its descriptor in readyEnv. The daemon writes one line to it
// once it watches the file ("ready <pid>") or when it fails to start
// ("error <message>"), then closes it. A detaching dmfilemapd relays its
// daemon's line. lvm2's dmfilemapd ignores all this.
const readyEnv = "DMFILEMAPD_READY_FD"

// readyPipe is the write end of a ready pipe; nil when there is none.
type readyPipe struct{ f *os.File }

// readyFromEnv takes the ready pipe named in the environment, if it is one,
// and removes the name so that nothing started later inherits it.
func readyFromEnv() *readyPipe {
	v, ok := os.LookupEnv(readyEnv)
	if !ok {
		return nil
	}
	os.Unsetenv(readyEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return nil
	}
	unix.CloseOnExec(fd)
	return &readyPipe{f: os.NewFile(uintptr(fd), "ready pipe")}
}

func (r *readyPipe) send(line string) {
	if r == nil || r.f == nil {
		return
	}
	// The reader may be gone; the daemon goes on regardless.
	_, _ = r.f.WriteString(line + "\n")
	r.f.Close()
	r.f = nil
}

// ready reports that the daemon pid watches the file.
func (r *readyPipe) ready(pid int) { r.send("ready " + strconv.Itoa(pid)) }

// fail reports why the daemon did not start.
func (r *readyPipe) fail(err error) {
	r.send("error " + strings.ReplaceAll(err.Error(), "\n", " "))
}

// parseReady reads a ready line: the daemon's pid, or its error.
func parseReady(line string) (int, error) {
	switch {
	case strings.HasPrefix(line, "ready "):
		pid, err := strconv.Atoi(strings.TrimPrefix(line, "ready "))
		if err != nil || pid <= 0 {
			return 0, fmt.Errorf("bad ready line %q", line)
		}
		return pid, nil
	case strings.HasPrefix(line, "error "):
		return 0, errors.New(strings.TrimPrefix(line, "error "))
	case line == "":
		return 0, errors.New("the daemon ended without saying why")
	}
	return 0, fmt.Errorf("bad ready line %q", line)
}

// readLine reads up to the first newline (not included), the end of the
// pipe, or an error (returned with what was read).
func readLine(r *os.File) (string, error) {
	var b []byte
	buf := make([]byte, 512)
	for {
		n, err := r.Read(buf)
		b = append(b, buf[:n]...)
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			return string(b[:i]), nil
		}
		if err != nil || len(b) > 64<<10 {
			return string(b), err
		}
	}
}

// command prepares a dmfilemapd run for a, with f as descriptor 3, the ready
// pipe pw as descriptor 4, stdin and stdout on /dev/null, stderr on stderr
// (nil: /dev/null) and the working directory at / (so that the daemon pins no
// mount point).
func command(bin string, a Args, f, pw, stderr *os.File) *exec.Cmd {
	cmd := exec.Command(bin, a.Argv()...)
	cmd.Args[0] = "dmfilemapd"
	env := make([]string, 0, len(os.Environ())+1)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, readyEnv+"=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, readyEnv+"=4")
	cmd.ExtraFiles = []*os.File{f, pw}
	if stderr != nil {
		cmd.Stderr = stderr
	}
	cmd.Dir = "/"
	return cmd
}
