package main

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dmfm/dmfm/lib/dmstats"
)

// objKind is the kind of object a report row describes.
type objKind int

const (
	objArea objKind = iota + 1
	objRegion
	objGroup
)

// String returns the obj_type value: area, region or group.
func (k objKind) String() string {
	switch k {
	case objArea:
		return "area"
	case objRegion:
		return "region"
	case objGroup:
		return "group"
	}
	return "unknown"
}

// row is one line of a list or report: an area, a region or a group of one
// device. Counters are in nanoseconds whatever the region's precision, and
// are those of the report's interval.
type row struct {
	dev         device
	kind        objKind
	regionID    uint64   // the region; for a group, its leader
	members     []uint64 // a group's members (group rows)
	group       *dmstats.Group
	areaID      uint64
	areaStart   uint64 // sectors
	areaLen     uint64
	regionStart uint64
	regionLen   uint64
	areaCount   uint64
	programID   string
	auxData     string
	userData    string
	precise     bool
	bounds      []uint64 // histogram bounds in ns; nil without a histogram

	sampled  bool
	counters dmstats.Counters // ns
	hist     []uint64
	metrics  dmstats.Metrics
	interval time.Duration
}

// colType says how a column is aligned, compared and encoded.
type colType int

const (
	colText colType = iota // left-aligned, compared as text
	colNum                 // right-aligned, compared as a number
	colSize                // right-aligned size: --units apply; bytes in JSON
)

// valKind says what a field's value is, for JSON.
type valKind uint8

const (
	vText  valKind = iota // the text itself
	vUint                 // u
	vInt                  // i
	vFloat                // key, rounded
	vSize                 // key: bytes
	vBool                 // u != 0
	vNone                 // null
	vAny                  // any
)

// val is what a field holds besides its text: the key it sorts and compares
// by, and its JSON value.
type val struct {
	kind valKind
	num  bool    // key is meaningful
	key  float64 // for sorting and selection: bytes for sizes
	u    uint64
	i    int64
	any  any
}

// cell is a field's text with its value.
type cell struct {
	text string
	val
}

// fieldDef describes one report field. get appends the field's text for a
// row to b and returns its value: tables format every cell into one buffer.
type fieldDef struct {
	name     string
	heading  string
	typ      colType
	width    int
	counters bool // needs the counters (report only)
	desc     string
	get      func(r *row, u units, b []byte) ([]byte, val)
}

// cellOf formats one field of one row on its own.
func cellOf(f *fieldDef, r *row, u units) cell {
	b, v := f.get(r, u, nil)
	return cell{text: string(b), val: v}
}

// jsonValue is the cell's value in JSON.
func (c cell) jsonValue() any {
	switch c.kind {
	case vText:
		return c.text
	case vUint:
		return c.u
	case vInt:
		return c.i
	case vFloat:
		return round6(c.key)
	case vSize:
		return jsonNumber(c.key)
	case vBool:
		return c.u != 0
	case vAny:
		return c.any
	}
	return nil
}

func txt(b []byte, s string) ([]byte, val) { return append(b, s...), val{kind: vText} }

func unum(b []byte, v uint64) ([]byte, val) {
	return strconv.AppendUint(b, v, 10), val{kind: vUint, num: true, key: float64(v), u: v}
}

func inum(b []byte, v int64) ([]byte, val) {
	return strconv.AppendInt(b, v, 10), val{kind: vInt, num: true, key: float64(v), i: v}
}

// fnum formats v with two decimals, as dmstats does.
func fnum(b []byte, v float64) ([]byte, val) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0
	}
	return appendFixed2(b, v), val{kind: vFloat, num: true, key: v}
}

