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

// printJSON is the JSON document of `dmfm print --json`.
type printJSON struct {
	Devices []printDeviceJSON `json:"devices"`
}

type printDeviceJSON struct {
	Name    string            `json:"name"`
	UUID    string            `json:"uuid"`
	Major   uint32            `json:"major"`
	Minor   uint32            `json:"minor"`
	Regions []printRegionJSON `json:"regions"`
}

type printRegionJSON struct {
	RegionID  uint64          `json:"region_id"`
	Start     uint64          `json:"start"`
	Length    uint64          `json:"length"`
	Step      uint64          `json:"step"`
	ProgramID string          `json:"program_id"`
	AuxData   string          `json:"aux_data"`
	Precise   bool            `json:"precise"`
	TimeUnit  string          `json:"time_unit"`
	Bounds    []uint64        `json:"histogram_bounds"`
	Areas     []printAreaJSON `json:"areas"`
}

type printAreaJSON struct {
	Start               uint64   `json:"start"`
	Length              uint64   `json:"length"`
	Reads               uint64   `json:"reads"`
	ReadsMerged         uint64   `json:"reads_merged"`
	ReadSectors         uint64   `json:"read_sectors"`
	ReadTicks           uint64   `json:"read_ticks"`
	Writes              uint64   `json:"writes"`
	WritesMerged        uint64   `json:"writes_merged"`
	WriteSectors        uint64   `json:"write_sectors"`
	WriteTicks          uint64   `json:"write_ticks"`
	InFlight            int64    `json:"in_flight"`
	IOTicks             uint64   `json:"io_ticks"`
	QueueTicks          uint64   `json:"queue_ticks"`
	ReadsInFlightTicks  uint64   `json:"reads_in_flight_ticks"`
	WritesInFlightTicks uint64   `json:"writes_in_flight_ticks"`
	Histogram           []uint64 `json:"histogram"`
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
