package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dmfm/dmfm/lib/dmstats"
	sizes "github.com/dmfm/dmfm/lib/units" // "units" is the report's unit type here
	"github.com/urfave/cli/v2"
)

// parseID reads a region or group id given to option opt: a non-negative
// decimal integer of any length that fits in 64 bits.
func parseID(opt, v string) (uint64, error) {
	s := strings.TrimSpace(v)
	switch {
	case s == "":
		return 0, fmt.Errorf("%s: empty value; want a region or group id (a non-negative integer)", opt)
	case s[0] == '-' && len(s) > 1 && isDigits(s[1:]):
		return 0, fmt.Errorf("%s %s: ids are never negative", opt, v)
	case !isDigits(s):
		return 0, fmt.Errorf("%s %q is not a number; want a region or group id (a non-negative integer)", opt, v)
	}
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %s is too large for an id", opt, v)
	}
	return id, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// optionalID reads option opt when it is set.
func optionalID(c *cli.Context, opt string) (id uint64, set bool, err error) {
	if !c.IsSet(opt) {
		return 0, false, nil
	}
	id, err = parseID("--"+opt, c.String(opt))
	return id, err == nil, err
}

// parseSectors reads a start, length or area size as dmstats does: a bare
// number counts 512-byte sectors; with a unit suffix (see sizes.ParseSize) it is a
// size in bytes, which must then be a whole number of sectors.
func parseSectors(opt, v string) (uint64, error) {
	s := strings.TrimSpace(v)
	if isDigits(s) {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n > math.MaxInt64/512 {
			return 0, fmt.Errorf("%s %q is too large", opt, v)
		}
		return n, nil
	}
	b, err := sizes.ParseSize(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", opt, err)
	}
	if b%512 != 0 {
		return 0, fmt.Errorf("%s %s is not a whole number of 512-byte sectors (%d bytes)", opt, v, b)
	}
	return uint64(b) / 512, nil
}

// parseBounds reads histogram bounds as dmstats does: comma-separated
// latencies, in nanoseconds unless suffixed ns, us, ms or s. needPrecise is
// true when a bound is not a whole number of milliseconds: the region must
// then have precise timestamps (dmstats turns them on by itself).
func parseBounds(v string) (bounds []time.Duration, needPrecise bool, err error) {
	if strings.TrimSpace(v) == "" {
		return nil, false, errors.New("--bounds: empty list; want latencies such as 1ms,5ms,20ms")
	}
	for _, part := range strings.Split(v, ",") {
		p := strings.TrimSpace(part)
		num, unit := p, time.Nanosecond
		for _, u := range []struct {
			suffix string
			d      time.Duration
		}{{"ns", time.Nanosecond}, {"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}} {
			if n, ok := strings.CutSuffix(p, u.suffix); ok {
				num, unit = n, u.d
				break
			}
		}
		n, perr := strconv.ParseUint(num, 10, 64)
		if perr != nil || !isDigits(num) {
			return nil, false, fmt.Errorf("--bounds: bad latency %q: want a whole number with an optional ns, us, ms or s suffix", part)
		}
		if n == 0 {
			return nil, false, fmt.Errorf("--bounds: latency %q must be greater than zero", part)
		}
		if n > uint64(math.MaxInt64/int64(unit)) {
			return nil, false, fmt.Errorf("--bounds: latency %q is too large", part)
		}
		d := time.Duration(n) * unit
		if len(bounds) > 0 && d <= bounds[len(bounds)-1] {
			return nil, false, fmt.Errorf("--bounds: latencies must increase: %q follows %v", part, bounds[len(bounds)-1])
		}
		if d%time.Millisecond != 0 {
			needPrecise = true
		}
		bounds = append(bounds, d)
	}
	return bounds, needPrecise, nil
}

// programFlags select regions by program id, as in dmstats.
func programFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "programid", Usage: "only regions of program `ID`", Value: dmstats.DefaultProgramID},
		&cli.BoolFlag{Name: "allprograms", Usage: "regions of every program id"},
	}
}

// programFilter returns the program id regions must carry ("" for all).
func programFilter(c *cli.Context) (string, error) {
	if c.Bool("allprograms") {
		if c.IsSet("programid") {
			return "", errors.New("--allprograms and --programid are exclusive")
		}
		return "", nil
	}
	p := c.String("programid")
	if p == "" {
		return "", errors.New("--programid: empty program id (use --allprograms for every program)")
	}
	return p, nil
}

// regionSel is the choice between --regionid, --groupid and --allregions.
type regionSel struct {
	regionID, groupID uint64
	hasRegion         bool
	hasGroup          bool
	all               bool
}

// parseRegionSel reads --regionid/--allregions (and --groupid when the
// command has it); exactly one is required when required is true.
func parseRegionSel(c *cli.Context, required bool) (regionSel, error) {
	var s regionSel
	var err error
	if s.regionID, s.hasRegion, err = optionalID(c, "regionid"); err != nil {
		return s, err
	}
	if s.groupID, s.hasGroup, err = optionalID(c, "groupid"); err != nil {
		return s, err
	}
	s.all = c.Bool("allregions")
	n := 0
	for _, b := range []bool{s.hasRegion, s.hasGroup, s.all} {
		if b {
			n++
		}
	}
	if n > 1 {
		return s, errors.New("give only one of --regionid, --groupid and --allregions")
	}
	if n == 0 && required {
		if c.Command != nil && hasFlag(c.Command, "groupid") {
			return s, errors.New("say which regions: --regionid ID, --groupid ID or --allregions")
		}
		return s, errors.New("say which regions: --regionid ID or --allregions")
	}
	return s, nil
}

func hasFlag(cmd *cli.Command, name string) bool {
	for _, f := range cmd.Flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}

// rejectUnless fails when any of opts is set on c; why completes the
// message "OPT cannot be used <why>".
func rejectSet(c *cli.Context, why string, opts ...string) error {
	for _, o := range opts {
		if c.IsSet(o) {
			return fmt.Errorf("--%s cannot be used %s", o, why)
		}
	}
	return nil
}
