package dmstats

import (
	"os"
	"os/exec"
	"slices"
	"testing"
)

func TestParseStartTime(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       uint64
		wantErr    bool
	}{
		{"plain", "42 (sleep) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 2000000 100 18446744073709551615", 987654, false},
		{"name with spaces and parens", "7 (a ) b (c)) R 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 555 0 0", 555, false},
		{"no name", "7 sleep S 1", 0, true},
		{"short", "7 (x) S 1 2 3", 0, true},
		{"not a number", "7 (x) S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 soon 0", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStartTime(tc.stat)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("parseStartTime = %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestParseScratch(t *testing.T) {
	o := Owner{PIDNS: 4026531836, PID: 1234, Start: 98765}
	for _, tc := range []struct {
		name string
		r    Region
		want Owner
		ok   bool
	}{
		{"round trip", Region{ProgramID: ScratchProgramID, AuxData: o.String()}, o, true},
		{"other program", Region{ProgramID: DefaultProgramID, AuxData: o.String()}, Owner{}, false},
		{"no marker", Region{ProgramID: ScratchProgramID, AuxData: "-"}, Owner{}, false},
		{"two fields", Region{ProgramID: ScratchProgramID, AuxData: "DMFM_SCRATCH=1:2"}, Owner{}, false},
		{"bad pid", Region{ProgramID: ScratchProgramID, AuxData: "DMFM_SCRATCH=1:0:2"}, Owner{}, false},
		{"not numbers", Region{ProgramID: ScratchProgramID, AuxData: "DMFM_SCRATCH=a:b:c"}, Owner{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseScratch(tc.r)
			if got != tc.want || ok != tc.ok || IsScratch(tc.r) != tc.ok {
				t.Fatalf("ParseScratch = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
	if got := o.String(); got != "DMFM_SCRATCH=4026531836:1234:98765" {
		t.Errorf("Owner.String = %q", got)
	}
}

// deadOwner returns the Owner of a process that has exited.
func deadOwner(t *testing.T) Owner {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	o, err := OwnerOf(cmd.Process.Pid)
	cmd.Process.Kill()
	cmd.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestStaleScratch(t *testing.T) {
	self, err := SelfOwner()
	if err != nil {
		t.Fatal(err)
	}
	if self.PID != os.Getpid() || self.PIDNS == 0 || self.Start == 0 {
		t.Fatalf("SelfOwner = %+v", self)
	}
	dead := deadOwner(t)
	reused := self
	reused.Start++ // the pid lives, but it is another process
	foreign := dead
	foreign.PIDNS++ // another namespace: not ours to judge
	scratch := func(id uint64, o Owner) Region {
		return Region{ID: id, Length: 1, Step: 1, Precise: true, ProgramID: ScratchProgramID, AuxData: o.String()}
	}
	regions := []Region{
		{ID: 0, Length: 8, Step: 8, ProgramID: DefaultProgramID, AuxData: "-"},
		scratch(1, self),
		scratch(2, dead),
		scratch(3, reused),
		scratch(4, foreign),
		{ID: 5, Length: 8, Step: 8, ProgramID: ScratchProgramID, AuxData: "-"},
	}
	if got, want := StaleScratch(regions), []uint64{2, 3}; !slices.Equal(got, want) {
		t.Errorf("StaleScratch = %v, want %v", got, want)
	}
	if got := StaleScratch(regions[:1]); got != nil {
		t.Errorf("StaleScratch without scratch regions = %v", got)
	}
}

// TestDeleteScratchGain: a scratch region is made when it saves rescans: many
// deletes with few regions staying before its place, and no precise region
// that already stops the rescans early.
func TestDeleteScratchGain(t *testing.T) {
	regions := func(n int, precise ...uint64) []Region {
		var rs []Region
		for i := 0; i < n; i++ {
			rs = append(rs, Region{ID: uint64(i), Length: 8, Step: 8, ProgramID: DefaultProgramID, Precise: slices.Contains(precise, uint64(i))})
		}
		return rs
	}
	ids := func(from, to int) []uint64 {
		var out []uint64
		for i := from; i < to; i++ {
			out = append(out, uint64(i))
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		regions []Region
		del     []uint64
		use     bool
	}{
		{"all of 2000", regions(2000), ids(0, 2000), true},
		{"members of a 2000-region group", regions(2000), ids(1, 2000), true},
		{"upper half of 2000", regions(2000), ids(1000, 2000), true},
		{"a few", regions(2000), ids(1, 20), false},
		{"small device", regions(100), ids(0, 100), false},
		{"precise region at the head", regions(2000, 0), ids(1, 2000), false},
		{"precise region far on", regions(2000, 1999), ids(0, 1000), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gain := DeleteScratchGain(tc.regions, tc.del)
			if (gain >= ScratchMinGain) != tc.use {
				t.Errorf("gain %d, want a scratch region: %v", gain, tc.use)
			}
		})
	}
}