// appendFixed2 appends v with two decimals, as strconv.AppendFloat(b, v,
// 'f', 2, 64) does, through integers when that gives the same digits: the
// reports format tens of thousands of such numbers.
func appendFixed2(b []byte, v float64) []byte {
	x := v * 100
	if math.Abs(x) >= 1<<52 {
		return strconv.AppendFloat(b, v, 'f', 2, 64)
	}
	// Near a tie the product's rounding error could pick the other digit:
	// leave those to strconv, which rounds v exactly.
	if frac := math.Abs(x - math.Trunc(x)); math.Abs(frac-0.5) <= 1e-9+math.Abs(x)*1e-14 {
		return strconv.AppendFloat(b, v, 'f', 2, 64)
	}
	n := int64(math.Round(x))
	if n < 0 {
		b = append(b, '-')
		n = -n
	} else if v < 0 || math.Signbit(v) && n == 0 {
		// -0.001 prints as -0.00, like strconv.
		b = append(b, '-')
	}
	b = strconv.AppendInt(b, n/100, 10)
	return append(b, '.', byte('0'+n%100/10), byte('0'+n%10))
}

func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }

// snum formats a size in bytes in the report's units.
func snum(b []byte, bytes float64, u units) ([]byte, val) {
	return u.append(b, bytes), val{kind: vSize, num: true, key: bytes}
}

// jsonNumber keeps whole numbers integral in JSON.
func jsonNumber(v float64) any {
	if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
		return int64(v)
	}
	return round6(v)
}

func msnum(b []byte, d time.Duration) ([]byte, val) {
	return fnum(b, float64(d)/float64(time.Millisecond))
}

func bnum(b []byte, x bool) ([]byte, val) {
	if x {
		return append(b, '1'), val{kind: vBool, num: true, key: 1, u: 1}
	}
	return append(b, '0'), val{kind: vBool, num: true}
}

// none is "-" (no value) in text and null in JSON.
func none(b []byte) ([]byte, val) { return append(b, '-'), val{kind: vNone} }

// statsName is the name dmstats shows for a row: the group's alias, or
// the device's name.
func statsName(r *row) string {
	if r.group != nil && r.group.Alias != "" {
		return r.group.Alias
	}
	return r.dev.Name
}

