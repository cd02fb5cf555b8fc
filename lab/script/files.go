package script

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/dmfm/dmfm/lib/filemap"
	"github.com/dmfm/dmfm/lib/units"
	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"
)

func init() {
	register("writefile", command{usage: "writefile FILE SIZE", neg: true, run: cmdWritefile})
	register("grow", command{usage: "grow FILE SIZE", neg: true, run: cmdGrow})
	register("fallocate", command{usage: "fallocate FILE OFF LEN", neg: true, run: cmdFallocate})
	register("punch", command{usage: "punch FILE OFF LEN", run: cmdPunch})
	register("fragment", command{usage: "fragment FILE N", run: cmdFragment})
	register("truncate", command{usage: "truncate FILE SIZE", run: cmdTruncate})
	register("rename", command{usage: "rename OLD NEW", run: cmdRename})
	register("unlink", command{usage: "unlink FILE", run: cmdUnlink})
	register("hold", command{usage: "hold FILE", run: cmdHold})
	register("release", command{usage: "release FILE", run: cmdRelease})
	register("sync", command{usage: "sync [FILE]", run: cmdSync})
	register("readfile", command{usage: "readfile FILE", run: cmdReadfile})
}

// sizeArg parses args[i] as a size or fails with the usage.
func sizeArg(ts *testscript.TestScript, usage, what, s string) int64 {
	n, err := units.ParseSize(s)
	if err != nil {
		usageErr(ts, usage, "%s: %v", what, err)
	}
	return n
}

