package dm

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// TestOpenWithoutDM runs on hosts whose kernel has no device-mapper (the
// development host): Open must fail with ErrNoDM and say why.
func TestOpenWithoutDM(t *testing.T) {
	has, err := os.ReadFile("/proc/misc")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(has), " device-mapper\n") {
		t.Skip("this kernel has device-mapper; the lab tests cover Open")
	}
	c, err := Open()
	if err == nil {
		c.Close()
		t.Fatal("Open succeeded on a kernel without device-mapper")
	}
	if !errors.Is(err, ErrNoDM) {
		t.Fatalf("Open error %v does not wrap ErrNoDM", err)
	}
	if !strings.Contains(err.Error(), "device-mapper is not available") || !strings.Contains(err.Error(), ControlPath) {
		t.Errorf("Open error %q does not explain itself", err)
	}
	t.Log(err)
}
