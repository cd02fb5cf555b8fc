package vm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// kvmProbeTimeout bounds the probe boot: a KVM guest that works reaches its
// command in about a second; ours hang after the BIOS.
const kvmProbeTimeout = 15 * time.Second

// chooseAccel resolves "auto" to "kvm" only when a probe boot under KVM has
// been seen to run a command on this machine; the verdict is cached.
func chooseAccel(ctx context.Context, want string, k Kernel, progress io.Writer) (string, error) {
	switch want {
	case "kvm", "tcg":
		return want, nil
	case "", "auto":
	default:
		return "", fmt.Errorf("unknown accelerator %q (want auto, kvm or tcg)", want)
	}
	if os.Getenv("DMFM_LAB_ACCEL") != "" {
		return chooseAccel(ctx, os.Getenv("DMFM_LAB_ACCEL"), k, progress)
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return "tcg", nil
	}
	f.Close()
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	// The verdict holds for this host kernel and this qemu binary, known
	// by its path, size and modification time (asking qemu for its version
	// cost a process start on every run).
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	qemuID := "no-qemu"
	if p, err := exec.LookPath("qemu-system-x86_64"); err == nil {
		if st, err := os.Stat(p); err == nil {
			sum := sha256.Sum256([]byte(fmt.Sprintf("%s %d %d", p, st.Size(), st.ModTime().UnixNano())))
			qemuID = "qemu-" + hex.EncodeToString(sum[:8])
		}
	}
	key := strings.NewReplacer("/", "_", " ", "_").Replace(unix.ByteSliceToString(uts.Release[:]) + "-" + qemuID)
	verdictFile := filepath.Join(cache, "kvm-probe", key)
	if b, err := os.ReadFile(verdictFile); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if err := os.MkdirAll(filepath.Dir(verdictFile), 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(verdictFile + ".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if b, err := os.ReadFile(verdictFile); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	fmt.Fprintf(progress, "dmfm lab: /dev/kvm exists; probing whether KVM guests boot here (once, up to %v)\n", kvmProbeTimeout)
	code, err := Run(ctx, Options{Args: []string{"true"}, Kernel: &k, Accel: "kvm", Timeout: kvmProbeTimeout,
		Preload: []string{}, Stdout: io.Discard, Stderr: io.Discard, Mem: "512M", CPUs: 1, discard: true})
	verdict := "tcg"
	if err == nil && code == 0 {
		verdict = "kvm"
	}
	fmt.Fprintf(progress, "dmfm lab: KVM probe: using %s\n", verdict)
	if err := os.WriteFile(verdictFile, []byte(verdict+"\n"), 0o644); err != nil {
		return "", err
	}
	return verdict, nil
}