// fields lists every field, in help order.
var fields = []fieldDef{
	// Device and object names.
	{name: "name", heading: "Name", typ: colText, width: 16, desc: "Name of the device.",
		get: func(r *row, _ units, b []byte) ([]byte, val) { return txt(b, r.dev.Name) }},
	{name: "uuid", heading: "UUID", typ: colText, width: 32, desc: "UUID of the device.",
		get: func(r *row, _ units, b []byte) ([]byte, val) { return txt(b, r.dev.UUID) }},
	{name: "major", heading: "Maj", typ: colNum, width: 3, desc: "Major number of the device.",
		get: func(r *row, _ units, b []byte) ([]byte, val) { return unum(b, uint64(r.dev.Major)) }},
	{name: "minor", heading: "Min", typ: colNum, width: 3, desc: "Minor number of the device.",
		get: func(r *row, _ units, b []byte) ([]byte, val) { return unum(b, uint64(r.dev.Minor)) }},
	{name: "stats_name", heading: "Name", typ: colText, width: 16, desc: "Name of the object: its group's alias, or the device's name.",
		get: func(r *row, _ units, b []byte) ([]byte, val) { return txt(b, statsName(r)) }},
	{name: "alias", heading: "Alias", typ: colText, width: 5, desc: "Alias of the row's group (empty when none).",
		get: func(r *row, _ units, b []byte) ([]byte, val) {
			if r.group == nil {
				return txt(b, "")
			}
			return txt(b, r.group.Alias)
		}},
	{name: "obj_type", heading: "ObjType", typ: colText, width: 7, desc: "Type of object: area, region or group.",
		get: func(r *row, _ units, b []byte) ([]byte, val) { return txt(b, r.kind.String()) }},

	// Region, area and group metadata.
	{name: "region_id", heading: "RgID", typ: colNum, width: 4, desc: "Region ID; for a group, its member list.",
		get: func(r *row, _ units, b []byte) ([]byte, val) {
			if r.kind == objGroup {
				_, v := unum(nil, r.regionID)
				return append(b, dmstats.FormatMembers(r.members)...), v
			}
			return unum(b, r.regionID)
		}},
	{name: "region_start", heading: "RgStart", typ: colSize, width: 7, desc: "Region start (a group's: its leader's).",
		get: func(r *row, u units, b []byte) ([]byte, val) { return snum(b, float64(r.regionStart)*512, u) }},
	{name: "region_len", heading: "RgSize", typ: colSize, width: 6, desc: "Region length (a group's: the sum of its regions').",
		get: func(r *row, u units, b []byte) ([]byte, val) { return snum(b, float64(r.regionLen)*512, u) }},
	{name: "area_id", heading: "ArID", typ: colNum, width: 4, desc: "Area ID within the region.",
		get: func(r *row, _ units, b []byte) ([]byte, val) { return unum(b, r.areaID) }},
	{name: "area_start", heading: "ArStart", typ: colSize, width: 7, desc: "Area offset from the start of the device.",
		get: func(r *row, u units, b []byte) ([]byte, val) { return snum(b, float64(r.areaStart)*512, u) }},
	{name: "area_len", heading: "ArSize", typ: colSize, width: 6, desc: "Area length (a region's: its area size; a group's: its length).",
		get: func(r *row, u units, b []byte) ([]byte, val) { return snum(b, float64(r.areaLen)*512, u) }},
	{name: "area_offset", heading: "ArOff", typ: colSize, width: 5, desc: "Area offset from the start of the region.",
		get: func(r *row, u units, b []byte) ([]byte, val) {
			return snum(b, float64(r.areaStart-r.regionStart)*512, u)
		}},
	{name: "area_count", heading: "#Areas", typ: colNum, width: 6, desc: "Number of areas in the region.",
		get: func(r *row, _ units, b []byte) ([]byte, val) { return unum(b, r.areaCount) }},
	{name: "group_id", heading: "GrpID", typ: colNum, width: 5, desc: "Group ID; - when the region is in no group.",
		get: func(r *row, _ units, b []byte) ([]byte, val) {
			if r.group == nil {
				return none(b)
			}
			return unum(b, r.group.ID)
		}},
	{name: "members", heading: "Members", typ: colText, width: 7, desc: "A group's member regions (- for other rows); an array in JSON.",
		get: func(r *row, _ units, b []byte) ([]byte, val) {
			if r.kind != objGroup {
				return none(b)
			}
			return append(b, dmstats.FormatMembers(r.members)...), val{kind: vAny, any: r.members}
		}},
	{name: "program_id", heading: "ProgID", typ: colText, width: 6, desc: "Program ID of the region.",
		get: func(r *row, _ units, b []byte) ([]byte, val) { return txt(b, r.programID) }},
	{name: "user_data", heading: "UserData", typ: colText, width: 8, desc: "User data: the aux data, or what the group tag keeps after its '#'.",
		get: func(r *row, _ units, b []byte) ([]byte, val) { return txt(b, r.userData) }},
	{name: "aux_data", heading: "AuxData", typ: colText, width: 7, desc: "Aux data as the kernel stores it (group tag included).",
		get: func(r *row, _ units, b []byte) ([]byte, val) { return txt(b, r.auxData) }},
	{name: "precise", heading: "Precise", typ: colNum, width: 7, desc: "1 if the region has nanosecond-precision counters.",
		get: func(r *row, _ units, b []byte) ([]byte, val) { return bnum(b, r.precise) }},
	{name: "hist_bins", heading: "#Bins", typ: colNum, width: 5, desc: "Number of histogram bins.",
		get: func(r *row, _ units, b []byte) ([]byte, val) {
			if r.bounds == nil {
				return unum(b, 0)
			}
			return unum(b, uint64(len(r.bounds)+1))
		}},
	{name: "hist_bounds", heading: "Histogram Bounds", typ: colText, width: 16, desc: "Histogram bin lower bounds.",
		get: func(r *row, _ units, b []byte) ([]byte, val) { return histBoundsCell(b, r, false) }},
	{name: "hist_ranges", heading: "Histogram Ranges", typ: colText, width: 16, desc: "Histogram bin ranges.",
		get: func(r *row, _ units, b []byte) ([]byte, val) { return histBoundsCell(b, r, true) }},

	// Basic counters.
	counterField("read_count", "#Reads", 6, "Count of reads completed.", func(c dmstats.Counters) uint64 { return c.Reads }),
	counterField("reads_merged_count", "#RdMrgs", 7, "Count of read requests merged.", func(c dmstats.Counters) uint64 { return c.ReadsMerged }),
	counterField("read_sector_count", "#RdSectors", 10, "Count of sectors read.", func(c dmstats.Counters) uint64 { return c.ReadSectors }),
	counterField("read_time", "AccRdTime", 11, "Accumulated duration of all reads (ns).", func(c dmstats.Counters) uint64 { return c.ReadTicks }),
	counterField("write_count", "#Writes", 7, "Count of writes completed.", func(c dmstats.Counters) uint64 { return c.Writes }),
	counterField("writes_merged_count", "#WrMrgs", 7, "Count of write requests merged.", func(c dmstats.Counters) uint64 { return c.WritesMerged }),
	counterField("write_sector_count", "#WrSectors", 10, "Count of sectors written.", func(c dmstats.Counters) uint64 { return c.WriteSectors }),
	counterField("write_time", "AccWrTime", 11, "Accumulated duration of all writes (ns).", func(c dmstats.Counters) uint64 { return c.WriteTicks }),
	{name: "in_progress_count", heading: "#InProg", typ: colNum, width: 7, counters: true, desc: "Count of requests in progress.",
		get: func(r *row, _ units, b []byte) ([]byte, val) { return inum(b, r.counters.InFlight) }},
	counterField("io_ticks", "IoTicks", 7, "Nanoseconds spent servicing requests.", func(c dmstats.Counters) uint64 { return c.IOTicks }),
	counterField("queue_ticks", "QueueTicks", 10, "Weighted nanoseconds spent in queue.", func(c dmstats.Counters) uint64 { return c.QueueTicks }),
	counterField("read_ticks", "RdTicks", 7, "Nanoseconds with reads in flight.", func(c dmstats.Counters) uint64 { return c.ReadsInFlightTicks }),
	counterField("write_ticks", "WrTicks", 7, "Nanoseconds with writes in flight.", func(c dmstats.Counters) uint64 { return c.WritesInFlightTicks }),

	// Derived metrics.
	metricField("reads_merged_per_sec", "RMrg/s", 6, "Read requests merged per second.", func(m dmstats.Metrics, _ units, b []byte) ([]byte, val) { return fnum(b, m.ReadMergesPerSec) }),
	metricField("writes_merged_per_sec", "WMrg/s", 6, "Write requests merged per second.", func(m dmstats.Metrics, _ units, b []byte) ([]byte, val) { return fnum(b, m.WriteMergesPerSec) }),
	metricField("reads_per_sec", "R/s", 3, "Reads per second.", func(m dmstats.Metrics, _ units, b []byte) ([]byte, val) { return fnum(b, m.ReadsPerSec) }),
	metricField("writes_per_sec", "W/s", 3, "Writes per second.", func(m dmstats.Metrics, _ units, b []byte) ([]byte, val) { return fnum(b, m.WritesPerSec) }),
	sizeMetricField("read_size_per_sec", "RSz/s", 5, "Size of data read per second.", func(m dmstats.Metrics) float64 { return m.ReadBytesPerSec }),
	sizeMetricField("write_size_per_sec", "WSz/s", 5, "Size of data written per second.", func(m dmstats.Metrics) float64 { return m.WriteBytesPerSec }),
	sizeMetricField("avg_request_size", "AvgRqSz", 7, "Average request size.", func(m dmstats.Metrics) float64 { return m.AvgRequestSize * 512 }),
	metricField("queue_size", "QSize", 5, "Average queue size.", func(m dmstats.Metrics, _ units, b []byte) ([]byte, val) { return fnum(b, m.AvgQueueSize) }),
	metricField("await", "AWait", 5, "Average wait time (ms).", func(m dmstats.Metrics, _ units, b []byte) ([]byte, val) { return msnum(b, m.Await) }),
	metricField("read_await", "RdAWait", 7, "Average read wait time (ms).", func(m dmstats.Metrics, _ units, b []byte) ([]byte, val) { return msnum(b, m.ReadAwait) }),
	metricField("write_await", "WrAWait", 7, "Average write wait time (ms).", func(m dmstats.Metrics, _ units, b []byte) ([]byte, val) { return msnum(b, m.WriteAwait) }),
	metricField("throughput", "Throughput", 10, "Throughput (requests per second).", func(m dmstats.Metrics, _ units, b []byte) ([]byte, val) { return fnum(b, m.IOsPerSec) }),
	metricField("service_time", "SvcTm", 5, "Service time (ms).", func(m dmstats.Metrics, _ units, b []byte) ([]byte, val) { return msnum(b, m.ServiceTime) }),
	metricField("util", "Util%", 5, "Utilization (percent of the interval with I/O in progress).", func(m dmstats.Metrics, _ units, b []byte) ([]byte, val) { return fnum(b, m.Utilization) }),

	// Histograms.
	histField("hist_count", "Histogram Counts", 16, "Latency histogram counts.", false, 0),
	histField("hist_count_bounds", "Histogram Counts", 16, "Latency histogram counts with bin lower bounds.", false, 1),
	histField("hist_count_ranges", "Histogram Counts", 16, "Latency histogram counts with bin ranges.", false, 2),
	histField("hist_percent", "Histogram%", 10, "Relative latency histogram.", true, 0),
	histField("hist_percent_bounds", "Histogram%", 10, "Relative latency histogram with bin lower bounds.", true, 1),
	histField("hist_percent_ranges", "Histogram%", 10, "Relative latency histogram with bin ranges.", true, 2),

	// Sampling interval.
	{name: "interval_ns", heading: "IntervalNs", typ: colNum, width: 10, counters: true, desc: "Sampling interval in nanoseconds.",
		get: func(r *row, _ units, b []byte) ([]byte, val) { return unum(b, uint64(r.interval)) }},
	{name: "interval", heading: "Interval", typ: colNum, width: 8, counters: true, desc: "Sampling interval in seconds.",
		get: func(r *row, _ units, b []byte) ([]byte, val) { return fnum(b, r.interval.Seconds()) }},
}

