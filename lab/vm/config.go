package vm

import (
	"encoding/json"
	"fmt"
	"os"
)

// guestConfigPath is where the initramfs carries the run's configuration.
const guestConfigPath = "/dmfm-guest.json"

// Share is a host directory exported to the guest over virtio-9p.
type Share struct {
	Tag      string // 9p mount tag
	HostPath string // directory on the host
	Path     string // mount point in the guest (inside the new root)
	Writable bool
}

// guestConfig is everything the guest's init needs to know, written by the
// host into the initramfs as JSON.
type guestConfig struct {
	Args      []string // command and arguments
	Env       []string // KEY=VALUE
	Dir       string   // working directory in the guest
	Modules   []string // module files in the initramfs, in load order
	Kernel    string   // guest kernel version
	CPUs      int      // CPUs the command must find online
	Shares    []Share  // mounted after the root, in order
	LeakCheck bool     // fail with ExitLeak when loop/dm devices remain
	Verbose   bool
}

// Names of the fixed 9p tags and virtio-serial ports.
const (
	tagRoot    = "dmfmroot"
	tagKernel  = "dmfmkernel"
	tagResults = "dmfmresults"
	portStdout = "dmfm.stdout"
	portStderr = "dmfm.stderr"

	// guest paths
	guestKernelRoot = "/run/dmfm/kernel"
	guestResults    = "/run/dmfm/results"
	guestBin        = "/run/dmfm/bin"
	exitFile        = "exit"
	bootedFile      = "booted" // the guest's init mounted the results share
)

func readGuestConfig() (*guestConfig, error) {
	b, err := os.ReadFile(guestConfigPath)
	if err != nil {
		return nil, err
	}
	var c guestConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("parse %s: %w", guestConfigPath, err)
	}
	return &c, nil
}
