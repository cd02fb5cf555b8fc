package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/dmfm/dmfm/lib/dm"
	"github.com/dmfm/dmfm/lib/dmstats"
	"github.com/urfave/cli/v2"
)

// vmDefaultTimeout bounds a `dmfm lab run` VM.
const vmDefaultTimeout = 20 * time.Minute

// groupFormatEnv names the environment variable that sets --group-format.
const groupFormatEnv = "DMFM_GROUP_FORMAT"

func init() {
	// -v is --verbose, as in dmstats; urfave/cli would give it to --version.
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version"}
}

// shortLivedGCPercent is the garbage collector's target (GOGC) while a
// command runs; defaultGCPercent is Go's default, for long-running modes.
const (
	shortLivedGCPercent = 400
	defaultGCPercent    = 100
)

// globalFlags are the options every dmfm command takes. The stats commands
// accept them after the command name too (dmstats users put them anywhere).
func globalFlags() []cli.Flag {
	return []cli.Flag{groupFormatFlag(), verboseFlag()}
}

func groupFormatFlag() cli.Flag {
	return &cli.StringFlag{
		Name:    "group-format",
		Usage:   "DMS_GROUP tag generation to write: quoted (lvm2 >= 2.03.23) or legacy (lvm2 <= 2.03.22, e.g. Debian 12's dmstats); default quoted, or the format an existing group already has",
		EnvVars: []string{groupFormatEnv},
	}
}

func verboseFlag() cli.Flag {
	return &cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "produce additional output (repeat for more)"}
}

// statsCommands are the dmstats-like commands.
func statsCommands() []*cli.Command {
	return []*cli.Command{
		createCommand(),
		updateFilemapCommand(),
		deleteCommand(),
		listCommand(),
		printCommand(),
		clearCommand(),
		reportCommand(),
		groupCommand(),
		ungroupCommand(),
		setaliasCommand(),
		versionCommand(),
	}
}

// statsCommand builds a stats command. Its options and arguments may come in
// any order, as with dmstats (getopt permutes them); the global options are
// accepted after the command name as well.
func statsCommand(name, usage, argsUsage, description string, flags []cli.Flag, body func(c *cli.Context) error) *cli.Command {
	return &cli.Command{
		Name:            name,
		Usage:           usage,
		ArgsUsage:       argsUsage,
		Description:     description,
		Flags:           append(flags, groupFormatFlag(), verboseFlag()),
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			pc, help, err := parseInterspersed(c)
			if err != nil {
				return fmt.Errorf("%s: %w (see `dmfm %s --help`)", name, err, name)
			}
			if help {
				cli.HelpPrinter(c.App.Writer, cli.CommandHelpTemplate, c.Command)
				return nil
			}
			// A command is over in moments and keeps little memory: let
			// the heap grow before collecting (long-running modes set the
			// usual rate back).
			defer debug.SetGCPercent(debug.SetGCPercent(shortLivedGCPercent))
			return body(pc)
		},
	}
}

// parseInterspersed parses the raw arguments of command context c (whose
// command skips urfave's parsing) with the options allowed anywhere among the
// positional arguments, and returns a context over the parsed flags. "--"
// ends the options. help is true when -h or --help was given.
func parseInterspersed(c *cli.Context) (pc *cli.Context, help bool, err error) {
	set := flag.NewFlagSet(c.Command.Name, flag.ContinueOnError)
	set.SetOutput(io.Discard)
	for _, f := range c.Command.Flags {
		if err := f.Apply(set); err != nil {
			return nil, false, err
		}
	}
	toks := c.Args().Slice()
	var opts, pos []string
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t == "--" {
			pos = append(pos, toks[i+1:]...)
			break
		}
		if len(t) < 2 || t[0] != '-' {
			pos = append(pos, t)
			continue
		}
		name := strings.TrimPrefix(strings.TrimPrefix(t, "-"), "-")
		name, _, hasValue := strings.Cut(name, "=")
		fl := set.Lookup(name)
		if fl == nil {
			// -vv: several one-letter switches in one word.
			if split, ok := splitShortSwitches(set, t); ok {
				opts = append(opts, split...)
				continue
			}
			return nil, false, fmt.Errorf("unknown option %s", t)
		}
		opts = append(opts, t)
		if hasValue || isBoolFlag(fl) {
			continue
		}
		if i+1 >= len(toks) {
			return nil, false, fmt.Errorf("option %s needs a value", t)
		}
		i++
		opts = append(opts, toks[i])
	}
	if err := set.Parse(append(append(opts, "--"), pos...)); err != nil {
		return nil, false, err
	}
	if err := normalizeAliases(set, c.Command.Flags); err != nil {
		return nil, false, err
	}
	if h := set.Lookup("help"); h != nil && h.Value.String() == "true" {
		help = true
	}
	parent := c
	if l := c.Lineage(); len(l) > 1 {
		parent = l[1]
	}
	pc = cli.NewContext(c.App, set, parent)
	pc.Command = c.Command
	return pc, help, nil
}

