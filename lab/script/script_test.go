package script

import (
	"bytes"
	"encoding/xml"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dmfm/dmfm/lab"
	"github.com/dmfm/dmfm/lib/fiemap"
	"github.com/dmfm/dmfm/lib/filemap"
	"github.com/rogpeppe/go-internal/txtar"
)

func TestParseTimeout(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"10s", 10 * time.Second, true},
		{"500ms", 500 * time.Millisecond, true},
		{"2", 2 * time.Second, true},
		{"0", 0, true},
		{"soon", 0, false},
		{"-1s", 0, false},
	} {
		got, err := parseTimeout(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseTimeout(%q) = %v, %v; want %v (ok %v)", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestKernelVersion(t *testing.T) {
	for _, c := range []struct {
		release    string
		maj, min   int
		wantErr    bool
		cond       string
		wantResult bool
	}{
		{"6.1.0-28-amd64", 6, 1, false, ">=6.1", true},
		{"6.1.0-28-amd64", 6, 1, false, ">6.1", false},
		{"6.1.0-28-amd64", 6, 1, false, "<6.2", true},
		{"6.12.3", 6, 12, false, ">6.2", true},
		{"5.10.0", 5, 10, false, "<=5.10", true},
		{"5.10.0", 5, 10, false, "==5.10", true},
		{"5.10.0", 5, 10, false, "==5.1", false},
		{"4.19", 4, 19, false, ">=5.0", false},
		{"weird", 0, 0, true, "", false},
	} {
		maj, min, err := kernelVersion(c.release)
		if (err != nil) != c.wantErr || maj != c.maj || min != c.min {
			t.Errorf("kernelVersion(%q) = %d.%d, %v", c.release, maj, min, err)
			continue
		}
		if c.wantErr {
			continue
		}
		m := kernelCondRE.FindStringSubmatch(c.cond)
		if m == nil {
			t.Fatalf("bad test condition %q", c.cond)
		}
		var wmaj, wmin int
		for i, s := range m[2:] {
			n := 0
			for _, r := range s {
				n = n*10 + int(r-'0')
			}
			if i == 0 {
				wmaj = n
			} else {
				wmin = n
			}
		}
		if got := compareVersion(maj, min, m[1], wmaj, wmin); got != c.wantResult {
			t.Errorf("%s %s: got %v, want %v", c.release, c.cond, got, c.wantResult)
		}
	}
}

func TestConditionErrors(t *testing.T) {
	for cond, want := range map[string]string{
		"frobnicate": `unknown condition "frobnicate"`,
		"kernel:6":   "want an operator",
		"kernel:>6":  "want an operator",
		"target:":    "bad target name",
		"target:a b": "bad target name",
		"libdm:1.02": "want an operator",
		"libdm:>=1":  "want an operator",
	} {
		if _, err := Condition(cond); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Condition(%q) error = %v, want %q", cond, err, want)
		}
	}
	if ok, err := Condition("kernel:>=2.6"); err != nil || !ok {
		t.Errorf("Condition(kernel:>=2.6) = %v, %v; every kernel this runs on is newer", ok, err)
	}
	_, noDmsetup := exec.LookPath("dmsetup")
	if ok, err := Condition("libdm:>=1.0.0"); err != nil || ok != (noDmsetup == nil) {
		t.Errorf("Condition(libdm:>=1.0.0) = %v, %v (dmsetup on PATH: %v)", ok, err, noDmsetup == nil)
	}
	if ok, err := Condition("libdm:<1.0.0"); err != nil || ok {
		t.Errorf("Condition(libdm:<1.0.0) = %v, %v", ok, err)
	}
	if ok, err := Condition("root"); err != nil || ok != (os.Geteuid() == 0) {
		t.Errorf("Condition(root) = %v, %v", ok, err)
	}
}

