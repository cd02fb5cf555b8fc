package filemap

import "github.com/dmfm/dmfm/lib/dmstats"

// scratchMinGain is the number of kernel list steps a scratch region must
// save before Create makes one (tests lower it to make one for any file).
var scratchMinGain = dmstats.ScratchMinGain

// listLive lists every region of the device after deleting the scratch
// regions whose processes died (see dmstats.StaleScratch): they would take
// the ids a new group should get and pass for another tool's regions.
func listLive(st *dmstats.Stats) ([]dmstats.Region, error) {
	regions, err := st.List("")
	if err != nil {
		return nil, err
	}
	return st.RemoveStaleScratch(regions)
}

// createScratchGain estimates the list steps a scratch region saves while
// Create makes regions with the predicted ids (ascending) on a device that
// has regions: the scratch region takes ids[1], and the regions for ids[2:]
// follow it in the kernel's list, so that the rescan each @stats_create
// does for a precise region stops at the scratch region instead of running
// to the list's end. Making and deleting it, and making the region of
// ids[1] last (its rescan then runs over the whole list), cost about three
// walks of the list plus a fixed cost, counted as dmstats.ScratchFixedCost
// steps.
func createScratchGain(regions []dmstats.Region, ids []uint64) int {
	n := len(ids)
	if n < 3 {
		return 0
	}
	below := 0 // existing regions listed before the scratch region
	firstPrecise := -1
	for i, r := range regions {
		if r.Precise && firstPrecise < 0 {
			firstPrecise = i
		}
		if r.ID < ids[1] {
			below++
		}
	}
	if firstPrecise >= 0 && firstPrecise < below {
		return 0 // a precise region before the new ones stops the rescans already
	}
	newBefore := n // new regions that come before the first precise region
	if firstPrecise >= 0 {
		pid := regions[firstPrecise].ID
		newBefore = 0
		for _, id := range ids {
			if id < pid {
				newBefore++
			}
		}
	}
	e := len(regions)
	gain := 0
	for i := 2; i < n; i++ {
		scan := e + i + 1 // the list's length once region i is in
		if firstPrecise >= 0 {
			scan = min(scan, firstPrecise+min(i+1, newBefore)+1)
		}
		gain += scan - (below + 2)
	}
	return gain - (n - 2) - 3*(e+n) - dmstats.ScratchFixedCost
}
