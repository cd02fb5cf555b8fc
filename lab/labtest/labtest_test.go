package labtest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestRequireDMFailsLoudly runs a test that needs dm in a child process where
// the control node is missing, and checks that it fails rather than skips.
func TestRequireDMFailsLoudly(t *testing.T) {
	if os.Getenv("LABTEST_CHILD") == "1" {
		controlPath = "/nonexistent/mapper/control"
		RequireDM(t)
		t.Log("RequireDM returned")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestRequireDMFailsLoudly$", "-test.v")
	cmd.Env = append(os.Environ(), "LABTEST_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("child test passed without dm:\n%s", out)
	}
	s := string(out)
	if !strings.Contains(s, "--- FAIL") || strings.Contains(s, "--- SKIP") || strings.Contains(s, "RequireDM returned") {
		t.Errorf("child test did not fail loudly:\n%s", s)
	}
	if os.Geteuid() == 0 && !strings.Contains(s, "lab test needs device-mapper") {
		t.Errorf("failure does not say what is missing:\n%s", s)
	}
}
