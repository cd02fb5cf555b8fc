package dmstats

import (
	"fmt"
	"math"
	"time"
)

// Metrics are the rates and averages dmstats (and iostat) report for one
// interval, computed from the growth of the counters over that interval.
type Metrics struct {
	// Interval is the time the counters grew over.
	Interval time.Duration
	// ReadMergesPerSec and WriteMergesPerSec are rrqm/s and wrqm/s. (lvm2's
	// dmstats divides merges by the interval in ns, reporting them per
	// nanosecond; these are per second, as iostat reports them.)
	ReadMergesPerSec, WriteMergesPerSec float64
	// ReadsPerSec and WritesPerSec are r/s and w/s.
	ReadsPerSec, WritesPerSec float64
	// ReadSectorsPerSec and WriteSectorsPerSec are rsec/s and wsec/s
	// (512-byte sectors).
	ReadSectorsPerSec, WriteSectorsPerSec float64
	// ReadBytesPerSec and WriteBytesPerSec are dmstats' rsize/s and wsize/s.
	ReadBytesPerSec, WriteBytesPerSec float64
	// ReadMBPerSec and WriteMBPerSec are iostat's rMB/s and wMB/s, in MiB
	// per second (sectors/2048).
	ReadMBPerSec, WriteMBPerSec float64
	// IOsPerSec is the throughput in requests per second (dmstats tput).
	IOsPerSec float64
	// AvgRequestSize is avgrq-sz: sectors per request (0 without requests).
	AvgRequestSize float64
	// AvgQueueSize is avgqu-sz: the weighted I/O time over the interval.
	AvgQueueSize float64
	// Await, ReadAwait and WriteAwait are the average time a request took
	// (all, reads, writes), queueing included; 0 without requests.
	Await, ReadAwait, WriteAwait time.Duration
	// ServiceTime is svctm: busy time per request (0 without requests).
	ServiceTime time.Duration
	// Utilization is util %: the share of the interval with I/O in
	// progress, 0 to 100.
	Utilization float64
	// InFlight is the number of requests in progress at the second sample.
	InFlight int64
}

// Derive computes the metrics of the interval between two samples of the
// same counters, taken interval apart. For the metrics since the counters
// were cleared, pass a zero prev and the time since the clear. precise tells
// the unit of the time counters (ns when true, ms otherwise).
func Derive(prev, cur Counters, interval time.Duration, precise bool) (Metrics, error) {
	if interval <= 0 {
		return Metrics{}, fmt.Errorf("metrics need a positive interval, got %v", interval)
	}
	d, err := cur.Sub(prev)
	if err != nil {
		return Metrics{}, err
	}
	unit := float64(timeUnit(precise)) // ns per tick
	sec := interval.Seconds()
	ns := float64(interval)
	m := Metrics{
		Interval:           interval,
		ReadMergesPerSec:   float64(d.ReadsMerged) / sec,
		WriteMergesPerSec:  float64(d.WritesMerged) / sec,
		ReadsPerSec:        float64(d.Reads) / sec,
		WritesPerSec:       float64(d.Writes) / sec,
		ReadSectorsPerSec:  float64(d.ReadSectors) / sec,
		WriteSectorsPerSec: float64(d.WriteSectors) / sec,
		ReadBytesPerSec:    float64(d.ReadSectors) * 512 / sec,
		WriteBytesPerSec:   float64(d.WriteSectors) * 512 / sec,
		ReadMBPerSec:       float64(d.ReadSectors) / 2048 / sec,
		WriteMBPerSec:      float64(d.WriteSectors) / 2048 / sec,
		IOsPerSec:          float64(d.Reads+d.Writes) / sec,
		AvgQueueSize:       float64(d.QueueTicks) * unit / ns,
		InFlight:           d.InFlight,
	}
	ios := d.Reads + d.Writes
	if ios > 0 {
		m.AvgRequestSize = float64(d.ReadSectors+d.WriteSectors) / float64(ios)
		m.Await = avgDuration(float64(d.ReadTicks+d.WriteTicks)*unit, ios)
	}
	if d.Reads > 0 {
		m.ReadAwait = avgDuration(float64(d.ReadTicks)*unit, d.Reads)
	}
	if d.Writes > 0 {
		m.WriteAwait = avgDuration(float64(d.WriteTicks)*unit, d.Writes)
	}
	// Busy time cannot exceed the interval; it does when the first sample
	// was not taken right after a clear (lvm2 clamps the same way).
	busy := math.Min(float64(d.IOTicks)*unit, ns)
	m.Utilization = busy / ns * 100
	if ios > 0 {
		m.ServiceTime = avgDuration(busy, ios)
	}
	return m, nil
}

