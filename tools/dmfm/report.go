package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dmfm/dmfm/lib/dmstats"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

// Default field lists, as dmstats' (its STATS_* option strings), and the
// iostat-like one of a repeating report.
const (
	fieldsList          = "stats_name,group_id,region_id,obj_type,region_start,region_len,area_count,area_len,program_id"
	fieldsListVerbose   = "stats_name,group_id,region_id,obj_type,region_start,region_len,area_count,area_id,area_start,area_len,program_id"
	fieldsListHist      = "stats_name,group_id,region_id,obj_type,region_start,region_len,area_count,area_len,hist_bins,hist_bounds"
	fieldsListHistVerb  = "stats_name,group_id,region_id,obj_type,region_start,region_len,area_count,area_id,area_start,area_len,hist_bins,hist_bounds"
	fieldsReport        = "stats_name,group_id,region_id,obj_type,area_id,area_start,area_len,reads_merged_per_sec,writes_merged_per_sec,reads_per_sec,writes_per_sec,read_size_per_sec,write_size_per_sec,avg_request_size,queue_size,util,await,read_await,write_await"
	fieldsReportRaw     = "stats_name,group_id,region_id,obj_type,area_id,area_start,area_len,read_count,reads_merged_count,read_sector_count,read_time,read_ticks,write_count,writes_merged_count,write_sector_count,write_time,write_ticks,in_progress_count,io_ticks,queue_ticks"
	fieldsReportHist    = "stats_name,group_id,region_id,obj_type,region_start,region_len,area_count,area_len,util,await,hist_count_bounds"
	fieldsReportHistRel = "stats_name,group_id,region_id,obj_type,region_start,region_len,area_count,area_len,util,await,hist_percent_bounds"
	fieldsInterval      = "stats_name,group_id,obj_type,reads_per_sec,writes_per_sec,read_size_per_sec,write_size_per_sec,avg_request_size,queue_size,await,read_await,write_await,util"
)

func reportFlags(report bool) []cli.Flag {
	fl := append(deviceFlags(false), programFlags()...)
	fl = append(fl,
		&cli.StringFlag{Name: "options", Aliases: []string{"o"}, Usage: "`FIELDS` to show, comma-separated; +FIELDS adds to the default; -o help lists them"},
		&cli.StringFlag{Name: "sort", Aliases: []string{"O"}, Usage: "sort by `FIELDS`, comma-separated; -FIELD sorts descending"},
		&cli.StringFlag{Name: "select", Aliases: []string{"S"}, Usage: "show only the rows matching `SELECTION`, e.g. 'group_id=0' or 'name=vg-lv && region_id>2'"},
		&cli.StringFlag{Name: "units", Usage: "size `UNITS`: h (default), H, or b, s, k, m, g, t, p, e (upper case: powers of 1000)"},
		&cli.BoolFlag{Name: "nosuffix", Usage: "no unit suffix on sizes (with --units other than h and H)"},
		&cli.BoolFlag{Name: "noheadings", Usage: "no heading line; fields separated by ':' unless --separator"},
		&cli.StringFlag{Name: "separator", Usage: "separate fields with `STRING` instead of aligning columns"},
		&cli.BoolFlag{Name: "area", Usage: "show area rows"},
		&cli.BoolFlag{Name: "region", Usage: "show region rows"},
		&cli.BoolFlag{Name: "group", Usage: "show group rows"},
		&cli.BoolFlag{Name: "histogram", Usage: "default fields about latency histograms"},
		&cli.StringFlag{Name: "regionid", Usage: "only region `ID` (and its areas)"},
		&cli.StringFlag{Name: "groupid", Usage: "only group `ID` (and its regions and areas)"},
		&cli.BoolFlag{Name: "json", Usage: "print JSON (see JSON.md)"},
	)
	if report {
		fl = append(fl,
			&cli.StringFlag{Name: "interval", Usage: "repeat every `SECONDS` (or a duration such as 500ms), one row per group, like iostat"},
			&cli.StringFlag{Name: "count", Usage: "stop after `N` reports (0: until interrupted)"},
			&cli.BoolFlag{Name: "relative", Usage: "with --histogram, show bins as percentages"},
			&cli.BoolFlag{Name: "raw", Usage: "default fields: the raw counters instead of the metrics"},
		)
	}
	return fl
}

