package units

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		err  string
	}{
		{"0", 0, ""},
		{"4096", 4096, ""},
		{" 4096 ", 4096, ""},
		{"1s", 512, ""},
		{"4k", 4096, ""},
		{"4K", 4096, ""},
		{"4KiB", 4096, ""},
		{"4kb", 4096, ""},
		{"64M", 64 << 20, ""},
		{"1g", 1 << 30, ""},
		{"2T", 2 << 40, ""},
		{"10b", 10, ""},
		{"", 0, "want a number"},
		{"k", 0, "want a number"},
		{"lots", 0, "want a number"},
		{"-1", 0, "want a number"},
		{"+1", 0, "want a number"},
		{"1.5M", 0, "want a number"},
		{"4x", 0, "want a number"},
		{"99999999999999999t", 0, "too large"},
		{"99999999999999999999", 0, "too large"},
	} {
		got, err := ParseSize(c.in)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("ParseSize(%q) = %d, %v; want error with %q", c.in, got, err, c.err)
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}
