package fiemap

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

const blk = 4096

// fileCase builds one kind of file at path.
type fileCase struct {
	name  string
	build func(t *testing.T, f *os.File)
	// check, when set, verifies properties of the extents beyond the oracle.
	check func(t *testing.T, exts []Extent)
}

// payload returns n bytes of deterministic pseudo-random data.
func payload(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func writeAt(t *testing.T, f *os.File, off int64, n int) {
	t.Helper()
	if _, err := f.WriteAt(payload(uint64(off)+1, n), off); err != nil {
		t.Fatal(err)
	}
}

func fallocate(t *testing.T, f *os.File, mode uint32, off, n int64) {
	t.Helper()
	if err := unix.Fallocate(int(f.Fd()), mode, off, n); err != nil {
		t.Fatalf("fallocate %s: %v", f.Name(), err)
	}
}

// manyHoles is more written blocks separated by holes than one FIEMAP batch
// holds, so mapping needs several ioctl calls.
const manyHoles = DefaultBatch + 88

var fileCases = []fileCase{
	{
		name:  "empty",
		build: func(t *testing.T, f *os.File) {},
		check: func(t *testing.T, exts []Extent) {
			if len(exts) != 0 {
				t.Errorf("empty file has extents %v", exts)
			}
		},
	},
	{
		name:  "one-write",
		build: func(t *testing.T, f *os.File) { writeAt(t, f, 0, 64<<10) },
		check: wantCoverage(0, 64<<10),
	},
	{
		name: "sparse",
		build: func(t *testing.T, f *os.File) {
			for _, b := range []int64{0, 10, 11, 100, 1000, 4096} {
				writeAt(t, f, b*blk, blk)
			}
		},
		check: func(t *testing.T, exts []Extent) {
			wantLogicalStarts(t, exts, []uint64{0, 10 * blk, 100 * blk, 1000 * blk, 4096 * blk})
		},
	},
	{
		name: "many-holes",
		build: func(t *testing.T, f *os.File) {
			for i := range int64(manyHoles) {
				writeAt(t, f, 2*i*blk, blk)
			}
		},
		check: func(t *testing.T, exts []Extent) {
			if n := len(written(exts)); n != manyHoles {
				t.Errorf("%d written extents, want %d (one per written block)", n, manyHoles)
			}
		},
	},
	{
		name:  "fallocated",
		build: func(t *testing.T, f *os.File) { fallocate(t, f, 0, 0, 1<<20) },
		check: func(t *testing.T, exts []Extent) {
			wantCoverage(0, 1<<20)(t, exts)
			for _, e := range exts {
				if e.Flags&ExtentUnwritten == 0 {
					t.Errorf("fallocated extent %v is not unwritten", e)
				}
			}
		},
	},
	{
		name: "fallocated-partly-written",
		build: func(t *testing.T, f *os.File) {
			fallocate(t, f, 0, 0, 1<<20)
			writeAt(t, f, 256<<10, 64<<10)
		},
		check: func(t *testing.T, exts []Extent) {
			wantCoverage(0, 1<<20)(t, exts)
			written := false
			for _, e := range exts {
				if e.Logical == 256<<10 && e.Flags&ExtentUnwritten == 0 {
					written = true
				}
			}
			if !written {
				t.Errorf("no written extent at 256KiB in %v", exts)
			}
		},
	},
	{
		name: "hole-at-end",
		build: func(t *testing.T, f *os.File) {
			writeAt(t, f, 0, 3*blk)
			if err := f.Truncate(10 << 20); err != nil {
				t.Fatal(err)
			}
		},
		check: wantCoverage(0, 3*blk),
	},
	{
		name: "preallocated-past-eof",
		build: func(t *testing.T, f *os.File) {
			writeAt(t, f, 0, 2*blk)
			fallocate(t, f, unix.FALLOC_FL_KEEP_SIZE, 2*blk, 256<<10)
		},
	},
	{
		name: "unaligned-tail",
		build: func(t *testing.T, f *os.File) {
			writeAt(t, f, 0, 3*blk+100)
		},
	},
}

// wantCoverage checks that the extents cover exactly [off, off+n) without gaps.
func wantCoverage(off, n uint64) func(t *testing.T, exts []Extent) {
	return func(t *testing.T, exts []Extent) {
		t.Helper()
		pos := off
		for _, e := range exts {
			if e.Logical != pos {
				t.Errorf("extents %v: gap or overlap at %d", exts, pos)
				return
			}
			pos = e.End()
		}
		if pos != off+n {
			t.Errorf("extents %v end at %d, want %d", exts, pos, off+n)
		}
	}
}

func wantLogicalStarts(t *testing.T, exts []Extent, starts []uint64) {
	t.Helper()
	// Adjacent written blocks may share one extent, and XFS may fill the
	// holes between them with unwritten extents: every expected start
	// must begin an extent, and every extent must begin at an expected start.
	set := map[uint64]bool{}
	for _, s := range starts {
		set[s] = true
	}
	got := map[uint64]bool{}
	for _, e := range written(exts) {
		if !set[e.Logical] {
			t.Errorf("unexpected extent %v", e)
		}
		got[e.Logical] = true
	}
	for _, s := range starts {
		if !got[s] {
			t.Errorf("no extent starts at %d in %v", s, exts)
		}
	}
}

// written returns the extents that hold data (not unwritten preallocation).
func written(exts []Extent) []Extent {
	var out []Extent
	for _, e := range exts {
		if e.Flags&ExtentUnwritten == 0 {
			out = append(out, e)
		}
	}
	return out
}

// checkInvariants verifies what FIEMAP promises for any file: extents in
// ascending, non-overlapping logical order, non-zero lengths, and the last
// one (only) flagged ExtentLast.
func checkInvariants(t *testing.T, exts []Extent) {
	t.Helper()
	var pos uint64
	for i, e := range exts {
		if e.Length == 0 {
			t.Errorf("extent %d %v has zero length", i, e)
		}
		if e.Logical < pos {
			t.Errorf("extent %d %v overlaps or precedes the previous one", i, e)
		}
		pos = e.End()
		last := e.Flags&ExtentLast != 0
		if last != (i == len(exts)-1) {
			t.Errorf("extent %d of %d %v: last flag %v", i, len(exts), e, last)
		}
	}
}

// requireFiemap skips when dir's filesystem cannot answer FIEMAP at all.
func requireFiemap(t *testing.T, dir string) {
	t.Helper()
	f, err := os.CreateTemp(dir, "probe")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := Extents(f, false); errors.Is(err, ErrNotSupported) {
		var st unix.Statfs_t
		_ = unix.Statfs(dir, &st)
		t.Skipf("%s (fs magic %#x) does not support FIEMAP; set TMPDIR to a directory on ext4 or xfs", dir, st.Type)
	} else if err != nil {
		t.Fatal(err)
	}
}

// runCases builds every file case in dir and compares Extents with filefrag.
// Each built file is passed to also, if set, for further checks.
func runCases(t *testing.T, dir string, also func(t *testing.T, f *os.File, exts []Extent)) {
	for _, tc := range fileCases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			tc.build(t, f)
			got, err := Extents(f, true)
			if err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, got)
			want := filefrag(t, path)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("Extents differ from filefrag\n got  %v\n want %v", got, want)
			}
			if tc.check != nil {
				tc.check(t, got)
			}
			if also != nil {
				also(t, f, got)
			}
		})
	}
}

