package dm

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/dmfm/dmfm/lib/dm/internal/dmioctl"
)

// Target is one target type's configuration: its name and the parameter
// string of its table line.
type Target interface {
	// Type is the kernel target type, e.g. "linear".
	Type() string
	// Params is the parameter string of the table line.
	Params() string
}

// Segment maps Length sectors of the device, from sector Start, to Target.
// Sectors are 512 bytes.
type Segment struct {
	// Start is the first sector of the device the target covers.
	Start uint64
	// Length is the number of sectors it covers.
	Length uint64
	// Target says where and how those sectors are mapped.
	Target Target
}

// String renders the segment as a table line: "0 2048 linear 7:0 0".
func (s Segment) String() string {
	line := strconv.FormatUint(s.Start, 10) + " " + strconv.FormatUint(s.Length, 10)
	if s.Target == nil {
		return line + " <nil>"
	}
	line += " " + s.Target.Type()
	if p := s.Target.Params(); p != "" {
		line += " " + p
	}
	return line
}

// Table is a device-mapper table: segments in device order.
type Table []Segment

// String renders the table in dmsetup's format, one line per segment,
// lines separated by newlines.
func (t Table) String() string {
	lines := make([]string, len(t))
	for i, s := range t {
		lines[i] = s.String()
	}
	return strings.Join(lines, "\n")
}

// Size is the number of sectors the table maps (the end of its last
// segment).
func (t Table) Size() uint64 {
	if len(t) == 0 {
		return 0
	}
	last := t[len(t)-1]
	return last.Start + last.Length
}

// Validate checks what the kernel would reject with a bare EINVAL: the
// table must be non-empty, start at sector 0, and its segments must be
// non-empty, contiguous and have a valid target type and parameters.
func (t Table) Validate() error {
	if len(t) == 0 {
		return errors.New("empty table")
	}
	var next uint64
	for i, s := range t {
		if s.Target == nil {
			return fmt.Errorf("segment %d: no target", i)
		}
		if s.Start != next {
			if i == 0 {
				return fmt.Errorf("segment 0 starts at sector %d, not 0", s.Start)
			}
			return fmt.Errorf("segment %d starts at sector %d, but the previous one ends at %d", i, s.Start, next)
		}
		if s.Length == 0 {
			return fmt.Errorf("segment %d (%s) has length 0", i, s.Target.Type())
		}
		if err := checkType(s.Target.Type()); err != nil {
			return fmt.Errorf("segment %d: %w", i, err)
		}
		if strings.ContainsAny(s.Target.Params(), "\x00\n") {
			return fmt.Errorf("segment %d (%s): parameters contain a NUL or newline", i, s.Target.Type())
		}
		next = s.Start + s.Length
		if next < s.Start {
			return fmt.Errorf("segment %d: end overflows", i)
		}
	}
	return nil
}

// checkType validates a target type name.
func checkType(typ string) error {
	switch {
	case typ == "":
		return errors.New("empty target type")
	case len(typ) >= dmioctl.MaxTypeName:
		return fmt.Errorf("target type %q is longer than %d bytes", typ, dmioctl.MaxTypeName-1)
	case strings.ContainsAny(typ, " \t\n\x00"):
		return fmt.Errorf("target type %q contains whitespace or NUL", typ)
	}
	return nil
}

// specs converts the table to ioctl target specs.
func (t Table) specs() []dmioctl.TargetSpec {
	out := make([]dmioctl.TargetSpec, len(t))
	for i, s := range t {
		out[i] = dmioctl.TargetSpec{SectorStart: s.Start, Length: s.Length, TargetType: s.Target.Type(), Params: s.Target.Params()}
	}
	return out
}

// ParseTable parses dmsetup table text: one "start length type params"
// line per segment. Blank lines and lines starting with '#' are skipped.
// Errors name the offending line. Contiguity is not checked here; see
// Validate.
func ParseTable(text string) (Table, error) {
	var t Table
	for i, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		seg, err := parseLine(trimmed)
		if err != nil {
			return nil, fmt.Errorf("table line %d %q: %w", i+1, trimmed, err)
		}
		t = append(t, seg)
	}
	return t, nil
}

// parseLine parses one non-empty table line.
func parseLine(line string) (Segment, error) {
	startStr, rest := cutField(line)
	lenStr, rest := cutField(rest)
	typ, params := cutField(rest)
	if typ == "" {
		return Segment{}, errors.New(`want "<start> <length> <type> [<params>]"`)
	}
	start, err := strconv.ParseUint(startStr, 10, 64)
	if err != nil {
		return Segment{}, fmt.Errorf("bad start sector %q", startStr)
	}
	length, err := strconv.ParseUint(lenStr, 10, 64)
	if err != nil {
		return Segment{}, fmt.Errorf("bad length %q", lenStr)
	}
	tgt, err := ParseTarget(typ, params)
	if err != nil {
		return Segment{}, err
	}
	return Segment{Start: start, Length: length, Target: tgt}, nil
}