// DeriveTotals is Derive for two samples of a region's or group's totals;
// the time unit comes from the samples, which must agree on it (a zero prev,
// for metrics since the clear, takes cur's).
func DeriveTotals(prev, cur Totals, interval time.Duration) (Metrics, error) {
	if prev.Precise != cur.Precise && prev.Counters != (Counters{}) {
		return Metrics{}, fmt.Errorf("samples in different time units (precise %v, then %v)", prev.Precise, cur.Precise)
	}
	return Derive(prev.Counters, cur.Counters, interval, cur.Precise)
}

func avgDuration(totalNS float64, n uint64) time.Duration {
	return time.Duration(math.Round(totalNS / float64(n)))
}

// HistogramBin is one latency bin of a histogram.
type HistogramBin struct {
	// Lower is the bin's inclusive lower bound (0 for the first bin).
	Lower time.Duration
	// Upper is the bin's exclusive upper bound; 0 for the last bin, which
	// has none.
	Upper time.Duration
	// Count is the number of requests whose latency fell in the bin.
	Count uint64
	// Percent is Count as a share of all counted requests (0 to 100; 0
	// when there are none).
	Percent float64
}

// HistogramBins pairs histogram counts with the bounds they were counted
// against. With N bounds b1..bN there are N+1 counts: requests faster than
// b1, between b1 (inclusive) and b2, ..., and at least bN. bounds are as the
// kernel lists them: ms, or ns when precise.
func HistogramBins(bounds []uint64, precise bool, counts []uint64) ([]HistogramBin, error) {
	if len(counts) != len(bounds)+1 {
		return nil, fmt.Errorf("histogram has %d counts for %d bounds; want %d", len(counts), len(bounds), len(bounds)+1)
	}
	unit := timeUnit(precise)
	var total uint64
	for _, c := range counts {
		total += c
	}
	bins := make([]HistogramBin, len(counts))
	for i, c := range counts {
		b := HistogramBin{Count: c}
		if i > 0 {
			b.Lower = time.Duration(bounds[i-1]) * unit
		}
		if i < len(bounds) {
			b.Upper = time.Duration(bounds[i]) * unit
		}
		if total > 0 {
			b.Percent = float64(c) * 100 / float64(total)
		}
		bins[i] = b
	}
	return bins, nil
}

// HistogramBins pairs counts (from Print, or summed) with the region's
// bounds; see the package function HistogramBins.
func (r Region) HistogramBins(counts []uint64) ([]HistogramBin, error) {
	if r.Bounds == nil {
		return nil, fmt.Errorf("region %d has no histogram", r.ID)
	}
	return HistogramBins(r.Bounds, r.Precise, counts)
}

// HistogramDelta returns the growth of each histogram count from prev to
// cur, failing when the shapes differ or a count went backwards.
func HistogramDelta(prev, cur []uint64) ([]uint64, error) {
	if len(prev) != len(cur) {
		return nil, fmt.Errorf("histograms have %d and %d bins", len(prev), len(cur))
	}
	d := make([]uint64, len(cur))
	for i := range cur {
		if cur[i] < prev[i] {
			return nil, fmt.Errorf("histogram bin %d went backwards from %d to %d (region cleared between samples?)", i, prev[i], cur[i])
		}
		d[i] = cur[i] - prev[i]
	}
	return d, nil
}
