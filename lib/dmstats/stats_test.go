package dmstats

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// exchange is one message the script expects and the kernel reply to give.
type exchange struct {
	msg   string
	reply string
	err   error
}

// scripted is a unit-test double of Messenger: it checks each message
// against a script and returns the canned reply. It proves message
// rendering and reply handling only; the lab tests prove the kernel side.
type scripted struct {
	t    *testing.T
	want []exchange
	sent []string
}

func (s *scripted) Message(msg string) (string, error) {
	s.t.Helper()
	s.sent = append(s.sent, msg)
	if len(s.want) == 0 {
		s.t.Fatalf("unexpected message %q", msg)
	}
	e := s.want[0]
	s.want = s.want[1:]
	if msg != e.msg {
		s.t.Fatalf("message %q, want %q", msg, e.msg)
	}
	return e.reply, e.err
}

func (s *scripted) done() {
	s.t.Helper()
	if len(s.want) != 0 {
		s.t.Fatalf("messages not sent: %+v", s.want)
	}
}

func script(t *testing.T, ex ...exchange) (*Stats, *scripted) {
	m := &scripted{t: t, want: ex}
	return New(m), m
}

func TestStatsCreate(t *testing.T) {
	st, m := script(t,
		exchange{msg: "@stats_create 0+100 /4 1 histogram:1,2 dmstats my\\ aux", reply: "3"},
		exchange{msg: "@stats_create - /1 0 - -", reply: "0\n"},
		exchange{msg: "@stats_create - /1 0 - -", reply: "bogus"},
		exchange{msg: "@stats_create - /1 0 - -", err: errors.New("ioctl DM_TARGET_MSG: no such device")},
	)
	id, err := st.Create(CreateOptions{Length: 100, Areas: 4, Bounds: []time.Duration{time.Millisecond, 2 * time.Millisecond},
		ProgramID: DefaultProgramID, AuxData: "my aux"})
	if err != nil || id != 3 {
		t.Fatalf("Create = %d, %v", id, err)
	}
	if id, err := st.Create(CreateOptions{}); err != nil || id != 0 {
		t.Fatalf("Create = %d, %v", id, err)
	}
	if _, err := st.Create(CreateOptions{}); err == nil || !strings.Contains(err.Error(), `unexpected reply "bogus"`) {
		t.Fatalf("bad reply: %v", err)
	}
	if _, err := st.Create(CreateOptions{}); err == nil || !strings.Contains(err.Error(), "@stats_create: ioctl DM_TARGET_MSG: no such device") {
		t.Fatalf("messenger error: %v", err)
	}
	// Bad options never reach the kernel.
	if _, err := st.Create(CreateOptions{Step: 1, Areas: 1}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("bad options: %v", err)
	}
	m.done()
}

func TestStatsSimpleMessages(t *testing.T) {
	st, m := script(t,
		exchange{msg: "@stats_delete 7"},
		exchange{msg: "@stats_clear 2"},
		exchange{msg: "@stats_set_aux 1 a\\ b\\\\c"},
		exchange{msg: "@stats_set_aux 1 -"},
		exchange{msg: "@stats_delete 9", err: errors.New("no such region")},
	)
	if err := st.Delete(7); err != nil {
		t.Fatal(err)
	}
	if err := st.Clear(2); err != nil {
		t.Fatal(err)
	}
	if err := st.SetAux(1, `a b\c`); err != nil {
		t.Fatal(err)
	}
	if err := st.SetAux(1, ""); err != nil {
		t.Fatal(err)
	}
	if err := st.SetAux(1, "a\nb"); err == nil || !strings.Contains(err.Error(), "@stats_set_aux 1: aux data") {
		t.Fatalf("newline aux: %v", err)
	}
	if err := st.Delete(9); err == nil || err.Error() != "@stats_delete 9: no such region" {
		t.Fatalf("delete error: %v", err)
	}
	m.done()
}

