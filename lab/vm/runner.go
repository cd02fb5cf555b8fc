package vm

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Options describe one run of a command in a lab VM.
type Options struct {
	Args    []string // the command and its arguments (required)
	Env     []string // extra KEY=VALUE for the command, over the forwarded host environment
	Dir     string   // working directory in the guest; default: the current directory
	Kernel  *Kernel  // nil: Debian's stock kernel from the cache (fetched if needed)
	Mem     string   // guest memory, qemu syntax; default "2G"
	CPUs    int      // guest CPUs; default 2
	Timeout time.Duration
	// BootTimeout bounds the boot, from qemu's start to the guest's init
	// mounting the results share; a boot that takes longer is taken for a
	// hang (seen under heavy host load), and the VM is killed and booted
	// once more. Default DefaultBootTimeout; it counts within Timeout.
	BootTimeout time.Duration
	// Accel is "auto" (KVM only once a probe proved it boots, else TCG),
	// "kvm" or "tcg".
	Accel     string
	Keep      bool    // keep the run's work directory (console log, initramfs)
	LeakCheck bool    // exit with ExitLeak when loop or dm devices remain
	Shares    []Share // extra host directories; Path defaults to HostPath
	// Preload names the modules (with their dependencies) loaded before the
	// command runs; nil means DefaultPreload. They travel in the initramfs.
	Preload  []string
	Stdout   io.Writer
	Stderr   io.Writer
	Progress io.Writer // slow steps are announced here; nil: quiet
	Verbose  bool

	discard bool // a probe: never keep the work directory
}

// DefaultBootTimeout is Options.BootTimeout's default: a boot takes 4-7 s
// under TCG on a quiet host and under 30 s on a loaded one.
const DefaultBootTimeout = 2 * time.Minute

// DefaultPreload are the modules loaded before the command runs, so that
// /dev/mapper/control and /dev/loop-control exist (there is no udev to load
// them on demand).
var DefaultPreload = []string{"dm-mod", "loop"}

// initramfsModules are needed before the root file system can be mounted.
var initramfsModules = []string{"virtio_pci", "virtio_console", "9pnet_virtio", "9p"}

