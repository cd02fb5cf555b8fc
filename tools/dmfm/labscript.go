package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dmfm/dmfm/lab"
	"github.com/dmfm/dmfm/lab/script"
	"github.com/dmfm/dmfm/lab/vm"
	"github.com/urfave/cli/v2"
)

// scriptOpts are the settings of one `dmfm lab script` run.
type scriptOpts struct {
	verbose, keep, update bool
	run                   string
	parallel              int
	timeout               time.Duration
	junit                 string
	workRoot              string // -keep inside the VM: the host directory shared for work dirs
	forceVM, native       bool
	vmAccel, vmKernel     string
	vmMem                 string
	vmCPUs                int
}

func labScriptCommand() *cli.Command {
	return &cli.Command{
		Name:      "script",
		Usage:     "run txtar scenario scripts (testscripts/, bug reports) with the lab's commands, in the lab VM unless this host has dm",
		ArgsUsage: "[flags] FILE.txtar...",
		Description: "Each script runs as in `make lab-test`: fresh dmfm and dmfilemapd on PATH, the lab commands\n" +
			"(lab, fragment, extents, statslist, waitgroup, daemon, ...) and conditions ([dm], [xfs], [kernel:>=6.1], ...).\n" +
			"Without device-mapper (or without root) it boots the lab VM and runs there; -update then writes\n" +
			"the scripts back through a writable share of their directories.\n" +
			"Exit status: 0 all passed, 1 a script failed, 2 bad usage, 125 the VM failed.\n\nCommands:\n  " +
			strings.Join(script.Usage(), "\n  "),
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "show every script's full log"},
			&cli.BoolFlag{Name: "keep", Usage: "keep the scripts' work directories and print where"},
			&cli.BoolFlag{Name: "update", Usage: "rewrite the golden files of failing cmp commands in the scripts"},
			&cli.StringFlag{Name: "run", Usage: "run only scripts whose SUITE/NAME matches `REGEXP`"},
			&cli.IntFlag{Name: "parallel", Usage: "scripts at once (default: number of CPUs)"},
			&cli.DurationFlag{Name: "timeout", Value: 10 * time.Minute, Usage: "fail the run after this long"},
			&cli.StringFlag{Name: "junit", Usage: "write JUnit XML to `FILE`"},
			&cli.BoolFlag{Name: "vm", Usage: "run in the lab VM even if this host has device-mapper"},
			&cli.StringFlag{Name: "accel", Value: "auto", Usage: "VM accelerator: auto, kvm or tcg"},
			&cli.StringFlag{Name: "kernel", Usage: "VM kernel image `PATH` (default: Debian's, cached)"},
			&cli.StringFlag{Name: "mem", Value: "2G", Usage: "VM memory"},
			&cli.IntFlag{Name: "cpus", Value: 2, Usage: "VM CPUs"},
			// Set by the host when it re-runs the command inside the VM.
			&cli.BoolFlag{Name: "native", Hidden: true},
			&cli.StringFlag{Name: "workdir", Hidden: true},
		},
		Action: func(c *cli.Context) error {
			o := scriptOpts{
				verbose: c.Bool("verbose"), keep: c.Bool("keep"), update: c.Bool("update"),
				run: c.String("run"), parallel: c.Int("parallel"), timeout: c.Duration("timeout"),
				junit: c.String("junit"), workRoot: c.String("workdir"),
				forceVM: c.Bool("vm"), native: c.Bool("native"),
				vmAccel: c.String("accel"), vmKernel: c.String("kernel"), vmMem: c.String("mem"), vmCPUs: c.Int("cpus"),
			}
			return runScriptFiles(c.Context, c.Args().Slice(), o)
		},
	}
}

// runScriptFiles runs txtar scripts natively when this host has dm and
// root, else inside the lab VM. `dmfm lab run FILE.txtar...` comes here too.
func runScriptFiles(ctx context.Context, files []string, o scriptOpts) error {
	if len(files) == 0 {
		fmt.Fprintln(os.Stderr, "dmfm lab script: no script given (usage: dmfm lab script [flags] FILE.txtar...)")
		return exitCode(2)
	}
	var re *regexp.Regexp
	if o.run != "" {
		var err error
		if re, err = regexp.Compile(o.run); err != nil {
			fmt.Fprintf(os.Stderr, "dmfm lab script: -run: %v\n", err)
			return exitCode(2)
		}
	}
	abs := make([]string, len(files))
	for i, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			fmt.Fprintf(os.Stderr, "dmfm lab script: %v\n", err)
			return exitCode(2)
		}
		if !st.Mode().IsRegular() {
			fmt.Fprintf(os.Stderr, "dmfm lab script: %s is not a file (give the .txtar files)\n", f)
			return exitCode(2)
		}
		if abs[i], err = filepath.Abs(f); err != nil {
			return err
		}
	}
	if o.timeout <= 0 {
		fmt.Fprintln(os.Stderr, "dmfm lab script: -timeout must be positive")
		return exitCode(2)
	}
	if o.parallel < 0 {
		fmt.Fprintln(os.Stderr, "dmfm lab script: -parallel must not be negative")
		return exitCode(2)
	}
	dmErr := hostDM()
	switch {
	case o.native && dmErr != nil:
		return fmt.Errorf("lab script: %v", dmErr)
	case o.native || (dmErr == nil && !o.forceVM):
		return runScriptsHere(abs, re, o)
	}
	return runScriptsInVM(ctx, abs, o)
}