func counterField(name, heading string, width int, desc string, v func(dmstats.Counters) uint64) fieldDef {
	return fieldDef{name: name, heading: heading, typ: colNum, width: width, counters: true, desc: desc,
		get: func(r *row, _ units, b []byte) ([]byte, val) { return unum(b, v(r.counters)) }}
}

func metricField(name, heading string, width int, desc string, v func(dmstats.Metrics, units, []byte) ([]byte, val)) fieldDef {
	return fieldDef{name: name, heading: heading, typ: colNum, width: width, counters: true, desc: desc,
		get: func(r *row, u units, b []byte) ([]byte, val) { return v(r.metrics, u, b) }}
}

func sizeMetricField(name, heading string, width int, desc string, v func(dmstats.Metrics) float64) fieldDef {
	return fieldDef{name: name, heading: heading, typ: colSize, width: width, counters: true, desc: desc,
		get: func(r *row, u units, b []byte) ([]byte, val) { return snum(b, math.Trunc(v(r.metrics)/512)*512, u) }}
}

// histField formats the histogram: style 0 values only, 1 with each bin's
// lower bound, 2 with each bin's range.
func histField(name, heading string, width int, desc string, percent bool, style int) fieldDef {
	return fieldDef{name: name, heading: heading, typ: colText, width: width, counters: true, desc: desc,
		get: func(r *row, _ units, b []byte) ([]byte, val) { return histCell(b, r, percent, style) }}
}

