package vm

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// IsGuestInit reports whether this process is the lab VM's init: PID 1 with
// the run configuration the host put into the initramfs.
func IsGuestInit() bool {
	if os.Getpid() != 1 {
		return false
	}
	_, err := os.Stat(guestConfigPath)
	return err == nil
}

// GuestMain is the lab VM's init. It mounts the host's root read-only over
// 9p with fresh tmpfs on /tmp and /run, runs the configured command with its
// output on virtio-serial ports, writes the exit status into the results
// share and powers the VM off. It never returns.
func GuestMain() {
	g := &guest{stderr: os.Stderr}
	code, err := g.run()
	if err != nil {
		fmt.Fprintf(g.stderr, "dmfm lab (guest): %v\n", err)
		if g.stderr != os.Stderr {
			fmt.Fprintf(os.Stderr, "dmfm lab (guest): %v\n", err)
		}
		code = ExitVMFailure
	}
	if g.resultsUp {
		if werr := os.WriteFile(filepath.Join(guestResults, exitFile), []byte(strconv.Itoa(code)+"\n"), 0o644); werr != nil {
			fmt.Fprintf(os.Stderr, "dmfm lab (guest): write exit status: %v\n", werr)
		}
	}
	for _, f := range g.ports {
		f.Close()
	}
	unix.Sync()
	g.trace("powering off")
	// qemu runs with -no-reboot, so a restart ends it.
	unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
	select {}
}

type guest struct {
	cfg       *guestConfig
	verbose   bool
	kmsg      *os.File
	stderr    io.Writer
	ports     []*os.File
	resultsUp bool
}

// trace records in the kernel log (and, for -v runs, on the console) when
// a step of the guest's init was reached, for boot-time profiling.
func (g *guest) trace(step string) {
	if g.kmsg == nil {
		g.kmsg, _ = os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
	}
	if g.kmsg != nil {
		fmt.Fprintf(g.kmsg, "<5>dmfm lab init: %s\n", step)
	}
	if g.verbose {
		var ts unix.Timespec
		_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
		fmt.Fprintf(os.Stderr, "dmfm lab init: %d.%03d s: %s\n", ts.Sec, ts.Nsec/1e6, step)
	}
}

func mount(src, target, fstype string, flags uintptr, data string) error {
	if err := os.MkdirAll(target, 0o755); err != nil && !errors.Is(err, unix.EROFS) {
		return fmt.Errorf("mkdir %s: %w", target, err)
	}
	if err := unix.Mount(src, target, fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s (%s) on %s: %w", src, fstype, target, err)
	}
	return nil
}

func (g *guest) run() (int, error) {
	g.trace("started")
	for _, m := range []struct{ src, dst, typ string }{
		{"devtmpfs", "/dev", "devtmpfs"}, {"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"},
	} {
		if err := mount(m.src, m.dst, m.typ, 0, ""); err != nil {
			return 0, err
		}
	}
	cfg, err := readGuestConfig()
	if err != nil {
		return 0, err
	}
	g.cfg = cfg
	g.verbose = cfg.Verbose
	g.trace("config read")
	cmdline, _ := os.ReadFile("/proc/cmdline")
	hangBoot(string(cmdline))
	for _, m := range cfg.Modules {
		if err := insmod(filepath.Join("/modules", filepath.Base(m)), moduleParams(string(cmdline), m)); err != nil {
			return 0, err
		}
	}
	g.trace("modules loaded")
	// The other CPUs come up while the root is mounted.
	cpus := onlineCPUs(cfg.CPUs)

	const nr = "/newroot"
	p9 := "trans=virtio,version=9p2000.L,msize=512000"
	if err := mount(tagRoot, nr, "9p", unix.MS_RDONLY, p9+",cache=loose"); err != nil {
		return 0, err
	}
	g.trace("root mounted")
	mounts := []struct {
		src, dst, typ string
		flags         uintptr
		data          string
	}{
		{"devtmpfs", nr + "/dev", "devtmpfs", 0, ""},
		{"proc", nr + "/proc", "proc", 0, ""},
		{"sysfs", nr + "/sys", "sysfs", 0, ""},
		{"devpts", nr + "/dev/pts", "devpts", 0, "ptmxmode=0666"},
		{"tmpfs", nr + "/dev/shm", "tmpfs", 0, "mode=1777"},
		{"tmpfs", nr + "/tmp", "tmpfs", 0, "mode=1777"},
		{"tmpfs", nr + "/run", "tmpfs", 0, "mode=755"},
		{tagKernel, nr + guestKernelRoot, "9p", unix.MS_RDONLY, p9 + ",cache=loose"},
		{tagResults, nr + guestResults, "9p", 0, p9},
	}
	for _, m := range mounts {
		if err := mount(m.src, m.dst, m.typ, m.flags, m.data); err != nil {
			return 0, err
		}
	}
	g.resultsUp = true
	// The host's boot watchdog waits for this mark.
	if err := os.WriteFile(filepath.Join(nr+guestResults, bootedFile), nil, 0o644); err != nil {
		return 0, fmt.Errorf("mark the boot done: %w", err)
	}
	// debugfs and configfs are cheap and some dm tooling looks there.
	_ = unix.Mount("debugfs", nr+"/sys/kernel/debug", "debugfs", 0, "")
	for _, s := range cfg.Shares {
		flags := uintptr(0)
		if !s.Writable {
			flags = unix.MS_RDONLY
		}
		if err := mount(s.Tag, nr+s.Path, "9p", flags, p9); err != nil {
			return 0, err
		}
	}
	g.trace("mounts done")
	if err := g.setupModprobe(nr); err != nil {
		return 0, err
	}
	if err := unix.Chroot(nr); err != nil {
		return 0, fmt.Errorf("chroot %s: %w", nr, err)
	}
	if err := os.Chdir("/"); err != nil {
		return 0, err
	}
	stdout, err := openPort(portStdout)
	if err != nil {
		return 0, err
	}
	stderr, err := openPort(portStderr)
	if err != nil {
		return 0, err
	}
	g.ports = []*os.File{stdout, stderr}
	g.stderr = stderr
	_ = unix.Sethostname([]byte("dmfm-lab"))
	g.trace("ports open")

	if err := <-cpus; err != nil {
		return 0, err
	}
	g.trace("cpus online")
	return g.command(stdout, stderr)
}

