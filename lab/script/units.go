package script

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// parseSize reads a byte count as dmfm does: digits with an optional unit,
// b (bytes), s (512-byte sectors), k, m, g or t (KiB to TiB; "KiB" and "kB"
// spellings too), in any case.
func parseSize(s string) (int64, error) {
	bad := fmt.Errorf("size %q: want a number of bytes with an optional unit (s, k, m, g, t)", s)
	t := strings.ToLower(s)
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
	if err != nil {
		return 0, bad
	}
	if v > (1<<62)/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return v * mult, nil
}

// parseTimeout reads a duration such as 10s or 500ms; a bare number is
// seconds.
func parseTimeout(s string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(s, 64); err == nil && n >= 0 {
		return time.Duration(n * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("timeout %q: want a duration such as 10s or 500ms", s)
	}
	return d, nil
}

// parseID reads a region or group id.
func parseID(what, s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %q: want a non-negative integer", what, s)
	}
	return n, nil
}
