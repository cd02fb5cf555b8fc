package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// units says how sizes are shown, as dmstats' --units: h (human-readable,
// powers of 1024), H (powers of 1000), or a fixed unit: b or B (bytes), s
// or S (sectors), k m g t p e (powers of 1024) and K M G T P E (powers of
// 1000), optionally after a multiplier ("4k").
type units struct {
	human    bool
	si       bool    // powers of 1000
	factor   float64 // bytes per unit (fixed units)
	suffix   string  // unit letter (fixed units)
	decimals int     // 0 for bytes and sectors, else 2
	nosuffix bool
}

// defaultUnits is dmstats' default: human-readable sizes.
var defaultUnits = units{human: true}

// parseUnits reads a --units value.
func parseUnits(s string, nosuffix bool) (units, error) {
	u := units{nosuffix: nosuffix}
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	mult := 1.0
	if i > 0 {
		v, err := strconv.ParseFloat(t[:i], 64)
		if err != nil || v <= 0 {
			return u, fmt.Errorf("--units %q: bad multiplier", s)
		}
		mult = v
	}
	letter := t[i:]
	if len(letter) != 1 {
		return u, fmt.Errorf("--units %q: want h, H or a unit b, s, k, m, g, t, p, e (upper case for powers of 1000), with an optional multiplier", s)
	}
	c := letter[0]
	switch c {
	case 'h', 'H':
		if i > 0 {
			return u, fmt.Errorf("--units %q: human-readable units take no multiplier", s)
		}
		u.human, u.si = true, c == 'H'
		return u, nil
	case 'b', 'B':
		u.factor = 1
	case 's', 'S':
		u.factor = 512
	default:
		const powers = "kmgtpe"
		p := strings.IndexByte(powers, c|0x20)
		if p < 0 {
			return u, fmt.Errorf("--units %q: unknown unit %q", s, letter)
		}
		base := 1024.0
		if c < 'a' {
			base = 1000
			u.si = true
		}
		u.factor = math.Pow(base, float64(p+1))
		u.decimals = 2
	}
	u.factor *= mult
	u.suffix = letter
	return u, nil
}

// format writes a size given in bytes.
func (u units) format(bytes float64) string { return string(u.append(nil, bytes)) }

// append appends a size given in bytes to b.
func (u units) append(b []byte, bytes float64) []byte {
	if bytes == 0 {
		return append(b, '0')
	}
	if u.human {
		base, letters, byteSuffix := 1024.0, "kmgtpe", byte('b')
		if u.si {
			base, letters, byteSuffix = 1000, "KMGTPE", 'B'
		}
		p := -1
		for v := bytes; v >= base && p < len(letters)-1; v /= base {
			p++
		}
		if p < 0 {
			return append(strconv.AppendFloat(b, bytes, 'f', 0, 64), byteSuffix)
		}
		return append(strconv.AppendFloat(b, bytes/math.Pow(base, float64(p+1)), 'f', 2, 64), letters[p])
	}
	b = strconv.AppendFloat(b, bytes/u.factor, 'f', u.decimals, 64)
	if !u.nosuffix {
		b = append(b, u.suffix...)
	}
	return b
}