// hangBoot is a test hook for the host's boot watchdog: with
// dmfm.hang_boot=N on the kernel command line, the boots numbered up to N
// (dmfm.attempt=, set by the runner) stop here, before the results share is
// mounted, as a boot that hangs would.
func hangBoot(cmdline string) {
	var hang, attempt int
	for _, f := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(f, "dmfm.hang_boot="); ok {
			hang, _ = strconv.Atoi(v)
		}
		if v, ok := strings.CutPrefix(f, "dmfm.attempt="); ok {
			attempt, _ = strconv.Atoi(v)
		}
	}
	for attempt > 0 && attempt <= hang {
		// Sleep rather than block: a PID 1 with every goroutine blocked
		// would die of Go's deadlock check, and the kernel would panic.
		time.Sleep(time.Hour)
	}
}

// setupModprobe points the kernel's module loader (and a modprobe on PATH) at
// the lab kernel's module tree, since the host root has none for it.
func (g *guest) setupModprobe(nr string) error {
	script := "#!/bin/sh\nexec /sbin/modprobe -d " + guestKernelRoot + " \"$@\"\n"
	if err := os.MkdirAll(nr+guestBin, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(nr+guestBin+"/modprobe", []byte(script), 0o755); err != nil {
		return fmt.Errorf("write modprobe wrapper: %w", err)
	}
	if err := os.WriteFile("/proc/sys/kernel/modprobe", []byte(guestBin+"/modprobe\n"), 0o644); err != nil {
		return fmt.Errorf("set kernel modprobe: %w", err)
	}
	return nil
}

func (g *guest) command(stdout, stderr *os.File) (int, error) {
	cfg := g.cfg
	if len(cfg.Args) == 0 {
		return 0, errors.New("no command to run")
	}
	env := cfg.Env
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	bin := cfg.Args[0]
	if !strings.Contains(bin, "/") {
		found := ""
		for _, d := range filepath.SplitList(path) {
			p := filepath.Join(d, bin)
			if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
				found = p
				break
			}
		}
		if found == "" {
			fmt.Fprintf(stderr, "dmfm lab: %s: command not found in the guest's PATH\n", bin)
			return 127, nil
		}
		bin = found
	}
	devnull, err := os.Open("/dev/null")
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	dir := cfg.Dir
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		fmt.Fprintf(stderr, "dmfm lab: working directory %s is not visible in the guest; running in /\n", dir)
		dir = "/"
	}
	proc, err := os.StartProcess(bin, cfg.Args, &os.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: []*os.File{devnull, stdout, stderr},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		fmt.Fprintf(stderr, "dmfm lab: start %s: %v\n", cfg.Args[0], err)
		return 126, nil
	}
	g.trace("command started")
	code := 0
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("wait for %s: %w", cfg.Args[0], err)
		}
		if pid != proc.Pid {
			continue // an orphan reparented to init
		}
		switch {
		case ws.Exited():
			code = ws.ExitStatus()
		case ws.Signaled():
			fmt.Fprintf(stderr, "dmfm lab: %s killed by signal %v\n", cfg.Args[0], ws.Signal())
			code = 128 + int(ws.Signal())
		}
		break
	}
	g.trace("command exited")
	// Let background leftovers of the command go before checking for leaks.
	_ = unix.Kill(-proc.Pid, unix.SIGKILL)
	if cfg.LeakCheck {
		if leaks := findLeaks(); len(leaks) > 0 {
			fmt.Fprintf(stderr, "dmfm lab: leak check: devices left behind:\n  %s\n", strings.Join(leaks, "\n  "))
			if code == 0 {
				code = ExitLeak
			}
		}
	}
	return code, nil
}

