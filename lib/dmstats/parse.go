package dmstats

import (
	"fmt"
	"strings"
)

// The parsers below run over replies holding thousands of rows: they scan
// bytes by hand, take substrings of the reply instead of copying, and
// allocate the result slices once.

// countLines returns the number of non-empty lines in s.
func countLines(s string) int {
	n := strings.Count(s, "\n")
	if len(s) > 0 && s[len(s)-1] != '\n' {
		n++
	}
	return n
}

// nextLine returns the first line of s (without its newline) and the rest.
func nextLine(s string) (line, rest string) {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// parseUint parses the decimal number at the start of s, returning it and
// the number of bytes used (0 when s does not start with a digit or the
// number overflows uint64).
func parseUint(s string) (uint64, int) {
	var v uint64
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			break
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, 0
		}
		v = v*10 + d
	}
	return v, i
}

// parseInt parses an optionally negative decimal number at the start of s.
func parseInt(s string) (int64, int) {
	neg := len(s) > 0 && s[0] == '-'
	off := 0
	if neg {
		off = 1
	}
	u, n := parseUint(s[off:])
	if n == 0 || u > 1<<63 || (!neg && u == 1<<63) {
		return 0, 0
	}
	if neg {
		return -int64(u), n + 1
	}
	return int64(u), n
}

// ParseList parses a @stats_list reply. programID, when not empty, is the
// program id the listing was filtered by: every row then carries exactly it,
// so a program id containing spaces is cut correctly. Otherwise the program
// id ends at the first space.
//
// The aux data ends at the first space, except for a DMS_GROUP tag, which
// runs to the first space after the '#' that follows the alias (a quoted
// alias may contain spaces and '#'). What follows is options:
// precise_timestamps, histogram:b1,b2,... and anything else, kept in
// ExtraOptions. Consequently, non-tag aux data containing a space reads back
// as its first word, the other words landing in ExtraOptions.
func ParseList(reply, programID string) ([]Region, error) {
	regions := make([]Region, 0, countLines(reply))
	// Histogram bounds of all rows are carved from shared backing arrays.
	var slab []uint64
	for n := 1; reply != ""; n++ {
		var line string
		line, reply = nextLine(reply)
		if line == "" {
			continue
		}
		r, err := parseListRow(line, programID, &slab, cap(regions)-len(regions))
		if err != nil {
			return nil, fmt.Errorf("@stats_list row %d %q: %w", n, line, err)
		}
		regions = append(regions, r)
	}
	return regions, nil
}

// parseListRow parses one row; the bounds are carved from *slab, which is
// refilled with room for rowsLeft rows like this one when it runs short.
func parseListRow(line, programID string, slab *[]uint64, rowsLeft int) (Region, error) {
	var r Region
	s := line
	var n int
	if r.ID, n = parseUint(s); n == 0 || !strings.HasPrefix(s[n:], ": ") {
		return r, fmt.Errorf("expected \"<id>: \"")
	}
	s = s[n+2:]
	if r.Start, n = parseUint(s); n == 0 || n >= len(s) || s[n] != '+' {
		return r, fmt.Errorf("expected \"<start>+<length>\"")
	}
	s = s[n+1:]
	if r.Length, n = parseUint(s); n == 0 || n >= len(s) || s[n] != ' ' {
		return r, fmt.Errorf("expected \"<start>+<length> \"")
	}
	s = s[n+1:]
	if r.Step, n = parseUint(s); n == 0 || n >= len(s) || s[n] != ' ' {
		return r, fmt.Errorf("expected \"<step> \"")
	}
	s = s[n+1:]
	if programID != "" && strings.HasPrefix(s, programID+" ") {
		r.ProgramID = s[:len(programID)]
		s = s[len(programID)+1:]
	} else {
		i := strings.IndexByte(s, ' ')
		if i <= 0 {
			return r, fmt.Errorf("expected \"<program_id> <aux_data>\"")
		}
		r.ProgramID = s[:i]
		s = s[i+1:]
	}
	end := auxEnd(s)
	if end == 0 {
		return r, fmt.Errorf("empty aux data")
	}
	r.AuxData = s[:end]
	s = s[end:]
	for s != "" {
		// s starts with the separating space.
		s = s[1:]
		i := strings.IndexByte(s, ' ')
		if i < 0 {
			i = len(s)
		}
		opt := s[:i]
		s = s[i:]
		switch {
		case opt == "precise_timestamps":
			r.Precise = true
		case strings.HasPrefix(opt, "histogram:"):
			text := opt[len("histogram:"):]
			nb := strings.Count(text, ",") + 1
			if len(*slab) < nb {
				*slab = make([]uint64, nb*max(rowsLeft, 1))
			}
			r.Bounds = (*slab)[:nb:nb]
			*slab = (*slab)[nb:]
			if err := parseBounds(text, r.Bounds); err != nil {
				return r, err
			}
		case opt == "":
			// Two spaces in a row: nothing to keep.
		default:
			r.ExtraOptions = append(r.ExtraOptions, opt)
		}
	}
	return r, nil
}

