package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/dmfm/dmfm/lab/vm"
	"github.com/urfave/cli/v2"
)

func labCommand() *cli.Command {
	return &cli.Command{
		Name:  "lab",
		Usage: "build loop + dm + file-system stacks for tests, natively or in a throwaway VM",
		Subcommands: []*cli.Command{
			labUpCommand(),
			labDownCommand(),
			labGrowCommand(),
			labStatusCommand(),
			labCleanCommand(),
			labRunCommand(),
			labScriptCommand(),
			labKernelCommand(),
		},
	}
}

func labRunCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run one command as root in a fresh VM whose kernel has device-mapper; exit with its status",
		ArgsUsage: "[flags] -- CMD [ARGS...]  |  [flags] FILE.txtar...",
		Description: "The guest sees the host's root file system read-only, with fresh tmpfs on /tmp and /run.\n" +
			"Exit status 125 means the VM failed (panic, oops, timeout, a boot that hung twice; the console\n" +
			"log path is printed),\n" +
			"124 that --leak-check found loop or dm devices left behind.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "kernel", Usage: "kernel image `PATH` (vmlinuz-VERSION with lib/modules/VERSION beside it); default: Debian's stock kernel, fetched and cached"},
			&cli.StringFlag{Name: "accel", Value: "auto", Usage: "accelerator: auto (KVM only if a probe boot works), kvm or tcg"},
			&cli.StringFlag{Name: "mem", Value: "2G", Usage: "guest memory"},
			&cli.IntFlag{Name: "cpus", Value: 2, Usage: "guest CPUs"},
			&cli.DurationFlag{Name: "timeout", Value: vmDefaultTimeout, Usage: "kill the VM after this long (exit 125)"},
			&cli.DurationFlag{Name: "boot-timeout", Value: vm.DefaultBootTimeout, Usage: "a boot taking longer is a hang: kill the VM and boot once more (exit 125 if that hangs too)"},
			&cli.StringSliceFlag{Name: "env", Usage: "set `K=V` in the guest (repeatable)"},
			&cli.StringSliceFlag{Name: "share", Usage: "share host `DIR` read-write at the same path in the guest (repeatable)"},
			&cli.BoolFlag{Name: "keep", Usage: "keep the run's work directory (console log, initramfs)"},
			&cli.BoolFlag{Name: "leak-check", Usage: "fail with status 124 if loop or dm devices remain after the command"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "print the qemu command line and timings"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return fmt.Errorf("lab run: no command given (usage: dmfm lab run [flags] -- CMD [ARGS...])")
			}
			if allTxtar(c.Args().Slice()) {
				// dmfm lab run FILE.txtar...: a scenario or bug report.
				return runScriptFiles(c.Context, c.Args().Slice(), scriptOpts{
					verbose: c.Bool("verbose"), keep: c.Bool("keep"), timeout: c.Duration("timeout"),
					vmAccel: c.String("accel"), vmKernel: c.String("kernel"), vmMem: c.String("mem"), vmCPUs: c.Int("cpus"),
				})
			}
			o := vm.Options{
				Args:        c.Args().Slice(),
				Env:         c.StringSlice("env"),
				Mem:         c.String("mem"),
				CPUs:        c.Int("cpus"),
				Timeout:     c.Duration("timeout"),
				BootTimeout: c.Duration("boot-timeout"),
				Accel:       c.String("accel"),
				Keep:        c.Bool("keep"),
				LeakCheck:   c.Bool("leak-check"),
				Verbose:     c.Bool("verbose"),
				Progress:    os.Stderr,
			}
			for _, kv := range o.Env {
				if !strings.Contains(kv, "=") {
					return fmt.Errorf("lab run: --env %q: want K=V", kv)
				}
			}
			for _, d := range c.StringSlice("share") {
				st, err := os.Stat(d)
				if err != nil || !st.IsDir() {
					return fmt.Errorf("lab run: --share %q: not a directory", d)
				}
				o.Shares = append(o.Shares, vm.Share{HostPath: d, Writable: true})
			}
			if p := c.String("kernel"); p != "" {
				k, err := vm.KernelFromImage(p)
				if err != nil {
					return fmt.Errorf("lab run: --kernel: %w", err)
				}
				o.Kernel = &k
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			code, err := vm.Run(ctx, o)
			if err != nil {
				fmt.Fprintf(os.Stderr, "dmfm: %v\n", err)
			}
			if code != 0 {
				return exitCode(code)
			}
			return nil
		},
	}
}

func labKernelCommand() *cli.Command {
	return &cli.Command{
		Name:  "kernel",
		Usage: "fetch (once) and print the lab kernel: version, image and module tree",
		Action: func(c *cli.Context) error {
			k, err := vm.EnsureKernel(c.Context, os.Stderr)
			if err != nil {
				return err
			}
			fmt.Printf("version %s\nimage   %s\nmodules %s\n", k.Version, k.Image, k.ModulesDir())
			return nil
		},
	}
}

// allTxtar reports whether every argument names a .txtar script, which
// `dmfm lab run` then runs as scenarios rather than as a command.
func allTxtar(args []string) bool {
	for _, a := range args {
		if !strings.HasSuffix(a, ".txtar") {
			return false
		}
	}
	return true
}
