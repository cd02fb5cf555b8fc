// Package vm runs one command as root inside a throwaway qemu virtual machine
// whose kernel has device-mapper, and returns that command's exit status.
//
// It is the lab's answer to hosts without dm (or without root): the guest
// boots Debian's stock kernel (fetched with apt-get download and cached, see
// [EnsureKernel]) and unpacked once on the host so that qemu can enter it at
// its PVH entry point instead of having it decompress itself under emulation;
// its initramfs is built here in Go at run time (a newc cpio holding the
// virtio and 9p modules, the preloaded dm-mod and loop, and the dmfm binary
// itself as /init), and its root file system is the host's own root shared
// read-only over 9p, with fresh tmpfs on /tmp and /run. Host-built binaries
// and host tools (mkfs.xfs, dmsetup, dmstats) therefore run unchanged inside.
//
// Booting is tuned for TCG, where a boot-to-command-to-exit takes ~4 s on an
// idle 2-core host: the guest boots on one CPU and its init brings the others
// up before the command starts, PCI interrupts are routed without ACPI, and
// hardening a throwaway guest does not need is off (see qemuArgs). The guest's
// init notes its steps in the kernel log ("dmfm lab init: ..." in dmesg, and
// with -v on the console) for profiling.
//
// The command's stdout and stderr come back live over virtio-serial ports, and
// its exit status through a small writable 9p share; the console is only ever
// saved to a log file for post-mortems. A run that ends in a kernel panic, an
// oops or a timeout exits with [ExitVMFailure] and names the console log.
// A boot watchdog waits for the guest's init to mark its boot in that share
// (Options.BootTimeout, 2 min by default); a boot that hangs — seen once
// under heavy host load — is killed and retried once, its console log kept,
// instead of holding the run until the overall timeout. The kernel parameter
// dmfm.hang_boot=N (through DMFM_LAB_APPEND) makes the first N boots of a
// run hang, for testing that.
//
// The host side is [Run]; the guest side is [GuestMain], which the dmfm binary
// calls when it finds itself running as PID 1.
package vm

// Exit codes reserved by the runner. Any other code is the command's own.
const (
	// ExitVMFailure means the VM itself failed: kernel panic or oops, the
	// timeout fired, the boot hung twice, or qemu could not start.
	ExitVMFailure = 125
	// ExitLeak means the command succeeded but left loop or dm devices behind
	// and a leak check was asked for.
	ExitLeak = 124
)
