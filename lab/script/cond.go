package script

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/dmfm/dmfm/lib/dm"
	"golang.org/x/sys/unix"
)

// condCache remembers answers that are slow to find (module loads).
var condCache sync.Map

// Condition answers the lab's script conditions:
//
//	[dm]            device-mapper is usable (root, /dev/mapper/control)
//	[root]          running as root
//	[xfs], [ext4]   the kernel has the file system (loading its module if
//	                needed) and its mkfs is on PATH
//	[target:NAME]   the dm target NAME is available (loading dm-NAME if needed)
//	[kernel:OPX.Y]  the running kernel's version compares so with X.Y
//	                (OP: >=, >, <=, <, ==)
//	[libdm:OPX.Y.Z] the libdevmapper of the dmsetup (and dmstats) on PATH
//	                compares so with X.Y.Z; false without dmsetup. lvm2
//	                2.03.23, the first to write quoted group tags, ships
//	                libdevmapper 1.02.197.
func Condition(cond string) (bool, error) {
	name, arg, hasArg := strings.Cut(cond, ":")
	switch {
	case cond == "dm":
		return needDM() == nil, nil
	case cond == "root":
		return os.Geteuid() == 0, nil
	case cond == "xfs" || cond == "ext4":
		return cached(cond, func() (bool, error) { return haveFS(cond) })
	case name == "target" && hasArg:
		if arg == "" || strings.ContainsAny(arg, " /") {
			return false, fmt.Errorf("[target:NAME]: bad target name %q", arg)
		}
		return cached(cond, func() (bool, error) { return haveTarget(arg) })
	case name == "kernel" && hasArg:
		return kernelCond(arg)
	case name == "libdm" && hasArg:
		return libdmCond(arg)
	}
	return false, fmt.Errorf("unknown condition %q (the lab adds dm, root, xfs, ext4, target:NAME, kernel:>=X.Y, libdm:>=X.Y.Z)", cond)
}

func cached(key string, f func() (bool, error)) (bool, error) {
	if v, ok := condCache.Load(key); ok {
		return v.(bool), nil
	}
	ok, err := f()
	if err == nil {
		condCache.Store(key, ok)
	}
	return ok, err
}

func modprobe(name string) {
	// The lab VM puts a modprobe for its kernel first on PATH.
	_ = exec.Command("modprobe", "-q", name).Run()
}

func haveFS(fs string) (bool, error) {
	if _, err := exec.LookPath("mkfs." + fs); err != nil {
		return false, nil
	}
	if ok, err := procFilesystems(fs); ok || err != nil {
		return ok, err
	}
	if os.Geteuid() != 0 {
		return false, nil
	}
	modprobe(fs)
	return procFilesystems(fs)
}

func procFilesystems(fs string) (bool, error) {
	f, err := os.Open("/proc/filesystems")
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 0 && fields[len(fields)-1] == fs {
			return true, nil
		}
	}
	return false, sc.Err()
}

func haveTarget(name string) (bool, error) {
	if needDM() != nil {
		return false, nil
	}
	find := func() (bool, error) {
		c, err := dm.Open()
		if err != nil {
			return false, err
		}
		defer c.Close()
		ts, err := c.Targets()
		if err != nil {
			return false, err
		}
		for _, t := range ts {
			if t.Name == name {
				return true, nil
			}
		}
		return false, nil
	}
	if ok, err := find(); ok || err != nil {
		return ok, err
	}
	modprobe("dm-" + name)
	return find()
}

var (
	kernelCondRE = regexp.MustCompile(`^(>=|<=|==|>|<)(\d+)\.(\d+)$`)
	libdmCondRE  = regexp.MustCompile(`^(>=|<=|==|>|<)(\d+)\.(\d+)\.(\d+)$`)
	libdmRE      = regexp.MustCompile(`(?m)^Library version:\s+(\d+)\.(\d+)\.(\d+)`)
)

func libdmCond(arg string) (bool, error) {
	m := libdmCondRE.FindStringSubmatch(arg)
	if m == nil {
		return false, fmt.Errorf("[libdm:%s]: want an operator (>=, >, <=, <, ==) and a version X.Y.Z, as in [libdm:>=1.02.197]", arg)
	}
	v, ok := libdmVersion()
	if !ok {
		return false, nil
	}
	var want [3]int
	for i := range want {
		want[i], _ = strconv.Atoi(m[2+i])
	}
	c := 0
	for i := range v {
		if v[i] != want[i] {
			c = v[i] - want[i]
			break
		}
	}
	return cmpOp(c, m[1]), nil
}

var libdm struct {
	once sync.Once
	v    [3]int
	ok   bool
}

// libdmVersion reads the library version `dmsetup version` reports.
func libdmVersion() ([3]int, bool) {
	libdm.once.Do(func() {
		out, err := exec.Command("dmsetup", "version").Output()
		if err != nil {
			// Without a device-mapper driver dmsetup still prints the
			// library line, then fails.
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				return
			}
		}
		m := libdmRE.FindSubmatch(out)
		if m == nil {
			return
		}
		for i := range libdm.v {
			libdm.v[i], _ = strconv.Atoi(string(m[1+i]))
		}
		libdm.ok = true
	})
	return libdm.v, libdm.ok
}

func kernelCond(arg string) (bool, error) {
	m := kernelCondRE.FindStringSubmatch(arg)
	if m == nil {
		return false, fmt.Errorf("[kernel:%s]: want an operator (>=, >, <=, <, ==) and a version X.Y, as in [kernel:>=6.1]", arg)
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false, err
	}
	major, minor, err := kernelVersion(unix.ByteSliceToString(u.Release[:]))
	if err != nil {
		return false, err
	}
	wantMaj, _ := strconv.Atoi(m[2])
	wantMin, _ := strconv.Atoi(m[3])
	return compareVersion(major, minor, m[1], wantMaj, wantMin), nil
}

// kernelVersion reads X.Y from a release such as "6.1.0-28-amd64".
func kernelVersion(release string) (int, int, error) {
	m := regexp.MustCompile(`^(\d+)\.(\d+)`).FindStringSubmatch(release)
	if m == nil {
		return 0, 0, fmt.Errorf("kernel release %q: no version X.Y", release)
	}
	a, _ := strconv.Atoi(m[1])
	b, _ := strconv.Atoi(m[2])
	return a, b, nil
}

func compareVersion(maj, min int, op string, wmaj, wmin int) bool {
	c := 0
	switch {
	case maj != wmaj:
		c = maj - wmaj
	default:
		c = min - wmin
	}
	return cmpOp(c, op)
}

// cmpOp applies a comparison operator to the sign of c.
func cmpOp(c int, op string) bool {
	switch op {
	case ">=":
		return c >= 0
	case ">":
		return c > 0
	case "<=":
		return c <= 0
	case "<":
		return c < 0
	}
	return c == 0
}
