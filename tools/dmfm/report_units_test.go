package main

import (
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/dmfm/dmfm/lib/dmstats"
)

func TestUnitsFormat(t *testing.T) {
	for _, tc := range []struct {
		units    string
		nosuffix bool
		bytes    float64
		want     string
	}{
		{"h", false, 0, "0"},
		{"h", false, 512, "512b"},
		{"h", false, 1023, "1023b"},
		{"h", false, 1024, "1.00k"},
		{"h", false, 1536, "1.50k"},
		{"h", false, 61 << 30, "61.00g"},
		{"h", false, 3 << 40, "3.00t"},
		{"h", true, 1 << 20, "1.00m"}, // human sizes keep their suffix, as in dmstats
		{"H", false, 1000, "1.00K"},
		{"H", false, 999, "999B"},
		{"H", false, 2.5e9, "2.50G"},
		{"b", false, 4096, "4096b"},
		{"B", true, 4096, "4096"},
		{"s", false, 4096, "8s"},
		{"S", true, 4096, "8"},
		{"k", false, 1536, "1.50k"},
		{"K", false, 1500, "1.50K"},
		{"m", true, 3 << 20, "3.00"},
		{"g", false, 1 << 29, "0.50g"},
		{"4k", false, 8192, "2.00k"},
		{"2s", true, 4096, "4"},
		{"e", false, 1 << 60, "1.00e"},
	} {
		u, err := parseUnits(tc.units, tc.nosuffix)
		if err != nil {
			t.Errorf("parseUnits(%q): %v", tc.units, err)
			continue
		}
		if got := u.format(tc.bytes); got != tc.want {
			t.Errorf("units %q (nosuffix %v): format(%v) = %q, want %q", tc.units, tc.nosuffix, tc.bytes, got, tc.want)
		}
	}
	for _, bad := range []string{"", "x", "kk", "0k", "-1k", "3H", "1.2.3m"} {
		if _, err := parseUnits(bad, false); err == nil {
			t.Errorf("parseUnits(%q) accepted", bad)
		}
	}
}

func TestSelection(t *testing.T) {
	g := &dmstats.Group{ID: 4, Alias: "db", Members: []uint64{4, 5}}
	area := &row{dev: device{Name: "vg-lv"}, kind: objArea, regionID: 5, group: g, areaID: 1,
		areaStart: 2048, areaLen: 8, regionStart: 2040, regionLen: 16, programID: "dmstats", sampled: true,
		metrics: dmstats.Metrics{ReadsPerSec: 12.5, Await: 1500 * time.Microsecond}}
	lone := &row{dev: device{Name: "vg-lv"}, kind: objRegion, regionID: 0, regionLen: 1 << 20, programID: "other"}
	for _, tc := range []struct {
		sel        string
		area, lone bool
	}{
		{"region_id=5", true, false},
		{"region_id==5", true, false},
		{"region_id!=5", false, true},
		{"group_id=4", true, false},
		{"group_id=-", false, true},
		{"name=vg-lv", true, true},
		{"stats_name=db", true, false},
		{"stats_name='db'", true, false},
		{"obj_type=area || obj_type=group", true, false},
		{"obj_type=area && region_id>5", false, false},
		{"obj_type=area,region_id>=5", true, false},
		{"!(obj_type=area)", false, true},
		{"region_len>=1m", false, true},
		{"region_len<16", false, false},
		{"region_len<17", true, false},
		{"area_start=2048", true, false}, // a bare size counts sectors
		{"area_start=2048s", true, false},
		{"area_start=2048b", false, false},
		{"area_start=1m", true, false},
		{"reads_per_sec>12", true, false},
		{"await>=1.5", true, false},
		{"program_id=~^dm", true, false},
		{"program_id!~^dm", false, true},
		{"region_id<3 # region_id>4", true, true},
		{"alias=db && (area_id=0 || area_id=1)", true, false},
	} {
		s, err := compileSelect(tc.sel, true)
		if err != nil {
			t.Errorf("%q: %v", tc.sel, err)
			continue
		}
		if got := s.match(area, defaultUnits); got != tc.area {
			t.Errorf("%q on the area row = %v, want %v", tc.sel, got, tc.area)
		}
		if got := s.match(lone, defaultUnits); got != tc.lone {
			t.Errorf("%q on the lone region row = %v, want %v", tc.sel, got, tc.lone)
		}
	}
}

