package dmstats

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCreateMessage(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    CreateOptions
		want string
	}{
		{"whole device one area", CreateOptions{}, "@stats_create - /1 0 - -"},
		{"range", CreateOptions{Start: 2048, Length: 8192}, "@stats_create 2048+8192 /1 0 - -"},
		{"step", CreateOptions{Length: 8192, Step: 1024}, "@stats_create 0+8192 1024 0 - -"},
		{"areas", CreateOptions{Areas: 16}, "@stats_create - /16 0 - -"},
		{"precise", CreateOptions{Precise: true}, "@stats_create - /1 1 precise_timestamps - -"},
		{"histogram ms", CreateOptions{Bounds: []time.Duration{time.Millisecond, 10 * time.Millisecond, time.Second}},
			"@stats_create - /1 1 histogram:1,10,1000 - -"},
		{"histogram ns", CreateOptions{Precise: true, Bounds: []time.Duration{500, 20 * time.Microsecond, time.Millisecond}},
			"@stats_create - /1 2 precise_timestamps histogram:500,20000,1000000 - -"},
		{"program", CreateOptions{ProgramID: DefaultProgramID}, "@stats_create - /1 0 dmstats -"},
		{"numeric program", CreateOptions{ProgramID: "2"}, "@stats_create - /1 0 2 -"},
		{"numeric program and aux", CreateOptions{ProgramID: "0", AuxData: "7"}, "@stats_create - /1 0 0 7"},
		{"aux only", CreateOptions{AuxData: "mine"}, "@stats_create - /1 0 - mine"},
		{"escaped", CreateOptions{ProgramID: `my prog`, AuxData: "a\tb\\c d"},
			"@stats_create - /1 0 my\\ prog a\\\tb\\\\c\\ d"},
		{"everything", CreateOptions{Start: 8, Length: 16, Step: 4, Precise: true,
			Bounds: []time.Duration{time.Microsecond}, ProgramID: "p", AuxData: "x"},
			"@stats_create 8+16 4 2 precise_timestamps histogram:1000 p x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := createMessage(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
			// The kernel sees exactly the fields we meant.
			args := SplitArgs(got)
			n := len(args)
			if pid := tc.o.ProgramID; pid != "" && args[n-2] != pid {
				t.Errorf("kernel sees program id %q, want %q", args[n-2], pid)
			}
			if aux := tc.o.AuxData; aux != "" && args[n-1] != aux {
				t.Errorf("kernel sees aux %q, want %q", args[n-1], aux)
			}
		})
	}
}

func TestCreateMessageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    CreateOptions
		err  string
	}{
		{"start without length", CreateOptions{Start: 5}, "start 5 given without a length"},
		{"step and areas", CreateOptions{Step: 8, Areas: 2}, "both step (8) and areas (2)"},
		{"too many areas", CreateOptions{Areas: 1 << 32}, "exceeds the kernel limit"},
		{"overflow", CreateOptions{Start: 1 << 63, Length: 1 << 63}, "overflows"},
		{"not increasing", CreateOptions{Bounds: []time.Duration{2 * time.Millisecond, time.Millisecond}}, "strictly increasing: bound 1 (1ms) follows 2ms"},
		{"equal", CreateOptions{Bounds: []time.Duration{time.Millisecond, time.Millisecond}}, "strictly increasing"},
		{"zero", CreateOptions{Bounds: []time.Duration{0}}, "bound 0 (0s) must be greater than zero"},
		{"negative", CreateOptions{Bounds: []time.Duration{-time.Millisecond}}, "greater than zero"},
		{"sub-ms", CreateOptions{Bounds: []time.Duration{1500 * time.Microsecond}}, "bound 0 (1.5ms) is not a whole number of milliseconds"},
		{"newline aux", CreateOptions{AuxData: "a\nb"}, "aux data \"a\\nb\" contains a newline"},
		{"nul program", CreateOptions{ProgramID: "a\x00"}, "program id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := createMessage(tc.o)
			if err == nil {
				t.Fatalf("got %q, want an error", msg)
			}
			if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %q, want ErrInvalidOptions containing %q", err, tc.err)
			}
		})
	}
}

func TestBoundDurations(t *testing.T) {
	r := Region{Bounds: []uint64{1, 20}}
	if got, want := r.BoundDurations(), []time.Duration{time.Millisecond, 20 * time.Millisecond}; !reflect.DeepEqual(got, want) {
		t.Errorf("ms bounds = %v, want %v", got, want)
	}
	r.Precise = true
	if got, want := r.BoundDurations(), []time.Duration{1, 20}; !reflect.DeepEqual(got, want) {
		t.Errorf("ns bounds = %v, want %v", got, want)
	}
	if (Region{}).BoundDurations() != nil {
		t.Error("no histogram should give nil bounds")
	}
}
