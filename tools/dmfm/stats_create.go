package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dmfm/dmfm/lib/dm"
	"github.com/dmfm/dmfm/lib/dmstats"
	"github.com/dmfm/dmfm/lib/filemapd"
	"github.com/urfave/cli/v2"
)

func createCommand() *cli.Command {
	flags := append(deviceFlags(true),
		&cli.StringFlag{Name: "start", Usage: "region start: `SECTORS`, or a size with a unit (b, s, k, m, g, t)"},
		&cli.StringFlag{Name: "length", Usage: "region length: `SECTORS`, or a size with a unit; default: to the end of the device"},
		&cli.StringFlag{Name: "areas", Usage: "divide the region into `N` areas"},
		&cli.StringFlag{Name: "areasize", Usage: "divide the region into areas of `SIZE` (sectors, or a size with a unit)"},
		&cli.BoolFlag{Name: "segments", Usage: "one region per segment of the device's table, grouped unless --nogroup"},
		&cli.BoolFlag{Name: "filemap", Usage: "map the FILEs given as arguments: one region per extent, grouped"},
		&cli.BoolFlag{Name: "nogroup", Usage: "do not group the regions made by --filemap or --segments"},
		&cli.StringFlag{Name: "alias", Usage: "`NAME` of the group (default for --filemap: the file's base name)"},
		&cli.BoolFlag{Name: "nomonitor", Usage: "do not start dmfilemapd to keep the file map up to date"},
		&cli.StringFlag{Name: "follow", Usage: "how dmfilemapd follows the file: `MODE` inode (renames; default) or path (replacements)"},
		&cli.BoolFlag{Name: "foreground", Usage: "run dmfilemapd in the foreground, in place of this command"},
		&cli.BoolFlag{Name: "precise", Usage: "nanosecond-precision counters"},
		&cli.StringFlag{Name: "bounds", Usage: "latency histogram `BOUNDS`: comma-separated, ns unless suffixed ns, us, ms or s"},
		&cli.StringFlag{Name: "programid", Value: dmstats.DefaultProgramID, Usage: "program `ID` stored with the regions"},
		&cli.StringFlag{Name: "userdata", Usage: "user `DATA` (one word) stored with the regions, or in the group tag"},
	)
	return statsCommand("create", "create statistics regions on devices, or map files to grouped regions (--filemap)",
		"[DEVICE...] | --alldevices | --filemap FILE...",
		"Without --filemap, one region covering the device (or --start/--length, or each segment\n"+
			"with --segments) is created on each DEVICE. With --filemap, each FILE (on a device-mapper\n"+
			"device, xfs or ext4) is mapped to one region per extent, the regions grouped under the\n"+
			"file's base name, and dmfilemapd is started to follow the file unless --nomonitor.",
		flags, runCreate)
}

// createOpts are the validated options of create.
type createOpts struct {
	dev            deviceSpec
	files          []string
	filemap        bool
	start, length  uint64
	hasLength      bool
	areas, step    uint64
	segments       bool
	nogroup        bool
	alias          string
	hasAlias       bool
	monitor        bool
	mode           filemapd.Mode
	foreground     bool
	precise        bool
	bounds         []time.Duration
	programID      string
	userData       string
	format         dmstats.TagFormat
	explicitFormat bool
	verbose        int
	autoPrecise    bool // --bounds below 1ms turned --precise on
}