func listCommand() *cli.Command {
	return statsCommand("list", "list regions, areas and groups (no counters)",
		"[DEVICE...]",
		"Without a DEVICE, every device-mapper device. By default regions and groups of\n"+
			"program id dmstats are listed; -v adds areas (regions with one area are then\n"+
			"shown through their area only).",
		reportFlags(false), func(c *cli.Context) error { return runReport(c, true) })
}

func reportCommand() *cli.Command {
	return statsCommand("report", "report counters and metrics of areas, regions and groups",
		"[DEVICE...]",
		"Metrics (r/s, await, util%, ...) are computed over the interval. A report never\n"+
			"clears the counters (dmstats does): the first report divides the counters\n"+
			"accumulated since the regions were created or cleared by the interval (1 s by\n"+
			"default), as dmstats' first report does; the following ones (--interval,\n"+
			"--count) show what happened during the interval. A repeating report shows one\n"+
			"row per group (and per region in no group) unless --area, --region or --group\n"+
			"say otherwise; on a terminal it redraws the screen.",
		reportFlags(true), func(c *cli.Context) error { return runReport(c, false) })
}

// walk says which kinds of rows to show.
type walk struct {
	area, region, group bool
	// skipSingle hides the region row of a region with one area when its
	// area row is shown (dmstats' DM_STATS_WALK_SKIP_SINGLE_AREA).
	skipSingle bool
	// loneRegions shows regions in no group among group rows (repeating
	// reports).
	loneRegions bool
}

type sortKey struct {
	f    *fieldDef
	desc bool
}

// reportOpts are the validated options of list and report.
type reportOpts struct {
	list       bool
	dev        deviceSpec
	fields     []*fieldDef
	sortKeys   []sortKey
	sel        selection
	units      units
	walk       walk
	program    string
	regionID   uint64
	hasRegion  bool
	groupID    uint64
	hasGroup   bool
	noHeadings bool
	separator  string
	aligned    bool
	json       bool
	interval   time.Duration
	count      int
	repeat     bool
	counters   bool
	fieldHelp  bool
}

