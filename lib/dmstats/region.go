package dmstats

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// DefaultProgramID is the program id lvm2's dmstats gives its regions;
// `dmstats list` and `dmstats report` show only regions carrying it unless
// asked for all programs.
const DefaultProgramID = "dmstats"

// Region is one dm-stats region as @stats_list reports it.
type Region struct {
	// ID is the region id the kernel handed out (lowest free id).
	ID uint64
	// Start and Length are the region's range in 512-byte sectors.
	Start, Length uint64
	// Step is the area size in sectors; the last area may be shorter.
	Step uint64
	// ProgramID and AuxData are the strings stored by the kernel, exactly as
	// listed: "-" when none was given.
	ProgramID, AuxData string
	// Precise is true for regions created with precise_timestamps: their
	// times and histogram bounds are in nanoseconds instead of milliseconds.
	Precise bool
	// Bounds are the histogram boundaries as the kernel prints them: ms, or
	// ns when Precise. Nil when the region has no histogram.
	Bounds []uint64
	// ExtraOptions holds listing options this package does not know
	// (anything after the aux data other than precise_timestamps and
	// histogram:...), so that nothing in a row is lost.
	ExtraOptions []string
}

// Areas returns the number of areas of the region: Length/Step rounded up.
func (r Region) Areas() uint64 {
	if r.Step == 0 {
		return 0
	}
	n := r.Length / r.Step
	if r.Length%r.Step != 0 {
		n++
	}
	return n
}

// End returns the first sector after the region.
func (r Region) End() uint64 { return r.Start + r.Length }

// TimeUnit returns the unit of the region's time counters and histogram
// bounds: time.Nanosecond when Precise, time.Millisecond otherwise.
func (r Region) TimeUnit() time.Duration { return timeUnit(r.Precise) }

// BoundDurations returns the histogram bounds as durations.
func (r Region) BoundDurations() []time.Duration {
	if r.Bounds == nil {
		return nil
	}
	u := r.TimeUnit()
	d := make([]time.Duration, len(r.Bounds))
	for i, b := range r.Bounds {
		d[i] = time.Duration(b) * u
	}
	return d
}

func timeUnit(precise bool) time.Duration {
	if precise {
		return time.Nanosecond
	}
	return time.Millisecond
}

// CreateOptions describes a region to create.
type CreateOptions struct {
	// Start and Length give the range in 512-byte sectors. Length 0 means
	// the whole device (sent as "-"); Start must then be 0.
	Start, Length uint64
	// Step is the area size in sectors, Areas the number of areas: set at
	// most one of them. Neither means one area ("/1").
	Step, Areas uint64
	// Precise asks for nanosecond timestamps (precise_timestamps).
	Precise bool
	// Bounds are histogram boundaries, strictly increasing and > 0. They are
	// sent in ms (each must then be a whole number of milliseconds) or in ns
	// when Precise.
	Bounds []time.Duration
	// ProgramID and AuxData are stored with the region; "" is sent as "-".
	// Both are escaped for the kernel's argument splitter.
	ProgramID, AuxData string
}

// ErrInvalidOptions is wrapped by every error about bad CreateOptions.
var ErrInvalidOptions = errors.New("invalid region options")

func optErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, a...))
}

// FormatBounds renders histogram bounds the way @stats_create and
// @stats_list write them ("histogram:" excluded): comma-separated integers
// in ms, or in ns when precise. It rejects an empty list, bounds that are not
// > 0 and strictly increasing, and, when not precise, bounds that are not a
// whole number of milliseconds.
func FormatBounds(bounds []time.Duration, precise bool) (string, error) {
	if len(bounds) == 0 {
		return "", optErr("histogram needs at least one bound")
	}
	unit := timeUnit(precise)
	buf := make([]byte, 0, len(bounds)*4)
	var last time.Duration
	for i, d := range bounds {
		if d <= 0 {
			return "", optErr("histogram bound %d (%v) must be greater than zero", i, d)
		}
		if i > 0 && d <= last {
			return "", optErr("histogram bounds must be strictly increasing: bound %d (%v) follows %v", i, d, last)
		}
		if d%unit != 0 {
			return "", optErr("histogram bound %d (%v) is not a whole number of milliseconds; use precise timestamps for finer bounds", i, d)
		}
		last = d
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = strconv.AppendUint(buf, uint64(d/unit), 10)
	}
	return string(buf), nil
}

// createMessage renders the @stats_create message for o. The options count
// is always sent (0 when there is none): the kernel takes a numeric first
// argument after the step for the count, so a numeric program id would
// otherwise be swallowed.
func createMessage(o CreateOptions) (string, error) {
	var rng string
	switch {
	case o.Length == 0 && o.Start != 0:
		return "", optErr("start %d given without a length (length 0 means the whole device)", o.Start)
	case o.Length == 0:
		rng = "-"
	default:
		if o.Start+o.Length < o.Start {
			return "", optErr("range %d+%d overflows", o.Start, o.Length)
		}
		rng = strconv.FormatUint(o.Start, 10) + "+" + strconv.FormatUint(o.Length, 10)
	}
	var step string
	switch {
	case o.Step != 0 && o.Areas != 0:
		return "", optErr("both step (%d) and areas (%d) given; choose one", o.Step, o.Areas)
	case o.Step != 0:
		step = strconv.FormatUint(o.Step, 10)
	case o.Areas > math.MaxUint32:
		return "", optErr("areas %d exceeds the kernel limit %d", o.Areas, uint64(math.MaxUint32))
	case o.Areas != 0:
		step = "/" + strconv.FormatUint(o.Areas, 10)
	default:
		step = "/1"
	}
	if err := checkArg("program id", o.ProgramID); err != nil {
		return "", optErr("%v", err)
	}
	if err := checkArg("aux data", o.AuxData); err != nil {
		return "", optErr("%v", err)
	}
	nopts := 0
	var opts string
	if o.Precise {
		nopts++
		opts += " precise_timestamps"
	}
	if len(o.Bounds) > 0 {
		b, err := FormatBounds(o.Bounds, o.Precise)
		if err != nil {
			return "", err
		}
		nopts++
		opts += " histogram:" + b
	}
	return "@stats_create " + rng + " " + step + " " + strconv.Itoa(nopts) + opts +
		" " + wireValue(o.ProgramID) + " " + wireValue(o.AuxData), nil
}
