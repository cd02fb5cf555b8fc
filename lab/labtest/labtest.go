// Package labtest holds helpers for kernel tests that run inside the lab
// (build tag "lab", run by `make lab-test`). Inside the lab a test that lacks
// device-mapper or root must fail, never skip: a skipped kernel test would
// hide a lab that could not give the suite what it needs.
package labtest

import (
	"os"
	"testing"
)

// ControlPath is the device-mapper control node.
const ControlPath = "/dev/mapper/control"

// controlPath is what RequireDM opens; tests point it elsewhere to prove
// that a missing dm fails.
var controlPath = ControlPath

// RequireDM fails the test unless device-mapper is available and the test
// runs as root. It never skips.
func RequireDM(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	f, err := os.OpenFile(controlPath, os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("lab test needs device-mapper: %v (run it with `make lab-test`, which boots a kernel that has dm)", err)
	}
	f.Close()
}

// RequireRoot fails the test unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("lab test needs root (euid %d)", os.Geteuid())
	}
}