// parseReport validates the options of list (list true) or report.
func parseReport(c *cli.Context, list bool) (reportOpts, error) {
	o := reportOpts{list: list, units: defaultUnits, aligned: true, separator: " "}
	var err error
	if o.program, err = programFilter(c); err != nil {
		return o, err
	}
	if o.dev, err = parseDeviceSpec(c, c.Args().Slice(), implicitAll); err != nil {
		return o, err
	}
	if o.regionID, o.hasRegion, err = optionalID(c, "regionid"); err != nil {
		return o, err
	}
	if o.groupID, o.hasGroup, err = optionalID(c, "groupid"); err != nil {
		return o, err
	}
	if o.hasRegion && o.hasGroup {
		return o, errors.New("give one of --regionid and --groupid")
	}
	verbose := verbosity(c) > 0
	if !list {
		o.repeat = c.IsSet("interval") || c.IsSet("count")
		o.interval = time.Second
		if c.IsSet("interval") {
			if o.interval, err = parseInterval(c.String("interval")); err != nil {
				return o, err
			}
		}
		if c.IsSet("count") {
			n, err := strconv.ParseUint(strings.TrimSpace(c.String("count")), 10, 31)
			if err != nil {
				return o, fmt.Errorf("--count %q: want a number of reports (0: until interrupted)", c.String("count"))
			}
			o.count = int(n)
		}
		if c.IsSet("relative") && !c.Bool("histogram") {
			return o, errors.New("--relative needs --histogram")
		}
		if c.Bool("raw") && c.Bool("histogram") {
			return o, errors.New("give one of --raw and --histogram")
		}
	}
	// Objects.
	explicit := c.Bool("area") || c.Bool("region") || c.Bool("group")
	switch {
	case explicit:
		o.walk = walk{area: c.Bool("area"), region: c.Bool("region"), group: c.Bool("group")}
	case o.repeat:
		o.walk = walk{group: true, loneRegions: true}
	case list && !verbose:
		o.walk = walk{region: true, group: true}
	default:
		o.walk = walk{area: true, region: true, group: true, skipSingle: true}
	}
	// Fields.
	def := fieldsReport
	switch {
	case list && c.Bool("histogram") && verbose:
		def = fieldsListHistVerb
	case list && c.Bool("histogram"):
		def = fieldsListHist
	case list && verbose:
		def = fieldsListVerbose
	case list:
		def = fieldsList
	case c.Bool("histogram") && c.Bool("relative"):
		def = fieldsReportHistRel
	case c.Bool("histogram"):
		def = fieldsReportHist
	case c.Bool("raw"):
		def = fieldsReportRaw
	case o.repeat && !explicit:
		def = fieldsInterval
	}
	spec := def
	if c.IsSet("options") {
		spec = c.String("options")
		if squash(spec) == "help" || spec == "?" {
			o.fieldHelp = true
			return o, nil
		}
	}
	if o.fields, err = parseFieldList(spec, def, !list); err != nil {
		return o, fmt.Errorf("-o: %w", err)
	}
	if c.IsSet("sort") {
		for _, k := range strings.Split(c.String("sort"), ",") {
			k = strings.TrimSpace(k)
			desc := strings.HasPrefix(k, "-")
			k = strings.TrimLeft(k, "+-")
			f, ok := lookupField(k)
			if !ok {
				return o, fmt.Errorf("--sort: %w", errUnknownField(k, !list))
			}
			if list && f.counters {
				return o, fmt.Errorf("--sort: field %q needs counters: use `dmfm report`", k)
			}
			o.sortKeys = append(o.sortKeys, sortKey{f, desc})
		}
	}
	if c.IsSet("select") {
		if o.sel, err = compileSelect(c.String("select"), !list); err != nil {
			return o, err
		}
	}
	if c.IsSet("units") {
		if o.units, err = parseUnits(c.String("units"), c.Bool("nosuffix")); err != nil {
			return o, err
		}
	} else if c.Bool("nosuffix") {
		o.units.nosuffix = true
	}
	o.json = c.Bool("json")
	if o.json {
		if err := rejectSet(c, "with --json: JSON has no columns", "noheadings", "separator"); err != nil {
			return o, err
		}
	}
	o.noHeadings = c.Bool("noheadings")
	if o.noHeadings {
		o.aligned, o.separator = false, ":"
	}
	if c.IsSet("separator") {
		o.aligned, o.separator = false, c.String("separator")
	}
	for _, f := range o.fields {
		o.counters = o.counters || f.counters
	}
	for _, k := range o.sortKeys {
		o.counters = o.counters || k.f.counters
	}
	if o.sel != nil && !list {
		o.counters = true // a selection may test any field; be safe
	}
	return o, nil
}

// parseInterval reads seconds ("2", "0.5") or a Go duration ("500ms").
func parseInterval(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	var d time.Duration
	if v, err := strconv.ParseFloat(t, 64); err == nil {
		d = time.Duration(v * float64(time.Second))
	} else if d, err = time.ParseDuration(t); err != nil {
		return 0, fmt.Errorf("--interval %q: want seconds (e.g. 2 or 0.5) or a duration (e.g. 500ms)", s)
	}
	if d < time.Millisecond {
		return 0, fmt.Errorf("--interval %q: must be at least 1ms", s)
	}
	return d, nil
}

