package script

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/dmfm/dmfm/lab"
	"github.com/dmfm/dmfm/lib/dm"
	"github.com/dmfm/dmfm/lib/loop"
	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"
)

func init() {
	register("leaks", command{usage: "leaks [DMNAME...]", neg: true, run: cmdLeaks})
}

// cmdLeaks fails if this script has devices left behind that it no longer
// should: loop devices backed by files under $LABDIR or $WORK, mounts there, the
// dm devices of labs it took down, dm devices named on the command line,
// and lab dm devices over any of those loop devices. Labs still up are not
// leaks. It prints what it found (normalised); `! leaks` expects a leak.
func cmdLeaks(ts *testscript.TestScript, st *state, neg bool, args []string) {
	found, err := st.leaks(args)
	if err != nil {
		ts.Fatalf("leaks: %v", err)
	}
	n := st.normalizer()
	for _, f := range found {
		fmt.Fprintln(ts.Stdout(), n.apply(f))
	}
	switch {
	case len(found) > 0 && !neg:
		ts.Fatalf("leaks: %d device(s) left behind", len(found))
	case len(found) == 0 && neg:
		ts.Fatalf("leaks: nothing was left behind")
	}
}

func (st *state) leaks(names []string) ([]string, error) {
	live := map[string]bool{} // objects of labs that are still up
	var down []string
	for _, e := range st.labs {
		if e.down {
			down = append(down, e.lab.DMName)
			continue
		}
		live[e.lab.DMName], live[e.lab.LoopDev], live[e.lab.Mountpoint] = true, true, true
	}
	var found []string
	ours := map[string]bool{} // major:minor of our loop devices
	loops, err := loop.List()
	if err != nil {
		return nil, err
	}
	for _, l := range loops {
		b := strings.TrimSuffix(l.Backing, " (deleted)")
		if !strings.HasPrefix(b, st.work+"/") && !strings.HasPrefix(b, st.labDir+"/") {
			continue
		}
		ours[fmt.Sprintf("%d:%d", l.Major, l.Minor)] = true
		if !live[l.Path] {
			found = append(found, fmt.Sprintf("loop %s backed by %s", l.Path, l.Backing))
		}
	}
	mounts, err := mountsUnder(st.work)
	if err != nil {
		return nil, err
	}
	more, err := mountsUnder(st.labDir)
	if err != nil {
		return nil, err
	}
	mounts = append(mounts, more...)
	for _, m := range mounts {
		if !live[m] {
			found = append(found, "mount "+m)
		}
	}
	c, err := dm.Open()
	if errors.Is(err, dm.ErrNoDM) {
		return found, nil
	}
	if err != nil {
		return nil, err
	}
	defer c.Close()
	devs, err := c.List()
	if err != nil {
		return nil, err
	}
	for _, d := range devs {
		if live[d.Name] {
			continue
		}
		leak := slices.Contains(down, d.Name) || slices.Contains(names, d.Name)
		if !leak {
			info, err := c.Info(dm.ByName(d.Name))
			if err != nil || !strings.HasPrefix(info.UUID, lab.UUIDPrefix) {
				continue
			}
			deps, _ := c.Deps(dm.ByName(d.Name))
			for _, dev := range deps {
				if ours[fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev))] {
					leak = true
				}
			}
		}
		if leak {
			found = append(found, fmt.Sprintf("dm %s (%d:%d)", d.Name, d.Major, d.Minor))
		}
	}
	return found, nil
}

// mountsUnder lists mount points below dir.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 5 {
			continue
		}
		mp := unescapeMount(fs[4])
		if strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out, sc.Err()
}

func unescapeMount(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}