// cutField splits off the first whitespace-separated field of s and returns
// it and the rest with leading whitespace removed.
func cutField(s string) (string, string) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i:], " \t")
}

// ParseTarget builds the typed Target for a target type and its parameter
// string: Linear, ErrorTarget, Zero, Flakey, LogWrites, ThinPool, Thin and
// Mirror for those types, Raw for any other.
func ParseTarget(typ, params string) (Target, error) {
	if err := checkType(typ); err != nil {
		return nil, err
	}
	f := strings.Fields(params)
	bad := func(format string, args ...any) (Target, error) {
		return nil, fmt.Errorf("%s target: "+format, append([]any{typ}, args...)...)
	}
	switch typ {
	case "linear":
		if len(f) != 2 {
			return bad("want \"<device> <offset>\", got %q", params)
		}
		off, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return bad("bad offset %q", f[1])
		}
		return Linear{Device: f[0], Offset: off}, nil
	case "error", "zero":
		if len(f) != 0 {
			return bad("takes no parameters, got %q", params)
		}
		if typ == "error" {
			return ErrorTarget{}, nil
		}
		return Zero{}, nil
	case "flakey":
		if len(f) < 4 {
			return bad("want \"<device> <offset> <up seconds> <down seconds> [<#feature args> <args>...]\", got %q", params)
		}
		t := Flakey{Device: f[0]}
		var err error
		if t.Offset, err = strconv.ParseUint(f[1], 10, 64); err != nil {
			return bad("bad offset %q", f[1])
		}
		if t.Up, err = parseU32(f[2]); err != nil {
			return bad("bad up interval %q", f[2])
		}
		if t.Down, err = parseU32(f[3]); err != nil {
			return bad("bad down interval %q", f[3])
		}
		if t.Features, err = parseFeatures(f[4:]); err != nil {
			return bad("%v", err)
		}
		return t, nil
	case "log-writes":
		if len(f) != 2 {
			return bad("want \"<device> <log device>\", got %q", params)
		}
		return LogWrites{Device: f[0], LogDevice: f[1]}, nil
	case "thin-pool":
		if len(f) < 4 {
			return bad("want \"<metadata device> <data device> <block sectors> <low water blocks> [<#features> <features>...]\", got %q", params)
		}
		t := ThinPool{MetadataDev: f[0], DataDev: f[1]}
		var err error
		if t.BlockSize, err = strconv.ParseUint(f[2], 10, 64); err != nil {
			return bad("bad data block size %q", f[2])
		}
		if t.LowWater, err = strconv.ParseUint(f[3], 10, 64); err != nil {
			return bad("bad low water mark %q", f[3])
		}
		if t.Features, err = parseFeatures(f[4:]); err != nil {
			return bad("%v", err)
		}
		return t, nil
	case "thin":
		if len(f) != 2 && len(f) != 3 {
			return bad("want \"<pool device> <device id> [<external origin>]\", got %q", params)
		}
		id, err := parseU32(f[1])
		if err != nil {
			return bad("bad device id %q", f[1])
		}
		t := Thin{PoolDev: f[0], DevID: id}
		if len(f) == 3 {
			t.ExternalOrigin = f[2]
		}
		return t, nil
	case "mirror":
		if len(f) == 0 {
			return bad("needs parameters")
		}
		return Mirror{Args: f}, nil
	}
	return Raw{TargetType: typ, Args: strings.TrimSpace(params)}, nil
}

// parseU32 parses a decimal uint32.
func parseU32(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 10, 32)
	return uint32(v), err
}

// parseFeatures parses an optional "<count> <word>..." feature list.
func parseFeatures(f []string) ([]string, error) {
	if len(f) == 0 {
		return nil, nil
	}
	n, err := strconv.ParseUint(f[0], 10, 32)
	if err != nil {
		return nil, fmt.Errorf("bad feature argument count %q", f[0])
	}
	if int(n) != len(f)-1 {
		return nil, fmt.Errorf("feature argument count is %d but %d arguments follow", n, len(f)-1)
	}
	if n == 0 {
		return nil, nil
	}
	return f[1:], nil
}

