package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// finish applies the selection and the sort keys.
func (rp *reporter) finish(rows []*row) []*row {
	o := rp.o
	if o.sel != nil {
		kept := rows[:0]
		for _, r := range rows {
			if o.sel.match(r, o.units) {
				kept = append(kept, r)
			}
		}
		rows = kept
	}
	if len(o.sortKeys) > 0 {
		sortRows(rows, o.sortKeys, o.units)
	}
	return rows
}

// sortRows sorts stably by the keys: numbers as numbers, text as text.
func sortRows(rows []*row, keys []sortKey, u units) {
	type keyed struct {
		r     *row
		cells []cell
	}
	ks := make([]keyed, len(rows))
	for i, r := range rows {
		ks[i] = keyed{r: r, cells: make([]cell, len(keys))}
		for j, k := range keys {
			ks[i].cells[j] = k.f.get(r, u)
		}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int {
		for j, k := range keys {
			c := compareCells(a.cells[j], b.cells[j])
			if k.desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	})
	for i := range ks {
		rows[i] = ks[i].r
	}
}

// compareCells orders numbers before text, numbers by value, text
// lexically.
func compareCells(a, b cell) int {
	switch {
	case a.num && b.num:
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	case a.num:
		return -1
	case b.num:
		return 1
	}
	return strings.Compare(a.text, b.text)
}

// render writes one report block: a table, or a JSON document. A repeating
// report starts each block with a header, after clearing the screen on a
// terminal.
func (rp *reporter) render(c *cli.Context, rows []*row, at time.Time, interval time.Duration, repeat, tty bool) error {
	w := bufio.NewWriterSize(c.App.Writer, 64<<10)
	o := rp.o
	if o.json {
		if err := writeReportJSON(w, o, rows, at, interval); err != nil {
			return err
		}
		return w.Flush()
	}
	if repeat {
		if tty {
			io.WriteString(w, "\x1b[H\x1b[2J")
		}
		fmt.Fprintf(w, "# %s  interval %.3fs\n", at.Format(time.RFC3339), interval.Seconds())
	}
	writeTable(w, o, rows)
	if repeat && !tty {
		io.WriteString(w, "\n")
	}
	return w.Flush()
}

// writeTable writes the rows as dmstats does: aligned columns under
// headings (numbers right-aligned, text left-aligned), or fields joined by
// the separator. Trailing blanks are trimmed.
func writeTable(w io.Writer, o reportOpts, rows []*row) {
	cells := make([][]cell, len(rows))
	widths := make([]int, len(o.fields))
	for j, f := range o.fields {
		widths[j] = max(f.width, len(f.heading))
	}
	for i, r := range rows {
		cells[i] = make([]cell, len(o.fields))
		for j, f := range o.fields {
			cells[i][j] = f.get(r, o.units)
			widths[j] = max(widths[j], len(cells[i][j].text))
		}
	}
	var line bytes.Buffer
	emit := func(texts []string) {
		line.Reset()
		for j, t := range texts {
			if j > 0 {
				line.WriteString(o.separator)
			}
			if !o.aligned {
				line.WriteString(t)
				continue
			}
			pad := widths[j] - len(t)
			if o.fields[j].typ != colText {
				line.WriteString(strings.Repeat(" ", max(pad, 0)))
				line.WriteString(t)
			} else {
				line.WriteString(t)
				line.WriteString(strings.Repeat(" ", max(pad, 0)))
			}
		}
		b := bytes.TrimRight(line.Bytes(), " ")
		w.Write(b)
		io.WriteString(w, "\n")
	}
	texts := make([]string, len(o.fields))
	if !o.noHeadings {
		for j, f := range o.fields {
			texts[j] = f.heading
		}
		// Headings are left-aligned, as in dmstats.
		line.Reset()
		for j, t := range texts {
			if j > 0 {
				line.WriteString(o.separator)
			}
			line.WriteString(t)
			if o.aligned {
				line.WriteString(strings.Repeat(" ", max(widths[j]-len(t), 0)))
			}
		}
		w.Write(bytes.TrimRight(line.Bytes(), " "))
		io.WriteString(w, "\n")
	}
	for i := range rows {
		for j := range o.fields {
			texts[j] = cells[i][j].text
		}
		emit(texts)
	}
}

// jsonRow is one row in JSON: "device" and then the selected fields, in
// their order.
type jsonRow struct {
	device string
	names  []string
	values []any
}

// MarshalJSON writes the row's keys in field order.
func (r jsonRow) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"device":`)
	d, err := json.Marshal(r.device)
	if err != nil {
		return nil, err
	}
	b.Write(d)
	for i, n := range r.names {
		b.WriteByte(',')
		k, _ := json.Marshal(n)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(r.values[i])
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", n, err)
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// listJSON is the document of `dmfm list --json`.
type listJSON struct {
	Rows []jsonRow `json:"rows"`
}

// reportJSON is one document of `dmfm report --json`.
type reportJSON struct {
	Timestamp  string    `json:"timestamp"`
	IntervalNS int64     `json:"interval_ns"`
	Rows       []jsonRow `json:"rows"`
}

func jsonRows(o reportOpts, rows []*row) []jsonRow {
	out := make([]jsonRow, len(rows))
	names := make([]string, 0, len(o.fields))
	seen := map[string]bool{}
	var idx []int
	for j, f := range o.fields {
		if !seen[f.name] {
			seen[f.name] = true
			names = append(names, f.name)
			idx = append(idx, j)
		}
	}
	for i, r := range rows {
		vals := make([]any, len(idx))
		for k, j := range idx {
			vals[k] = o.fields[j].get(r, o.units).json
		}
		out[i] = jsonRow{device: r.dev.Name, names: names, values: vals}
	}
	return out
}

func writeReportJSON(w io.Writer, o reportOpts, rows []*row, at time.Time, interval time.Duration) error {
	if o.list {
		return writeJSON(w, listJSON{Rows: jsonRows(o, rows)})
	}
	return writeJSON(w, reportJSON{Timestamp: at.UTC().Format(time.RFC3339Nano), IntervalNS: int64(interval), Rows: jsonRows(o, rows)})
}
