package main

import (
	"errors"
	"fmt"
	"slices"

	"github.com/dmfm/dmfm/lib/dm"
	"github.com/dmfm/dmfm/lib/dmstats"
	"github.com/urfave/cli/v2"
)

func groupCommand() *cli.Command {
	flags := append(deviceFlags(true),
		&cli.StringFlag{Name: "regions", Usage: "the regions to group: `LIST` of ids and ranges, e.g. 0,2-4,7 (required)"},
		&cli.StringFlag{Name: "alias", Usage: "`NAME` of the group"},
	)
	return statsCommand("group", "group regions; the group id is the lowest region id",
		"DEVICE... | --alldevices  --regions LIST [--alias NAME]",
		"Regions with histograms can be grouped only when their bounds are the same.",
		flags, runGroup)
}

type groupOpts struct {
	dev     deviceSpec
	regions string
	members []uint64
	alias   string
	format  dmstats.TagFormat
}

func parseGroup(c *cli.Context) (groupOpts, error) {
	var o groupOpts
	var err error
	if o.format, _, err = groupFormat(c); err != nil {
		return o, err
	}
	if !c.IsSet("regions") {
		return o, errors.New("--regions is required: the region ids to group, e.g. --regions 0-3,7")
	}
	o.regions = c.String("regions")
	if o.members, err = dmstats.ParseMembers(o.regions); err != nil {
		return o, fmt.Errorf("--regions %q: want region ids and ranges separated by commas, e.g. 0,2-4,7", o.regions)
	}
	o.alias = c.String("alias")
	if c.IsSet("alias") {
		if o.alias == "" {
			return o, errors.New("--alias: empty alias")
		}
		if err := checkAlias(o.alias, o.format); err != nil {
			return o, err
		}
	}
	if o.dev, err = parseDeviceSpec(c, c.Args().Slice(), explicitAll); err != nil {
		return o, err
	}
	return o, nil
}

func runGroup(c *cli.Context) error {
	o, err := parseGroup(c)
	if err != nil {
		return fmt.Errorf("group: %w", err)
	}
	s, err := openSession("group")
	if err != nil {
		return err
	}
	defer s.Close()
	devs, err := o.dev.resolve(s.c)
	if err != nil {
		return fmt.Errorf("group: %w", err)
	}
	for _, d := range devs {
		st, err := loadState(d, s.stats(d))
		if err != nil {
			return fmt.Errorf("group: %w", err)
		}
		if err := checkGroupable(st, o.members); err != nil {
			return fmt.Errorf("group: %w", err)
		}
		g := dmstats.Group{ID: o.members[0], Alias: o.alias, Members: o.members}
		if err := st.st.SetGroup(g, o.format); err != nil {
			return fmt.Errorf("group: %s: %w", d.Name, err)
		}
		fmt.Fprintf(c.App.Writer, "Grouped regions %s as group ID %d on %s\n", o.regions, g.ID, d.Name)
	}
	return nil
}

// checkGroupable says why members cannot form a group on s, if they cannot:
// a missing region, one already in a group, or histograms that differ.
func checkGroupable(s *devState, members []uint64) error {
	for _, id := range members {
		if _, ok := s.region(id); !ok {
			return fmt.Errorf("region %d does not exist on %s", id, s.dev.Name)
		}
	}
	var first dmstats.Region
	for i, id := range members {
		r, _ := s.region(id)
		if g, ok := s.groupOfRegion(id); ok {
			return fmt.Errorf("region %d on %s already belongs to group %d (ungroup it first)", id, s.dev.Name, g.ID)
		}
		if _, tagged, _ := dmstats.ParseGroupTag(r.AuxData); tagged {
			return fmt.Errorf("region %d on %s carries a group tag %q (ungroup or delete that group first)", id, s.dev.Name, r.AuxData)
		}
		if i == 0 {
			first = r
			continue
		}
		if !slices.Equal(r.BoundDurations(), first.BoundDurations()) {
			return fmt.Errorf("regions %d and %d on %s have different histogram bounds; grouped regions must have the same", first.ID, id, s.dev.Name)
		}
	}
	return nil
}

func ungroupCommand() *cli.Command {
	flags := append(deviceFlags(true),
		&cli.StringFlag{Name: "groupid", Usage: "the group `ID` (required)"},
	)
	return statsCommand("ungroup", "dissolve a group; its regions stay",
		"DEVICE... | --alldevices  --groupid ID", "", flags, runUngroup)
}