func TestExtentsMatchFilefrag(t *testing.T) {
	dir := t.TempDir()
	requireFiemap(t, dir)
	runCases(t, dir, nil)
}

func TestBatchSizes(t *testing.T) {
	dir := t.TempDir()
	requireFiemap(t, dir)
	f, err := os.Create(filepath.Join(dir, "holes"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := range int64(37) {
		writeAt(t, f, 3*i*blk, blk*int(1+i%2))
	}
	want, err := Extents(f, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 37 {
		t.Fatalf("%d extents, want 37: %v", len(want), want)
	}
	for _, batch := range []int{1, 2, 3, 36, 37, 38, 1000} {
		t.Run(fmt.Sprint(batch), func(t *testing.T) {
			got, err := Map(f, Request{Batch: batch})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("batch %d:\n got  %v\n want %v", batch, got, want)
			}
		})
	}
}

func TestMapRange(t *testing.T) {
	dir := t.TempDir()
	requireFiemap(t, dir)
	f, err := os.Create(filepath.Join(dir, "range"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, b := range []int64{0, 10, 20, 30} {
		writeAt(t, f, b*blk, blk)
	}
	all, err := Extents(f, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 4 {
		t.Fatalf("want 4 extents, got %v", all)
	}
	tests := []struct {
		name          string
		start, length uint64
		want          []Extent
	}{
		{"from-second", 10 * blk, 0, all[1:]},
		{"middle-two", 10 * blk, 11 * blk, all[1:3]},
		{"inside-hole", 12 * blk, 5 * blk, nil},
		{"overlapping-start", 10*blk + 100, 1, all[1:2]},
		{"past-end", 31 * blk, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Map(f, Request{Start: tc.start, Length: tc.length, Batch: 1})
			if err != nil {
				t.Fatal(err)
			}
			// A ranged request flags its own last extent ExtentLast
			// (iomap does); compare without that flag.
			if fmt.Sprint(withoutLast(got)) != fmt.Sprint(withoutLast(tc.want)) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func withoutLast(exts []Extent) []Extent {
	var out []Extent
	for _, e := range exts {
		e.Flags &^= ExtentLast
		out = append(out, e)
	}
	return out
}

// Without FlagSync freshly written data on a delayed-allocation filesystem
// has no location yet; with it, every extent must be resolved.
func TestSyncResolvesDelayedAllocation(t *testing.T) {
	dir := t.TempDir()
	requireFiemap(t, dir)
	f, err := os.Create(filepath.Join(dir, "delalloc"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	writeAt(t, f, 0, 128<<10)
	exts, err := Extents(f, true)
	if err != nil {
		t.Fatal(err)
	}
	wantCoverage(0, 128<<10)(t, exts)
	for _, e := range exts {
		if e.Flags&(ExtentDelalloc|ExtentUnknown) != 0 {
			t.Errorf("after sync extent %v is still unresolved", e)
		}
	}
}

func TestErrors(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if _, err := Extents(r, true); !errors.Is(err, ErrNotSupported) {
		t.Errorf("pipe: got %v, want ErrNotSupported", err)
	}

	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := Map(f, Request{Batch: -1}); err == nil {
		t.Error("negative batch accepted")
	}
	if _, err := Map(f, Request{Start: 10, Length: MaxOffset}); err == nil {
		t.Error("overflowing range accepted")
	}
	f.Close()
	if _, err := Extents(f, false); err == nil {
		t.Error("closed file accepted")
	}
}

func TestFlagNames(t *testing.T) {
	tests := []struct {
		flags uint32
		want  string
	}{
		{0, ""},
		{ExtentLast, "last"},
		{ExtentLast | ExtentUnwritten, "last,unwritten"},
		{ExtentUnknown | ExtentDelalloc, "unknown,delalloc"},
		{ExtentShared | 0x80000, "shared,0x80000"},
	}
	for _, tc := range tests {
		if got := FlagNames(tc.flags); got != tc.want {
			t.Errorf("FlagNames(%#x) = %q, want %q", tc.flags, got, tc.want)
		}
	}
	e := Extent{Logical: 4096, Physical: 8192, Length: 512, Flags: ExtentLast}
	if got, want := e.String(), "4096+512@8192 [last]"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// dataMatches reads every written extent of f back from the raw device
// image at its physical offset and compares it with the file's content.
func dataMatches(image string) func(t *testing.T, f *os.File, exts []Extent) {
	return func(t *testing.T, f *os.File, exts []Extent) {
		img, err := os.Open(image)
		if err != nil {
			t.Fatal(err)
		}
		defer img.Close()
		fi, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range exts {
			if e.Flags&(ExtentUnknown|ExtentUnwritten|ExtentNotAligned|ExtentEncoded|ExtentDataEncrypted) != 0 {
				continue
			}
			n := e.Length
			if e.Logical >= uint64(fi.Size()) {
				continue
			}
			n = min(n, uint64(fi.Size())-e.Logical)
			want := make([]byte, n)
			if _, err := f.ReadAt(want, int64(e.Logical)); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, n)
			if _, err := img.ReadAt(got, int64(e.Physical)); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("extent %v: device bytes at the physical offset differ from the file's", e)
			}
		}
	}
}
