package dmstats

import (
	"fmt"
	"strings"
)

// kernelSpace reports whether the kernel's isspace() is true for b. The
// kernel's ctype table (lib/ctype.c) marks TAB, LF, VT, FF, CR, space and
// also 0xA0 (Latin-1 no-break space) as whitespace, so dm_split_args splits
// on every one of them: 0xA0 is a continuation byte of many UTF-8 sequences
// (e.g. "à" is C3 A0), which is why it must be escaped too.
func kernelSpace(b byte) bool {
	switch b {
	case ' ', '\t', '\n', '\v', '\f', '\r', 0xA0:
		return true
	}
	return false
}

// needsEscape reports whether the kernel's argument splitter would change b:
// it splits on whitespace and drops one backslash before any character.
func needsEscape(b byte) bool {
	return b == '\\' || kernelSpace(b)
}

// EscapeArg escapes s so that the kernel's message splitter (dm_split_args)
// delivers it as exactly one argument with its bytes unchanged: a backslash
// is put before every backslash and every byte the kernel takes for
// whitespace (space, TAB, LF, VT, FF, CR and 0xA0). It does not check s; see
// checkArg for the values that cannot be sent at all.
func EscapeArg(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if needsEscape(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + n)
	for i := 0; i < len(s); i++ {
		if needsEscape(s[i]) {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// SplitArgs splits a message the way the kernel's dm_split_args does:
// arguments are separated by runs of whitespace (kernel isspace), and a
// backslash followed by any character stands for that character (a trailing
// lone backslash is kept). It is the inverse of EscapeArg for one argument
// and is used to check what the kernel will see.
func SplitArgs(msg string) []string {
	var args []string
	i := 0
	for {
		for i < len(msg) && kernelSpace(msg[i]) {
			i++
		}
		if i >= len(msg) {
			return args
		}
		var b []byte
		start := i
		plain := true
		for i < len(msg) {
			c := msg[i]
			if c == '\\' && i+1 < len(msg) {
				if plain {
					b = append(b, msg[start:i]...)
					plain = false
				}
				b = append(b, msg[i+1])
				i += 2
				continue
			}
			if kernelSpace(c) {
				break
			}
			if !plain {
				b = append(b, c)
			}
			i++
		}
		if plain {
			args = append(args, msg[start:i])
		} else {
			args = append(args, string(b))
		}
	}
}

// checkArg rejects values that no escaping can carry through a message and
// back through a listing: NUL ends the kernel's message string, and a
// newline inside a stored program id or aux data would split its row in
// every later @stats_list reply.
func checkArg(what, s string) error {
	if i := strings.IndexAny(s, "\x00\n"); i >= 0 {
		name := "NUL"
		if s[i] == '\n' {
			name = "a newline"
		}
		return fmt.Errorf("%s %q contains %s at byte %d: the kernel listing cannot carry it", what, s, name, i)
	}
	return nil
}

// wireValue is the argument sent for an optional string field: the kernel
// stores a missing program id or aux data as "-", and an empty argument
// cannot be sent, so "" is sent as "-".
func wireValue(s string) string {
	if s == "" {
		return "-"
	}
	return EscapeArg(s)
}
