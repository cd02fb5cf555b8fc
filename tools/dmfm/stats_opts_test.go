package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dmfm/dmfm/lib/dmstats"
)

func TestParseID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		err  string
	}{
		{"0", 0, ""},
		{"7", 7, ""},
		{"00000003", 3, ""},
		{"12345678", 12345678, ""},
		{"123456789012", 123456789012, ""},
		{"18446744073709551615", 18446744073709551615, ""},
		{" 5 ", 5, ""},
		{"18446744073709551616", 0, "too large"},
		{"-1", 0, "never negative"},
		{"+1", 0, "not a number"},
		{"1e3", 0, "not a number"},
		{"0x10", 0, "not a number"},
		{"", 0, "empty value"},
		{"abc", 0, "not a number"},
	} {
		got, err := parseID("--groupid", tc.in)
		if tc.err == "" && (err != nil || got != tc.want) {
			t.Errorf("parseID(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("parseID(%q) error %v, want %q", tc.in, err, tc.err)
		}
	}
}

func TestParseSectors(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		bad  bool
	}{
		{"0", 0, false},
		{"2048", 2048, false},
		{"2048s", 2048, false},
		{"512b", 1, false},
		{"1k", 2, false},
		{"1m", 2048, false},
		{"1MiB", 2048, false},
		{"1g", 2097152, false},
		{"1000b", 0, true},
		{"1.5m", 0, true},
		{"-8", 0, true},
		{"x", 0, true},
	} {
		got, err := parseSectors("--start", tc.in)
		if tc.bad != (err != nil) || (!tc.bad && got != tc.want) {
			t.Errorf("parseSectors(%q) = %d, %v; want %d (bad %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestParseBounds(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []time.Duration
		precise bool
		err     string
	}{
		{"1ms,5ms,20ms", []time.Duration{time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond}, false, ""},
		{"1000000,2s", []time.Duration{time.Millisecond, 2 * time.Second}, false, ""},
		{"500us,1ms", []time.Duration{500 * time.Microsecond, time.Millisecond}, true, ""},
		{"10ns", []time.Duration{10}, true, ""},
		{"5ms,1ms", nil, false, "must increase"},
		{"0", nil, false, "greater than zero"},
		{"1m", nil, false, "bad latency"},
		{"1ms,,2ms", nil, false, "bad latency"},
		{"99999999999s", nil, false, "too large"},
	} {
		got, precise, err := parseBounds(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseBounds(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) || precise != tc.precise {
			t.Errorf("parseBounds(%q) = %v, %v, %v; want %v, %v", tc.in, got, precise, err, tc.want, tc.precise)
		}
	}
}

func TestAreaCount(t *testing.T) {
	for _, tc := range []struct{ length, step, areas, want uint64 }{
		{100, 0, 0, 1}, {100, 0, 4, 4}, {100, 10, 0, 10}, {100, 30, 0, 4}, {100, 200, 0, 1},
	} {
		if got := areaCount(tc.length, tc.step, tc.areas); got != tc.want {
			t.Errorf("areaCount(%d, %d, %d) = %d, want %d", tc.length, tc.step, tc.areas, got, tc.want)
		}
	}
}

// TestListCache checks that a repeated @stats_list is answered from the
// cache until a message that can change the regions is sent.
func TestListCache(t *testing.T) {
	var sent []string
	rec := recordMessenger(func(msg string) (string, error) {
		sent = append(sent, msg)
		return "0: 0+8 8 dmstats -\n", nil
	})
	st := dmstats.New(&listCache{m: rec})
	for _, step := range []func() error{
		func() error { _, err := st.List(""); return err },
		func() error { _, err := st.List(""); return err },
		func() error { _, err := st.Print(0, false); return err },
		func() error { _, err := st.List(""); return err },
		func() error { return st.SetAux(0, "x") },
		func() error { _, err := st.List(""); return err },
		func() error { _, err := st.List("dmstats"); return err },
		func() error { _, err := st.List(""); return err },
	} {
		if err := step(); err != nil && !strings.Contains(err.Error(), "@stats_print") {
			t.Fatal(err)
		}
	}
	want := []string{"@stats_list", "@stats_print 0", "@stats_set_aux 0 x", "@stats_list", "@stats_list dmstats"}
	if !slices.Equal(sent, want) {
		t.Errorf("sent %q, want %q", sent, want)
	}
}

type recordMessenger func(string) (string, error)

func (r recordMessenger) Message(msg string) (string, error) { return r(msg) }

func TestInterspersedAndVerbose(t *testing.T) {
	// Options after the positional arguments, -vv, and the global options
	// on either side of the command name.
	_, stderr, code := runCLI(t, "--group-format", "legacy", "create", "dev", "--alias", "a b", "--segments", "-vv")
	if code != 1 || !strings.Contains(stderr, "whitespace") {
		t.Errorf("global --group-format before the command not honoured: %d %q", code, stderr)
	}
	t.Setenv(groupFormatEnv, "legacy")
	_, stderr, _ = runCLI(t, "create", "dev", "--segments", "--alias", "a b")
	if !strings.Contains(stderr, "whitespace") {
		t.Errorf("%s not honoured: %q", groupFormatEnv, stderr)
	}
	_, stderr, _ = runCLI(t, "create", "dev", "--segments", "--alias", "a b", "--group-format", "quoted")
	if strings.Contains(stderr, "whitespace") {
		t.Errorf("--group-format on the command line does not override %s: %q", groupFormatEnv, stderr)
	}
	_, stderr, _ = runCLI(t, "create", "--", "--filemap")
	if strings.Contains(stderr, "--filemap needs") {
		t.Errorf("-- did not end the options: %q", stderr)
	}
}
