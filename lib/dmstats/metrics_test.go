package dmstats

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestDerive(t *testing.T) {
	prev := Counters{Reads: 100, ReadsMerged: 10, ReadSectors: 800, ReadTicks: 50,
		Writes: 20, WritesMerged: 4, WriteSectors: 160, WriteTicks: 30,
		InFlight: 1, IOTicks: 100, QueueTicks: 200, ReadsInFlightTicks: 70, WritesInFlightTicks: 40}
	cur := Counters{Reads: 300, ReadsMerged: 30, ReadSectors: 2400, ReadTicks: 450,
		Writes: 70, WritesMerged: 14, WriteSectors: 560, WriteTicks: 280,
		InFlight: 3, IOTicks: 600, QueueTicks: 1400, ReadsInFlightTicks: 400, WritesInFlightTicks: 300}
	for _, tc := range []struct {
		name     string
		prev     Counters
		cur      Counters
		interval time.Duration
		precise  bool
		want     Metrics
	}{
		{
			// Growth over 2 s: 200 reads (20 merged, 1600 sectors, 400 ms),
			// 50 writes (10 merged, 400 sectors, 250 ms), 500 ms busy,
			// 1200 ms weighted.
			name: "ms interval", prev: prev, cur: cur, interval: 2 * time.Second,
			want: Metrics{
				Interval:         2 * time.Second,
				ReadMergesPerSec: 10, WriteMergesPerSec: 5,
				ReadsPerSec: 100, WritesPerSec: 25,
				ReadSectorsPerSec: 800, WriteSectorsPerSec: 200,
				ReadBytesPerSec: 409600, WriteBytesPerSec: 102400,
				ReadMBPerSec: 0.390625, WriteMBPerSec: 0.09765625,
				IOsPerSec:      125,
				AvgRequestSize: 8, AvgQueueSize: 0.6,
				Await: 2600 * time.Microsecond, ReadAwait: 2 * time.Millisecond, WriteAwait: 5 * time.Millisecond,
				ServiceTime: 2 * time.Millisecond, Utilization: 25, InFlight: 3,
			},
		},
		{
			// Since clear, precise: 3 reads of 8 sectors taking 3 ms in
			// all, 1 write of 8 sectors taking 0.5 ms, busy 1.5 s of a
			// 1 s interval (clamped to 100 %).
			name: "ns since clear", cur: Counters{Reads: 3, ReadSectors: 24, ReadTicks: 3_000_000,
				Writes: 1, WriteSectors: 8, WriteTicks: 500_000, IOTicks: 1_500_000_000, QueueTicks: 250_000_000},
			interval: time.Second, precise: true,
			want: Metrics{
				Interval:    time.Second,
				ReadsPerSec: 3, WritesPerSec: 1, ReadSectorsPerSec: 24, WriteSectorsPerSec: 8,
				ReadBytesPerSec: 12288, WriteBytesPerSec: 4096,
				ReadMBPerSec: 24.0 / 2048, WriteMBPerSec: 8.0 / 2048,
				IOsPerSec: 4, AvgRequestSize: 8, AvgQueueSize: 0.25,
				Await: 875 * time.Microsecond, ReadAwait: time.Millisecond, WriteAwait: 500 * time.Microsecond,
				ServiceTime: 250 * time.Millisecond, Utilization: 100,
			},
		},
		{
			name: "idle", prev: prev, cur: prev, interval: time.Second,
			want: Metrics{Interval: time.Second, InFlight: 1},
		},
		{
			// 1 read of 1 ms, 3 reads in 7 ms: 2.333... ms rounds to ns.
			name: "rounding", cur: Counters{Reads: 3, ReadTicks: 7, IOTicks: 7}, interval: 10 * time.Millisecond,
			want: Metrics{Interval: 10 * time.Millisecond, ReadsPerSec: 300, IOsPerSec: 300,
				Await: 2333333, ReadAwait: 2333333, ServiceTime: 2333333, Utilization: 70},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Derive(tc.prev, tc.cur, tc.interval, tc.precise)
			if err != nil {
				t.Fatal(err)
			}
			g, w := reflect.ValueOf(got), reflect.ValueOf(tc.want)
			for i := 0; i < g.NumField(); i++ {
				name := g.Type().Field(i).Name
				gf, wf := g.Field(i), w.Field(i)
				if gf.Kind() == reflect.Float64 {
					if !near(gf.Float(), wf.Float()) {
						t.Errorf("%s = %v, want %v", name, gf.Float(), wf.Float())
					}
				} else if gf.Interface() != wf.Interface() {
					t.Errorf("%s = %v, want %v", name, gf.Interface(), wf.Interface())
				}
			}
		})
	}
}

