// Package units reads the sizes that dmfm's commands and scripts take, in
// dmstats' spelling: a number of bytes with an optional unit.
package units

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseSize reads a byte count: digits with an optional unit, b (bytes),
// s (512-byte sectors), k, m, g or t (KiB to TiB; "KiB" and "kB" spellings
// too), in any case. Signs, fractions and unknown units are errors.
func ParseSize(s string) (int64, error) {
	bad := fmt.Errorf("size %q: want a number of bytes with an optional unit (s, k, m, g, t)", s)
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "ib"), "b")
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 's':
			mult, t = 512, t[:n-1]
		case 'k':
			mult, t = 1<<10, t[:n-1]
		case 'm':
			mult, t = 1<<20, t[:n-1]
		case 'g':
			mult, t = 1<<30, t[:n-1]
		case 't':
			mult, t = 1<<40, t[:n-1]
		}
	}
	if t == "" || strings.TrimLeft(t, "0123456789") != "" {
		return 0, bad
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v > (1<<62)/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return v * mult, nil
}
