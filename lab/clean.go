package lab

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/dmfm/dmfm/lib/dm"
	"github.com/dmfm/dmfm/lib/loop"
)

// Owned is a device or mount on this machine that belongs to the lab.
type Owned struct {
	Kind   string `json:"kind"`   // "mount", "dm" or "loop"
	Name   string `json:"name"`   // mount point, dm name or loop device path
	Detail string `json:"detail"` // dm UUID, backing file or mounted device
}

func (o Owned) String() string { return fmt.Sprintf("%s %s (%s)", o.Kind, o.Name, o.Detail) }

// Scan lists what the lab owns on this machine: dm devices whose UUID starts
// with UUIDPrefix, loop devices whose backing file lives under dir, and
// mounts of either or under dir. Nothing else is ever listed.
func Scan(dir string) ([]Owned, error) {
	if dir == "" {
		dir = DefaultDir()
	}
	dir, _ = filepath.Abs(dir)
	var owned []Owned
	devs := map[string]bool{} // "major:minor" of owned block devices

	c, err := dm.Open()
	if err != nil && !errors.Is(err, dm.ErrNoDM) {
		return nil, fmt.Errorf("lab scan: %w", err)
	}
	if c != nil {
		defer c.Close()
		list, err := c.List()
		if err != nil {
			return nil, fmt.Errorf("lab scan: %w", err)
		}
		for _, d := range list {
			u := d.UUID
			if u == "" {
				if info, err := c.Info(dm.ByName(d.Name)); err == nil {
					u = info.UUID
				}
			}
			if strings.HasPrefix(u, UUIDPrefix) {
				owned = append(owned, Owned{Kind: "dm", Name: d.Name, Detail: u})
				devs[fmt.Sprintf("%d:%d", d.Major, d.Minor)] = true
			}
		}
	}
	loops, err := loop.List()
	if err != nil {
		return nil, fmt.Errorf("lab scan: %w", err)
	}
	for _, l := range loops {
		b := strings.TrimSuffix(l.Backing, " (deleted)")
		if strings.HasPrefix(b, dir+"/") {
			owned = append(owned, Owned{Kind: "loop", Name: l.Path, Detail: l.Backing})
			devs[fmt.Sprintf("%d:%d", l.Major, l.Minor)] = true
		}
	}
	mounts, err := mountsOf(devs, dir)
	if err != nil {
		return nil, err
	}
	return append(mounts, owned...), nil
}

// mountsOf lists mounts of the given devices or below dir, deepest first.
func mountsOf(devs map[string]bool, dir string) ([]Owned, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("lab scan: %w", err)
	}
	defer f.Close()
	var out []Owned
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options ... - fstype source superopts
		fs := strings.Fields(sc.Text())
		if len(fs) < 10 {
			continue
		}
		mp := unescapeMount(fs[4])
		src := ""
		for i, x := range fs {
			if x == "-" && i+2 < len(fs) {
				src = fs[i+2]
			}
		}
		if devs[fs[2]] || strings.HasPrefix(mp, dir+"/") {
			out = append(out, Owned{Kind: "mount", Name: mp, Detail: src})
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i].Name) > len(out[j].Name) })
	return out, sc.Err()
}

func unescapeMount(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

// Clean removes everything Scan finds, mounts first, then dm devices, then
// loop devices, then the state directories under dir. It returns what it
// removed and every error met.
func Clean(dir string) ([]Owned, error) {
	if dir == "" {
		dir = DefaultDir()
	}
	owned, err := Scan(dir)
	if err != nil {
		return nil, err
	}
	var done []Owned
	var errs []error
	for _, kind := range []string{"mount", "dm", "loop"} {
		for _, o := range owned {
			if o.Kind != kind {
				continue
			}
			var err error
			switch kind {
			case "mount":
				err = unmount(o.Name)
			case "dm":
				err = removeDM(o.Name)
			case "loop":
				err = loop.Detach(o.Name)
				if errors.Is(err, loop.ErrNotAttached) {
					err = nil // autoclear got there first
				}
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("lab clean: %s: %w", o, err))
				continue
			}
			done = append(done, o)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(dir, e.Name(), stateFile)); err == nil || strings.HasPrefix(e.Name(), "dmfm-lab-") {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				errs = append(errs, fmt.Errorf("lab clean: %w", err))
			}
		}
	}
	return done, errors.Join(errs...)
}

// List returns the labs whose state is saved under dir.
func List(dir string) ([]*Lab, error) {
	if dir == "" {
		dir = DefaultDir()
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lab list: %w", err)
	}
	var labs []*Lab
	for _, e := range entries {
		if l, err := Load(dir, e.Name()); err == nil {
			labs = append(labs, l)
		}
	}
	return labs, nil
}
