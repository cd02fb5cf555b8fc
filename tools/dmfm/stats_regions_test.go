package main

import (
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
// @stats_list from a fixed listing.
type lockedRecorder struct {
	mu   sync.Mutex
	list string
	sent []string
	fail string // a message to fail
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
	rec := &lockedRecorder{list: list.String()}
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
	if err := s.deleteRegions(del, dmstats.FormatQuoted, false, workers, 4); err != nil {
		t.Fatal(err)
	}
	if opened.Load() != 3 {
		t.Errorf("%d extra handles, want 3", opened.Load())
	}
	if rec.sent[0] != fmt.Sprintf(`@stats_set_aux %d DMS_GROUP="small":%d#-`, n, n) {
		t.Errorf("first message %q, want the rewritten tag of the surviving group", rec.sent[0])
	}
	if last := rec.sent[len(rec.sent)-1]; last != "@stats_delete 0" {
		t.Errorf("last message %q, want the leader's delete", last)
	}
	var got []int
	for _, m := range rec.sent[1:] {
		id, err := strconv.Atoi(strings.TrimPrefix(m, "@stats_delete "))
		if err != nil {
			t.Fatalf("unexpected message %q", m)
		}
		got = append(got, id)
	}
	slices.Sort(got)
	want := make([]int, 0, n+1)
	for i := 0; i < n; i++ {
		want = append(want, i)
	}
	want = append(want, n+1)
	if !slices.Equal(got, want) {
		t.Errorf("deleted %d regions, want each of %d once", len(got), len(want))
	}

	// A failure stops the work and is reported.
	rec2 := &lockedRecorder{list: list.String(), fail: "@stats_delete 300"}
	s2, err := loadState(device{Name: "d"}, dmstats.New(rec2))
	if err != nil {
		t.Fatal(err)
	}
	err = s2.deleteRegions(del[:n], dmstats.FormatQuoted, false, func(int) (*dmstats.Stats, error) { return dmstats.New(rec2), nil }, 2)
	if err == nil || !strings.Contains(err.Error(), "delete region 300 on d: @stats_delete 300: injected failure") {
		t.Errorf("error %v", err)
	}
	if slices.Contains(rec2.sent, "@stats_delete 0") {
		t.Errorf("the leader was deleted after a failure")
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
	if err := s.deleteRegions(g.Members, dmstats.FormatQuoted, false, nil, 1); err != nil {
		t.Fatal(err)
	}
	if want := []string{"@stats_delete 1", "@stats_delete 0"}; !slices.Equal(rec.sent, want) {
		t.Errorf("sent %q, want %q", rec.sent, want)
	}
}