// parseCreate validates the options of create without touching the kernel.
func parseCreate(c *cli.Context) (createOpts, error) {
	var o createOpts
	var err error
	o.verbose = verbosity(c)
	if o.format, o.explicitFormat, err = groupFormat(c); err != nil {
		return o, err
	}
	o.filemap = c.Bool("filemap")
	o.segments = c.Bool("segments")
	o.nogroup = c.Bool("nogroup")
	o.alias, o.hasAlias = c.String("alias"), c.IsSet("alias")
	o.precise = c.Bool("precise")
	o.programID = c.String("programid")
	o.userData = c.String("userdata")

	if o.filemap {
		for _, opt := range []string{"start", "length", "areas", "areasize", "segments", "alldevices", "uuid", "major", "minor"} {
			if c.IsSet(opt) {
				return o, fmt.Errorf("--filemap cannot be used with --%s: a file map's regions follow the file's extents on the file's own device", opt)
			}
		}
		o.files = c.Args().Slice()
		if len(o.files) == 0 {
			return o, errors.New("--filemap needs at least one FILE")
		}
		for _, f := range o.files {
			if f == "" {
				return o, errors.New("--filemap: empty file name")
			}
		}
		if o.nogroup && o.hasAlias {
			return o, errors.New("--alias cannot be used with --nogroup: an alias names a group")
		}
		if o.nogroup && c.IsSet("userdata") {
			return o, errors.New("--userdata cannot be used with --filemap --nogroup: a file map keeps its user data in the group tag")
		}
		o.monitor = !c.Bool("nomonitor") && !o.nogroup
		o.foreground = c.Bool("foreground")
		if c.IsSet("follow") {
			if !o.monitor {
				return o, fmt.Errorf("--follow cannot be used with %s: it tells dmfilemapd how to follow the file, and no dmfilemapd is started", noMonitorReason(c))
			}
			if o.mode, err = filemapd.ParseMode(c.String("follow")); err != nil {
				return o, fmt.Errorf("--follow: %w", err)
			}
		}
		if o.foreground && !o.monitor {
			return o, fmt.Errorf("--foreground cannot be used with %s: no dmfilemapd is started", noMonitorReason(c))
		}
		if o.foreground && len(o.files) > 1 {
			return o, errors.New("--foreground runs one dmfilemapd in place of this command: give one FILE")
		}
	} else {
		for _, opt := range []string{"nomonitor", "follow", "foreground"} {
			if c.IsSet(opt) {
				return o, fmt.Errorf("--%s needs --filemap: it is about the daemon that follows a mapped file", opt)
			}
		}
		if o.nogroup && !o.segments {
			return o, errors.New("--nogroup needs --segments or --filemap: only they make groups")
		}
		if o.hasAlias && (!o.segments || o.nogroup) {
			return o, errors.New("--alias names a group: it needs --segments or --filemap, without --nogroup")
		}
		if o.segments {
			if err := rejectSet(c, "with --segments: each segment's region spans the segment", "start", "length"); err != nil {
				return o, err
			}
		}
		if o.dev, err = parseDeviceSpec(c, c.Args().Slice(), explicitAll); err != nil {
			return o, err
		}
		if c.IsSet("start") {
			if o.start, err = parseSectors("--start", c.String("start")); err != nil {
				return o, err
			}
		}
		if c.IsSet("length") {
			if o.length, err = parseSectors("--length", c.String("length")); err != nil {
				return o, err
			}
			if o.length == 0 {
				return o, errors.New("--length 0: a region cannot be empty")
			}
			o.hasLength = true
		}
		if c.IsSet("areas") && c.IsSet("areasize") {
			return o, errors.New("give one of --areas and --areasize")
		}
		if c.IsSet("areas") {
			v := c.String("areas")
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
			if err != nil || n == 0 {
				return o, fmt.Errorf("--areas %q: want a number of areas from 1 to %d", v, uint32(1<<32-1))
			}
			o.areas = n
		}
		if c.IsSet("areasize") {
			if o.step, err = parseSectors("--areasize", c.String("areasize")); err != nil {
				return o, err
			}
			if o.step == 0 {
				return o, errors.New("--areasize 0: an area cannot be empty")
			}
		}
	}
	if c.IsSet("bounds") {
		var needPrecise bool
		if o.bounds, needPrecise, err = parseBounds(c.String("bounds")); err != nil {
			return o, err
		}
		if needPrecise && !o.precise {
			o.precise, o.autoPrecise = true, true
		}
	}
	if o.programID == "" {
		return o, errors.New("--programid: empty program id")
	}
	if strings.ContainsAny(o.programID, " \t\n\r\v\f") {
		return o, fmt.Errorf("--programid %q: a program id is one word (the kernel lists it up to the first space)", o.programID)
	}
	if strings.ContainsAny(o.userData, " \t\n\r\v\f\x00") {
		return o, fmt.Errorf("--userdata %q: user data is one word, without whitespace", o.userData)
	}
	if o.hasAlias {
		if o.alias == "" {
			return o, errors.New("--alias: empty alias")
		}
		if err := checkAlias(o.alias, o.format); err != nil {
			return o, err
		}
	}
	return o, nil
}

// noMonitorReason names the option that turned monitoring off.
func noMonitorReason(c *cli.Context) string {
	if c.Bool("nogroup") {
		return "--nogroup (regions without a group are not monitored)"
	}
	return "--nomonitor"
}

// checkAlias tells whether a group tag in format f can carry alias.
func checkAlias(alias string, f dmstats.TagFormat) error {
	if _, err := dmstats.FormatGroupTag(dmstats.Group{Alias: alias, Members: []uint64{0}}, f); err != nil {
		return fmt.Errorf("--alias: %w", err)
	}
	return nil
}

