package script

import (
	"fmt"
	"strconv"
	"time"
)

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
