package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/dmfm/dmfm/lab"
	sizes "github.com/dmfm/dmfm/lib/units" // "units" is the report's unit type here
	"github.com/urfave/cli/v2"
)

var labDirFlag = &cli.StringFlag{Name: "dir", Usage: "lab state `DIR` (backing files, mount points)", EnvVars: []string{"DMFM_LAB_DIR"}, Value: lab.DefaultDir()}

func labUpCommand() *cli.Command {
	return &cli.Command{
		Name:  "up",
		Usage: "build a backing file, loop device, dm device and optional file system, and print them",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "name", Usage: "dm device `NAME` (default dmfm-lab-XXXXXXXX)"},
			&cli.StringFlag{Name: "size", Value: "512M", Usage: "backing file `SIZE` (K, M, G suffixes; xfs needs >= 300M)"},
			&cli.StringFlag{Name: "fs", Value: "none", Usage: "file system: xfs, ext4 or none"},
			&cli.StringFlag{Name: "target", Value: "linear", Usage: "dm target"},
			&cli.StringFlag{Name: "mount-opts", Usage: "mount `OPTIONS` (e.g. allocsize=4k)"},
			labDirFlag,
			&cli.BoolFlag{Name: "json", Usage: "print the lab as JSON"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("lab up: unexpected argument %q", c.Args().First())
			}
			size, err := sizes.ParseSize(c.String("size"))
			if err != nil {
				return fmt.Errorf("lab up: --size: %w", err)
			}
			l, err := lab.Up(c.Context, lab.Spec{
				Name: c.String("name"), Size: size, FS: lab.FS(c.String("fs")),
				Target: lab.Target(c.String("target")), MountOpts: c.String("mount-opts"), Dir: c.String("dir"),
			})
			if err != nil {
				return err
			}
			return printLab(l, c.Bool("json"))
		},
	}
}

func printLab(l *lab.Lab, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(l)
	}
	fmt.Printf("name       %s\n", l.DMName)
	fmt.Printf("dm         %s (%s, uuid %s)\n", l.DevPath, l.DevNo(), l.DMUUID)
	fmt.Printf("loop       %s\n", l.LoopDev)
	fmt.Printf("backing    %s (%d MiB)\n", l.Backing, l.Spec.Size>>20)
	if l.Mountpoint != "" {
		fmt.Printf("fs         %s mounted on %s\n", l.Spec.FS, l.Mountpoint)
	}
	return nil
}

func labDownCommand() *cli.Command {
	return &cli.Command{
		Name:      "down",
		Usage:     "tear down labs made by `dmfm lab up` (all of them without a NAME)",
		ArgsUsage: "[NAME...]",
		Flags:     []cli.Flag{labDirFlag},
		Action: func(c *cli.Context) error {
			names := c.Args().Slice()
			if len(names) == 0 {
				labs, err := lab.List(c.String("dir"))
				if err != nil {
					return err
				}
				for _, l := range labs {
					names = append(names, l.DMName)
				}
			}
			var failed bool
			for _, n := range names {
				l, err := lab.Load(c.String("dir"), n)
				if err == nil {
					err = l.Close()
				}
				if err != nil {
					fmt.Fprintf(os.Stderr, "dmfm: %v\n", err)
					failed = true
					continue
				}
				fmt.Printf("%s: down\n", n)
			}
			if failed {
				return exitCode(1)
			}
			return nil
		},
	}
}

func labGrowCommand() *cli.Command {
	return &cli.Command{
		Name:      "grow",
		Usage:     "enlarge a running lab: backing file, loop capacity, dm table and file system",
		ArgsUsage: "NAME SIZE",
		Flags:     []cli.Flag{labDirFlag},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return fmt.Errorf("lab grow: want NAME SIZE")
			}
			size, err := sizes.ParseSize(c.Args().Get(1))
			if err != nil {
				return fmt.Errorf("lab grow: %w", err)
			}
			l, err := lab.Load(c.String("dir"), c.Args().Get(0))
			if err != nil {
				return err
			}
			if err := l.Grow(c.Context, size); err != nil {
				return err
			}
			return printLab(l, false)
		},
	}
}

func labStatusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "list the labs that are up and every lab-owned device on this machine",
		Flags: []cli.Flag{labDirFlag, &cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(c *cli.Context) error {
			labs, err := lab.List(c.String("dir"))
			if err != nil {
				return err
			}
			owned, err := lab.Scan(c.String("dir"))
			if err != nil {
				return err
			}
			if c.Bool("json") {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				if labs == nil {
					labs = []*lab.Lab{}
				}
				if owned == nil {
					owned = []lab.Owned{}
				}
				return enc.Encode(map[string]any{"labs": labs, "devices": owned})
			}
			for _, l := range labs {
				fmt.Printf("lab %s: %s over %s, fs %s %s\n", l.DMName, l.DevPath, l.LoopDev, l.Spec.FS, l.Mountpoint)
			}
			for _, o := range owned {
				fmt.Println(o)
			}
			if len(labs) == 0 && len(owned) == 0 {
				fmt.Println("no labs")
			}
			return nil
		},
	}
}

func labCleanCommand() *cli.Command {
	return &cli.Command{
		Name:  "clean",
		Usage: "remove lab leftovers: dm devices with the lab's UUID prefix, loop devices over files in the lab dir, their mounts",
		Flags: []cli.Flag{labDirFlag},
		Action: func(c *cli.Context) error {
			done, err := lab.Clean(c.String("dir"))
			for _, o := range done {
				fmt.Printf("removed %s\n", o)
			}
			if err == nil && len(done) == 0 {
				fmt.Println("nothing to clean")
			}
			return err
		},
	}
}