// Run boots a VM, runs o.Args as root inside it and returns the command's
// exit status, or ExitVMFailure with an error when the VM itself failed.
func Run(ctx context.Context, o Options) (int, error) {
	if len(o.Args) == 0 {
		return ExitVMFailure, errors.New("lab run: no command given")
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	if o.Mem == "" {
		o.Mem = "2G"
	}
	if o.CPUs == 0 {
		o.CPUs = 2
	}
	if o.Timeout == 0 {
		o.Timeout = 20 * time.Minute
	}
	if o.BootTimeout == 0 {
		o.BootTimeout = DefaultBootTimeout
	}
	if o.Preload == nil {
		o.Preload = DefaultPreload
	}
	if o.Dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return ExitVMFailure, err
		}
		o.Dir = wd
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return ExitVMFailure, fmt.Errorf("lab run needs qemu-system-x86_64 (apt-get install qemu-system-x86): %w", err)
	}
	var k Kernel
	if o.Kernel != nil {
		k = *o.Kernel
	} else if k, err = EnsureKernel(ctx, progress); err != nil {
		return ExitVMFailure, err
	}
	accel, err := chooseAccel(ctx, o.Accel, k, progress)
	if err != nil {
		return ExitVMFailure, err
	}
	image := k.Image
	if p, err := pvhImage(k, progress); err != nil {
		return ExitVMFailure, err
	} else if p != "" {
		image = p
	}

	cache, err := CacheDir()
	if err != nil {
		return ExitVMFailure, err
	}
	runs := filepath.Join(cache, "runs")
	if err := os.MkdirAll(runs, 0o755); err != nil {
		return ExitVMFailure, err
	}
	work, err := os.MkdirTemp(runs, "run-")
	if err != nil {
		return ExitVMFailure, err
	}
	keep := o.Keep
	defer func() {
		if !keep || o.discard {
			os.RemoveAll(work)
		}
	}()
	results := filepath.Join(work, "results")
	if err := os.Mkdir(results, 0o755); err != nil {
		return ExitVMFailure, err
	}

	cfg := guestConfig{
		Args:      o.Args,
		Env:       guestEnv(o.Env),
		Dir:       o.Dir,
		Kernel:    k.Version,
		CPUs:      o.CPUs,
		LeakCheck: o.LeakCheck,
		Verbose:   o.Verbose,
	}
	shares := autoShares(o)
	for i := range shares {
		shares[i].Tag = fmt.Sprintf("dmfmshare%d", i)
		if shares[i].Path == "" {
			shares[i].Path = shares[i].HostPath
		}
	}
	cfg.Shares = shares
	initrd := filepath.Join(work, "initramfs.cpio")
	if err := buildInitramfs(initrd, k, append(append([]string(nil), initramfsModules...), o.Preload...), &cfg); err != nil {
		return ExitVMFailure, err
	}

	console := filepath.Join(work, "console.log")
	runCtx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	start := time.Now()
	var qerr error
	var qemuOut string
	for attempt := 1; ; attempt++ {
		args := qemuArgs(accel, o, k, image, initrd, console, work, results, shares, attempt)
		if o.Verbose {
			fmt.Fprintf(progress, "dmfm lab: %s %s\n", qemu, strings.Join(args, " "))
		}
		if o.Verbose || isTerminal(progress) {
			fmt.Fprintf(progress, "dmfm lab: booting %s (%s, %s, %d cpus)\n", k.Version, accel, o.Mem, o.CPUs)
		}
		var hung bool
		hung, qerr, qemuOut, err = launch(runCtx, qemu, args, work, results, o)
		if err != nil {
			return ExitVMFailure, err
		}
		if !hung {
			break
		}
		keep = true
		if attempt == 2 {
			return ExitVMFailure, fmt.Errorf("lab run: the VM did not boot within %v, twice (%s); console log: %s",
				o.BootTimeout, consoleVerdict(console), console)
		}
		first := filepath.Join(work, "console-boot1.log")
		if err := os.Rename(console, first); err != nil {
			return ExitVMFailure, fmt.Errorf("lab run: keep the hung boot's console log: %w", err)
		}
		fmt.Fprintf(progress, "dmfm lab: the VM did not boot within %v (%s); booting once more; console log: %s\n",
			o.BootTimeout, consoleVerdict(first), first)
	}

	code, rerr := readExit(results)
	switch {
	case runCtx.Err() == context.DeadlineExceeded:
		keep = true
		return ExitVMFailure, fmt.Errorf("lab run: timed out after %v; console log: %s", o.Timeout, console)
	case ctx.Err() != nil:
		return ExitVMFailure, ctx.Err()
	case rerr != nil:
		keep = true
		why := consoleVerdict(console)
		if qerr != nil {
			why = fmt.Sprintf("qemu failed: %v: %s; %s", qerr, strings.TrimSpace(qemuOut), why)
		}
		return ExitVMFailure, fmt.Errorf("lab run: the VM ended without the command's exit status (%s); console log: %s", why, console)
	}
	if o.Verbose {
		fmt.Fprintf(progress, "dmfm lab: VM exited after %v\n", time.Since(start).Round(time.Millisecond))
	}
	return code, nil
}

// launch runs qemu once with args, copying the guest's output ports to
// o.Stdout and o.Stderr, until the VM ends or ctx is done. hung reports that
// the guest did not mark its boot in results (bootedFile) within
// o.BootTimeout, and that qemu was killed for it; qerr is qemu's own exit
// error and out what it printed. err is set only when the run could not be
// started.
func launch(ctx context.Context, qemu string, args []string, work, results string, o Options) (hung bool, qerr error, out string, err error) {
	outL, err := listenUnix(filepath.Join(work, "out.sock"))
	if err != nil {
		return false, nil, "", err
	}
	defer outL.Close()
	errL, err := listenUnix(filepath.Join(work, "err.sock"))
	if err != nil {
		return false, nil, "", err
	}
	defer errL.Close()
	var copies sync.WaitGroup
	for _, p := range []struct {
		l *net.UnixListener
		w io.Writer
	}{{outL, o.Stdout}, {errL, o.Stderr}} {
		copies.Add(1)
		go func(l *net.UnixListener, w io.Writer) {
			defer copies.Done()
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			io.Copy(w, c)
		}(p.l, p.w)
	}

	qctx, kill := context.WithCancel(ctx)
	defer kill()
	cmd := exec.CommandContext(qctx, qemu, args...)
	var qemuOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &qemuOut, &qemuOut
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return false, err, "", nil
	}
	// The boot watchdog: the guest's init marks its boot once the results
	// share is mounted.
	watchDone := make(chan struct{})
	var timedOut bool
	go func() {
		defer close(watchDone)
		deadline := time.NewTimer(o.BootTimeout)
		defer deadline.Stop()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-qctx.Done():
				return
			case <-tick.C:
				if _, err := os.Stat(filepath.Join(results, bootedFile)); err == nil {
					return
				}
			case <-deadline.C:
				timedOut = true
				kill()
				return
			}
		}
	}()
	qerr = cmd.Wait()
	kill()
	<-watchDone
	// qemu is gone: its ends of the sockets are closed; stop waiting for a
	// connection that never came.
	outL.Close()
	errL.Close()
	copies.Wait()
	return timedOut && ctx.Err() == nil, qerr, qemuOut.String(), nil
}