func runUngroup(c *cli.Context) error {
	if !c.IsSet("groupid") {
		return errors.New("ungroup: --groupid is required")
	}
	id, err := parseID("--groupid", c.String("groupid"))
	if err != nil {
		return fmt.Errorf("ungroup: %w", err)
	}
	spec, err := parseDeviceSpec(c, c.Args().Slice(), explicitAll)
	if err != nil {
		return fmt.Errorf("ungroup: %w", err)
	}
	s, err := openSession("ungroup")
	if err != nil {
		return err
	}
	defer s.Close()
	devs, err := spec.resolve(s.c)
	if err != nil {
		return fmt.Errorf("ungroup: %w", err)
	}
	for _, d := range devs {
		st, err := loadState(d, s.stats(d))
		if err != nil {
			return fmt.Errorf("ungroup: %w", err)
		}
		if _, err := st.needGroup(id); err != nil {
			return fmt.Errorf("ungroup: %w", err)
		}
		if err := st.st.Ungroup(id); err != nil {
			return fmt.Errorf("ungroup: %s: %w", d.Name, err)
		}
		fmt.Fprintf(c.App.Writer, "Removed group ID %d on %s\n", id, d.Name)
	}
	return nil
}

func setaliasCommand() *cli.Command {
	flags := append(deviceFlags(false),
		&cli.StringFlag{Name: "groupid", Usage: "the group `ID` (required)"},
		&cli.StringFlag{Name: "alias", Usage: "the new `NAME`; empty removes the alias (required)"},
	)
	return statsCommand("setalias", "rename a group",
		"DEVICE  --groupid ID --alias NAME",
		"The tag keeps its generation (quoted or legacy) unless --group-format says otherwise.",
		flags, runSetalias)
}

func runSetalias(c *cli.Context) error {
	if !c.IsSet("groupid") {
		return errors.New("setalias: --groupid is required")
	}
	if !c.IsSet("alias") {
		return errors.New("setalias: --alias is required (an empty one removes the alias)")
	}
	id, err := parseID("--groupid", c.String("groupid"))
	if err != nil {
		return fmt.Errorf("setalias: %w", err)
	}
	format, explicit, err := groupFormat(c)
	if err != nil {
		return fmt.Errorf("setalias: %w", err)
	}
	alias := c.String("alias")
	if explicit && alias != "" {
		if err := checkAlias(alias, format); err != nil {
			return fmt.Errorf("setalias: %w", err)
		}
	}
	spec, err := parseDeviceSpec(c, c.Args().Slice(), exactlyOne)
	if err != nil {
		return fmt.Errorf("setalias: %w", err)
	}
	s, err := openSession("setalias")
	if err != nil {
		return err
	}
	defer s.Close()
	devs, err := spec.resolve(s.c)
	if err != nil {
		return fmt.Errorf("setalias: %w", err)
	}
	d := devs[0]
	st, err := loadState(d, s.stats(d))
	if err != nil {
		return fmt.Errorf("setalias: %w", err)
	}
	g, err := st.needGroup(id)
	if err != nil {
		return fmt.Errorf("setalias: %w", err)
	}
	g.Alias = alias
	if err := st.writeTag(g, format, explicit); err != nil {
		return fmt.Errorf("setalias: %w", err)
	}
	fmt.Fprintf(c.App.Writer, "Set alias of group ID %d on %s to %q\n", id, d.Name, alias)
	return nil
}

func versionCommand() *cli.Command {
	return statsCommand("version", "print the versions of dmfm and of the kernel's device-mapper", "", "", nil,
		func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("version: unexpected argument %q", c.Args().First())
			}
			fmt.Fprintf(c.App.Writer, "dmfm version:     %s\n", version)
			dc, err := dm.Open()
			if err != nil {
				fmt.Fprintf(c.App.Writer, "Driver version:   unavailable (%v)\n", err)
				return nil
			}
			defer dc.Close()
			v, err := dc.Version()
			if err != nil {
				return fmt.Errorf("version: %w", err)
			}
			fmt.Fprintf(c.App.Writer, "Driver version:   %s\n", v)
			return nil
		})
}
