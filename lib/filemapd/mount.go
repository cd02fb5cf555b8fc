package filemapd

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// mountDetached reports whether the mount that f was opened through is no
// longer in this process's mount table, as after `umount -l`: the daemon's
// descriptor is then all that keeps the file system, and its device, busy.
func mountDetached(f *os.File) (bool, error) {
	info, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		return false, err
	}
	id := ""
	for line := range strings.Lines(string(info)) {
		if v, ok := strings.CutPrefix(line, "mnt_id:"); ok {
			id = strings.TrimSpace(v)
			break
		}
	}
	if id == "" {
		return false, fmt.Errorf("no mnt_id in fdinfo of %s", f.Name())
	}
	mi, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer mi.Close()
	sc := bufio.NewScanner(mi)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	prefix := []byte(id + " ")
	for sc.Scan() {
		if bytes.HasPrefix(sc.Bytes(), prefix) {
			return false, nil
		}
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("read mountinfo: %w", err)
	}
	return true, nil
}
