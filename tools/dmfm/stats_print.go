package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/dmfm/dmfm/lib/dmstats"
	"github.com/urfave/cli/v2"
)

func printCommand() *cli.Command {
	flags := append(append(append(deviceFlags(false), regionSelFlags(true)...), programFlags()...),
		&cli.BoolFlag{Name: "clear", Usage: "clear the counters as they are read"},
		&cli.BoolFlag{Name: "json", Usage: "print JSON (see JSON.md)"},
	)
	return statsCommand("print", "print the raw counters of regions, one line per area, as the kernel reports them",
		"[DEVICE...]  --regionid ID | --groupid ID | --allregions",
		"Each line is <start>+<length> and the 13 counters of one area (see the kernel's\n"+
			"statistics.rst), then the histogram counts when the region has one.",
		flags, runPrint)
}

// printJSON is the JSON document of `dmfm print --json` (see JSON.md).
type printJSON struct {
	// Devices are the devices printed, in order.
	Devices []printDeviceJSON `json:"devices"`
}

// printDeviceJSON is one device and its regions.
type printDeviceJSON struct {
	// Name, UUID, Major and Minor identify the device.
	Name  string `json:"name"`
	UUID  string `json:"uuid"`
	Major uint32 `json:"major"`
	Minor uint32 `json:"minor"`
	// Regions are the regions printed, in id order.
	Regions []printRegionJSON `json:"regions"`
}

// printRegionJSON is one region as @stats_list and @stats_print give it.
type printRegionJSON struct {
	// RegionID, Start, Length (sectors) and Step (sectors) are the
	// region's listing.
	RegionID uint64 `json:"region_id"`
	Start    uint64 `json:"start"`
	Length   uint64 `json:"length"`
	Step     uint64 `json:"step"`
	// ProgramID and AuxData are as the kernel stores them ("-": none).
	ProgramID string `json:"program_id"`
	AuxData   string `json:"aux_data"`
	// Precise is set for nanosecond counters; TimeUnit is "ns" then, else
	// "ms": the unit of the ticks and of Bounds.
	Precise  bool     `json:"precise"`
	TimeUnit string   `json:"time_unit"`
	Bounds   []uint64 `json:"histogram_bounds"`
	// Areas are the counters of each area.
	Areas []printAreaJSON `json:"areas"`
}

// printAreaJSON is one row of @stats_print: the 13 counters of one area in
// the kernel's order, and its histogram.
type printAreaJSON struct {
	// Start and Length are the area's sectors (Length is always the step).
	Start  uint64 `json:"start"`
	Length uint64 `json:"length"`
	// Reads, ReadsMerged, ReadSectors and ReadTicks count reads.
	Reads       uint64 `json:"reads"`
	ReadsMerged uint64 `json:"reads_merged"`
	ReadSectors uint64 `json:"read_sectors"`
	ReadTicks   uint64 `json:"read_ticks"`
	// Writes, WritesMerged, WriteSectors and WriteTicks count writes.
	Writes       uint64 `json:"writes"`
	WritesMerged uint64 `json:"writes_merged"`
	WriteSectors uint64 `json:"write_sectors"`
	WriteTicks   uint64 `json:"write_ticks"`
	// InFlight is the number of requests in progress.
	InFlight int64 `json:"in_flight"`
	// IOTicks, QueueTicks, ReadsInFlightTicks and WritesInFlightTicks are
	// the busy, weighted, read-busy and write-busy times.
	IOTicks             uint64 `json:"io_ticks"`
	QueueTicks          uint64 `json:"queue_ticks"`
	ReadsInFlightTicks  uint64 `json:"reads_in_flight_ticks"`
	WritesInFlightTicks uint64 `json:"writes_in_flight_ticks"`
	// Histogram holds the N+1 latency counts, or null.
	Histogram []uint64 `json:"histogram"`
}