func runReport(c *cli.Context, list bool) error {
	cmd := "report"
	if list {
		cmd = "list"
	}
	o, err := parseReport(c, list)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	if o.fieldHelp {
		fmt.Fprint(c.App.Writer, fieldHelp(!list))
		return nil
	}
	s, err := openSession(cmd)
	if err != nil {
		return err
	}
	defer s.Close()
	devs, err := o.dev.resolve(s.c)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	rp := newReporter(o, devs, s.stats)
	rp.workerStats, rp.parallel = s.workerStats, maxParallel()
	if !o.repeat {
		rows, err := rp.collect(true, o.interval)
		if err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		return rp.render(c, rows, time.Now(), o.interval, false, false)
	}
	debug.SetGCPercent(defaultGCPercent) // this one may run for days
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	tty := isTerminal(c.App.Writer)
	var last time.Time
	next := time.Now()
	for i := 0; o.count == 0 || i < o.count; i++ {
		if i > 0 {
			next = next.Add(o.interval)
			t := time.NewTimer(time.Until(next))
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
		interval := o.interval
		now := time.Now()
		if i > 0 {
			interval = now.Sub(last)
		}
		rows, err := rp.collect(i == 0, interval)
		if err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		last = now
		if err := rp.render(c, rows, now, interval, true, tty); err != nil {
			return err
		}
	}
	return nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// regionKey names a region of a device across samples.
type regionKey struct {
	major, minor uint32
	id           uint64
}

// prevRegion is a region's previous sample: its geometry (a region deleted
// and re-created with the same id must not be subtracted from) and the
// counters (ns) and histogram of each area.
type prevRegion struct {
	start, length, step uint64
	areas               []dmstats.Counters
	hists               [][]uint64
}

// reporter samples the devices and builds rows.
type reporter struct {
	o        reportOpts
	statsFor func(device) *dmstats.Stats
	devs     []device
	prev     map[regionKey]prevRegion
	// workerStats, when set, gives further handles on a device (worker w >=
	// 1, each on its own control node) to read counters with parallel
	// ioctls, up to parallel of them.
	workerStats func(d device, w int) (*dmstats.Stats, error)
	parallel    int
}

// newReporter returns a reporter on devs; statsFor gives a device's dm-stats
// handle (a fresh one for every sample, so that listings are not reused).
func newReporter(o reportOpts, devs []device, statsFor func(device) *dmstats.Stats) *reporter {
	return &reporter{o: o, statsFor: statsFor, devs: devs, prev: map[regionKey]prevRegion{}}
}

// collect builds the rows of every device. With counters, each area's
// counters are those accumulated since the previous sample (first: since
// the region was created or cleared) and the metrics are derived over
// interval.
func (rp *reporter) collect(first bool, interval time.Duration) ([]*row, error) {
	var rows []*row
	var next map[regionKey]prevRegion
	if rp.o.repeat {
		next = make(map[regionKey]prevRegion, len(rp.prev))
	}
	for _, d := range rp.devs {
		st, err := loadState(d, rp.statsFor(d))
		if err != nil {
			return nil, err
		}
		dr, err := rp.deviceRows(st, first, interval, next)
		if err != nil {
			return nil, err
		}
		rows = append(rows, dr...)
	}
	rp.prev = next
	return rp.finish(rows), nil
}

// regionSample is one region's counters in a sample.
type regionSample struct {
	areas []dmstats.Counters // per area, ns, grown since the previous sample
	hists [][]uint64
	total dmstats.Counters
	hist  []uint64
}

func (rp *reporter) deviceRows(st *devState, first bool, interval time.Duration, next map[regionKey]prevRegion) ([]*row, error) {
	o := rp.o
	shown := st.ofProgram(o.program)
	var groups []*dmstats.Group
	shownID := make(map[uint64]bool, len(shown))
	for _, r := range shown {
		shownID[r.ID] = true
	}
	for gi := range st.groups {
		if shownID[st.groups[gi].ID] {
			groups = append(groups, &st.groups[gi])
		}
	}
	switch {
	case o.hasRegion:
		r, ok := st.region(o.regionID)
		if !ok || !shownID[o.regionID] {
			return nil, nil
		}
		shown, groups = []dmstats.Region{r}, nil
	case o.hasGroup:
		g, ok := st.group(o.groupID)
		if !ok || !shownID[o.groupID] {
			return nil, nil
		}
		shown = shown[:0:0]
		for _, id := range g.Members {
			r, _ := st.region(id)
			shown = append(shown, r)
		}
		groups = []*dmstats.Group{&st.groups[st.groupOf[o.groupID]]}
	}

	// samples[i] holds the counters of st.regions[i], when needed.
	var samples []*regionSample
	if o.counters {
		var err error
		if samples, err = rp.sample(st, shown, groups, first, next); err != nil {
			return nil, err
		}
	}
	sampleOf := func(id uint64) *regionSample {
		if samples == nil {
			return nil
		}
		return samples[st.index[id]]
	}

	// Count the rows, to allocate them at once.
	n := len(groups)
	for _, r := range shown {
		if o.walk.area {
			n += int(r.Areas())
		}
		n++
	}
	slab := make([]row, 0, n)
	rows := make([]*row, 0, n)
	newRow := func(kind objKind, r *dmstats.Region) *row {
		slab = append(slab, row{dev: st.dev, kind: kind, regionID: r.ID, regionStart: r.Start, regionLen: r.Length,
			areaStart: r.Start, areaLen: min(r.Step, r.Length), areaCount: r.Areas(), programID: r.ProgramID,
			auxData: r.AuxData, precise: r.Precise, bounds: boundsNS(*r), sampled: o.counters, interval: interval})
		x := &slab[len(slab)-1]
		x.userData = userData(*r)
		if gi, ok := st.groupOf[r.ID]; ok {
			x.group = &st.groups[gi]
			if x.group.ID == r.ID {
				x.userData = x.group.UserData
			}
		}
		rows = append(rows, x)
		return x
	}
	if o.walk.area {
		for i := range shown {
			r := &shown[i]
			s := sampleOf(r.ID)
			for a := uint64(0); a < r.Areas(); a++ {
				x := newRow(objArea, r)
				x.areaID = a
				x.areaStart = r.Start + a*r.Step
				x.areaLen = min(r.Step, r.End()-x.areaStart)
				if s != nil && int(a) < len(s.areas) {
					x.counters, x.hist = s.areas[a], s.hists[a]
				}
			}
		}
	}
	if o.walk.region || o.walk.loneRegions {
		for i := range shown {
			r := &shown[i]
			if o.walk.skipSingle && r.Areas() < 2 {
				continue
			}
			if !o.walk.region && st.inGroup(r.ID) {
				continue
			}
			x := newRow(objRegion, r)
			if s := sampleOf(r.ID); s != nil {
				x.counters, x.hist = s.total, s.hist
			}
		}
	}
	if o.walk.group {
		for _, g := range groups {
			leader, _ := st.region(g.ID)
			x := newRow(objGroup, &leader)
			x.members = g.Members
			x.areaCount = 1
			var length uint64
			sameBounds := true
			for _, m := range g.Members {
				r, _ := st.region(m)
				length += r.Length
				if !equalBounds(r, leader) {
					sameBounds = false
				}
				if s := sampleOf(m); s != nil {
					x.counters = x.counters.Add(s.total)
				}
			}
			x.regionLen, x.areaLen = length, length
			if !sameBounds {
				x.bounds = nil
			} else if x.bounds != nil && samples != nil {
				x.hist = make([]uint64, len(x.bounds)+1)
				for _, m := range g.Members {
					if s := sampleOf(m); s != nil {
						for i := range x.hist {
							if i < len(s.hist) {
								x.hist[i] += s.hist[i]
							}
						}
					}
				}
			}
		}
	}
	if o.counters {
		for _, x := range rows {
			m, err := dmstats.Derive(dmstats.Counters{}, x.counters, interval, true)
			if err != nil {
				return nil, err
			}
			x.metrics = m
		}
	}
	return rows, nil
}

// equalBounds reports whether two regions count latencies in the same bins.
func equalBounds(a, b dmstats.Region) bool {
	return equalU64(boundsNS(a), boundsNS(b))
}

// sample reads the counters of the shown regions and of the members of the
// shown groups, each once, into regionSamples indexed like st.regions. The
// kernel answers one @stats_print per region: with many regions they are
// sent over several control handles in parallel (rp.workerStats), which
// overlaps the ioctls' entry, copy and parsing.
func (rp *reporter) sample(st *devState, shown []dmstats.Region, groups []*dmstats.Group, first bool, next map[regionKey]prevRegion) ([]*regionSample, error) {
	samples := make([]*regionSample, len(st.regions))
	slab := make([]regionSample, 0, len(st.regions)) // never grows: pointers stay valid
	var todo []int                                   // indices into st.regions, in order
	var nAreas uint64
	want := func(id uint64) {
		i := st.index[id]
		if samples[i] == nil {
			slab = append(slab, regionSample{})
			samples[i] = &slab[len(slab)-1]
			todo = append(todo, i)
			nAreas += st.regions[i].Areas()
		}
	}
	for _, r := range shown {
		want(r.ID)
	}
	for _, g := range groups {
		for _, m := range g.Members {
			want(m)
		}
	}
	// Carve each region's per-area slices out of two slabs instead of
	// allocating two per region; a region whose area count changed since
	// the listing gets its own.
	areas := make([]dmstats.Counters, nAreas)
	hists := make([][]uint64, nAreas)
	var off uint64
	for _, i := range todo {
		n := st.regions[i].Areas()
		samples[i].areas = areas[off : off+n : off+n]
		samples[i].hists = hists[off : off+n : off+n]
		off += n
	}
	var mu sync.Mutex // guards next
	workers := func(w int) (*dmstats.Stats, error) { return rp.workerStats(st.dev, w) }
	if rp.workerStats == nil {
		workers = nil
	}
	err := parallelDo(st.st, workers, rp.parallel, len(todo), func(stats *dmstats.Stats, j int) error {
		i := todo[j]
		return rp.sampleRegion(stats, st.dev, st.regions[i], first, next, &mu, samples[i])
	})
	if err != nil {
		return nil, err
	}
	return samples, nil
}

// sampleRegion reads region r's counters into s: what they grew by since
// the previous sample (everything, on the first one). With next (repeating
// reports) it records them for the next sample, under mu.
func (rp *reporter) sampleRegion(stats *dmstats.Stats, dev device, r dmstats.Region, first bool, next map[regionKey]prevRegion, mu *sync.Mutex, s *regionSample) error {
	areas, err := stats.Print(r.ID, false)
	if err != nil {
		return fmt.Errorf("read the counters of region %d on %s: %w", r.ID, dev.Name, err)
	}
	if len(areas) != len(s.areas) {
		s.areas = make([]dmstats.Counters, len(areas))
		s.hists = make([][]uint64, len(areas))
	}
	for i := range areas {
		c := areas[i].Counters
		if !r.Precise {
			c = c.ScaleTimes(uint64(time.Millisecond))
		}
		s.areas[i], s.hists[i] = c, areas[i].Histogram
	}
	if next != nil {
		key := regionKey{dev.Major, dev.Minor, r.ID}
		cur := prevRegion{start: r.Start, length: r.Length, step: r.Step,
			areas: slices.Clone(s.areas), hists: slices.Clone(s.hists)}
		mu.Lock()
		next[key] = cur
		prev, ok := rp.prev[key]
		mu.Unlock()
		if !first && ok && prev.start == r.Start && prev.length == r.Length && prev.step == r.Step && len(prev.areas) == len(cur.areas) {
			for i := range s.areas {
				// A counter that went backwards was cleared: count from zero.
				if d, err := cur.areas[i].Sub(prev.areas[i]); err == nil {
					s.areas[i] = d
				}
				if h, err := dmstats.HistogramDelta(prev.hists[i], cur.hists[i]); err == nil {
					s.hists[i] = h
				}
			}
		}
	}
	for i := range s.areas {
		s.total = s.total.Add(s.areas[i])
		if h := s.hists[i]; h != nil {
			if s.hist == nil {
				s.hist = make([]uint64, len(h))
			}
			for j := range h {
				if j < len(s.hist) {
					s.hist[j] += h[j]
				}
			}
		}
	}
	return nil
}

func equalU64(a, b []uint64) bool {
	if len(a) != len(b) || (a == nil) != (b == nil) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// boundsNS returns r's histogram bounds in nanoseconds.
func boundsNS(r dmstats.Region) []uint64 {
	if r.Bounds == nil {
		return nil
	}
	out := make([]uint64, len(r.Bounds))
	for i, b := range r.Bounds {
		if r.Precise {
			out[i] = b
		} else {
			out[i] = b * uint64(time.Millisecond)
		}
	}
	return out
}

// userData is the user part of a region's aux data ("" for none).
func userData(r dmstats.Region) string {
	if g, ok, err := dmstats.ParseGroupTag(r.AuxData); ok && err == nil {
		return g.UserData
	}
	if r.AuxData == "-" {
		return ""
	}
	return r.AuxData
}
