package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dmfm/dmfm/lib/dmstats"
)

// lockedRecorder records messages from several goroutines and answers
// @stats_list from a fixed listing. A @stats_create gets the id createID
// and is listed under its program id (the scratch region's listing).
type lockedRecorder struct {
	mu       sync.Mutex
	list     string
	sent     []string
	fail     string // a message to fail
	createID string
	created  string // the listing row of the region made
	cancelAt string // a message after which cancel is called
	cancel   func()
}

func (r *lockedRecorder) Message(msg string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if msg == "@stats_list" {
		return r.list, nil
	}
	if msg == r.fail {
		return "", errors.New("injected failure")
	}
	r.sent = append(r.sent, msg)
	if msg == r.cancelAt {
		r.cancel()
	}
	if f := strings.Fields(msg); f[0] == "@stats_create" && r.createID != "" {
		// @stats_create RANGE STEP NOPTS OPTS... PROGRAM AUX
		r.created = fmt.Sprintf("%s: %s %s %s %s precise_timestamps\n", r.createID, f[1], "1", f[len(f)-2], f[len(f)-1])
		return r.createID, nil
	}
	if msg == "@stats_list "+dmstats.ScratchProgramID {
		return r.created, nil
	}
	return "", nil
}

// TestDeleteRegions deletes a group of many regions over several handles:
// every region goes once, the leader last; a surviving group loses its
// deleted member from its tag first.
func TestDeleteRegions(t *testing.T) {
	const n = 3 * minParallel
	var list strings.Builder
	fmt.Fprintf(&list, "0: 0+8 8 dmstats DMS_GROUP=\"big\":0-%d#-\n", n-1)
	for i := 1; i < n; i++ {
		fmt.Fprintf(&list, "%d: %d+8 8 dmstats -\n", i, 8*i)
	}
	fmt.Fprintf(&list, "%d: 0+8 8 dmstats DMS_GROUP=\"small\":%d-%d#-\n", n, n, n+1)
	fmt.Fprintf(&list, "%d: 8+8 8 dmstats -\n", n+1)
	rec := &lockedRecorder{list: list.String(), createID: "1"}
	st := dmstats.New(rec)
	s, err := loadState(device{Name: "d"}, st)
	if err != nil {
		t.Fatal(err)
	}
	var del []uint64
	for i := 0; i < n; i++ {
		del = append(del, uint64(i))
	}
	del = append(del, n+1, 5, 5) // a member of "small", and duplicates
	var opened atomic.Int32
	workers := func(w int) (*dmstats.Stats, error) { opened.Add(1); return dmstats.New(rec), nil }
	if err := s.deleteRegions(context.Background(), del, dmstats.FormatQuoted, false, workers, 4); err != nil {
		t.Fatal(err)
	}
	if opened.Load() != 3 {
		t.Errorf("%d extra handles, want 3", opened.Load())
	}
	if rec.sent[0] != fmt.Sprintf(`@stats_set_aux %d DMS_GROUP="small":%d#-`, n, n) {
		t.Errorf("first message %q, want the rewritten tag of the surviving group", rec.sent[0])
	}
	// The lowest member goes first, alone, and the scratch region takes its
	// id; it is checked and deleted after the other members, before the
	// leader.
	self, err := dmstats.SelfOwner()
	if err != nil {
		t.Fatal(err)
	}
	wantHead := []string{rec.sent[0], "@stats_delete 1",
		"@stats_create 0+1 /1 1 precise_timestamps dmfm-scratch " + self.String()}
	if !slices.Equal(rec.sent[:3], wantHead) {
		t.Errorf("first messages %q, want %q", rec.sent[:3], wantHead)
	}
	wantTail := []string{"@stats_list dmfm-scratch", "@stats_delete 1", "@stats_delete 0"}
	if tail := rec.sent[len(rec.sent)-3:]; !slices.Equal(tail, wantTail) {
		t.Errorf("last messages %q, want %q", tail, wantTail)
	}
	var got []int
	for _, m := range rec.sent[3 : len(rec.sent)-3] {
		id, err := strconv.Atoi(strings.TrimPrefix(m, "@stats_delete "))
		if err != nil {
			t.Fatalf("unexpected message %q", m)
		}
		got = append(got, id)
	}
	slices.Sort(got)
	want := make([]int, 0, n+1)
	for i := 2; i < n; i++ {
		want = append(want, i)
	}
	want = append(want, n+1)
	if !slices.Equal(got, want) {
		t.Errorf("deleted %d regions, want each of %d once", len(got), len(want))
	}

	// A failure or an interruption stops the work and is reported; the
	// group keeps a tag that lists exactly the members left; a scratch
	// region goes first.
	interrupted, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, tc := range []struct {
		name     string
		ctx      context.Context
		fail     string
		createID string
		wantErr  string
		scratch  bool
	}{
		{"failure", context.Background(), "@stats_delete 300", "", "delete region 300 on d: @stats_delete 300: injected failure", false},
		{"failure with scratch region", context.Background(), "@stats_delete 300", "1", "delete region 300 on d: @stats_delete 300: injected failure", true},
		{"interrupted", interrupted, "", "", "stopped: context canceled", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &lockedRecorder{list: list.String(), fail: tc.fail, createID: tc.createID}
			if tc.ctx == interrupted {
				rec.cancelAt, rec.cancel = "@stats_delete 200", cancel
			}
			s, err := loadState(device{Name: "d"}, dmstats.New(rec))
			if err != nil {
				t.Fatal(err)
			}
			err = s.deleteRegions(tc.ctx, del[:n], dmstats.FormatQuoted, false, func(int) (*dmstats.Stats, error) { return dmstats.New(rec), nil }, 2)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if slices.Contains(rec.sent, "@stats_delete 0") {
				t.Errorf("the leader was deleted")
			}
			last := rec.sent[len(rec.sent)-1]
			if tc.scratch {
				if tail := rec.sent[len(rec.sent)-3 : len(rec.sent)-1]; !slices.Equal(tail, []string{"@stats_list dmfm-scratch", "@stats_delete 1"}) {
					t.Errorf("before the tag, %q; want the scratch region's check and delete", tail)
				}
			}
			left := []uint64{}
			deleted := map[uint64]bool{}
			for _, m := range rec.sent[:len(rec.sent)-1] {
				if id, ok := strings.CutPrefix(m, "@stats_delete "); ok {
					v, _ := strconv.ParseUint(id, 10, 64)
					deleted[v] = true
				}
			}
			if tc.scratch {
				deleted[1] = true // region 1, then the scratch region on its id
			}
			for i := uint64(0); i < n; i++ {
				if !deleted[i] {
					left = append(left, i)
				}
			}
			if want := `@stats_set_aux 0 DMS_GROUP="big":` + dmstats.FormatMembers(left) + `#-`; last != want {
				t.Errorf("last message %q, want the tag of the members left %q", last, want)
			}
		})
	}
}

// A group whose interrupted update announced ids 1 and 2 in its tag, where
// another tool then got id 2 for a region of its own: deleting the group
// deletes its leader and region 1, never the other tool's region.
func TestDeleteGroupLeavesForeignAnnouncedID(t *testing.T) {
	rec := &lockedRecorder{list: `0: 100+8 8 dmstats DMS_GROUP="f":0-2#DMFM_INTENT=1:200+8,2:300+8;
1: 200+8 8 dmstats -
2: 900+16 16 dmstats -
`}
	s, err := loadState(device{Name: "d"}, dmstats.New(rec))
	if err != nil {
		t.Fatal(err)
	}
	g, err := s.needGroup(0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g.Members, []uint64{0, 1}) {
		t.Fatalf("group 0 members %v, want [0 1]", g.Members)
	}
	if err := s.deleteRegions(context.Background(), g.Members, dmstats.FormatQuoted, false, nil, 1); err != nil {
		t.Fatal(err)
	}
	if want := []string{"@stats_delete 1", "@stats_delete 0"}; !slices.Equal(rec.sent, want) {
		t.Errorf("sent %q, want %q", rec.sent, want)
	}
}