func areaJSON(a dmstats.Area) printAreaJSON {
	c := a.Counters
	return printAreaJSON{
		Start: a.Start, Length: a.Length,
		Reads: c.Reads, ReadsMerged: c.ReadsMerged, ReadSectors: c.ReadSectors, ReadTicks: c.ReadTicks,
		Writes: c.Writes, WritesMerged: c.WritesMerged, WriteSectors: c.WriteSectors, WriteTicks: c.WriteTicks,
		InFlight: c.InFlight, IOTicks: c.IOTicks, QueueTicks: c.QueueTicks,
		ReadsInFlightTicks: c.ReadsInFlightTicks, WritesInFlightTicks: c.WritesInFlightTicks,
		Histogram: a.Histogram,
	}
}

func regionJSON(r dmstats.Region, areas []dmstats.Area) printRegionJSON {
	unit := "ms"
	if r.Precise {
		unit = "ns"
	}
	out := printRegionJSON{
		RegionID: r.ID, Start: r.Start, Length: r.Length, Step: r.Step,
		ProgramID: r.ProgramID, AuxData: r.AuxData, Precise: r.Precise, TimeUnit: unit, Bounds: r.Bounds,
		Areas: make([]printAreaJSON, len(areas)),
	}
	for i, a := range areas {
		out.Areas[i] = areaJSON(a)
	}
	return out
}

func runPrint(c *cli.Context) error {
	o, err := parseSelection(c, implicitAll)
	if err != nil {
		return fmt.Errorf("print: %w", err)
	}
	asJSON, clear := c.Bool("json"), c.Bool("clear")
	s, err := openSession("print")
	if err != nil {
		return err
	}
	defer s.Close()
	devs, err := o.dev.resolve(s.c)
	if err != nil {
		return fmt.Errorf("print: %w", err)
	}
	doc := printJSON{Devices: []printDeviceJSON{}}
	for _, d := range devs {
		m := s.messenger(d)
		st, err := loadState(d, dmstats.New(m))
		if err != nil {
			return fmt.Errorf("print: %w", err)
		}
		var regions []dmstats.Region
		switch {
		case o.sel.hasRegion:
			r, ok := st.region(o.sel.regionID)
			if !ok {
				if o.dev.all {
					continue
				}
				return fmt.Errorf("print: region %d does not exist on %s", o.sel.regionID, d.Name)
			}
			regions = []dmstats.Region{r}
		case o.sel.hasGroup:
			g, err := st.needGroup(o.sel.groupID)
			if err != nil {
				if o.dev.all {
					continue
				}
				return fmt.Errorf("print: %w", err)
			}
			for _, id := range g.Members {
				r, _ := st.region(id)
				regions = append(regions, r)
			}
		default:
			regions = st.ofProgram(o.program)
		}
		dj, err := printRegions(c.App.Writer, m, d, regions, clear, asJSON)
		if err != nil {
			return fmt.Errorf("print: %w", err)
		}
		doc.Devices = append(doc.Devices, dj)
	}
	if asJSON {
		return writeJSON(c.App.Writer, doc)
	}
	return nil
}

// printRegions prints the counters of regions of device d: the kernel's
// rows to w, or, with asJSON, into the returned document.
func printRegions(w io.Writer, m dmstats.Messenger, d device, regions []dmstats.Region, clear, asJSON bool) (printDeviceJSON, error) {
	dj := printDeviceJSON{Name: d.Name, UUID: d.UUID, Major: d.Major, Minor: d.Minor, Regions: []printRegionJSON{}}
	for _, r := range regions {
		msg := "@stats_print " + strconv.FormatUint(r.ID, 10)
		if clear {
			msg = "@stats_print_clear " + strconv.FormatUint(r.ID, 10)
		}
		reply, err := m.Message(msg)
		if err != nil {
			return dj, fmt.Errorf("region %d on %s: %w", r.ID, d.Name, err)
		}
		if !asJSON {
			if _, err := io.WriteString(w, reply); err != nil {
				return dj, err
			}
			continue
		}
		areas, err := dmstats.ParsePrint(reply)
		if err != nil {
			return dj, fmt.Errorf("region %d on %s: %w", r.ID, d.Name, err)
		}
		dj.Regions = append(dj.Regions, regionJSON(r, areas))
	}
	return dj, nil
}

// writeJSON writes v indented, with a final newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