// guestEnv forwards the host environment, minus what points at host-only
// state, then applies extra.
func guestEnv(extra []string) []string {
	drop := map[string]bool{"TMPDIR": true, "GOTMPDIR": true, "XDG_RUNTIME_DIR": true, "DISPLAY": true, "HOME": true,
		"SSH_AUTH_SOCK": true, "DBUS_SESSION_BUS_ADDRESS": true, "TERM": true}
	env := []string{"HOME=/tmp", "DMFM_LAB_GUEST=1", "DM_DISABLE_UDEV=1", "TERM=dumb"}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if drop[k] {
			continue
		}
		if k == "PATH" {
			path = v
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "PATH="+guestBin+":"+path)
	return mergeEnv(env, extra)
}

func mergeEnv(env, extra []string) []string {
	idx := map[string]int{}
	for i, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		idx[k] = i
	}
	for _, kv := range extra {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := idx[k]; ok {
			env[i] = kv
		} else {
			idx[k] = len(env)
			env = append(env, kv)
		}
	}
	return env
}

// autoShares adds to o.Shares the directories that the guest would not see
// otherwise: the guest's /tmp and /run are fresh, so a command, a working
// directory or a file argument under the host's /tmp or /run is shared from
// the host at the same path, read-only. The whole tree below /tmp (or /run)
// that holds it is shared — /tmp/X for /tmp/X/a/b — so that a repository
// cloned under /tmp is visible whole (its bin/, testdata, caches). Shares
// come out parents first, the order in which the guest must mount them.
func autoShares(o Options) []Share {
	shares := append([]Share(nil), o.Shares...)
	covered := func(p string) bool {
		for _, s := range shares {
			if !s.Writable && (p == s.HostPath || strings.HasPrefix(p, s.HostPath+"/")) {
				return true
			}
		}
		return false
	}
	add := func(p string) {
		if !filepath.IsAbs(p) {
			p = filepath.Join(o.Dir, p)
		}
		p = filepath.Clean(p)
		if _, err := os.Stat(p); err != nil {
			return
		}
		top := ""
		for _, root := range []string{"/tmp/", "/run/"} {
			if rest, ok := strings.CutPrefix(p, root); ok {
				first, _, _ := strings.Cut(rest, "/")
				top = root + first
			}
		}
		if top == "" || covered(top) {
			return
		}
		if st, err := os.Stat(top); err != nil || !st.IsDir() {
			return // a file right in /tmp: no directory to share
		}
		shares = append(shares, Share{HostPath: top})
	}
	add(o.Dir)
	for i, a := range o.Args {
		if i == 0 || strings.Contains(a, "/") {
			add(a)
		}
	}
	sort.SliceStable(shares, func(i, j int) bool {
		return strings.Count(shares[i].HostPath, "/") < strings.Count(shares[j].HostPath, "/")
	})
	return shares
}

func listenUnix(path string) (*net.UnixListener, error) {
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("lab run: %w", err)
	}
	return l, nil
}