func TestFieldLookup(t *testing.T) {
	for name, want := range map[string]string{
		"region_id": "region_id", "RegionID": "region_id", "statsname": "stats_name",
		"reads": "read_count", "read_nsecs": "read_time", "rd_merges_per_sec": "reads_merged_per_sec",
		"average_request_size": "avg_request_size", "average_queue_size": "queue_size",
		"histogram_bounds": "hist_bounds", "r_await": "read_await", "total_write_nsecs": "write_ticks",
	} {
		f, ok := lookupField(name)
		if !ok || f.name != want {
			t.Errorf("lookupField(%q) = %v, want %s", name, f, want)
		}
	}
	fs, err := parseFieldList("+util", "region_id,obj_type", true)
	if err != nil || len(fs) != 3 || fs[2].name != "util" {
		t.Errorf("+util: %v %v", fs, err)
	}
}

// TestReporterInterval checks that a second sample reports the growth of
// the counters over the measured interval, and that a region re-created
// with the same id (counters gone backwards) counts from zero.
func TestReporterInterval(t *testing.T) {
	replies := map[string]string{
		"d: @stats_list":    "0: 0+8 8 dmstats -\n1: 8+8 8 dmstats -\n",
		"d: @stats_print 0": "0+8 100 0 800 100 0 0 0 0 0 100 100 100 0\n",
		"d: @stats_print 1": "8+8 50 0 400 50 0 0 0 0 0 50 50 50 0\n",
	}
	o := reportOpts{fields: []*fieldDef{mustField(t, "reads_per_sec"), mustField(t, "read_count")},
		walk: walk{region: true}, program: "dmstats", units: defaultUnits, counters: true, repeat: true}
	rp := newReporter(o, []device{{Name: "d"}}, func(d device) *dmstats.Stats {
		return dmstats.New(fixtureMessenger{dev: d.Name, replies: replies})
	})
	rows, err := rp.collect(true, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rows[0].counters.Reads != 100 || rows[0].metrics.ReadsPerSec != 50 {
		t.Fatalf("first sample: reads %d, r/s %v; want 100, 50", rows[0].counters.Reads, rows[0].metrics.ReadsPerSec)
	}
	replies["d: @stats_print 0"] = "0+8 160 0 1280 130 0 0 0 0 0 130 130 130 0\n"
	replies["d: @stats_print 1"] = "8+8 5 0 40 5 0 0 0 0 0 5 5 5 0\n" // re-created: went backwards
	rows, err = rp.collect(false, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if rows[0].counters.Reads != 60 || rows[0].metrics.ReadsPerSec != 120 {
		t.Errorf("second sample of region 0: reads %d, r/s %v; want 60, 120", rows[0].counters.Reads, rows[0].metrics.ReadsPerSec)
	}
	if rows[0].counters.ReadTicks != 30*uint64(time.Millisecond) {
		t.Errorf("read ticks %d ns, want 30ms", rows[0].counters.ReadTicks)
	}
	if rows[1].counters.Reads != 5 || rows[1].metrics.ReadsPerSec != 10 {
		t.Errorf("second sample of the re-created region 1: reads %d, r/s %v; want 5, 10", rows[1].counters.Reads, rows[1].metrics.ReadsPerSec)
	}
}

func mustField(t *testing.T, name string) *fieldDef {
	t.Helper()
	f, ok := lookupField(name)
	if !ok {
		t.Fatalf("no field %s", name)
	}
	return f
}

// TestAppendFixed2 checks the integer fast path against strconv on edge
// values and on many random ones.
func TestAppendFixed2(t *testing.T) {
	vals := []float64{0, math.Copysign(0, -1), 0.001, -0.001, -0.004, -0.005, -0.006, 0.005, 0.015, 0.125, 0.135, 1.005, 2.675,
		1e6 + 0.005, 123456.785, 99.995, -99.995, 1 << 40, 1 << 53, 1e20, 4.5e15, 0.994999, 0.995, 12.5, 1.234567}
	r := uint64(1)
	for i := 0; i < 200000; i++ {
		r = r*6364136223846793005 + 1442695040888963407
		v := float64(r>>11) / float64(1<<53) * math.Pow(10, float64(i%12-3))
		if i%3 == 0 {
			v = -v
		}
		if i%5 == 0 {
			v = math.Round(v*1000) / 1000 // many exact thousandths: ties
		}
		vals = append(vals, v)
	}
	for _, v := range vals {
		got := string(appendFixed2(nil, v))
		want := strconv.FormatFloat(v, 'f', 2, 64)
		if got != want {
			t.Errorf("appendFixed2(%v) = %s, want %s", v, got, want)
		}
	}
}