func runCreate(c *cli.Context) error {
	o, err := parseCreate(c)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	if o.autoPrecise && o.verbose > 0 {
		fmt.Fprintln(c.App.ErrWriter, "dmfm: --bounds below one millisecond: using --precise")
	}
	if o.filemap {
		return createFilemaps(c, o)
	}
	s, err := openSession("create")
	if err != nil {
		return err
	}
	defer s.Close()
	devs, err := o.dev.resolve(s.c)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	var made []madeRegion
	for _, d := range devs {
		if err := createOnDevice(c, s, d, o, &made); err != nil {
			return undoCreated(s, made, fmt.Errorf("create: %w", err))
		}
	}
	return nil
}

// madeRegion is a region this command created, for undoing on failure.
type madeRegion struct {
	dev device
	id  uint64
}

// undoCreated deletes what a failed create made, newest first.
func undoCreated(s *session, made []madeRegion, err error) error {
	var errs []error
	for i := len(made) - 1; i >= 0; i-- {
		m := made[i]
		if derr := s.stats(m.dev).Delete(m.id); derr != nil {
			errs = append(errs, fmt.Errorf("region %d on %s: %w", m.id, m.dev.Name, derr))
		}
	}
	if len(errs) > 0 {
		return errors.Join(err, fmt.Errorf("could not undo the regions made: %w", errors.Join(errs...)))
	}
	return err
}

func createOnDevice(c *cli.Context, s *session, d device, o createOpts, made *[]madeRegion) error {
	table, err := s.c.Table(dm.ByDevno(d.Major, d.Minor))
	if err != nil {
		return fmt.Errorf("%s: %w", d.Name, err)
	}
	size := table.Size()
	if size == 0 {
		return fmt.Errorf("%s has no live table: nothing to create regions on", d.Name)
	}
	st := s.stats(d)
	if err := removeStaleScratch(d, st); err != nil {
		return err
	}
	base := dmstats.CreateOptions{
		Step: o.step, Areas: o.areas, Precise: o.precise, Bounds: o.bounds,
		ProgramID: o.programID, AuxData: o.userData,
	}
	type span struct{ start, length uint64 }
	var spans []span
	if o.segments {
		for _, seg := range table {
			spans = append(spans, span{seg.Start, seg.Length})
		}
	} else {
		length := o.length
		if !o.hasLength {
			if o.start >= size {
				return fmt.Errorf("--start %d is beyond the end of %s (%d sectors)", o.start, d.Name, size)
			}
			length = size - o.start
		}
		if o.start+length > size || o.start+length < o.start {
			return fmt.Errorf("region %d+%d does not fit on %s (%d sectors)", o.start, length, d.Name, size)
		}
		spans = append(spans, span{o.start, length})
	}
	var ids []uint64
	for _, sp := range spans {
		opts := base
		opts.Start, opts.Length = sp.start, sp.length
		id, err := st.Create(opts)
		if err != nil {
			return fmt.Errorf("%s: could not create a region at %d+%d: %w", d.Name, sp.start, sp.length, err)
		}
		*made = append(*made, madeRegion{d, id})
		ids = append(ids, id)
		fmt.Fprintf(c.App.Writer, "%s: Created new region with %d area(s) as region ID %d\n", d.Name, areaCount(sp.length, o.step, o.areas), id)
	}
	if o.segments && !o.nogroup {
		// dmstats groups the segments' regions even when there is one.
		leader := ids[0]
		for _, id := range ids {
			leader = min(leader, id)
		}
		g := dmstats.Group{ID: leader, Alias: o.alias, Members: ids}
		if err := st.SetGroup(g, o.format); err != nil {
			return fmt.Errorf("%s: group the segments' regions: %w", d.Name, err)
		}
		list := make([]string, len(ids))
		for i, id := range ids {
			list[i] = strconv.FormatUint(id, 10)
		}
		with := ""
		if o.alias != "" {
			with = " with alias " + o.alias
		}
		fmt.Fprintf(c.App.Writer, "Grouped regions %s as group ID %d%s\n", strings.Join(list, ","), leader, with)
	}
	return nil
}

// areaCount is the number of areas a region of length sectors gets.
func areaCount(length, step, areas uint64) uint64 {
	switch {
	case areas > 0:
		return areas
	case step > 0:
		return (length + step - 1) / step
	}
	return 1
}
