// Command dmfm maps files to device-mapper statistics regions, reports per-file
// I/O, and runs the dmfm lab: loop, dm and file-system stacks built on demand,
// in a throwaway VM when the host has no device-mapper.
//
// Run `dmfm --help` for the commands; their options follow dmstats(8) where
// they mirror it.
package main

import (
	"fmt"
	"os"

	"github.com/dmfm/dmfm/lab/vm"
	"github.com/urfave/cli/v2"
)

// version is set by the linker (-X main.version=...).
var version = "dev"

func main() {
	if vm.IsGuestInit() {
		vm.GuestMain()
	}
	os.Exit(run(os.Args))
}

// exitCoder lets a command choose the process's exit status without printing.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func run(args []string) int {
	app := newApp()
	err := app.Run(args)
	if err == nil {
		return 0
	}
	if c, ok := err.(exitCode); ok {
		return int(c)
	}
	fmt.Fprintf(os.Stderr, "dmfm: %v\n", err)
	return 1
}

func newApp() *cli.App {
	app := &cli.App{
		Name:                 "dmfm",
		Usage:                "per-file I/O statistics on device-mapper volumes, and a dm test lab",
		Version:              version,
		EnableBashCompletion: true,
		HideHelpCommand:      true,
		Flags:                globalFlags(),
		Commands:             append(statsCommands(), labCommand()),
		ExitErrHandler:       func(*cli.Context, error) {},
	}
	return app
}