func TestDeriveErrors(t *testing.T) {
	if _, err := Derive(Counters{}, Counters{}, 0, false); err == nil || !strings.Contains(err.Error(), "positive interval") {
		t.Errorf("zero interval: %v", err)
	}
	_, err := Derive(Counters{Writes: 5}, Counters{Writes: 4}, time.Second, false)
	if err == nil || !strings.Contains(err.Error(), "counter writes went backwards from 5 to 4") {
		t.Errorf("backwards: %v", err)
	}
}

func TestCountersArithmetic(t *testing.T) {
	a := Counters{1, 2, 3, 4, 5, 6, 7, 8, -1, 10, 11, 12, 13}
	b := Counters{10, 20, 30, 40, 50, 60, 70, 80, 3, 100, 110, 120, 130}
	sum := a.Add(b)
	if want := (Counters{11, 22, 33, 44, 55, 66, 77, 88, 2, 110, 121, 132, 143}); sum != want {
		t.Errorf("Add = %+v, want %+v", sum, want)
	}
	d, err := sum.Sub(a)
	if err != nil {
		t.Fatal(err)
	}
	if want := b; d != (Counters{want.Reads, want.ReadsMerged, want.ReadSectors, want.ReadTicks, want.Writes,
		want.WritesMerged, want.WriteSectors, want.WriteTicks, sum.InFlight, want.IOTicks, want.QueueTicks,
		want.ReadsInFlightTicks, want.WritesInFlightTicks}) {
		t.Errorf("Sub = %+v", d)
	}
	if s := a.ScaleTimes(1000); s.ReadTicks != 4000 || s.WriteTicks != 8000 || s.IOTicks != 10000 ||
		s.QueueTicks != 11000 || s.ReadsInFlightTicks != 12000 || s.WritesInFlightTicks != 13000 || s.Reads != 1 || s.ReadSectors != 3 {
		t.Errorf("ScaleTimes = %+v", s)
	}
}

func TestSumAreas(t *testing.T) {
	areas := []Area{
		{Start: 0, Length: 8, Counters: Counters{Reads: 1, ReadTicks: 2}, Histogram: []uint64{1, 0, 0}},
		{Start: 8, Length: 8, Counters: Counters{Reads: 2, Writes: 1, InFlight: 1}, Histogram: []uint64{0, 2, 1}},
	}
	c, h := SumAreas(areas)
	if c != (Counters{Reads: 3, ReadTicks: 2, Writes: 1, InFlight: 1}) || !reflect.DeepEqual(h, []uint64{1, 2, 1}) {
		t.Errorf("SumAreas = %+v, %v", c, h)
	}
	areas[1].Histogram = nil
	if _, h := SumAreas(areas); h != nil {
		t.Errorf("mixed histograms summed to %v", h)
	}
	if c, h := SumAreas(nil); c != (Counters{}) || h != nil {
		t.Errorf("SumAreas(nil) = %+v, %v", c, h)
	}
}

func TestSumTotals(t *testing.T) {
	ms := Totals{Counters: Counters{Reads: 1, ReadTicks: 2, IOTicks: 3}, Histogram: []uint64{1, 1}}
	ns := Totals{Counters: Counters{Reads: 1, ReadTicks: 500_000, IOTicks: 7}, Histogram: []uint64{0, 4}, Precise: true}
	got := SumTotals([]Totals{ms, ns})
	want := Totals{Counters: Counters{Reads: 2, ReadTicks: 2_500_000, IOTicks: 3_000_007}, Histogram: []uint64{1, 5}, Precise: true}
	if !reflect.DeepEqual(got, want) || got.TimeUnit() != time.Nanosecond {
		t.Errorf("mixed = %+v, want %+v", got, want)
	}
	got = SumTotals([]Totals{ms, ms})
	want = Totals{Counters: Counters{Reads: 2, ReadTicks: 4, IOTicks: 6}, Histogram: []uint64{2, 2}}
	if !reflect.DeepEqual(got, want) || got.TimeUnit() != time.Millisecond {
		t.Errorf("ms = %+v, want %+v", got, want)
	}
	ns.Histogram = []uint64{1, 2, 3}
	if got := SumTotals([]Totals{ms, ns}); got.Histogram != nil {
		t.Errorf("histograms of different shapes summed to %v", got.Histogram)
	}
}

