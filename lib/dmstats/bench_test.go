package dmstats

import (
	"strconv"
	"strings"
	"testing"
)

// listReply builds a @stats_list reply like a 2000-extent file map: one
// grouped leader with a quoted alias, members with "-" aux data, and a
// histogram on every region.
func listReply(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(strconv.Itoa(i))
		b.WriteString(": ")
		b.WriteString(strconv.Itoa(i * 16))
		b.WriteString("+8 8 dmstats ")
		if i == 0 {
			b.WriteString(`DMS_GROUP="my big file.img":0-` + strconv.Itoa(n-1) + "#-")
		} else {
			b.WriteString("-")
		}
		b.WriteString(" histogram:1,2,5,10,20,50,100\n")
	}
	return b.String()
}

// printReply builds a @stats_print reply of n areas with histograms.
func printReply(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(strconv.Itoa(i * 8))
		b.WriteString("+8 1234 5 9872 345 678 9 5424 1234 0 1500 1600 700 900 12:34:56:78:90:12:34:5\n")
	}
	return b.String()
}

func TestBenchFixtures(t *testing.T) {
	regions, err := ParseList(listReply(2000), "")
	if err != nil || len(regions) != 2000 || len(regions[1999].Bounds) != 7 {
		t.Fatalf("list: %d regions, %v", len(regions), err)
	}
	groups, warn := Groups(regions)
	if len(groups) != 1 || len(groups[0].Members) != 2000 || groups[0].Alias != "my big file.img" || warn != nil {
		t.Fatalf("groups: %+v %q", groups, warn)
	}
	areas, err := ParsePrint(printReply(2000))
	if err != nil || len(areas) != 2000 || areas[1999].Histogram[7] != 5 || areas[1999].Start != 1999*8 {
		t.Fatalf("print: %d areas, %v", len(areas), err)
	}
}

func BenchmarkParseList2000(b *testing.B) {
	reply := listReply(2000)
	b.SetBytes(int64(len(reply)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseList(reply, ""); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsePrint2000(b *testing.B) {
	reply := printReply(2000)
	b.SetBytes(int64(len(reply)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePrint(reply); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGroups2000(b *testing.B) {
	regions, err := ParseList(listReply(2000), "")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		Groups(regions)
	}
}