// hostDM says why scripts cannot build labs in this process, or nil.
func hostDM() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("not root")
	}
	f, err := os.OpenFile("/dev/mapper/control", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("no device-mapper: %w", err)
	}
	return f.Close()
}

func runScriptsHere(files []string, re *regexp.Regexp, o scriptOpts) error {
	lab.CloseOnSignal()
	binDir, cleanup, err := scriptBinDir()
	if err != nil {
		return err
	}
	defer cleanup()
	ro := script.RunOptions{
		Config:   script.Config{PathDirs: []string{binDir}},
		Verbose:  o.verbose,
		Keep:     o.keep,
		WorkRoot: o.workRoot,
		Update:   o.update,
		Run:      re,
		Parallel: o.parallel,
		Timeout:  o.timeout,
		Out:      os.Stdout,
	}
	start := time.Now()
	rep, err := script.RunFiles(files, ro)
	if errors.Is(err, script.ErrNoScripts) {
		fmt.Fprintf(os.Stderr, "dmfm lab script: -run %q selects none of the scripts\n", o.run)
		return exitCode(2)
	}
	if rep != nil && o.junit != "" {
		if jerr := rep.WriteJUnitFile(o.junit, "testscripts"); jerr != nil {
			fmt.Fprintf(os.Stderr, "dmfm lab script: %v\n", jerr)
		}
	}
	if err != nil {
		return fmt.Errorf("lab script: %w", err)
	}
	pass, fail, skip := rep.Counts()
	fmt.Printf("%d passed, %d failed, %d skipped in %.1fs\n", pass, fail, skip, time.Since(start).Seconds())
	if fail > 0 {
		return exitCode(1)
	}
	return nil
}

// scriptBinDir returns a directory holding this dmfm and a dmfilemapd, for
// the scripts' PATH: this executable's own directory when dmfilemapd is
// beside it (bin/), else a temporary directory of links.
func scriptBinDir() (string, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, fmt.Errorf("lab script: find dmfm: %w", err)
	}
	dir := filepath.Dir(exe)
	if st, err := os.Stat(filepath.Join(dir, "dmfilemapd")); err == nil && st.Mode().IsRegular() {
		return dir, func() {}, nil
	}
	tmp, err := os.MkdirTemp("", "dmfm-script-bin-")
	if err != nil {
		return "", nil, fmt.Errorf("lab script: %w", err)
	}
	cleanup := func() { os.RemoveAll(tmp) }
	if err := os.Symlink(exe, filepath.Join(tmp, "dmfm")); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("lab script: %w", err)
	}
	if d, err := exec.LookPath("dmfilemapd"); err == nil {
		if abs, err := filepath.Abs(d); err == nil {
			d = abs
		}
		if err := os.Symlink(d, filepath.Join(tmp, "dmfilemapd")); err != nil {
			cleanup()
			return "", nil, fmt.Errorf("lab script: %w", err)
		}
	} else {
		fmt.Fprintf(os.Stderr, "dmfm lab script: warning: no dmfilemapd beside %s nor on PATH; scripts that run it will fail\n", exe)
	}
	return tmp, cleanup, nil
}

// runScriptsInVM boots the lab VM and runs this command again inside it,
// natively. The guest sees the host's files at the same paths; directories
// that the guest must write (scripts for -update, the JUnit file's, the
// kept work directories) are shared writable.
func runScriptsInVM(ctx context.Context, files []string, o scriptOpts) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("lab script: find dmfm: %w", err)
	}
	args := []string{exe, "lab", "script", "-native", "-timeout", o.timeout.String()}
	if o.verbose {
		args = append(args, "-v")
	}
	if o.update {
		args = append(args, "-update")
	}
	if o.run != "" {
		args = append(args, "-run", o.run)
	}
	if o.parallel > 0 {
		args = append(args, "-parallel", strconv.Itoa(o.parallel))
	}
	shares := map[string]bool{}
	if o.update {
		for _, f := range files {
			shares[filepath.Dir(f)] = true
		}
	}
	if o.junit != "" {
		j, err := filepath.Abs(o.junit)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(j), 0o755); err != nil {
			return fmt.Errorf("lab script: -junit: %w", err)
		}
		shares[filepath.Dir(j)] = true
		args = append(args, "-junit", j)
	}
	if o.keep {
		dir, err := os.MkdirTemp("", "dmfm-script-")
		if err != nil {
			return fmt.Errorf("lab script: -keep: %w", err)
		}
		shares[dir] = true
		args = append(args, "-keep", "-workdir", dir)
	}
	args = append(append(args, "--"), files...)
	vo := vm.Options{
		Args:      args,
		Mem:       o.vmMem,
		CPUs:      o.vmCPUs,
		Accel:     o.vmAccel,
		Timeout:   o.timeout + 2*time.Minute,
		LeakCheck: true,
		Progress:  os.Stderr,
	}
	for d := range shares {
		vo.Shares = append(vo.Shares, vm.Share{HostPath: d, Writable: true})
	}
	if o.vmKernel != "" {
		k, err := vm.KernelFromImage(o.vmKernel)
		if err != nil {
			return fmt.Errorf("lab script: -kernel: %w", err)
		}
		vo.Kernel = &k
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := vm.Run(ctx, vo)
	if err != nil {
		fmt.Fprintf(os.Stderr, "dmfm: %v\n", err)
	}
	if code != 0 {
		return exitCode(code)
	}
	return nil
}