func TestStatsListPrint(t *testing.T) {
	st, m := script(t,
		exchange{msg: "@stats_list", reply: "0: 0+8 8 dmstats -\n1: 8+8 8 my prog x\n"},
		exchange{msg: "@stats_list my\\ prog", reply: "1: 8+8 8 my prog x\n"},
		exchange{msg: "@stats_print 1", reply: "8+4 1 0 8 1 0 0 0 0 0 1 1 1 0\n12+4 0 0 0 0 2 0 16 4 1 4 4 0 4\n"},
		exchange{msg: "@stats_print_clear 1 1 1", reply: "12+4 0 0 0 0 2 0 16 4 1 4 4 0 4\n"},
		exchange{msg: "@stats_print 1", reply: "8+4 1 0 8\n"},
	)
	all, err := st.List("")
	if err != nil || len(all) != 2 || all[1].ProgramID != "my" || all[1].AuxData != "prog" {
		// Unfiltered, a program id with a space cannot be cut right.
		t.Fatalf("List all = %+v, %v", all, err)
	}
	mine, err := st.List("my prog")
	if err != nil || len(mine) != 1 || mine[0].ProgramID != "my prog" || mine[0].AuxData != "x" {
		t.Fatalf("List mine = %+v, %v", mine, err)
	}
	areas, err := st.Print(1, false)
	if err != nil || len(areas) != 2 || areas[1].Counters.Writes != 2 || areas[1].Counters.InFlight != 1 {
		t.Fatalf("Print = %+v, %v", areas, err)
	}
	areas, err = st.PrintAreas(1, 1, 1, true)
	if err != nil || len(areas) != 1 || areas[0].Start != 12 {
		t.Fatalf("PrintAreas = %+v, %v", areas, err)
	}
	if _, err := st.Print(1, false); err == nil || !strings.Contains(err.Error(), "@stats_print 1: @stats_print row 1") {
		t.Fatalf("bad print: %v", err)
	}
	if _, err := st.List("a\nb"); err == nil {
		t.Fatal("program id with newline accepted")
	}
	m.done()
}

func TestStatsRegionTotals(t *testing.T) {
	st, m := script(t,
		exchange{msg: "@stats_print 0", reply: "0+8 1 0 8 3 0 0 0 0 0 3 3 3 0 1:0\n8+8 1 0 8 5 0 0 0 0 1 5 5 5 0 0:1\n"},
		exchange{msg: "@stats_print_clear 0", err: errors.New("gone")},
	)
	r := Region{ID: 0, Length: 16, Step: 8, Bounds: []uint64{1}}
	tot, err := st.RegionTotals(r, false)
	want := Totals{Counters: Counters{Reads: 2, ReadSectors: 16, ReadTicks: 8, InFlight: 1, IOTicks: 8, QueueTicks: 8, ReadsInFlightTicks: 8},
		Histogram: []uint64{1, 1}}
	if err != nil || !reflect.DeepEqual(tot, want) {
		t.Fatalf("RegionTotals = %+v, %v; want %+v", tot, err, want)
	}
	if _, err := st.RegionTotals(r, true); err == nil || err.Error() != "@stats_print_clear 0: gone" {
		t.Fatalf("RegionTotals error = %v", err)
	}
	m.done()
}

func TestStatsGroupTotals(t *testing.T) {
	regions := []Region{
		{ID: 0, Length: 16, Step: 8, AuxData: "DMS_GROUP=f:0,2#-", Bounds: []uint64{1}},
		{ID: 2, Start: 24, Length: 8, Step: 8, AuxData: "-", Precise: true, Bounds: []uint64{5}},
	}
	st, m := script(t,
		exchange{msg: "@stats_print_clear 0", reply: "0+8 1 0 8 3 0 0 0 0 0 3 3 3 0 1:0\n8+8 1 0 8 5 0 0 0 0 0 5 5 5 0 0:1\n"},
		exchange{msg: "@stats_print_clear 2", reply: "24+8 0 0 0 0 1 0 8 2000 0 2000 2000 0 2000 1:0\n"},
	)
	g := Group{ID: 0, Members: []uint64{0, 2}}
	tot, err := st.GroupTotals(g, regions, true)
	if err != nil {
		t.Fatal(err)
	}
	want := Totals{
		Counters: Counters{Reads: 2, ReadSectors: 16, ReadTicks: 8_000_000, Writes: 1, WriteSectors: 8, WriteTicks: 2000,
			IOTicks: 8_002_000, QueueTicks: 8_002_000, ReadsInFlightTicks: 8_000_000, WritesInFlightTicks: 2000},
		Histogram: []uint64{2, 1},
		Precise:   true,
	}
	if !reflect.DeepEqual(tot, want) {
		t.Fatalf("GroupTotals\ngot  %+v\nwant %+v", tot, want)
	}
	if _, err := st.GroupTotals(Group{ID: 0, Members: []uint64{0, 5}}, regions, false); err == nil ||
		!strings.Contains(err.Error(), "member region 5 is not in the listing") {
		t.Fatalf("missing member: %v", err)
	}
	m.done()
}

