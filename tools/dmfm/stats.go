package main

import (
	"time"

	"github.com/urfave/cli/v2"
)

const vmDefaultTimeout = 20 * time.Minute

// globalFlags are the options every dmfm command takes.
func globalFlags() []cli.Flag {
	return nil
}

// statsCommands are the dmstats-like commands.
func statsCommands() []*cli.Command {
	return nil
}