func TestHistogramBins(t *testing.T) {
	got, err := HistogramBins([]uint64{1, 5, 10}, false, []uint64{2, 6, 0, 2})
	if err != nil {
		t.Fatal(err)
	}
	ms := time.Millisecond
	want := []HistogramBin{
		{Lower: 0, Upper: ms, Count: 2, Percent: 20},
		{Lower: ms, Upper: 5 * ms, Count: 6, Percent: 60},
		{Lower: 5 * ms, Upper: 10 * ms, Count: 0, Percent: 0},
		{Lower: 10 * ms, Upper: 0, Count: 2, Percent: 20},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ms bins\ngot  %+v\nwant %+v", got, want)
	}
	r := Region{ID: 3, Precise: true, Bounds: []uint64{500, 1000}}
	got, err = r.HistogramBins([]uint64{1, 0, 2})
	if err != nil {
		t.Fatal(err)
	}
	want = []HistogramBin{
		{Lower: 0, Upper: 500, Count: 1, Percent: 100.0 / 3},
		{Lower: 500, Upper: 1000, Count: 0},
		{Lower: 1000, Upper: 0, Count: 2, Percent: 200.0 / 3},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ns bins\ngot  %+v\nwant %+v", got, want)
	}
	if got, _ := HistogramBins([]uint64{1}, false, []uint64{0, 0}); got[0].Percent != 0 || got[1].Percent != 0 {
		t.Errorf("empty histogram percentages: %+v", got)
	}
	if _, err := HistogramBins([]uint64{1, 2}, false, []uint64{1, 2}); err == nil || !strings.Contains(err.Error(), "2 counts for 2 bounds; want 3") {
		t.Errorf("shape error: %v", err)
	}
	if _, err := (Region{ID: 4}).HistogramBins([]uint64{1}); err == nil || !strings.Contains(err.Error(), "region 4 has no histogram") {
		t.Errorf("no histogram: %v", err)
	}
}

func TestHistogramDelta(t *testing.T) {
	d, err := HistogramDelta([]uint64{1, 2, 3}, []uint64{1, 5, 4})
	if err != nil || !reflect.DeepEqual(d, []uint64{0, 3, 1}) {
		t.Errorf("HistogramDelta = %v, %v", d, err)
	}
	if _, err := HistogramDelta([]uint64{1}, []uint64{1, 2}); err == nil {
		t.Error("shape mismatch accepted")
	}
	if _, err := HistogramDelta([]uint64{2}, []uint64{1}); err == nil || !strings.Contains(err.Error(), "bin 0 went backwards") {
		t.Errorf("backwards: %v", err)
	}
}

func TestDeriveTotals(t *testing.T) {
	cur := Totals{Counters: Counters{Reads: 2, ReadTicks: 4_000_000}, Precise: true}
	m, err := DeriveTotals(Totals{}, cur, time.Second)
	if err != nil || m.ReadAwait != 2*time.Millisecond || m.ReadsPerSec != 2 {
		t.Fatalf("DeriveTotals = %+v, %v", m, err)
	}
	prev := Totals{Counters: Counters{Reads: 1, ReadTicks: 1}}
	if _, err := DeriveTotals(prev, cur, time.Second); err == nil || !strings.Contains(err.Error(), "different time units") {
		t.Fatalf("mixed units: %v", err)
	}
	prev.Precise = true
	if m, err := DeriveTotals(prev, cur, time.Second); err != nil || m.ReadAwait != 3999999*time.Nanosecond {
		t.Fatalf("DeriveTotals = %+v, %v", m, err)
	}
}