// parseBounds parses the comma-separated histogram bounds of a listing
// into b, which has one slot per bound.
func parseBounds(s string, b []uint64) error {
	text := s
	for i := range b {
		v, n := parseUint(s)
		if n == 0 {
			return fmt.Errorf("bad histogram bounds %q", text)
		}
		b[i] = v
		s = s[n:]
		if i < len(b)-1 {
			if s == "" || s[0] != ',' {
				return fmt.Errorf("bad histogram bounds %q", text)
			}
			s = s[1:]
		}
	}
	if s != "" {
		return fmt.Errorf("bad histogram bounds %q", text)
	}
	return nil
}

// auxEnd returns the length of the aux data at the start of s (the rest of
// a list row after the program id).
func auxEnd(s string) int {
	if strings.HasPrefix(s, groupTagPrefix) {
		from := len(groupTagPrefix)
		if q := quotedAliasEnd(s[from:]); q > 0 {
			from += q
		}
		if h := strings.IndexByte(s[from:], '#'); h >= 0 {
			from += h
		}
		if sp := strings.IndexByte(s[from:], ' '); sp >= 0 {
			return from + sp
		}
		return len(s)
	}
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return i
	}
	return len(s)
}

// ParsePrint parses a @stats_print or @stats_print_clear reply: one row per
// area, "<start>+<step>" followed by the 13 counters and, for a region with
// a histogram, " c0:c1:...:cN".
func ParsePrint(reply string) ([]Area, error) {
	areas := make([]Area, 0, countLines(reply))
	// All rows of one reply have the same number of histogram bins (the
	// region's): carve the histograms from one backing array.
	var slab []uint64
	bins := -1
	for n := 1; reply != ""; n++ {
		var line string
		line, reply = nextLine(reply)
		if line == "" {
			continue
		}
		var a Area
		hist, err := parsePrintRow(line, &a)
		if err != nil {
			return nil, fmt.Errorf("@stats_print row %d %q: %w", n, line, err)
		}
		nb := 0
		if hist != "" {
			nb = strings.Count(hist, ":") + 1
		}
		if bins < 0 {
			bins = nb
		} else if nb != bins {
			return nil, fmt.Errorf("@stats_print row %d %q: histogram of %d counts after rows of %d", n, line, nb, bins)
		}
		if nb > 0 {
			if len(slab) < nb {
				slab = make([]uint64, nb*(cap(areas)-len(areas)))
			}
			a.Histogram = slab[:nb:nb]
			slab = slab[nb:]
			if err := parseHistogram(hist, a.Histogram); err != nil {
				return nil, fmt.Errorf("@stats_print row %d %q: %w", n, line, err)
			}
		}
		areas = append(areas, a)
	}
	return areas, nil
}

// parsePrintRow fills a from one print row and returns the histogram text
// ("" when the row has none).
func parsePrintRow(s string, a *Area) (string, error) {
	var n int
	if a.Start, n = parseUint(s); n == 0 || n >= len(s) || s[n] != '+' {
		return "", fmt.Errorf("expected \"<start>+<length>\"")
	}
	s = s[n+1:]
	if a.Length, n = parseUint(s); n == 0 {
		return "", fmt.Errorf("expected \"<start>+<length>\"")
	}
	s = s[n:]
	c := &a.Counters
	fields := [...]*uint64{
		&c.Reads, &c.ReadsMerged, &c.ReadSectors, &c.ReadTicks,
		&c.Writes, &c.WritesMerged, &c.WriteSectors, &c.WriteTicks,
		nil, // in flight, signed
		&c.IOTicks, &c.QueueTicks, &c.ReadsInFlightTicks, &c.WritesInFlightTicks,
	}
	for i, f := range fields {
		if s == "" || s[0] != ' ' {
			return "", fmt.Errorf("expected 13 counters, found %d", i)
		}
		s = s[1:]
		if f == nil {
			if c.InFlight, n = parseInt(s); n == 0 {
				return "", fmt.Errorf("bad counter %d (in flight)", i+1)
			}
		} else if *f, n = parseUint(s); n == 0 {
			return "", fmt.Errorf("bad counter %d", i+1)
		}
		s = s[n:]
	}
	if s == "" {
		return "", nil
	}
	if s[0] != ' ' || len(s) < 2 {
		return "", fmt.Errorf("unexpected text after the counters")
	}
	return s[1:], nil
}

// parseHistogram parses "c0:c1:...:cN" into h, which has exactly N+1 slots.
func parseHistogram(s string, h []uint64) error {
	for i := range h {
		v, n := parseUint(s)
		if n == 0 {
			return fmt.Errorf("bad histogram count %d", i)
		}
		h[i] = v
		s = s[n:]
		if i < len(h)-1 {
			if s == "" || s[0] != ':' {
				return fmt.Errorf("bad histogram after count %d", i)
			}
			s = s[1:]
		}
	}
	if s != "" {
		return fmt.Errorf("unexpected text after the histogram")
	}
	return nil
}
