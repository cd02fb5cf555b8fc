package filemap

import "fmt"

// The lines below are the ones lvm2's dmstats prints, so that scripts
// reading either tool's output keep working.

// CreatedLine is the report of a grouped Create:
// "<path>: Created new group with N region(s) as group ID G.".
func CreatedLine(path string, res Result) string {
	return fmt.Sprintf("%s: Created new group with %d region(s) as group ID %d.", path, len(res.Regions), res.GroupID)
}

// RegionLines are the report of a Create with NoGroup, one line per region:
// "<path>: Created new region with 1 area as region ID R.".
func RegionLines(path string, res Result) []string {
	lines := make([]string, len(res.Regions))
	for i, id := range res.Regions {
		lines[i] = fmt.Sprintf("%s: Created new region with 1 area as region ID %d.", path, id)
	}
	return lines
}

// UpdatedLine is the report of an Update:
// "<path>: Updated group ID G with N region(s).". When the group's id
// changed, the line starts with "Group ID changed from X to Y", glued to
// the rest without a separator exactly as lvm2's dmstats prints it.
func UpdatedLine(path string, res Result) string {
	prefix := ""
	if res.GroupChanged {
		prefix = fmt.Sprintf("Group ID changed from %d to %d", res.OldGroupID, res.GroupID)
	}
	return fmt.Sprintf("%s%s: Updated group ID %d with %d region(s).", prefix, path, res.GroupID, len(res.Regions))
}