func qemuArgs(accel string, o Options, k Kernel, image, initrd, console, work, results string, shares []Share, attempt int) []string {
	// pci=noacpi: PCI interrupt routing from the BIOS's table instead of
	// ACPI's link devices, whose AML took ~0.5 s per virtio device under TCG
	// (the devices then use MSI-X anyway).
	// rodata=off skips write-protecting the kernel and the page-table walk
	// that checks it (CONFIG_DEBUG_WX); init_on_alloc=0 stops zeroing every
	// page allocated (Debian turns it on): hardening a throwaway guest does
	// not need, worth ~0.5-1 s of boot under TCG.
	cmdline := "console=ttyS0 panic=-1 oops=panic quiet loglevel=4 mitigations=off nokaslr pci=noacpi rodata=off init_on_alloc=0 " +
		"i8042.noaux i8042.nomux i8042.nopnp i8042.nokbd random.trust_cpu=on tsc=reliable no_timer_check cryptomgr.notests rdinit=/init"
	if o.CPUs > 1 {
		// The kernel boots on one CPU and the guest's init brings the
		// others up before the command runs: under TCG, every cross-CPU
		// call (code patching, TLB flushes) during boot waits for another
		// vCPU thread, which costs ~0.7 s on a busy host. noreplace-smp
		// keeps the kernel from patching itself (and every module) down to
		// uniprocessor code at boot and back up when the next CPU comes
		// online: ~0.45 s of text patching under TCG.
		cmdline += " maxcpus=1 noreplace-smp"
	}
	if lpj := loopsPerJiffy(k); lpj > 0 {
		// Skips the delay-loop calibration of the second CPU, which under
		// TCG often fails its fast method and spends up to ~0.7 s.
		cmdline += " lpj=" + strconv.FormatInt(lpj, 10)
	}
	// Which boot of this run it is, for the guest's test hook (see
	// hangBoot).
	cmdline += " dmfm.attempt=" + strconv.Itoa(attempt)
	if extra := os.Getenv("DMFM_LAB_APPEND"); extra != "" {
		cmdline += " " + extra // kernel debugging: e.g. DMFM_LAB_APPEND=loglevel=7
	}
	args := []string{
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		// No ACPI PCI hotplug: its AML (a device object per slot) made
		// the guest's ACPI namespace scan ~0.4 s slower under TCG.
		"-global", "PIIX4_PM.acpi-root-pci-hotplug=off",
		"-global", "PIIX4_PM.acpi-pci-hotplug-with-bridge-support=off",
		"-m", o.Mem, "-smp", strconv.Itoa(o.CPUs),
		"-kernel", image, "-initrd", initrd, "-append", cmdline,
		"-serial", "file:" + console,
		"-device", "virtio-serial-pci,id=vser",
		"-chardev", "socket,id=cout,path=" + filepath.Join(work, "out.sock"),
		"-device", "virtserialport,bus=vser.0,chardev=cout,name=" + portStdout,
		"-chardev", "socket,id=cerr,path=" + filepath.Join(work, "err.sock"),
		"-device", "virtserialport,bus=vser.0,chardev=cerr,name=" + portStderr,
		"-virtfs", "local,path=/,mount_tag=" + tagRoot + ",security_model=none,readonly=on,multidevs=remap",
		"-virtfs", "local,path=" + k.Root + ",mount_tag=" + tagKernel + ",security_model=none,readonly=on,multidevs=remap",
		"-virtfs", "local,path=" + results + ",mount_tag=" + tagResults + ",security_model=none,multidevs=remap",
	}
	for _, s := range shares {
		ro := ",readonly=on"
		if s.Writable {
			ro = ""
		}
		args = append(args, "-virtfs", "local,path="+s.HostPath+",mount_tag="+s.Tag+",security_model=none,multidevs=remap"+ro)
	}
	if _, err := os.Stat("/usr/share/qemu/qboot.rom"); err == nil {
		args = append(args, "-bios", "/usr/share/qemu/qboot.rom")
	}
	switch accel {
	case "kvm":
		args = append(args, "-accel", "kvm", "-cpu", "host")
	default:
		args = append(args, "-accel", "tcg,thread=multi", "-cpu", "max")
	}
	return args
}

// loopsPerJiffy returns the lpj= boot value matching the guest's TSC, which
// runs at the host's TSC rate under TCG and KVM alike: the host's rate comes
// from its BogoMIPS (twice the TSC rate in MHz when, as on any x86 with a
// usable TSC, the delay loop is the TSC) and the guest's HZ from the
// kernel's config. It returns 0 when either is unknown or implausible.
func loopsPerJiffy(k Kernel) int64 {
	cpuinfo, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	config, err := os.ReadFile(filepath.Join(k.Root, "boot", "config-"+k.Version))
	if err != nil {
		return 0
	}
	return lpjFor(string(cpuinfo), string(config))
}

