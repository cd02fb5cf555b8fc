package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/dmfm/dmfm/lib/dmstats"

	"github.com/urfave/cli/v2"
)

func regionSelFlags(withGroup bool) []cli.Flag {
	fl := []cli.Flag{
		&cli.StringFlag{Name: "regionid", Usage: "the region with this `ID`"},
		&cli.BoolFlag{Name: "allregions", Usage: "every region (of the selected program ids)"},
	}
	if withGroup {
		fl = append(fl, &cli.StringFlag{Name: "groupid", Usage: "every region of the group with this `ID`"})
	}
	return fl
}

func deleteCommand() *cli.Command {
	flags := append(append(deviceFlags(true), regionSelFlags(true)...), programFlags()...)
	return statsCommand("delete", "delete a region, a group and its regions, or all regions",
		"DEVICE... | --alldevices  --regionid ID | --groupid ID | --allregions",
		"Deleting a group's member rewrites the group's tag without it; deleting a group's\n"+
			"leader (the region whose id is the group id) dissolves the group, as in dmstats.\n"+
			"--allregions deletes the regions of program id dmstats unless --programid or\n"+
			"--allprograms says otherwise.",
		flags, runDelete)
}

// selOpts are the validated options of delete and clear.
type selOpts struct {
	dev     deviceSpec
	sel     regionSel
	program string
	verbose int
}

func parseSelection(c *cli.Context, mode needAll) (selOpts, error) {
	var o selOpts
	var err error
	o.verbose = verbosity(c)
	if o.sel, err = parseRegionSel(c, true); err != nil {
		return o, err
	}
	if !o.sel.all && (c.IsSet("programid") || c.IsSet("allprograms")) {
		return o, errors.New("--programid and --allprograms select regions for --allregions; they cannot be used with --regionid or --groupid")
	}
	if o.program, err = programFilter(c); err != nil {
		return o, err
	}
	if o.dev, err = parseDeviceSpec(c, c.Args().Slice(), mode); err != nil {
		return o, err
	}
	return o, nil
}

func runDelete(c *cli.Context) error {
	o, err := parseSelection(c, explicitAll)
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	format, explicit, err := groupFormat(c)
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	s, err := openSession("delete")
	if err != nil {
		return err
	}
	defer s.Close()
	devs, err := o.dev.resolve(s.c)
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	// SIGINT or SIGTERM stops the deletes; the groups they were emptying
	// keep a true tag (deleteRegions).
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Check every device before deleting anything.
	states := make([]*devState, len(devs))
	dels := make([][]uint64, len(devs))
	for i, d := range devs {
		st, err := loadState(d, s.stats(d))
		if err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		states[i] = st
		switch {
		case o.sel.hasRegion:
			if _, ok := st.region(o.sel.regionID); !ok {
				return fmt.Errorf("delete: region %d does not exist on %s", o.sel.regionID, d.Name)
			}
			dels[i] = []uint64{o.sel.regionID}
		case o.sel.hasGroup:
			g, err := st.needGroup(o.sel.groupID)
			if err != nil {
				return fmt.Errorf("delete: %w", err)
			}
			dels[i] = g.Members
		default:
			for _, r := range st.ofProgram(o.program) {
				dels[i] = append(dels[i], r.ID)
			}
		}
	}
	for i, st := range states {
		if err := st.removeStaleScratch(); err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		if len(dels[i]) == 0 {
			continue
		}
		d := st.dev
		workers := func(w int) (*dmstats.Stats, error) { return s.workerStats(d, w) }
		if err := st.deleteRegions(ctx, dels[i], format, explicit, workers, maxParallel()); err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		switch {
		case o.sel.hasGroup:
			fmt.Fprintf(c.App.Writer, "Deleted statistics group %d.\n", o.sel.groupID)
		case o.verbose > 0:
			fmt.Fprintf(c.App.ErrWriter, "dmfm: %s: deleted %d region(s)\n", st.dev.Name, len(dels[i]))
		}
	}
	return nil
}

func clearCommand() *cli.Command {
	flags := append(append(deviceFlags(false), regionSelFlags(true)...), programFlags()...)
	return statsCommand("clear", "clear the counters of a region, a group's regions, or all regions (in-flight counts stay)",
		"[DEVICE...]  --regionid ID | --groupid ID | --allregions",
		"Without a DEVICE, every device-mapper device.",
		flags, runClear)
}

func runClear(c *cli.Context) error {
	o, err := parseSelection(c, implicitAll)
	if err != nil {
		return fmt.Errorf("clear: %w", err)
	}
	s, err := openSession("clear")
	if err != nil {
		return err
	}
	defer s.Close()
	devs, err := o.dev.resolve(s.c)
	if err != nil {
		return fmt.Errorf("clear: %w", err)
	}
	for _, d := range devs {
		st, err := loadState(d, s.stats(d))
		if err != nil {
			return fmt.Errorf("clear: %w", err)
		}
		var ids []uint64
		switch {
		case o.sel.hasRegion:
			if _, ok := st.region(o.sel.regionID); !ok {
				if o.dev.all {
					continue
				}
				return fmt.Errorf("clear: region %d does not exist on %s", o.sel.regionID, d.Name)
			}
			ids = []uint64{o.sel.regionID}
		case o.sel.hasGroup:
			g, err := st.needGroup(o.sel.groupID)
			if err != nil {
				if o.dev.all {
					continue
				}
				return fmt.Errorf("clear: %w", err)
			}
			ids = g.Members
		default:
			for _, r := range st.ofProgram(o.program) {
				ids = append(ids, r.ID)
			}
		}
		for _, id := range ids {
			if err := st.st.Clear(id); err != nil {
				return fmt.Errorf("clear: region %d on %s: %w", id, d.Name, err)
			}
		}
	}
	return nil
}
