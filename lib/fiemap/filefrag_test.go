package fiemap

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The tests use e2fsprogs' filefrag as an independent oracle: it calls
// FIEMAP itself and prints every extent the kernel returned.

// filefragFlags maps the flag names filefrag prints to FIEMAP extent flags.
var filefragFlags = map[string]uint32{
	"last":        ExtentLast,
	"unknown_loc": ExtentUnknown,
	"delalloc":    ExtentDelalloc,
	"encoded":     ExtentEncoded,
	"encrypted":   ExtentDataEncrypted,
	"not_aligned": ExtentNotAligned,
	"inline":      ExtentDataInline,
	"tail_packed": ExtentDataTail,
	"unwritten":   ExtentUnwritten,
	"merged":      ExtentMerged,
	"shared":      ExtentShared,
}

// One extent row of `filefrag -v`:
//
//	"   2:     4096..    6143:   25464832..  25466879:   2048:   25473024: last,unwritten,eof"
//
// The expected column is blank for extents that follow their predecessor.
var filefragRow = regexp.MustCompile(`^\s*(\d+):\s*(\d+)\.\.\s*(\d+):\s*(\d+)\.\.\s*(\d+):\s*(\d+):(?:\s*(\d+):)?\s*(\S*)\s*$`)

var filefragUnit = regexp.MustCompile(`\(\d+ blocks? of (\d+) bytes\)`)

// parseFilefrag reads the output of `filefrag -v` and returns its extents
// in bytes. The "eof" flag is filefrag's own (not a FIEMAP flag) and is
// dropped.
func parseFilefrag(out string) ([]Extent, error) {
	var unit uint64
	var exts []Extent
	sc := bufio.NewScanner(strings.NewReader(out))
	inTable := false
	for sc.Scan() {
		line := sc.Text()
		if m := filefragUnit.FindStringSubmatch(line); m != nil {
			u, err := strconv.ParseUint(m[1], 10, 64)
			if err != nil || u == 0 {
				return nil, fmt.Errorf("bad block size in %q", line)
			}
			unit = u
			continue
		}
		if strings.HasPrefix(strings.TrimSpace(line), "ext:") {
			inTable = true
			continue
		}
		if !inTable || strings.Contains(line, " found") {
			continue
		}
		m := filefragRow.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("unparsable filefrag row %q", line)
		}
		if unit == 0 {
			return nil, fmt.Errorf("filefrag row %q before the block size line", line)
		}
		n := make([]uint64, 6)
		for i := range n {
			v, err := strconv.ParseUint(m[i+1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("filefrag row %q: %w", line, err)
			}
			n[i] = v
		}
		if int(n[0]) != len(exts) {
			return nil, fmt.Errorf("filefrag row %q: extent %d out of order", line, n[0])
		}
		if n[2]-n[1]+1 != n[5] {
			return nil, fmt.Errorf("filefrag row %q: logical range does not match length", line)
		}
		e := Extent{Logical: n[1] * unit, Physical: n[3] * unit, Length: n[5] * unit}
		if m[8] != "" {
			for name := range strings.SplitSeq(m[8], ",") {
				// filefrag appends its own "eof" and may leave an
				// empty name before it (",eof").
				if name == "eof" || name == "" {
					continue
				}
				if f, ok := filefragFlags[name]; ok {
					e.Flags |= f
					continue
				}
				if strings.HasPrefix(name, "0x") {
					v, err := strconv.ParseUint(name[2:], 16, 32)
					if err == nil {
						e.Flags |= uint32(v)
						continue
					}
				}
				return nil, fmt.Errorf("filefrag row %q: unknown flag %q", line, name)
			}
		}
		exts = append(exts, e)
	}
	if !inTable && !strings.Contains(out, ": 0 extents found") {
		return nil, fmt.Errorf("no extent table in filefrag output:\n%s", out)
	}
	return exts, sc.Err()
}

// filefrag runs `filefrag -s -v -b512 path` (sync first, 512-byte units)
// and parses its output.
func filefrag(t *testing.T, path string) []Extent {
	t.Helper()
	bin, err := exec.LookPath("filefrag")
	if err != nil {
		t.Skipf("filefrag (e2fsprogs) is needed as the test oracle: %v", err)
	}
	out, err := exec.Command(bin, "-s", "-v", "-b512", path).CombinedOutput()
	if err != nil {
		t.Fatalf("filefrag %s: %v\n%s", path, err, out)
	}
	exts, err := parseFilefrag(string(out))
	if err != nil {
		t.Fatalf("filefrag %s: %v", path, err)
	}
	return exts
}

func TestParseFilefrag(t *testing.T) {
	tests := []struct {
		file    string
		want    []Extent
		wantErr bool
	}{
		{file: "filefrag-ext4.txt", want: []Extent{
			{Logical: 80 * 512, Physical: 25469008 * 512, Length: 8 * 512},
			{Logical: 800 * 512, Physical: 25469728 * 512, Length: 24 * 512},
			{Logical: 4096 * 512, Physical: 25464832 * 512, Length: 2048 * 512, Flags: ExtentLast | ExtentUnwritten},
		}},
		{file: "filefrag-empty.txt", want: nil},
		{file: "filefrag-flags.txt", want: []Extent{
			{Logical: 0, Physical: 0, Length: 8 * 512, Flags: ExtentUnknown | ExtentDelalloc},
			{Logical: 8 * 512, Physical: 1024 * 512, Length: 8 * 512, Flags: ExtentShared | ExtentDataTail | ExtentNotAligned | 0x4000 | ExtentLast},
		}},
		{file: "filefrag-eof.txt", want: []Extent{
			{Logical: 0, Physical: 319413536 * 512, Length: 16 * 512},
			{Logical: 16 * 512, Physical: 25736704 * 512, Length: 512 * 512, Flags: ExtentLast | ExtentUnwritten},
		}},
		{file: "filefrag-garbage.txt", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile("testdata/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseFilefrag(string(data))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("parsed %v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}
