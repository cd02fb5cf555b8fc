package filemapd

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// heldElsewhere reports whether any open file descriptor in any process, other
// than descriptor ownFD of this process, refers to the unlinked file dev:ino.
// It looks only at descriptors whose /proc link ends in " (deleted)", which
// every descriptor of an unlinked file does, so it never stats a descriptor of
// an unrelated file system (a hung network mount cannot block it). Processes
// that vanish or cannot be read while it looks are skipped.
func heldElsewhere(procDir string, dev, ino uint64, ownFD int) (bool, error) {
	procs, err := os.ReadDir(procDir)
	if err != nil {
		return false, err
	}
	self := strconv.Itoa(os.Getpid())
	for _, p := range procs {
		pid := p.Name()
		if pid == "" || pid[0] < '0' || pid[0] > '9' {
			continue
		}
		fdDir := procDir + "/" + pid + "/fd"
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue // gone, or a kernel thread, or not ours to read
		}
		for _, fd := range fds {
			if pid == self && fd.Name() == strconv.Itoa(ownFD) {
				continue
			}
			link := fdDir + "/" + fd.Name()
			target, err := os.Readlink(link)
			if err != nil || !strings.HasSuffix(target, " (deleted)") {
				continue
			}
			var st unix.Stat_t
			if unix.Stat(link, &st) != nil {
				continue
			}
			if st.Dev == dev && st.Ino == ino {
				return true, nil
			}
		}
	}
	return false, nil
}