// fieldAliases maps other names of fields (libdevmapper's API names, the
// man page's) to the report's.
var fieldAliases = map[string]string{
	"reads":                 "read_count",
	"reads_merged":          "reads_merged_count",
	"read_sectors":          "read_sector_count",
	"read_nsecs":            "read_time",
	"writes":                "write_count",
	"writes_merged":         "writes_merged_count",
	"write_sectors":         "write_sector_count",
	"write_nsecs":           "write_time",
	"io_in_progress":        "in_progress_count",
	"io_nsecs":              "io_ticks",
	"weighted_io_nsecs":     "queue_ticks",
	"total_read_nsecs":      "read_ticks",
	"total_write_nsecs":     "write_ticks",
	"rd_merges_per_sec":     "reads_merged_per_sec",
	"wr_merges_per_sec":     "writes_merged_per_sec",
	"read_sectors_per_sec":  "read_size_per_sec",
	"write_sectors_per_sec": "write_size_per_sec",
	"average_request_size":  "avg_request_size",
	"average_queue_size":    "queue_size",
	"average_wait_time":     "await",
	"average_rd_wait_time":  "read_await",
	"average_wr_wait_time":  "write_await",
	"r_await":               "read_await",
	"w_await":               "write_await",
	"utilization":           "util",
	"histogram_bounds":      "hist_bounds",
}

