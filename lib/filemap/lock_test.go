package filemap

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLockDevice(t *testing.T) {
	old := LockDir
	LockDir = filepath.Join(t.TempDir(), "locks")
	t.Cleanup(func() { LockDir = old })

	b := Binding{Major: 254, Minor: 3}
	unlock, err := lockDevice(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(LockDir, "stats-254_3.lock")); err != nil {
		t.Fatalf("lock file: %v", err)
	}
	// Another device is not blocked.
	other, err := lockDevice(Binding{Major: 254, Minor: 4})
	if err != nil {
		t.Fatal(err)
	}
	other()

	got := make(chan struct{})
	go func() {
		u, err := lockDevice(b)
		if err != nil {
			t.Error(err)
		} else {
			u()
		}
		close(got)
	}()
	select {
	case <-got:
		t.Fatal("second lock of the same device did not wait")
	case <-time.After(200 * time.Millisecond):
	}
	unlock()
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("second lock not granted after unlock")
	}
}

func TestLockDirError(t *testing.T) {
	old := LockDir
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	LockDir = filepath.Join(file, "sub")
	t.Cleanup(func() { LockDir = old })
	if _, err := lockDevice(Binding{Major: 1, Minor: 2}); err == nil {
		t.Fatal("lock under a regular file succeeded")
	}
}