func lpjFor(cpuinfo, config string) int64 {
	var bogomips float64
	for _, l := range strings.Split(cpuinfo, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if ok && strings.TrimSpace(k) == "bogomips" {
			bogomips, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
			break
		}
	}
	var hz int64
	for _, l := range strings.Split(config, "\n") {
		if v, ok := strings.CutPrefix(l, "CONFIG_HZ="); ok {
			hz, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			break
		}
	}
	tscKHz := bogomips * 500
	if hz < 24 || hz > 10000 || tscKHz < 100e3 || tscKHz > 10e6 {
		return 0
	}
	return int64(tscKHz * 1000 / float64(hz))
}

func readExit(results string) (int, error) {
	b, err := os.ReadFile(filepath.Join(results, exitFile))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// consoleVerdict names what the console log says went wrong.
func consoleVerdict(console string) string {
	b, _ := os.ReadFile(console)
	s := string(b)
	for _, m := range []struct{ needle, verdict string }{
		{"Kernel panic", "kernel panic"},
		{"Oops", "kernel oops"},
		{"BUG:", "kernel BUG"},
		{"dmfm lab (guest):", "the guest's init failed"},
	} {
		if i := strings.Index(s, m.needle); i >= 0 {
			line := s[i:]
			if j := strings.IndexByte(line, '\n'); j >= 0 {
				line = line[:j]
			}
			return m.verdict + ": " + strings.TrimSpace(line)
		}
	}
	return "no panic in the console log"
}

// buildInitramfs writes the newc archive with /init (this very executable,
// which must be statically linked), the named modules with their
// dependencies, and the run configuration, whose Modules it sets to the
// module files in load order.
func buildInitramfs(path string, k Kernel, modules []string, cfg *guestConfig) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("initramfs: find own executable: %w", err)
	}
	if err := checkStatic(self); err != nil {
		return err
	}
	idx, err := loadModuleIndex(k.ModulesDir())
	if err != nil {
		return err
	}
	order, err := idx.loadOrder(modules...)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := newCPIOWriter(f)
	for _, d := range []string{"dev", "proc", "sys", "newroot", "modules", "tmp"} {
		w.Dir(d, 0o755)
	}
	w.CharDev("dev/console", 0o600, 5, 1)
	w.CharDev("dev/null", 0o666, 1, 3)
	w.CharDev("dev/kmsg", 0o644, 1, 11)
	w.File("init", 0o755, self)
	var names []string
	for _, m := range order {
		name := filepath.Base(m)
		src := filepath.Join(k.ModulesDir(), m)
		switch {
		case strings.HasSuffix(name, ".ko"):
			w.File("modules/"+name, 0o644, src)
		default:
			data, err := decompressModule(src)
			if err != nil {
				return err
			}
			name = name[:strings.Index(name, ".ko")+3]
			w.Bytes("modules/"+name, 0o644, data)
		}
		names = append(names, name)
	}
	cfg.Modules = names
	js, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	w.Bytes(strings.TrimPrefix(guestConfigPath, "/"), 0o644, js)
	if err := w.Close(); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	return f.Close()
}

func decompressModule(src string) ([]byte, error) {
	var tool string
	switch {
	case strings.HasSuffix(src, ".xz"):
		tool = "xz"
	case strings.HasSuffix(src, ".zst"):
		tool = "zstd"
	case strings.HasSuffix(src, ".gz"):
		tool = "gzip"
	default:
		return nil, fmt.Errorf("initramfs: unknown module compression: %s", src)
	}
	out, err := exec.Command(tool, "-dc", src).Output()
	if err != nil {
		return nil, fmt.Errorf("initramfs: decompress %s with %s: %w", src, tool, err)
	}
	return out, nil
}

// checkStatic refuses a dynamically linked binary: it would find no loader
// in the initramfs.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("initramfs: %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("initramfs: %s is dynamically linked; build it with CGO_ENABLED=0 (make bin/dmfm does)", path)
		}
	}
	return nil
}

// isTerminal reports whether w is a terminal: the boot line is progress for a
// person waiting, and noise in a test log.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