// squash folds a field name for matching: case and underscores do not
// matter, as in dmstats ("statsname" is "stats_name").
func squash(s string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), "_", ""))
}

var fieldIndex = func() map[string]int {
	m := make(map[string]int, len(fields)+len(fieldAliases))
	for i, f := range fields {
		m[squash(f.name)] = i
	}
	for alias, name := range fieldAliases {
		for i, f := range fields {
			if f.name == name {
				m[squash(alias)] = i
			}
		}
	}
	return m
}()

// lookupField finds a field by name or alias.
func lookupField(name string) (*fieldDef, bool) {
	i, ok := fieldIndex[squash(name)]
	if !ok {
		return nil, false
	}
	return &fields[i], true
}

// errUnknownField names the unknown field and lists the valid ones.
func errUnknownField(name string, allowCounters bool) error {
	var names []string
	for _, f := range fields {
		if allowCounters || !f.counters {
			names = append(names, f.name)
		}
	}
	return fmt.Errorf("unknown field %q; valid fields: %s", name, strings.Join(names, ", "))
}

// parseFieldList reads a comma-separated field list. A list starting with
// '+' adds to def. Counter fields are refused when allowCounters is false
// (list shows no counters).
func parseFieldList(spec, def string, allowCounters bool) ([]*fieldDef, error) {
	if rest, ok := strings.CutPrefix(spec, "+"); ok {
		spec = def + "," + rest
	}
	if strings.TrimSpace(spec) == "" {
		return nil, fmt.Errorf("empty field list")
	}
	var out []*fieldDef
	for _, name := range strings.Split(spec, ",") {
		if strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("empty field name in %q", spec)
		}
		f, ok := lookupField(name)
		if !ok || (!allowCounters && f.counters) {
			if ok {
				return nil, fmt.Errorf("field %q needs counters: use `dmfm report`", name)
			}
			return nil, errUnknownField(name, allowCounters)
		}
		out = append(out, f)
	}
	return out, nil
}