// findLeaks lists dm devices and attached loop devices still present.
func findLeaks() []string {
	var leaks []string
	dms, _ := filepath.Glob("/sys/block/dm-*")
	for _, d := range dms {
		name, _ := os.ReadFile(filepath.Join(d, "dm", "name"))
		leaks = append(leaks, fmt.Sprintf("dm device %s (%s)", filepath.Base(d), strings.TrimSpace(string(name))))
	}
	loops, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, l := range loops {
		b, _ := os.ReadFile(l)
		leaks = append(leaks, fmt.Sprintf("loop device %s backed by %s", filepath.Base(filepath.Dir(filepath.Dir(l))), strings.TrimSpace(string(b))))
	}
	return leaks
}

// openPort opens the virtio-serial port with the given name.
func openPort(name string) (*os.File, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		names, _ := filepath.Glob("/sys/class/virtio-ports/*/name")
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err == nil && strings.TrimSpace(string(b)) == name {
				dev := "/dev/" + filepath.Base(filepath.Dir(n))
				f, err := os.OpenFile(dev, os.O_WRONLY, 0)
				if err != nil {
					return nil, fmt.Errorf("open port %s (%s): %w", name, dev, err)
				}
				return f, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("virtio-serial port %s did not appear", name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// insmod loads one module file with finit_module and the given parameters;
// a module that is already loaded is fine.
func insmod(path, params string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("load module: %w", err)
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), params, 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("load module %s: %w", filepath.Base(path), err)
	}
	return nil
}

// moduleParams picks from a kernel command line the parameters meant for
// the module in the file named module (mod.param=value, where dashes and
// underscores in the module name are the same), as modprobe would, and
// returns them as finit_module wants them: "param=value ...".
func moduleParams(cmdline, module string) string {
	name := normModName(module)
	var params []string
	for _, arg := range splitCmdline(cmdline) {
		mod, param, ok := strings.Cut(arg, ".")
		if eq := strings.IndexByte(arg, '='); !ok || (eq >= 0 && eq < len(mod)) {
			continue // no module prefix, or the dot is inside the value
		}
		if normModName(mod) == name && param != "" {
			params = append(params, quoteParam(param))
		}
	}
	return strings.Join(params, " ")
}

// splitCmdline splits a kernel command line into arguments the way the
// kernel does: at spaces, except inside double quotes, which are dropped.
func splitCmdline(s string) []string {
	var args []string
	var cur strings.Builder
	inArg, quoted := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			inArg = true
		case !quoted && (r == ' ' || r == '\t' || r == '\n'):
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteRune(r)
			inArg = true
		}
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args
}

// quoteParam quotes the value of param=value when it holds a space, as the
// kernel's parameter parser expects.
func quoteParam(param string) string {
	k, v, ok := strings.Cut(param, "=")
	if !ok || !strings.ContainsAny(v, " \t") {
		return param
	}
	return k + "=\"" + v + "\""
}

// onlineCPUs brings up, in the background, the CPUs the kernel was told not
// to start at boot (see maxcpus= in qemuArgs), and checks that want CPUs are
// then online. The channel yields the outcome.
func onlineCPUs(want int) <-chan error {
	ch := make(chan error, 1)
	go func() {
		files, _ := filepath.Glob("/sys/devices/system/cpu/cpu[0-9]*/online")
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil || strings.TrimSpace(string(b)) != "0" {
				continue
			}
			if err := os.WriteFile(f, []byte("1"), 0); err != nil {
				ch <- fmt.Errorf("bring %s online: %w", filepath.Base(filepath.Dir(f)), err)
				return
			}
		}
		b, err := os.ReadFile("/sys/devices/system/cpu/online")
		if err != nil {
			ch <- fmt.Errorf("count online CPUs: %w", err)
			return
		}
		n, err := countCPUList(strings.TrimSpace(string(b)))
		if err != nil {
			ch <- fmt.Errorf("count online CPUs: %w", err)
			return
		}
		if want > 0 && n != want {
			ch <- fmt.Errorf("%d CPUs online, want %d (does the kernel support CPU hotplug?)", n, want)
			return
		}
		ch <- nil
	}()
	return ch
}

// countCPUList counts the CPUs in a kernel CPU list such as "0-3,5".
func countCPUList(s string) (int, error) {
	n := 0
	for _, r := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return 0, fmt.Errorf("bad CPU list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return 0, fmt.Errorf("bad CPU list %q", s)
			}
		}
		n += b - a + 1
	}
	return n, nil
}
