package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/dmfm/dmfm/lib/dmstats"
	"github.com/dmfm/dmfm/lib/filemap"
	"github.com/dmfm/dmfm/lib/filemapd"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

// mappedFile is a file to map or update, opened and bound to its device
// before anything is changed.
type mappedFile struct {
	path  string // as typed
	abs   string // canonical absolute path
	f     *os.File
	bind  filemap.Binding
	alias string // group alias for create
}

func (m *mappedFile) dev() device {
	return device{Name: m.bind.DMName, Major: m.bind.Major, Minor: m.bind.Minor}
}

// openMapped opens path and checks that it can be mapped: a regular file on
// a device-mapper device, on a file system that reports extents.
func openMapped(path string) (*mappedFile, error) {
	f, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m := &mappedFile{path: path, f: f}
	if m.bind, err = filemap.Bind(f); err != nil {
		f.Close()
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: canonical path: %w", path, err)
	}
	m.abs = abs
	return m, nil
}

func closeAll(files []*mappedFile) {
	for _, m := range files {
		if m != nil && m.f != nil {
			m.f.Close()
		}
	}
}

// createFilemaps is create --filemap: every file is opened and checked, and
// its alias validated, before the first region is made.
func createFilemaps(c *cli.Context, o createOpts) error {
	files := make([]*mappedFile, 0, len(o.files))
	defer func() { closeAll(files) }()
	for _, p := range o.files {
		m, err := openMapped(p)
		if err != nil {
			return fmt.Errorf("create: %w", err)
		}
		files = append(files, m)
		if o.nogroup {
			continue
		}
		m.alias = o.alias
		if !o.hasAlias {
			m.alias = filepath.Base(m.abs)
			if err := checkAlias(m.alias, o.format); err != nil {
				return fmt.Errorf("create: %s: the group would be named %q after the file, but %w; give another --alias or use --group-format quoted",
					p, m.alias, errors.Unwrap(err))
			}
		}
	}
	s, err := openSession("create")
	if err != nil {
		return err
	}
	defer s.Close()
	for _, m := range files {
		st := s.stats(m.dev())
		res, err := filemap.Create(st, m.f, m.path, filemap.Options{
			Alias: m.alias, NoGroup: o.nogroup, Precise: o.precise, Bounds: o.bounds,
			ProgramID: o.programID, UserData: o.userData, Format: o.format,
		})
		if err != nil {
			return fmt.Errorf("create: %w", err)
		}
		if o.nogroup {
			for _, l := range filemap.RegionLines(m.path, res) {
				fmt.Fprintln(c.App.Writer, l)
			}
			continue
		}
		fmt.Fprintln(c.App.Writer, filemap.CreatedLine(m.path, res))
		if o.foreground {
			return runForeground(m, res.GroupID, o.mode, o.verbose)
		}
		if o.monitor {
			startMonitor(c, m, res.GroupID, o.mode, o.verbose)
		}
	}
	return nil
}

// startMonitor starts dmfilemapd to keep group groupID in step with m. A
// daemon that cannot start is a warning: the group is correct now and
// update_filemap brings it up to date later.
func startMonitor(c *cli.Context, m *mappedFile, groupID uint64, mode filemapd.Mode, verbose int) {
	pid, err := filemapd.Start(m.f, groupID, m.abs, mode, filemapd.StartOptions{Verbose: min(verbose, filemapd.MaxVerbose)})
	if err != nil {
		warnf(c.App.ErrWriter, "dmfilemapd is not available (%v); the group will not be updated automatically (use update_filemap)", err)
		return
	}
	if verbose > 0 {
		fmt.Fprintf(c.App.ErrWriter, "dmfm: dmfilemapd follows %s (%s mode) for group %d (pid %d)\n", m.abs, mode, groupID, pid)
	}
}

// runForeground runs dmfilemapd in place of the command, as dmstats
// --foreground does, until the daemon ends.
func runForeground(m *mappedFile, groupID uint64, mode filemapd.Mode, verbose int) error {
	fd, err := unix.Dup(int(m.f.Fd()))
	if err != nil {
		return fmt.Errorf("dmfilemapd: %w", err)
	}
	debug.SetGCPercent(defaultGCPercent) // the daemon runs until its group goes
	a := filemapd.Args{FD: fd, GroupID: groupID, Path: m.abs, Mode: mode, Foreground: true, Verbose: min(verbose, filemapd.MaxVerbose)}
	if code := (filemapd.Program{NewUpdater: filemapd.NewStatsUpdaterFunc}).Main(a.Argv()); code != 0 {
		return exitCode(code)
	}
	return nil
}

func updateFilemapCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "groupid", Usage: "the file's group `ID` (required)"},
		&cli.BoolFlag{Name: "nomonitor", Usage: "update once; do not start dmfilemapd"},
		&cli.StringFlag{Name: "follow", Usage: "how dmfilemapd follows the file: `MODE` inode (default) or path"},
		&cli.BoolFlag{Name: "foreground", Usage: "run dmfilemapd in the foreground after the update"},
		&cli.BoolFlag{Name: "exact", Usage: "lvm2's layout: re-create every region whose extent changed (counters of a grown last extent are lost), so lvm2's tools see the same regions"},
	}
	return statsCommand("update_filemap", "bring a file's group of regions up to date with the file's extents",
		"--groupid ID FILE",
		"The group is updated at once, then dmfilemapd is started to follow the file unless\n"+
			"--nomonitor. By default regions that still lie inside the file are kept, so their\n"+
			"counters survive the file's growth; --exact reproduces lvm2's layout instead.",
		flags, runUpdateFilemap)
}

// updateOpts are the validated options of update_filemap.
type updateOpts struct {
	path           string
	groupID        uint64
	monitor        bool
	mode           filemapd.Mode
	foreground     bool
	exact          bool
	format         dmstats.TagFormat
	explicitFormat bool
	verbose        int
}

func parseUpdate(c *cli.Context) (updateOpts, error) {
	var o updateOpts
	var err error
	o.verbose = verbosity(c)
	if o.format, o.explicitFormat, err = groupFormat(c); err != nil {
		return o, err
	}
	if !c.IsSet("groupid") {
		return o, errors.New("--groupid is required: the id of the file's group (see `dmfm list --group`)")
	}
	if o.groupID, err = parseID("--groupid", c.String("groupid")); err != nil {
		return o, err
	}
	switch c.NArg() {
	case 0:
		return o, errors.New("no FILE given")
	case 1:
	default:
		return o, fmt.Errorf("one FILE only, got %d: %s", c.NArg(), strings.Join(c.Args().Slice(), " "))
	}
	o.path = c.Args().First()
	if o.path == "" {
		return o, errors.New("empty file name")
	}
	o.monitor = !c.Bool("nomonitor")
	o.foreground = c.Bool("foreground")
	o.exact = c.Bool("exact")
	if c.IsSet("follow") {
		if !o.monitor {
			return o, errors.New("--follow cannot be used with --nomonitor: it tells dmfilemapd how to follow the file, and no dmfilemapd is started")
		}
		if o.mode, err = filemapd.ParseMode(c.String("follow")); err != nil {
			return o, fmt.Errorf("--follow: %w", err)
		}
	}
	if o.foreground && !o.monitor {
		return o, errors.New("--foreground cannot be used with --nomonitor: no dmfilemapd is started")
	}
	return o, nil
}

func runUpdateFilemap(c *cli.Context) error {
	o, err := parseUpdate(c)
	if err != nil {
		return fmt.Errorf("update_filemap: %w", err)
	}
	m, err := openMapped(o.path)
	if err != nil {
		return fmt.Errorf("update_filemap: %w", err)
	}
	defer m.f.Close()
	s, err := openSession("update_filemap")
	if err != nil {
		return err
	}
	defer s.Close()
	st := s.stats(m.dev())
	state, err := loadState(m.dev(), st)
	if err != nil {
		return fmt.Errorf("update_filemap: %w", err)
	}
	if err := checkUpdatable(state, o.groupID); err != nil {
		return fmt.Errorf("update_filemap: %s: %w", o.path, err)
	}
	format := o.format
	if g, ok := state.group(o.groupID); ok && !o.explicitFormat {
		format = g.Format
	}
	res, err := filemap.Update(st, o.groupID, m.f, filemap.UpdateOptions{Exact: o.exact, Format: format})
	switch {
	case err != nil && res.Repaired:
		warnf(c.App.ErrWriter, "%s: the update failed half-way and was repaired: %v", o.path, err)
	case errors.Is(err, filemap.ErrNoGroup):
		return fmt.Errorf("update_filemap: %s: group %d does not exist on %s", o.path, o.groupID, m.bind.DMName)
	case err != nil:
		return fmt.Errorf("update_filemap: %w", err)
	}
	fmt.Fprintln(c.App.Writer, filemap.UpdatedLine(o.path, res))
	if o.foreground {
		return runForeground(m, res.GroupID, o.mode, o.verbose)
	}
	if o.monitor {
		startMonitor(c, m, res.GroupID, o.mode, o.verbose)
	}
	return nil
}

// checkUpdatable refuses ids that are not a file map's group: a region with
// no group tag (a plain region, or a member of another group), or no region
// at all. Regions that an interrupted dmfm left pending for the id count as
// the group, so that an update can finish the interrupted one.
func checkUpdatable(s *devState, id uint64) error {
	r, exists := s.region(id)
	if exists {
		if _, tagged, _ := dmstats.ParseGroupTag(r.AuxData); tagged {
			return nil
		}
		if _, pending := filemap.ParsePending(r.AuxData); pending {
			return nil
		}
		_, err := s.needGroup(id)
		return err
	}
	for _, r := range s.regions {
		if p, ok := filemap.ParsePending(r.AuxData); ok && p.Anchor == id {
			return nil
		}
	}
	return fmt.Errorf("group %d does not exist on %s", id, s.dev.Name)
}