// fill writes n bytes of a recognisable pattern to w.
func fill(w io.Writer, n int64) error {
	var buf [1 << 16]byte
	for i := range buf {
		buf[i] = byte('a' + i%26)
	}
	for n > 0 {
		k := int64(len(buf))
		if n < k {
			k = n
		}
		if _, err := w.Write(buf[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// outcome ends a command that may be expected to fail (the ! prefix): the
// error, if any, goes to stderr and must be there exactly when neg is set.
func outcome(ts *testscript.TestScript, neg bool, what string, err error) {
	switch {
	case err != nil && neg:
		fmt.Fprintf(ts.Stderr(), "%s: %v\n", what, err)
	case err != nil:
		ts.Fatalf("%s: %v", what, err)
	case neg:
		ts.Fatalf("%s succeeded unexpectedly", what)
	}
}

func cmdWritefile(ts *testscript.TestScript, _ *state, neg bool, args []string) {
	const usage = "writefile FILE SIZE"
	nargs(ts, usage, args, 2, 2)
	size := sizeArg(ts, usage, "SIZE", args[1])
	outcome(ts, neg, "writefile "+args[0], func() error {
		f, err := os.OpenFile(ts.MkAbs(args[0]), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := fill(f, size); err != nil {
			return err
		}
		return settle(f, size)
	}())
}

func cmdGrow(ts *testscript.TestScript, _ *state, neg bool, args []string) {
	const usage = "grow FILE SIZE"
	nargs(ts, usage, args, 2, 2)
	size := sizeArg(ts, usage, "SIZE", args[1])
	f, err := os.OpenFile(ts.MkAbs(args[0]), os.O_WRONLY|os.O_APPEND, 0)
	ts.Check(err)
	defer f.Close()
	fi, err := f.Stat()
	ts.Check(err)
	if size <= fi.Size() {
		ts.Fatalf("grow %s to %d bytes: it already has %d (use truncate to shrink)", args[0], size, fi.Size())
	}
	outcome(ts, neg, "grow "+args[0], func() error {
		if err := fill(f, size-fi.Size()); err != nil {
			return err
		}
		return settle(f, size)
	}())
}

// settle makes the layout of a file just written to size bytes the same on
// every machine: it syncs the data, then truncates the file to the size it
// already has. On xfs the truncate drops the speculative preallocation past
// EOF that writeback may have turned into real blocks; whether xfs's own
// trim on close gets to them first depends on timing (a CI machine once
// kept 64 KiB of them, so a script that expected its 128 KiB file in one
// 256-sector extent saw 384). Elsewhere it changes nothing.
func settle(f *os.File, size int64) error {
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("drop preallocation past EOF: %w", err)
	}
	return f.Sync()
}

func offLen(ts *testscript.TestScript, usage string, args []string) (int64, int64) {
	off := sizeArg(ts, usage, "OFF", args[1])
	n := sizeArg(ts, usage, "LEN", args[2])
	if n == 0 {
		usageErr(ts, usage, "LEN is zero")
	}
	return off, n
}

func cmdFallocate(ts *testscript.TestScript, _ *state, neg bool, args []string) {
	const usage = "fallocate FILE OFF LEN"
	nargs(ts, usage, args, 3, 3)
	off, n := offLen(ts, usage, args)
	f, err := os.OpenFile(ts.MkAbs(args[0]), os.O_WRONLY|os.O_CREATE, 0o644)
	ts.Check(err)
	defer f.Close()
	outcome(ts, neg, fmt.Sprintf("fallocate %s %d+%d", args[0], off, n), func() error {
		if err := unix.Fallocate(int(f.Fd()), 0, off, n); err != nil {
			return err
		}
		return f.Sync()
	}())
}

func cmdPunch(ts *testscript.TestScript, _ *state, _ bool, args []string) {
	const usage = "punch FILE OFF LEN"
	nargs(ts, usage, args, 3, 3)
	off, n := offLen(ts, usage, args)
	f, err := os.OpenFile(ts.MkAbs(args[0]), os.O_WRONLY, 0)
	ts.Check(err)
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n); err != nil {
		ts.Fatalf("punch %s %d+%d: %v", args[0], off, n, err)
	}
	ts.Check(f.Sync())
}

// MaxFragments bounds fragment's N.
const MaxFragments = 100000

// cmdFragment makes FILE hold exactly N extents that are not physically
// adjacent (so file mapping cannot merge them): it writes 2N-1 blocks in
// one go (a fresh file system places them contiguously), then punches every
// other block out. The file ends up sparse, N blocks of data with a
// one-block hole between each two.
func cmdFragment(ts *testscript.TestScript, _ *state, _ bool, args []string) {
	const usage = "fragment FILE N"
	nargs(ts, usage, args, 2, 2)
	n, err := strconv.Atoi(args[1])
	if err != nil || n < 1 || n > MaxFragments {
		usageErr(ts, usage, "N %q: want a number of extents from 1 to %d", args[1], MaxFragments)
	}
	name := ts.MkAbs(args[0])
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	ts.Check(err)
	defer f.Close()
	var sfs unix.Statfs_t
	ts.Check(unix.Fstatfs(int(f.Fd()), &sfs))
	bs := sfs.Bsize
	if err := fill(f, int64(2*n-1)*bs); err != nil {
		ts.Fatalf("fragment %s: %v", args[0], err)
	}
	ts.Check(f.Sync())
	for i := 1; i < 2*n-1; i += 2 {
		if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, int64(i)*bs, bs); err != nil {
			ts.Fatalf("fragment %s: punch block %d: %v", args[0], i, err)
		}
	}
	ts.Check(f.Sync())
	rs, err := filemap.Ranges(f)
	if err != nil {
		ts.Fatalf("fragment %s: %v", args[0], err)
	}
	if len(rs) != n {
		ts.Fatalf("fragment %s: the file system made %d extents, want %d:\n%s", args[0], len(rs), n, formatRanges(rs))
	}
}

func cmdTruncate(ts *testscript.TestScript, _ *state, _ bool, args []string) {
	const usage = "truncate FILE SIZE"
	nargs(ts, usage, args, 2, 2)
	size := sizeArg(ts, usage, "SIZE", args[1])
	f, err := os.OpenFile(ts.MkAbs(args[0]), os.O_WRONLY|os.O_CREATE, 0o644)
	ts.Check(err)
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		ts.Fatalf("truncate %s to %d: %v", args[0], size, err)
	}
	ts.Check(f.Sync())
}

func cmdRename(ts *testscript.TestScript, _ *state, _ bool, args []string) {
	nargs(ts, "rename OLD NEW", args, 2, 2)
	if err := unix.Rename(ts.MkAbs(args[0]), ts.MkAbs(args[1])); err != nil {
		ts.Fatalf("rename %s %s: %v", args[0], args[1], err)
	}
}

func cmdUnlink(ts *testscript.TestScript, _ *state, _ bool, args []string) {
	nargs(ts, "unlink FILE", args, 1, 1)
	if err := unix.Unlink(ts.MkAbs(args[0])); err != nil {
		ts.Fatalf("unlink %s: %v", args[0], err)
	}
}

func cmdHold(ts *testscript.TestScript, st *state, _ bool, args []string) {
	nargs(ts, "hold FILE", args, 1, 1)
	name := ts.MkAbs(args[0])
	if _, ok := st.held[name]; ok {
		ts.Fatalf("hold %s: already held", args[0])
	}
	f, err := os.Open(name)
	ts.Check(err)
	st.held[name] = f
	ts.Defer(func() {
		if st.held[name] == f {
			f.Close()
			delete(st.held, name)
		}
	})
}

func cmdRelease(ts *testscript.TestScript, st *state, _ bool, args []string) {
	nargs(ts, "release FILE", args, 1, 1)
	name := ts.MkAbs(args[0])
	f, ok := st.held[name]
	if !ok {
		ts.Fatalf("release %s: not held (hold it first, by the same name)", args[0])
	}
	delete(st.held, name)
	ts.Check(f.Close())
}

func cmdSync(ts *testscript.TestScript, _ *state, _ bool, args []string) {
	nargs(ts, "sync [FILE]", args, 0, 1)
	if len(args) == 0 {
		unix.Sync()
		return
	}
	f, err := os.OpenFile(ts.MkAbs(args[0]), os.O_RDONLY, 0)
	ts.Check(err)
	defer f.Close()
	if err := f.Sync(); err != nil && !errors.Is(err, unix.EINVAL) {
		ts.Fatalf("sync %s: %v", args[0], err)
	}
}

// cmdReadfile reads the whole file with O_DIRECT, so that every byte is
// read from the device (and counted by dm-stats) rather than from the page
// cache, and prints how many bytes it read.
func cmdReadfile(ts *testscript.TestScript, _ *state, _ bool, args []string) {
	nargs(ts, "readfile FILE", args, 1, 1)
	f, err := os.OpenFile(ts.MkAbs(args[0]), os.O_RDONLY|unix.O_DIRECT, 0)
	ts.Check(err)
	defer f.Close()
	// O_DIRECT wants a buffer aligned to the logical block size: mmap'd
	// memory is page aligned.
	buf, err := unix.Mmap(-1, 0, 1<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	ts.Check(err)
	defer unix.Munmap(buf)
	var total int64
	for {
		n, err := f.Read(buf)
		total += int64(n)
		if err == io.EOF || (err == nil && n == 0) {
			break
		}
		if err != nil {
			ts.Fatalf("readfile %s at %d: %v", args[0], total, err)
		}
	}
	fmt.Fprintf(ts.Stdout(), "read %d bytes\n", total)
}

// formatRanges writes one START+LENGTH line per range.
func formatRanges(rs []filemap.Range) string {
	var b []byte
	for _, r := range rs {
		b = fmt.Appendf(b, "%d+%d\n", r.Start, r.Length)
	}
	return string(b)
}
