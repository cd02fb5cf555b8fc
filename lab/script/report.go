package script

import (
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Status is how a script ended.
type Status string

// Statuses.
const (
	Pass Status = "ok"
	Fail Status = "FAIL"
	Skip Status = "skip"
)

// Result is the outcome of one script.
type Result struct {
	Suite    string // the folder: "create", "bugs", ...
	Name     string // the script's name within its suite
	Status   Status
	Duration time.Duration
	Log      string // testscript's log (the full log on failure)
}

// Report collects the results of scripts that run in parallel and prints
// one line per script as each ends.
type Report struct {
	// Out receives the one-line results; nil: nothing is printed.
	Out io.Writer
	// Logs prints each failing script's log after its line (the go test
	// runner leaves that to the testing package).
	Logs bool
	// AllLogs prints every script's log after its line.
	AllLogs bool

	mu      sync.Mutex
	results []Result
	width   int
}

// Add records a result and prints its line.
func (r *Report) Add(res Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.results = append(r.results, res)
	if r.Out == nil {
		return
	}
	name := res.Suite + "/" + res.Name
	if len(name) > r.width {
		r.width = min(len(name), 48)
	}
	line := fmt.Sprintf("%-4s  %-*s  %6.2fs", res.Status, r.width, name, res.Duration.Seconds())
	if res.Status == Skip {
		line += "  (" + firstLine(skipReason(res.Log)) + ")"
	}
	fmt.Fprintln(r.Out, line)
	if r.AllLogs || (r.Logs && res.Status == Fail) {
		fmt.Fprintln(r.Out, indent(res.Log))
	}
}

// Results returns the results so far, sorted by suite and name.
func (r *Report) Results() []Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]Result(nil), r.results...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Suite != out[j].Suite {
			return out[i].Suite < out[j].Suite
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Counts returns how many scripts passed, failed and were skipped.
func (r *Report) Counts() (pass, fail, skip int) {
	for _, res := range r.Results() {
		switch res.Status {
		case Pass:
			pass++
		case Fail:
			fail++
		case Skip:
			skip++
		}
	}
	return
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// skipReason finds the message of testscript's skip in a log.
func skipReason(log string) string {
	lines := strings.Split(strings.TrimSpace(log), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" && !strings.HasPrefix(l, ">") && !strings.HasPrefix(l, "#") {
			return l
		}
	}
	return "skipped"
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

// JUnit XML, as CI systems read it.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Body    string `xml:",chardata"`
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// WriteJUnit writes the results as JUnit XML: one testsuite per suite
// folder, one testcase per script, the log of a failed script in its
// failure element.
func (r *Report) WriteJUnit(w io.Writer, name string) error {
	doc := junitSuites{Name: name}
	var total time.Duration
	idx := map[string]int{}
	suiteTime := map[string]time.Duration{}
	for _, res := range r.Results() {
		i, ok := idx[res.Suite]
		if !ok {
			i = len(doc.Suites)
			idx[res.Suite] = i
			doc.Suites = append(doc.Suites, junitSuite{Name: res.Suite})
		}
		s := &doc.Suites[i]
		c := junitCase{Name: res.Name, Classname: name + "." + strings.ReplaceAll(res.Suite, "/", "."), Time: seconds(res.Duration)}
		switch res.Status {
		case Fail:
			c.Failure = &junitMessage{Message: firstFailure(res.Log), Body: res.Log}
			s.Failures++
			doc.Failures++
		case Skip:
			c.Skipped = &junitMessage{Message: firstLine(skipReason(res.Log))}
			s.Skipped++
			doc.Skipped++
		default:
			c.SystemOut = res.Log
		}
		s.Tests++
		doc.Tests++
		s.Cases = append(s.Cases, c)
		suiteTime[res.Suite] += res.Duration
		total += res.Duration
	}
	for i := range doc.Suites {
		doc.Suites[i].Time = seconds(suiteTime[doc.Suites[i].Name])
	}
	doc.Time = seconds(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// firstFailure finds the "FAIL: file:line: message" testscript logs.
func firstFailure(log string) string {
	for _, l := range strings.Split(log, "\n") {
		if i := strings.Index(l, "FAIL: "); i >= 0 {
			return strings.TrimSpace(l[i+len("FAIL: "):])
		}
	}
	return "script failed"
}

// WriteJUnitFile writes the JUnit XML to path, creating its directory.
func (r *Report) WriteJUnitFile(path, name string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	if err := r.WriteJUnit(f, name); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