// fieldHelp lists the fields with their descriptions.
func fieldHelp(allowCounters bool) string {
	var b strings.Builder
	names := make([]string, 0, len(fields))
	for _, f := range fields {
		if allowCounters || !f.counters {
			names = append(names, f.name)
		}
	}
	w := 0
	for _, n := range names {
		w = max(w, len(n))
	}
	for _, f := range fields {
		if allowCounters || !f.counters {
			fmt.Fprintf(&b, "  %-*s - %s\n", w, f.name, f.desc)
		}
	}
	var al []string
	for a, n := range fieldAliases {
		if f, _ := lookupField(n); allowCounters || !f.counters {
			al = append(al, a+"="+n)
		}
	}
	sort.Strings(al)
	fmt.Fprintf(&b, "Also accepted: %s.\n", strings.Join(al, ", "))
	return b.String()
}

// histLabel writes a latency bound in whole ns, us, ms or s.
func histLabel(ns uint64) string {
	switch {
	case ns == 0:
		return "0"
	case ns%1e9 == 0:
		return strconv.FormatUint(ns/1e9, 10) + "s"
	case ns%1e6 == 0:
		return strconv.FormatUint(ns/1e6, 10) + "ms"
	case ns%1e3 == 0:
		return strconv.FormatUint(ns/1e3, 10) + "us"
	}
	return strconv.FormatUint(ns, 10) + "ns"
}

// binLabels returns each bin's label: its lower bound, or its range.
func binLabels(bounds []uint64, ranges bool) []string {
	out := make([]string, len(bounds)+1)
	for i := range out {
		var lower uint64
		if i > 0 {
			lower = bounds[i-1]
		}
		switch {
		case !ranges:
			out[i] = histLabel(lower)
		case i == len(bounds):
			out[i] = ">" + histLabel(lower)
		default:
			out[i] = histLabel(lower) + "-" + histLabel(bounds[i])
		}
	}
	return out
}

func histBoundsCell(b []byte, r *row, ranges bool) ([]byte, val) {
	if r.bounds == nil {
		return b, val{kind: vNone}
	}
	labels := binLabels(r.bounds, ranges)
	var js any
	if ranges {
		rs := make([][2]any, len(labels))
		for i := range labels {
			var lower uint64
			if i > 0 {
				lower = r.bounds[i-1]
			}
			var upper any
			if i < len(r.bounds) {
				upper = r.bounds[i]
			}
			rs[i] = [2]any{lower, upper}
		}
		js = rs
	} else {
		lows := make([]uint64, len(labels))
		for i := 1; i < len(lows); i++ {
			lows[i] = r.bounds[i-1]
		}
		js = lows
	}
	return append(b, strings.Join(labels, ",")...), val{kind: vAny, any: js}
}

func histCell(b []byte, r *row, percent bool, style int) ([]byte, val) {
	if r.bounds == nil || len(r.hist) != len(r.bounds)+1 {
		return b, val{kind: vNone}
	}
	var total uint64
	for _, v := range r.hist {
		total += v
	}
	vals := make([]string, len(r.hist))
	pcts := make([]float64, len(r.hist))
	for i, v := range r.hist {
		if percent {
			if total > 0 {
				pcts[i] = float64(v) * 100 / float64(total)
			}
			vals[i] = strconv.FormatFloat(pcts[i], 'f', 2, 64) + "%"
		} else {
			vals[i] = strconv.FormatUint(v, 10)
		}
	}
	var js any = r.hist
	if percent {
		for i := range pcts {
			pcts[i] = round6(pcts[i])
		}
		js = pcts
	}
	if style == 0 {
		return append(b, strings.Join(vals, ":")...), val{kind: vAny, any: js}
	}
	labels := binLabels(r.bounds, style == 2)
	parts := make([]string, len(vals))
	for i := range vals {
		parts[i] = labels[i] + ":" + vals[i]
	}
	return append(b, strings.Join(parts, ",")...), val{kind: vAny, any: js}
}
