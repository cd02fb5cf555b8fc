package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// A selection (-S/--select) keeps the rows for which it is true. Grammar,
// after lvm2's:
//
//	expr   = and { ("||" | "#") and }
//	and    = unary { ("&&" | ",") unary }
//	unary  = "!" unary | "(" expr ")" | field op value
//	op     = "=" | "==" | "!=" | "<" | "<=" | ">" | ">=" | "=~" | "!~"
//
// A value is a word or a quoted string. Numeric fields compare as numbers
// (sizes as a size: a bare number counts sectors, or give a unit, as for
// --start); a value that is not a number compares as text with the field's
// text (group_id=- selects rows without a group). =~ and !~ match a regular
// expression against the text.
type selection interface {
	match(r *row, u units) bool
}

type selOr struct{ a, b selection }
type selAnd struct{ a, b selection }
type selNot struct{ a selection }
type selCmp struct {
	f     *fieldDef
	op    string
	value string
	num   float64
	isNum bool
	re    *regexp.Regexp
}

func (s selOr) match(r *row, u units) bool  { return s.a.match(r, u) || s.b.match(r, u) }
func (s selAnd) match(r *row, u units) bool { return s.a.match(r, u) && s.b.match(r, u) }
func (s selNot) match(r *row, u units) bool { return !s.a.match(r, u) }

func (s selCmp) match(r *row, u units) bool {
	c := cellOf(s.f, r, u)
	switch s.op {
	case "=~":
		return s.re.MatchString(c.text)
	case "!~":
		return !s.re.MatchString(c.text)
	}
	if s.isNum && c.num {
		switch s.op {
		case "=":
			return c.key == s.num
		case "!=":
			return c.key != s.num
		case "<":
			return c.key < s.num
		case "<=":
			return c.key <= s.num
		case ">":
			return c.key > s.num
		case ">=":
			return c.key >= s.num
		}
	}
	switch s.op {
	case "=":
		return c.text == s.value
	case "!=":
		return c.text != s.value
	case "<":
		return !c.num && c.text < s.value
	case "<=":
		return !c.num && c.text <= s.value
	case ">":
		return !c.num && c.text > s.value
	case ">=":
		return !c.num && c.text >= s.value
	}
	return false
}

// compileSelect compiles a selection; counter fields are refused when
// allowCounters is false.
func compileSelect(src string, allowCounters bool) (selection, error) {
	p := &selParser{src: src, allowCounters: allowCounters}
	s, err := p.expr()
	if err != nil {
		return nil, fmt.Errorf("--select %q: %w", src, err)
	}
	p.skipSpace()
	if p.pos < len(p.src) {
		return nil, fmt.Errorf("--select %q: unexpected %q at offset %d", src, p.src[p.pos:], p.pos)
	}
	return s, nil
}

type selParser struct {
	src           string
	pos           int
	allowCounters bool
}

func (p *selParser) skipSpace() {
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t') {
		p.pos++
	}
}

// eat consumes the first of toks found at the current position.
func (p *selParser) eat(toks ...string) bool {
	p.skipSpace()
	for _, t := range toks {
		if strings.HasPrefix(p.src[p.pos:], t) {
			p.pos += len(t)
			return true
		}
	}
	return false
}

func (p *selParser) expr() (selection, error) {
	a, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.eat("||", "#") {
		b, err := p.and()
		if err != nil {
			return nil, err
		}
		a = selOr{a, b}
	}
	return a, nil
}

func (p *selParser) and() (selection, error) {
	a, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.eat("&&", ",") {
		b, err := p.unary()
		if err != nil {
			return nil, err
		}
		a = selAnd{a, b}
	}
	return a, nil
}

func (p *selParser) unary() (selection, error) {
	if p.eat("!") {
		if p.pos < len(p.src) && (p.src[p.pos] == '=' || p.src[p.pos] == '~') {
			return nil, fmt.Errorf("missing field name before %q", "!"+p.src[p.pos:p.pos+1])
		}
		a, err := p.unary()
		if err != nil {
			return nil, err
		}
		return selNot{a}, nil
	}
	if p.eat("(") {
		a, err := p.expr()
		if err != nil {
			return nil, err
		}
		if !p.eat(")") {
			return nil, fmt.Errorf("missing ')' at offset %d", p.pos)
		}
		return a, nil
	}
	return p.cmp()
}

func (p *selParser) cmp() (selection, error) {
	p.skipSpace()
	start := p.pos
	for p.pos < len(p.src) && isFieldChar(p.src[p.pos]) {
		p.pos++
	}
	name := p.src[start:p.pos]
	if name == "" {
		return nil, fmt.Errorf("expected a field name at offset %d", start)
	}
	f, ok := lookupField(name)
	if !ok {
		return nil, errUnknownField(name, p.allowCounters)
	}
	if f.counters && !p.allowCounters {
		return nil, fmt.Errorf("field %q needs counters: use `dmfm report`", name)
	}
	var op string
	for _, o := range []string{"==", "!=", "<=", ">=", "=~", "!~", "=", "<", ">"} {
		if p.eat(o) {
			op = o
			break
		}
	}
	if op == "" {
		return nil, fmt.Errorf("expected a comparison (=, !=, <, <=, >, >=, =~, !~) after %q", name)
	}
	if op == "==" {
		op = "="
	}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	s := selCmp{f: f, op: op, value: v}
	switch {
	case op == "=~" || op == "!~":
		if s.re, err = regexp.Compile(v); err != nil {
			return nil, fmt.Errorf("bad regular expression %q: %w", v, err)
		}
	case f.typ == colSize:
		if n, err := parseSectors(name, v); err == nil {
			s.num, s.isNum = float64(n)*512, true
		}
	default:
		if n, err := strconv.ParseFloat(v, 64); err == nil {
			s.num, s.isNum = n, true
		}
	}
	if !s.isNum && (op == "<" || op == "<=" || op == ">" || op == ">=") && f.typ != colText {
		return nil, fmt.Errorf("%s %s %q: want a number", name, op, v)
	}
	return s, nil
}

func isFieldChar(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// value reads a quoted string or a word.
func (p *selParser) value() (string, error) {
	p.skipSpace()
	if p.pos < len(p.src) && (p.src[p.pos] == '"' || p.src[p.pos] == '\'') {
		q := p.src[p.pos]
		end := strings.IndexByte(p.src[p.pos+1:], q)
		if end < 0 {
			return "", fmt.Errorf("unterminated quote at offset %d", p.pos)
		}
		v := p.src[p.pos+1 : p.pos+1+end]
		p.pos += end + 2
		return v, nil
	}
	start := p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == ' ' || c == '\t' || c == ')' || c == ',' || c == '#' ||
			strings.HasPrefix(p.src[p.pos:], "&&") || strings.HasPrefix(p.src[p.pos:], "||") {
			break
		}
		p.pos++
	}
	if p.pos == start {
		return "", fmt.Errorf("expected a value at offset %d", start)
	}
	return p.src[start:p.pos], nil
}