// featureParams renders a feature list as "<count> <word>...", counting
// words, so an element may hold several words ("corrupt_bio_byte 32 r 1 0").
func featureParams(features []string) string {
	var words []string
	for _, f := range features {
		words = append(words, strings.Fields(f)...)
	}
	return strings.Join(append([]string{strconv.Itoa(len(words))}, words...), " ")
}

// Linear maps sectors linearly onto Device from sector Offset.
type Linear struct {
	// Device is the underlying device: a path or "major:minor".
	Device string
	// Offset is the first sector used on Device.
	Offset uint64
}

// Type returns "linear".
func (Linear) Type() string { return "linear" }

// Params returns "<device> <offset>".
func (t Linear) Params() string { return t.Device + " " + strconv.FormatUint(t.Offset, 10) }

// ErrorTarget fails every I/O.
type ErrorTarget struct{}

// Type returns "error".
func (ErrorTarget) Type() string { return "error" }

// Params returns "".
func (ErrorTarget) Params() string { return "" }

// Zero reads zeros and discards writes.
type Zero struct{}

// Type returns "zero".
func (Zero) Type() string { return "zero" }

// Params returns "".
func (Zero) Params() string { return "" }

// Flakey maps like Linear but is available for Up seconds, then misbehaves
// for Down seconds (failing I/O, or as the features say), repeatedly.
type Flakey struct {
	// Device is the underlying device.
	Device string
	// Offset is the first sector used on Device.
	Offset uint64
	// Up and Down are the intervals in seconds.
	Up, Down uint32
	// Features holds the feature arguments word by word, e.g.
	// {"drop_writes"} or {"corrupt_bio_byte", "32", "r", "1", "0"}; an
	// element holding several space-separated words also works.
	Features []string
}

// Type returns "flakey".
func (Flakey) Type() string { return "flakey" }

// Params returns "<device> <offset> <up> <down> <#feature args> [<args>]".
func (t Flakey) Params() string {
	return fmt.Sprintf("%s %d %d %d %s", t.Device, t.Offset, t.Up, t.Down, featureParams(t.Features))
}

// LogWrites passes I/O to Device and logs every write to LogDevice.
type LogWrites struct {
	// Device is the device written to.
	Device string
	// LogDevice receives the write log.
	LogDevice string
}

// Type returns "log-writes".
func (LogWrites) Type() string { return "log-writes" }

// Params returns "<device> <log device>".
func (t LogWrites) Params() string { return t.Device + " " + t.LogDevice }

// ThinPool is a thin-provisioning pool.
type ThinPool struct {
	// MetadataDev and DataDev are the pool's metadata and data devices.
	MetadataDev, DataDev string
	// BlockSize is the data block size in sectors.
	BlockSize uint64
	// LowWater is the free-block threshold (in blocks) for a low-space
	// event.
	LowWater uint64
	// Features are the feature arguments, e.g. {"skip_block_zeroing"}.
	Features []string
}

// Type returns "thin-pool".
func (ThinPool) Type() string { return "thin-pool" }

// Params returns "<metadata> <data> <block size> <low water> <#features> [<features>]".
func (t ThinPool) Params() string {
	return fmt.Sprintf("%s %s %d %d %s", t.MetadataDev, t.DataDev, t.BlockSize, t.LowWater, featureParams(t.Features))
}

// Thin is a thin volume in a pool.
type Thin struct {
	// PoolDev is the thin-pool device.
	PoolDev string
	// DevID is the thin device's id inside the pool.
	DevID uint32
	// ExternalOrigin, if set, is a read-only origin device for unprovisioned
	// blocks.
	ExternalOrigin string
}

// Type returns "thin".
func (Thin) Type() string { return "thin" }

// Params returns "<pool> <dev id> [<external origin>]".
func (t Thin) Params() string {
	p := t.PoolDev + " " + strconv.FormatUint(uint64(t.DevID), 10)
	if t.ExternalOrigin != "" {
		p += " " + t.ExternalOrigin
	}
	return p
}

// Mirror is a mirror target given by its raw arguments (log type, log
// arguments, mirror count, devices, features).
type Mirror struct {
	// Args are the parameter words.
	Args []string
}

// Type returns "mirror".
func (Mirror) Type() string { return "mirror" }

// Params joins the arguments with spaces.
func (t Mirror) Params() string { return strings.Join(t.Args, " ") }

// Raw is any target given by type name and parameter string.
type Raw struct {
	// TargetType is the kernel target type.
	TargetType string
	// Args is the parameter string.
	Args string
}

// Type returns TargetType.
func (t Raw) Type() string { return t.TargetType }

// Params returns Args.
func (t Raw) Params() string { return t.Args }
