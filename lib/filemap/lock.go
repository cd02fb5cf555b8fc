package filemap

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// LockDir holds the per-device lock files that serialise Create and Update
// on one device: stats-MAJ_MIN.lock. Every dmfm process that changes file
// groups on a device takes that device's lock first, so two groups changing
// at once cannot take each other's regions for orphans.
var LockDir = "/run/dmfm"

// lockDevice takes the exclusive lock of device b, waiting for it, and
// returns the function that releases it.
func lockDevice(b Binding) (func(), error) {
	if err := os.MkdirAll(LockDir, 0o755); err != nil {
		return nil, fmt.Errorf("lock directory: %w", err)
	}
	path := filepath.Join(LockDir, fmt.Sprintf("stats-%d_%d.lock", b.Major, b.Minor))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// Closing the file releases the lock.
	return func() { f.Close() }, nil
}
