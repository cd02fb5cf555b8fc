package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/dmfm/dmfm/lib/dm"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

// device is a device-mapper device a command works on.
type device struct {
	Name, UUID   string
	Major, Minor uint32
}

// deviceSpec is how the user named the devices: by name (positional
// arguments), by --uuid, by --major/--minor, or all of them.
type deviceSpec struct {
	names        []string
	uuid         string
	major, minor uint32
	byDevno      bool
	all          bool
}

// deviceFlags are the options that name a device, as in dmstats.
func deviceFlags(withAll bool) []cli.Flag {
	fl := []cli.Flag{
		&cli.StringFlag{Name: "uuid", Aliases: []string{"u"}, Usage: "the device with this `UUID`"},
		&cli.StringFlag{Name: "major", Aliases: []string{"j"}, Usage: "the device with this `MAJOR` number (with --minor)"},
		&cli.StringFlag{Name: "minor", Aliases: []string{"m"}, Usage: "the device with this `MINOR` number (with --major)"},
	}
	if withAll {
		fl = append(fl, &cli.BoolFlag{Name: "alldevices", Usage: "work on every device-mapper device"})
	}
	return fl
}

// needAll says what no device argument means for a command.
type needAll int

const (
	// implicitAll: no device means every device (list, report, print, clear).
	implicitAll needAll = iota
	// explicitAll: no device is an error unless --alldevices is given
	// (create, delete, group, ungroup).
	explicitAll
	// exactlyOne: one device must be named (setalias).
	exactlyOne
)

// parseDeviceSpec reads the device options and the positional names.
func parseDeviceSpec(c *cli.Context, names []string, mode needAll) (deviceSpec, error) {
	var s deviceSpec
	s.names = names
	s.uuid = c.String("uuid")
	if c.IsSet("uuid") && s.uuid == "" {
		return s, errors.New("--uuid: empty uuid")
	}
	majSet, minSet := c.IsSet("major"), c.IsSet("minor")
	if majSet != minSet {
		return s, errors.New("--major and --minor must be given together")
	}
	if majSet {
		var err error
		if s.major, err = parseDevNum("--major", c.String("major")); err != nil {
			return s, err
		}
		if s.minor, err = parseDevNum("--minor", c.String("minor")); err != nil {
			return s, err
		}
		s.byDevno = true
	}
	s.all = c.Bool("alldevices")
	ways := 0
	for _, b := range []bool{len(names) > 0, s.uuid != "", s.byDevno, s.all} {
		if b {
			ways++
		}
	}
	if ways > 1 {
		return s, errors.New("name the device one way only: device names, --uuid, --major/--minor or --alldevices")
	}
	for _, n := range names {
		if n == "" {
			return s, errors.New("empty device name")
		}
	}
	switch mode {
	case explicitAll:
		if ways == 0 {
			return s, errors.New("no device given: name one (or give --uuid, or --major and --minor) or use --alldevices")
		}
	case exactlyOne:
		if ways == 0 || s.all {
			return s, errors.New("name one device (or give --uuid, or --major and --minor)")
		}
		if len(names) > 1 {
			return s, fmt.Errorf("one device only, got %d", len(names))
		}
	}
	if ways == 0 {
		s.all = true
	}
	return s, nil
}

func parseDevNum(opt, v string) (uint32, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%s %q: want a device number (0 to %d)", opt, v, uint32(1<<32-1))
	}
	return uint32(n), nil
}

// resolve finds the devices the spec names. A name may be the dm name, a
// /dev/mapper/NAME path, another path to the device node (/dev/dm-N), or
// LVM's VG/LV.
func (s deviceSpec) resolve(c *dm.Client) ([]device, error) {
	switch {
	case s.all:
		list, err := c.List()
		if err != nil {
			return nil, err
		}
		out := make([]device, len(list))
		for i, d := range list {
			out[i] = device{Name: d.Name, UUID: d.UUID, Major: d.Major, Minor: d.Minor}
		}
		return out, nil
	case s.uuid != "":
		d, err := info(c, dm.ByUUID(s.uuid), fmt.Sprintf("uuid %q", s.uuid))
		return []device{d}, err
	case s.byDevno:
		d, err := info(c, dm.ByDevno(s.major, s.minor), fmt.Sprintf("%d:%d", s.major, s.minor))
		return []device{d}, err
	}
	var out []device
	for _, n := range s.names {
		d, err := resolveName(c, n)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

func info(c *dm.Client, id dm.DevID, what string) (device, error) {
	i, err := c.Info(id)
	if errors.Is(err, dm.ErrNotFound) {
		return device{}, fmt.Errorf("device %s not found", what)
	}
	if err != nil {
		return device{}, err
	}
	return device{Name: i.Name, UUID: i.UUID, Major: i.Major, Minor: i.Minor}, nil
}

func resolveName(c *dm.Client, n string) (device, error) {
	if name, ok := strings.CutPrefix(n, dm.MapperDir+"/"); ok {
		return info(c, dm.ByName(name), strconv.Quote(n))
	}
	if strings.HasPrefix(n, "/") || strings.HasPrefix(n, "./") {
		var st unix.Stat_t
		if err := unix.Stat(n, &st); err != nil {
			return device{}, fmt.Errorf("device %q: %w", n, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFBLK {
			return device{}, fmt.Errorf("%s is not a block device", n)
		}
		return info(c, dm.ByDevno(unix.Major(st.Rdev), unix.Minor(st.Rdev)), strconv.Quote(n))
	}
	d, err := info(c, dm.ByName(n), strconv.Quote(n))
	if err == nil || !strings.Contains(n, "/") {
		return d, err
	}
	// VG/LV: LVM names the device VG-LV with every '-' doubled.
	vg, lv, _ := strings.Cut(n, "/")
	lvm := strings.ReplaceAll(vg, "-", "--") + "-" + strings.ReplaceAll(lv, "-", "--")
	if d, lerr := info(c, dm.ByName(lvm), strconv.Quote(n)); lerr == nil {
		return d, nil
	}
	return device{}, err
}