func TestNormalizer(t *testing.T) {
	st := &state{
		work:   "/tmp/go-test-script1/script-x",
		labDir: "/tmp/dmfm-lab/script-123",
		labs: []*labEntry{
			{lab: &lab.Lab{DMName: "ts-x-abc123", Major: 254, Minor: 3, LoopDev: "/dev/loop7",
				Mountpoint: "/tmp/dmfm-lab/script-123/ts-x-abc123/mnt"}, loopNo: "7:7"},
			{lab: &lab.Lab{DMName: "ts-x-two-def456", Major: 254, Minor: 12, LoopDev: "/dev/loop12"}, loopNo: "7:12"},
		},
	}
	n := st.normalizer()
	for _, c := range []struct{ in, want string }{
		{"/tmp/dmfm-lab/script-123/ts-x-abc123/mnt/f: Created", "$MNT/f: Created"},
		{"/dev/mapper/ts-x-abc123 on /tmp/dmfm-lab/script-123/ts-x-abc123/mnt", "/dev/mapper/LABDEV on $MNT"},
		{"backing /tmp/dmfm-lab/script-123/ts-x-abc123/backing.img", "backing $LABDIR/LABDEV/backing.img"},
		{"0 131072 linear 7:7 0", "0 131072 linear LABLOOPNO 0"},
		{"dev 254:3 and 254:12, not 254:30", "dev LABDEVNO and LABDEVNO2, not 254:30"},
		{"254:3 254:3", "LABDEVNO LABDEVNO"},
		{"name:254:3:uuid", "name:254:3:uuid"},
		{"/sys/devices/virtual/block/dm-3", "/sys/devices/virtual/block/LABDM"},
		{"dm-30 dm-12", "dm-30 LABDM2"},
		{"/dev/loop7 and /dev/loop12 and /dev/loop70", "/dev/LABLOOP and /dev/LABLOOP2 and /dev/loop70"},
		{"ts-x-two-def456 ts-x-abc123", "LABDEV2 LABDEV"},
		{"/tmp/go-test-script1/script-x/f", "$WORK/f"},
		{"nothing here", "nothing here"},
	} {
		if got := n.apply(c.in); got != c.want {
			t.Errorf("apply(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

func TestCover(t *testing.T) {
	r := func(s, l uint64) filemap.Range { return filemap.Range{Start: s, Length: l} }
	for _, c := range []struct {
		in      []filemap.Range
		want    []filemap.Range
		overlap string
	}{
		{nil, nil, ""},
		{[]filemap.Range{r(0, 8)}, []filemap.Range{r(0, 8)}, ""},
		{[]filemap.Range{r(0, 8), r(8, 8), r(32, 8)}, []filemap.Range{r(0, 16), r(32, 8)}, ""},
		{[]filemap.Range{r(0, 8), r(4, 8)}, []filemap.Range{r(0, 12)}, "4+8 overlaps 0+8"},
		{[]filemap.Range{r(0, 16), r(4, 4)}, []filemap.Range{r(0, 16)}, "4+4 overlaps 0+16"},
	} {
		got, overlap := cover(c.in)
		if len(got) != len(c.want) || overlap != c.overlap {
			t.Errorf("cover(%v) = %v, %q; want %v, %q", c.in, got, overlap, c.want, c.overlap)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("cover(%v) = %v; want %v", c.in, got, c.want)
				break
			}
		}
	}
	rs := []filemap.Range{r(30, 2), r(10, 8), r(10, 4), r(20, 1)}
	sortRanges(rs)
	if got := formatRanges(rs); got != "10+4\n10+8\n20+1\n30+2\n" {
		t.Errorf("sortRanges: got %q", got)
	}
}

func TestExitReason(t *testing.T) {
	for _, c := range []struct{ log, want string }{
		{"level=INFO msg=watching group=0 path=/m/f mode=inode\nlevel=INFO msg=exiting path=/m/f reason=\"file unlinked and closed\"\n", "file unlinked and closed"},
		{"level=INFO msg=exiting path=/m/f reason=stopped\n", "stopped"},
		{"level=ERROR msg=\"giving up\" path=/m/f err=\"group 0: boom\"\n", "error: group 0: boom"},
		{"dmfilemapd: fd 9: bad file descriptor\n", "error: fd 9: bad file descriptor"},
		{"level=INFO msg=watching group=0\n", "no exit line in its log"},
		{"", "no exit line in its log"},
	} {
		if got := exitReason(c.log); got != c.want {
			t.Errorf("exitReason(%q) = %q, want %q", c.log, got, c.want)
		}
	}
	if got := cleanLog("time=2026-01-01T00:00:00Z level=INFO msg=watching group=0 pid=42\n"); got != "level=INFO msg=watching group=0\n" {
		t.Errorf("cleanLog: got %q", got)
	}
}

func TestParseSyslog(t *testing.T) {
	for _, c := range []struct {
		in   string
		want syslogLine
		ok   bool
	}{
		{"<30>Nov 30 10:11:49 dmfilemapd[115]: level=INFO msg=watching group=0\n", syslogLine{"dmfilemapd", 115, "level=INFO msg=watching group=0"}, true},
		{"<30>Nov  3 01:02:03 host dmfilemapd[7]: x", syslogLine{"dmfilemapd", 7, "x"}, true},
		{"<14>2026-11-30T10:11:49.123+00:00 host dmfilemapd[9]: y", syslogLine{"dmfilemapd", 9, "y"}, true},
		{"garbage", syslogLine{}, false},
	} {
		got, ok := parseSyslog(c.in)
		if ok != c.ok || got != c.want {
			t.Errorf("parseSyslog(%q) = %+v, %v; want %+v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestFilesystems(t *testing.T) {
	got, err := Filesystems("testdata/matrix/good")
	if err != nil || strings.Join(got, ",") != "xfs,ext4" {
		t.Errorf("good: %v, %v", got, err)
	}
	if got, err := Filesystems("testdata/matrix/none-such"); err != nil || got != nil {
		t.Errorf("no file: %v, %v; want nil, nil", got, err)
	}
	if _, err := Filesystems("testdata/matrix/bad"); err == nil || !strings.Contains(err.Error(), `:1: unknown file system "btrfs"`) {
		t.Errorf("bad: %v", err)
	}
	if _, err := Filesystems("testdata/matrix/empty"); err == nil || !strings.Contains(err.Error(), "names no file system") {
		t.Errorf("empty: %v", err)
	}
}

func TestUsageCoversEveryCommand(t *testing.T) {
	u := Usage()
	cmds := Commands()
	if len(u) != len(cmds) {
		t.Fatalf("%d usage lines for %d commands", len(u), len(cmds))
	}
	for _, line := range u {
		name, _, _ := strings.Cut(line, " ")
		if _, ok := cmds[name]; !ok {
			t.Errorf("usage %q does not start with a command name", line)
		}
	}
}

func TestReportJUnit(t *testing.T) {
	var out bytes.Buffer
	r := &Report{Out: &out, Logs: true}
	r.Add(Result{Suite: "create/xfs", Name: "b", Status: Pass, Duration: 1500 * time.Millisecond, Log: "PASS\n"})
	r.Add(Result{Suite: "create/xfs", Name: "a", Status: Fail, Duration: 2 * time.Second,
		Log: "> fragment f 0\nFAIL: testdata/a.txtar:1: N \"0\": bad <&> \x01\n"})
	r.Add(Result{Suite: "bugs", Name: "c", Status: Skip, Log: "> skip 'needs pgrep'\nneeds pgrep\n"})
	for _, re := range []string{
		`(?m)^ok    create/xfs/b    1\.50s$`,
		`(?m)^FAIL  create/xfs/a    2\.00s$`,
		`(?m)^    FAIL: testdata/a\.txtar:1: `,
		`(?m)^skip  bugs/c +0\.00s  \(needs pgrep\)$`,
	} {
		if !regexp.MustCompile(re).MatchString(out.String()) {
			t.Errorf("report lines do not match %s:\n%s", re, out.String())
		}
	}
	if p, f, s := r.Counts(); p != 1 || f != 1 || s != 1 {
		t.Errorf("Counts = %d, %d, %d", p, f, s)
	}
	var x bytes.Buffer
	if err := r.WriteJUnit(&x, "testscripts"); err != nil {
		t.Fatal(err)
	}
	var doc junitSuites
	if err := xml.Unmarshal(x.Bytes(), &doc); err != nil {
		t.Fatalf("JUnit does not parse: %v\n%s", err, x.String())
	}
	if doc.Tests != 3 || doc.Failures != 1 || doc.Skipped != 1 || len(doc.Suites) != 2 {
		t.Fatalf("JUnit counts: %+v", doc)
	}
	bugs, create := doc.Suites[0], doc.Suites[1]
	if bugs.Name != "bugs" || create.Name != "create/xfs" || create.Tests != 2 || create.Failures != 1 || create.Time != "3.500" {
		t.Errorf("suites: %+v / %+v", bugs, create)
	}
	a := create.Cases[0]
	if a.Name != "a" || a.Classname != "testscripts.create.xfs" || a.Failure == nil ||
		a.Failure.Message != `testdata/a.txtar:1: N "0": bad <&> `+"\uFFFD" || !strings.Contains(a.Failure.Body, "> fragment f 0") {
		t.Errorf("failed case: %+v %+v", a, a.Failure)
	}
	if c := bugs.Cases[0]; c.Skipped == nil || c.Skipped.Message != "needs pgrep" {
		t.Errorf("skipped case: %+v", c)
	}
}

// fiemapWorks reports whether dir's file system answers FIEMAP.
func fiemapWorks(t *testing.T, dir string) bool {
	f, err := os.CreateTemp(dir, "fiemap")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	f.WriteString("x")
	_, err = fiemap.Extents(f, true)
	return err == nil
}

// hostOptions runs scripts under a fresh directory of the test's.
func hostOptions(t *testing.T, out *bytes.Buffer) RunOptions {
	return RunOptions{Out: out, Timeout: time.Minute}
}

// TestPassingScripts runs the scripts in testdata/pass, which need no
// device-mapper, through RunFiles and through RunTest.
func TestPassingScripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/pass/*.txtar")
	if !fiemapWorks(t, os.TempDir()) {
		t.Logf("%s has no FIEMAP: leaving out extents.txtar", os.TempDir())
		files = slicesDelete(files, "testdata/pass/extents.txtar")
	}
	var out bytes.Buffer
	rep, err := RunFiles(files, hostOptions(t, &out))
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range rep.Results() {
		if res.Status != Pass {
			t.Errorf("%s/%s: %s\n%s", res.Suite, res.Name, res.Status, res.Log)
		}
		if res.Suite != "pass" {
			t.Errorf("%s: suite %q, want pass", res.Name, res.Suite)
		}
	}
	if len(rep.Results()) != len(files) {
		t.Errorf("%d results for %d scripts:\n%s", len(rep.Results()), len(files), out.String())
	}

	t.Run("gotest", func(t *testing.T) {
		goRep := &Report{}
		p := Params(Config{})
		p.Files = files
		t.Run("pass", func(t *testing.T) { RunTest(t, "pass", p, goRep) })
		if n := len(goRep.Results()); n != len(files) {
			t.Errorf("RunTest recorded %d results for %d scripts", n, len(files))
		}
		for _, res := range goRep.Results() {
			if res.Status != Pass || res.Suite != "pass" || res.Duration <= 0 {
				t.Errorf("RunTest result %+v", res)
			}
		}
	})
}

func slicesDelete(s []string, v string) []string {
	out := s[:0]
	for _, x := range s {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}

// TestFailingScripts runs each script of testdata/fail, which must fail
// with the message its "want" section holds (a regular expression), found
// in its log.
func TestFailingScripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/fail/*.txtar")
	if len(files) == 0 {
		t.Fatal("no scripts in testdata/fail")
	}
	want := map[string]*regexp.Regexp{}
	for _, f := range files {
		a, err := txtar.ParseFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range a.Files {
			if s.Name == "want" {
				want[ScriptName(f)] = regexp.MustCompile(strings.TrimSpace(string(s.Data)))
			}
		}
		if want[ScriptName(f)] == nil {
			t.Fatalf("%s has no want section", f)
		}
	}
	var out bytes.Buffer
	rep, err := RunFiles(files, hostOptions(t, &out))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results()) != len(files) {
		t.Fatalf("%d results for %d scripts", len(rep.Results()), len(files))
	}
	for _, res := range rep.Results() {
		re := want[res.Name]
		switch {
		case res.Status != Fail:
			t.Errorf("%s: %s, want FAIL\n%s", res.Name, res.Status, res.Log)
		case !re.MatchString(res.Log):
			t.Errorf("%s: log does not match %q:\n%s", res.Name, re, res.Log)
		}
	}
}

func TestRunFilesOptions(t *testing.T) {
	dir := t.TempDir()
	golden := "exec echo hello\ncmp stdout want\n-- want --\ngoodbye\n"
	script := filepath.Join(dir, "golden.txtar")
	if err := os.WriteFile(script, []byte(golden), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	o := hostOptions(t, &out)

	// -run selects by SUITE/NAME
	o.Run = regexp.MustCompile("^nomatch$")
	if _, err := RunFiles([]string{script}, o); !errors.Is(err, ErrNoScripts) {
		t.Errorf("-run selecting nothing: %v, want ErrNoScripts", err)
	}
	o.Run = regexp.MustCompile("/golden$")

	rep, err := RunFiles([]string{script}, o)
	if err != nil || rep.Results()[0].Status != Fail {
		t.Fatalf("golden mismatch should fail: %v %+v", err, rep.Results())
	}
	// -update rewrites the golden section
	o.Update = true
	if rep, err = RunFiles([]string{script}, o); err != nil || rep.Results()[0].Status != Pass {
		t.Fatalf("-update: %v %+v", err, rep.Results())
	}
	b, _ := os.ReadFile(script)
	if want := strings.Replace(golden, "goodbye", "hello", 1); string(b) != want {
		t.Errorf("-update wrote\n%s\nwant\n%s", b, want)
	}
	// -keep leaves the work directory where it says
	o.Update, o.Keep, o.WorkRoot = false, true, filepath.Join(dir, "work")
	os.Mkdir(o.WorkRoot, 0o755)
	out.Reset()
	if _, err := RunFiles([]string{script}, o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "work directories are kept in "+o.WorkRoot) {
		t.Errorf("-keep did not say where:\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Join(o.WorkRoot, SuiteOf(script), "script-golden", "want")); err != nil {
		t.Errorf("-keep: %v", err)
	}
	// bad files
	if _, err := RunFiles([]string{filepath.Join(dir, "none.txtar")}, o); err == nil {
		t.Error("a missing script: no error")
	}
	if _, err := RunFiles([]string{dir}, o); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("a directory: %v", err)
	}
}

func TestMatrixRuns(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "suite")
	os.Mkdir(dir, 0o755)
	os.WriteFile(filepath.Join(dir, MatrixFile), []byte("xfs ext4\n"), 0o644)
	s := filepath.Join(dir, "fs.txtar")
	os.WriteFile(s, []byte("exec sh -c 'echo $FS'\nstdout '^(xfs|ext4)$'\n"), 0o644)
	var out bytes.Buffer
	rep, err := RunFiles([]string{s}, hostOptions(t, &out))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rep.Results() {
		names = append(names, r.Suite+"/"+r.Name+":"+string(r.Status))
	}
	if got := strings.Join(names, " "); got != "suite/ext4/fs:ok suite/xfs/fs:ok" {
		t.Errorf("matrix results: %s\n%s", got, out.String())
	}
}
