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
			ks[i].cells[j] = cellOf(k.f, r, u)
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
// the separator. Trailing blanks are trimmed. Every cell is formatted into
// one buffer first, to size the columns without a string per cell.
func writeTable(w io.Writer, o reportOpts, rows []*row) {
	nf := len(o.fields)
	widths := make([]int, nf)
	for j, f := range o.fields {
		widths[j] = max(f.width, len(f.heading))
	}
	arena := make([]byte, 0, len(rows)*nf*8)
	ends := make([]int, len(rows)*nf) // end of each cell in arena
	for i, r := range rows {
		for j, f := range o.fields {
			start := len(arena)
			arena, _ = f.get(r, o.units, arena)
			ends[i*nf+j] = len(arena)
			widths[j] = max(widths[j], len(arena)-start)
		}
	}
	line := make([]byte, 0, 256)
	pad := func(n int) {
		for ; n > 0; n-- {
			line = append(line, ' ')
		}
	}
	flush := func() {
		for len(line) > 0 && line[len(line)-1] == ' ' {
			line = line[:len(line)-1]
		}
		line = append(line, '\n')
		w.Write(line)
		line = line[:0]
	}
	if !o.noHeadings {
		// Headings are left-aligned, as in dmstats.
		for j, f := range o.fields {
			if j > 0 {
				line = append(line, o.separator...)
			}
			line = append(line, f.heading...)
			if o.aligned {
				pad(widths[j] - len(f.heading))
			}
		}
		flush()
	}
	start := 0
	for i := range rows {
		for j, f := range o.fields {
			if j > 0 {
				line = append(line, o.separator...)
			}
			end := ends[i*nf+j]
			text := arena[start:end]
			start = end
			switch {
			case !o.aligned:
				line = append(line, text...)
			case f.typ != colText:
				pad(widths[j] - len(text))
				line = append(line, text...)
			default:
				line = append(line, text...)
				pad(widths[j] - len(text))
			}
		}
		flush()
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
	// Rows are the report's rows.
	Rows []jsonRow `json:"rows"`
}

// reportJSON is one document of `dmfm report --json`.
type reportJSON struct {
	// Timestamp is when the counters were read (UTC, RFC 3339).
	Timestamp string `json:"timestamp"`
	// IntervalNS is the interval the rates are computed over.
	IntervalNS int64 `json:"interval_ns"`
	// Rows are the report's rows.
	Rows []jsonRow `json:"rows"`
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
			vals[k] = cellOf(o.fields[j], r, o.units).jsonValue()
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