// normalizeAliases gives every name of a flag the value set through any of
// them (urfave/cli registers each alias as a flag of its own), as urfave's
// own parser does.
func normalizeAliases(set *flag.FlagSet, flags []cli.Flag) error {
	visited := map[string]bool{}
	set.Visit(func(f *flag.Flag) { visited[f.Name] = true })
	for _, f := range flags {
		names := f.Names()
		from := ""
		for _, n := range names {
			if visited[n] {
				from = n
			}
		}
		if from == "" {
			continue
		}
		v := set.Lookup(from).Value.String()
		for _, n := range names {
			if n == from || visited[n] {
				continue
			}
			// Setting a counted switch would count it again.
			var count *int
			var saved int
			if b, ok := f.(*cli.BoolFlag); ok && b.Count != nil {
				count, saved = b.Count, *b.Count
			}
			if err := set.Set(n, v); err != nil {
				return err
			}
			if count != nil {
				*count = saved
			}
		}
	}
	return nil
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// splitShortSwitches splits "-vv" into "-v" "-v" when every letter is a
// one-letter switch.
func splitShortSwitches(set *flag.FlagSet, t string) ([]string, bool) {
	if len(t) < 3 || t[1] == '-' {
		return nil, false
	}
	var out []string
	for _, r := range t[1:] {
		f := set.Lookup(string(r))
		if f == nil || !isBoolFlag(f) {
			return nil, false
		}
		out = append(out, "-"+string(r))
	}
	return out, true
}

// verbosity counts -v over the command and the global options.
func verbosity(c *cli.Context) int {
	n := c.Count("verbose")
	if l := c.Lineage(); len(l) > 1 {
		n += l[len(l)-1].Count("verbose")
	}
	return n
}

// groupFormat returns the tag format chosen with --group-format (on the
// command or before it) or DMFM_GROUP_FORMAT; explicit is false when none was
// given and the default, quoted, applies.
func groupFormat(c *cli.Context) (f dmstats.TagFormat, explicit bool, err error) {
	for _, x := range c.Lineage() {
		if x == nil || !x.IsSet("group-format") {
			continue
		}
		v := x.String("group-format")
		if v == "" {
			continue
		}
		f, err := dmstats.ParseTagFormat(v)
		if err != nil {
			return 0, false, fmt.Errorf("--group-format: %w", err)
		}
		return f, true, nil
	}
	return dmstats.FormatQuoted, false, nil
}

// errNoDMHint is the message for a kernel without device-mapper.
func errNoDMHint(cmd string) error {
	return fmt.Errorf("%s: device-mapper is not available on this kernel; try `dmfm lab run -- dmfm %s ...`", cmd, cmd)
}

// session is an open device-mapper control node, for one command.
type session struct {
	cmd string
	c   *dm.Client
	// workers are further control nodes for parallel reads (workerStats).
	workers []*dm.Client
}

// openSession checks that the caller may use device-mapper and opens it.
// Commands call it only after their options are validated.
func openSession(cmd string) (*session, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%s: must be run as root: device-mapper statistics need CAP_SYS_ADMIN (euid is %d)", cmd, os.Geteuid())
	}
	c, err := dm.Open()
	if err != nil {
		if errors.Is(err, dm.ErrNoDM) {
			return nil, errNoDMHint(cmd)
		}
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	return &session{cmd: cmd, c: c}, nil
}

func (s *session) Close() error {
	for _, w := range s.workers {
		w.Close()
	}
	return s.c.Close()
}

// maxParallel is how many control handles a command may use at once.
func maxParallel() int { return min(runtime.GOMAXPROCS(0), 4) }

// workerStats returns a dm-stats handle on device d through control node w
// (w >= 1), opened on first use: a dm.Client runs one ioctl at a time.
func (s *session) workerStats(d device, w int) (*dmstats.Stats, error) {
	for len(s.workers) < w {
		c, err := dm.Open()
		if err != nil {
			return nil, err
		}
		s.workers = append(s.workers, c)
	}
	return dmstats.New(dmstats.DeviceMessenger(s.workers[w-1], dm.ByDevno(d.Major, d.Minor))), nil
}

// stats returns the dm-stats handle of device d. Its messenger keeps the
// latest @stats_list reply until a message changes the regions, so that the
// steps of one command do not list the device again and again.
func (s *session) stats(d device) *dmstats.Stats {
	return dmstats.New(s.messenger(d))
}

// messenger sends messages to device d, with the listing cache of stats.
func (s *session) messenger(d device) dmstats.Messenger {
	return &listCache{m: dmstats.DeviceMessenger(s.c, dm.ByDevno(d.Major, d.Minor))}
}

// listCache is a Messenger that answers a repeated "@stats_list" from its
// last reply while no message that could change the listing was sent.
type listCache struct {
	m     dmstats.Messenger
	list  string
	valid bool
}

// Message implements dmstats.Messenger.
func (l *listCache) Message(msg string) (string, error) {
	if msg == "@stats_list" {
		if l.valid {
			return l.list, nil
		}
		r, err := l.m.Message(msg)
		if err == nil {
			l.list, l.valid = r, true
		}
		return r, err
	}
	if !strings.HasPrefix(msg, "@stats_print") && !strings.HasPrefix(msg, "@stats_list ") {
		l.valid = false
	}
	return l.m.Message(msg)
}

// warnf prints a warning in the tool's usual form.
func warnf(w io.Writer, format string, a ...any) {
	fmt.Fprintf(w, "dmfm: warning: "+format+"\n", a...)
}
