package filemapd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// event is one inotify event.
type event struct {
	wd   int
	mask uint32
	name string
}

// watcher is one inotify instance plus an eventfd that wakes its waiter. One
// goroutine waits (wait); any goroutine may wake it (wake) until close.
type watcher struct {
	ifd int
	efd int
	buf []byte
}

func newWatcher() (*watcher, error) {
	ifd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify_init1: %w", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(ifd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	// Room for many events with names of up to NAME_MAX bytes.
	return &watcher{ifd: ifd, efd: efd, buf: make([]byte, 16*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))}, nil
}

// add watches path (a symlink such as /proc/self/fd/N is followed) and
// returns the watch descriptor. Adding an inode that is already watched
// replaces its mask and returns the same descriptor.
func (w *watcher) add(path string, mask uint32) (int, error) {
	wd, err := unix.InotifyAddWatch(w.ifd, path, mask)
	if err != nil {
		return -1, fmt.Errorf("inotify_add_watch %s: %w", path, err)
	}
	return wd, nil
}

// remove drops a watch; a watch the kernel already dropped (its inode went
// away) is not an error.
func (w *watcher) remove(wd int) error {
	if wd < 0 {
		return nil
	}
	if _, err := unix.InotifyRmWatch(w.ifd, uint32(wd)); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("inotify_rm_watch: %w", err)
	}
	return nil
}

// wake makes a blocked or later wait return.
func (w *watcher) wake() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	// EAGAIN means the counter is already non-zero: the waiter wakes anyway.
	_, _ = unix.Write(w.efd, one[:])
}

// wait blocks until events arrive, wake is called or timeout passes (zero or
// less: it only looks), and returns the events read. An interrupted or woken
// wait may return none.
func (w *watcher) wait(timeout time.Duration) ([]event, error) {
	// Round up so that a wait never ends just before its deadline.
	ms := int((max(timeout, 0) + time.Millisecond - 1) / time.Millisecond)
	fds := []unix.PollFd{{Fd: int32(w.ifd), Events: unix.POLLIN}, {Fd: int32(w.efd), Events: unix.POLLIN}}
	if _, err := unix.Poll(fds, ms); err != nil {
		if errors.Is(err, unix.EINTR) {
			return nil, nil
		}
		return nil, fmt.Errorf("poll: %w", err)
	}
	if fds[1].Revents != 0 {
		var cnt [8]byte
		if _, err := unix.Read(w.efd, cnt[:]); err != nil && !errors.Is(err, unix.EAGAIN) {
			return nil, fmt.Errorf("read eventfd: %w", err)
		}
	}
	var events []event
	if fds[0].Revents != 0 {
		for {
			n, err := unix.Read(w.ifd, w.buf)
			if errors.Is(err, unix.EAGAIN) || n == 0 {
				break
			}
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("read inotify: %w", err)
			}
			events = appendEvents(events, w.buf[:n])
		}
	}
	return events, nil
}

// appendEvents decodes the struct inotify_event records in b.
func appendEvents(events []event, b []byte) []event {
	for len(b) >= unix.SizeofInotifyEvent {
		e := event{
			wd:   int(int32(binary.NativeEndian.Uint32(b[0:4]))),
			mask: binary.NativeEndian.Uint32(b[4:8]),
		}
		nameLen := int(binary.NativeEndian.Uint32(b[12:16]))
		b = b[unix.SizeofInotifyEvent:]
		if nameLen > len(b) {
			break
		}
		name := b[:nameLen]
		for len(name) > 0 && name[len(name)-1] == 0 {
			name = name[:len(name)-1]
		}
		e.name = string(name)
		b = b[nameLen:]
		events = append(events, e)
	}
	return events
}

// close releases the inotify instance and the eventfd. No wait or wake may
// run at the same time or later.
func (w *watcher) close() error {
	err1 := unix.Close(w.ifd)
	err2 := unix.Close(w.efd)
	if err1 != nil {
		return fmt.Errorf("close inotify: %w", err1)
	}
	if err2 != nil {
		return fmt.Errorf("close eventfd: %w", err2)
	}
	return nil
}
