package dmstats

import (
	"fmt"
	"time"
)

// Counters are the 13 counters the kernel prints for one area, in the order
// of Documentation/admin-guide/device-mapper/statistics.rst. The time
// fields (those ending in Ticks) are in ms, or in ns for a region with
// precise timestamps.
type Counters struct {
	// Reads is the number of reads completed.
	Reads uint64
	// ReadsMerged is the number of reads merged.
	ReadsMerged uint64
	// ReadSectors is the number of sectors read.
	ReadSectors uint64
	// ReadTicks is the total time spent reading (sum over all reads).
	ReadTicks uint64
	// Writes is the number of writes completed.
	Writes uint64
	// WritesMerged is the number of writes merged.
	WritesMerged uint64
	// WriteSectors is the number of sectors written.
	WriteSectors uint64
	// WriteTicks is the total time spent writing (sum over all writes).
	WriteTicks uint64
	// InFlight is the number of I/Os currently in progress. It is a gauge,
	// not a counter: it is not cleared and may briefly read negative.
	InFlight int64
	// IOTicks is the time during which any I/O was in progress.
	IOTicks uint64
	// QueueTicks is the weighted time spent doing I/O: time multiplied by
	// the number of I/Os in progress.
	QueueTicks uint64
	// ReadsInFlightTicks is the total time with reads in flight.
	ReadsInFlightTicks uint64
	// WritesInFlightTicks is the total time with writes in flight.
	WritesInFlightTicks uint64
}

// Add returns the sum of c and o, field by field (InFlight included).
func (c Counters) Add(o Counters) Counters {
	return Counters{
		Reads:               c.Reads + o.Reads,
		ReadsMerged:         c.ReadsMerged + o.ReadsMerged,
		ReadSectors:         c.ReadSectors + o.ReadSectors,
		ReadTicks:           c.ReadTicks + o.ReadTicks,
		Writes:              c.Writes + o.Writes,
		WritesMerged:        c.WritesMerged + o.WritesMerged,
		WriteSectors:        c.WriteSectors + o.WriteSectors,
		WriteTicks:          c.WriteTicks + o.WriteTicks,
		InFlight:            c.InFlight + o.InFlight,
		IOTicks:             c.IOTicks + o.IOTicks,
		QueueTicks:          c.QueueTicks + o.QueueTicks,
		ReadsInFlightTicks:  c.ReadsInFlightTicks + o.ReadsInFlightTicks,
		WritesInFlightTicks: c.WritesInFlightTicks + o.WritesInFlightTicks,
	}
}

// Sub returns the growth of the counters from prev to c. InFlight is a
// gauge and keeps c's value. It fails when any counter went backwards, which
// happens when the region was cleared (or deleted and re-created) between
// the two samples.
func (c Counters) Sub(prev Counters) (Counters, error) {
	type pair struct {
		name      string
		cur, prev uint64
		out       *uint64
	}
	var d Counters
	d.InFlight = c.InFlight
	for _, p := range [...]pair{
		{"reads", c.Reads, prev.Reads, &d.Reads},
		{"reads merged", c.ReadsMerged, prev.ReadsMerged, &d.ReadsMerged},
		{"read sectors", c.ReadSectors, prev.ReadSectors, &d.ReadSectors},
		{"read ticks", c.ReadTicks, prev.ReadTicks, &d.ReadTicks},
		{"writes", c.Writes, prev.Writes, &d.Writes},
		{"writes merged", c.WritesMerged, prev.WritesMerged, &d.WritesMerged},
		{"write sectors", c.WriteSectors, prev.WriteSectors, &d.WriteSectors},
		{"write ticks", c.WriteTicks, prev.WriteTicks, &d.WriteTicks},
		{"io ticks", c.IOTicks, prev.IOTicks, &d.IOTicks},
		{"queue ticks", c.QueueTicks, prev.QueueTicks, &d.QueueTicks},
		{"reads in flight ticks", c.ReadsInFlightTicks, prev.ReadsInFlightTicks, &d.ReadsInFlightTicks},
		{"writes in flight ticks", c.WritesInFlightTicks, prev.WritesInFlightTicks, &d.WritesInFlightTicks},
	} {
		if p.cur < p.prev {
			return Counters{}, fmt.Errorf("counter %s went backwards from %d to %d (region cleared between samples?)", p.name, p.prev, p.cur)
		}
		*p.out = p.cur - p.prev
	}
	return d, nil
}

// ScaleTimes returns c with every time counter multiplied by f. It converts
// between units, e.g. ScaleTimes(1e6) turns ms counters into ns.
func (c Counters) ScaleTimes(f uint64) Counters {
	c.ReadTicks *= f
	c.WriteTicks *= f
	c.IOTicks *= f
	c.QueueTicks *= f
	c.ReadsInFlightTicks *= f
	c.WritesInFlightTicks *= f
	return c
}

// Area is one row of @stats_print: the counters of one area of a region.
type Area struct {
	// Start is the first sector of the area.
	Start uint64
	// Length is the length the kernel prints for the area: always the
	// region's step, even for a last area that the region's end cuts short.
	Length uint64
	// Counters are the area's 13 counters.
	Counters Counters
	// Histogram holds the N+1 latency counts for a region with N histogram
	// bounds; nil without a histogram.
	Histogram []uint64
}

// Totals is the sum of the counters of several areas (a region) or of
// several regions (a group), with the unit of its times.
type Totals struct {
	// Counters are the summed counters.
	Counters Counters
	// Histogram is the element-wise sum of the histograms, or nil when the
	// summed areas have none or do not all have the same number of bins.
	Histogram []uint64
	// Precise tells the unit of the times: ns when true, ms when false.
	Precise bool
}

// TimeUnit returns the unit of the times in t.
func (t Totals) TimeUnit() time.Duration { return timeUnit(t.Precise) }

// SumAreas adds up the areas of one region. The histogram is summed when
// every area has one of the same length (always true for kernel output).
func SumAreas(areas []Area) (Counters, []uint64) {
	var c Counters
	var h []uint64
	same := len(areas) > 0 && areas[0].Histogram != nil
	for i := range areas {
		c = c.Add(areas[i].Counters)
		if same && len(areas[i].Histogram) != len(areas[0].Histogram) {
			same = false
		}
	}
	if same {
		h = make([]uint64, len(areas[0].Histogram))
		for i := range areas {
			for j, v := range areas[i].Histogram {
				h[j] += v
			}
		}
	}
	return c, h
}

// SumTotals adds up the totals of several regions, e.g. the members of a
// group. When some are precise and some are not, the millisecond times are
// converted to nanoseconds and the result is precise. Histograms are summed
// only when all parts have one with the same number of bins; otherwise the
// result has none (bounds of different regions are not comparable).
func SumTotals(parts []Totals) Totals {
	var out Totals
	for _, p := range parts {
		if p.Precise {
			out.Precise = true
			break
		}
	}
	same := len(parts) > 0 && parts[0].Histogram != nil
	for _, p := range parts {
		c := p.Counters
		if out.Precise && !p.Precise {
			c = c.ScaleTimes(uint64(time.Millisecond))
		}
		out.Counters = out.Counters.Add(c)
		if same && len(p.Histogram) != len(parts[0].Histogram) {
			same = false
		}
	}
	if same {
		out.Histogram = make([]uint64, len(parts[0].Histogram))
		for _, p := range parts {
			for j, v := range p.Histogram {
				out.Histogram[j] += v
			}
		}
	}
	return out
}