func TestStatsSetGroup(t *testing.T) {
	list := "0: 0+8 8 dmstats userdata\n1: 8+8 8 dmstats -\n2: 16+8 8 dmstats DMS_GROUP=\"x\":2-3#-\n3: 24+8 8 dmstats -\n4: 32+8 8 dmstats -\n"
	st, m := script(t,
		// The leader's own aux data becomes the tag's user data.
		exchange{msg: "@stats_list", reply: list},
		exchange{msg: `@stats_set_aux 0 DMS_GROUP="my\ file":0-1#userdata`},
		// Legacy format; explicit user data wins.
		exchange{msg: "@stats_list", reply: list},
		exchange{msg: "@stats_set_aux 0 DMS_GROUP=f:0-1,4#mine"},
		// Rewriting a group keeps the user data of its old tag.
		exchange{msg: "@stats_list", reply: "2: 16+8 8 dmstats DMS_GROUP=\"x\":2-3#old\n3: 24+8 8 dmstats -\n4: 32+8 8 dmstats -\n"},
		exchange{msg: `@stats_set_aux 2 DMS_GROUP=x:2-4#old`},
		// Failures, each before any set_aux.
		exchange{msg: "@stats_list", reply: list},
		exchange{msg: "@stats_list", reply: list},
		exchange{msg: "@stats_list", reply: list},
	)
	if err := st.SetGroup(Group{ID: 0, Alias: "my file", Members: []uint64{1, 0}}, FormatQuoted); err != nil {
		t.Fatal(err)
	}
	if err := st.SetGroup(Group{ID: 0, Alias: "f", Members: []uint64{0, 1, 4}, UserData: "mine"}, FormatLegacy); err != nil {
		t.Fatal(err)
	}
	if err := st.SetGroup(Group{ID: 2, Alias: "x", Members: []uint64{2, 3, 4}}, FormatLegacy); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		g   Group
		f   TagFormat
		err string
	}{
		{Group{ID: 0, Members: []uint64{0, 9}}, FormatQuoted, "member region 9 does not exist"},
		{Group{ID: 0, Members: []uint64{0, 3}}, FormatQuoted, "region 3 already belongs to group 2"},
		{Group{ID: 0, Alias: "a b", Members: []uint64{0}}, FormatLegacy, "alias \"a b\""},
	} {
		if err := st.SetGroup(tc.g, tc.f); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("SetGroup(%+v) = %v, want %q", tc.g, err, tc.err)
		}
	}
	// Checked without asking the kernel.
	if err := st.SetGroup(Group{ID: 1, Members: []uint64{0, 1}}, FormatQuoted); err == nil || !strings.Contains(err.Error(), "must be the lowest member (0)") {
		t.Errorf("leader not lowest: %v", err)
	}
	if err := st.SetGroup(Group{ID: 1}, FormatQuoted); err == nil {
		t.Error("empty group accepted")
	}
	m.done()
}

func TestStatsUngroup(t *testing.T) {
	list := "0: 0+8 8 dmstats DMS_GROUP=\"a\":0-1#mydata\n1: 8+8 8 dmstats -\n2: 16+8 8 dmstats DMS_GROUP=b:2#-\n3: 24+8 8 dmstats DMS_GROUP=c:1,3#-\n4: 32+8 8 dmstats DMS_GROUP=bad\n"
	st, m := script(t,
		exchange{msg: "@stats_list", reply: list},
		exchange{msg: "@stats_set_aux 0 mydata"},
		exchange{msg: "@stats_list", reply: list},
		exchange{msg: "@stats_set_aux 2 -"},
		exchange{msg: "@stats_list", reply: list},
		exchange{msg: "@stats_list", reply: list},
		exchange{msg: "@stats_list", reply: list},
		exchange{msg: "@stats_list", reply: list},
	)
	if err := st.Ungroup(0); err != nil {
		t.Fatal(err)
	}
	if err := st.Ungroup(2); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[uint64]string{
		1: "region 1 carries no group tag",
		3: "invalid group tag",
		4: "malformed DMS_GROUP tag",
		8: "region 8 does not exist",
	} {
		if err := st.Ungroup(id); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Ungroup(%d) = %v, want %q", id, err, want)
		}
	}
	m.done()
}
