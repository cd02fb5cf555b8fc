package script

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
)

func init() {
	register("norm", command{
		usage: "norm",
		run: func(ts *testscript.TestScript, st *state, _ bool, args []string) {
			nargs(ts, "norm", args, 0, 0)
			out, errOut := ts.ReadFile("stdout"), ts.ReadFile("stderr")
			n := st.normalizer()
			ts.Stdout().Write([]byte(n.apply(out)))
			ts.Stderr().Write([]byte(n.apply(errOut)))
		},
	})
}

// normalizer rewrites the names of a script's devices and directories into
// stable tokens.
type normalizer struct {
	lit *strings.Replacer
	res []reRule
}

type reRule struct {
	re  *regexp.Regexp
	new string
}

// devToken names the i-th lab's replacement: LABDEV, LABDEV2, ...
func devToken(base string, i int) string {
	if i == 0 {
		return base
	}
	return base + strconv.Itoa(i+1)
}

// normalizer builds the rules for the script's labs (every lab it made,
// down or not) and its work directory.
func (st *state) normalizer() *normalizer {
	var lit []string
	n := &normalizer{}
	for i, e := range st.labs {
		l := e.lab
		if l.Mountpoint != "" {
			lit = append(lit, l.Mountpoint, "$"+devToken("MNT", i))
		}
		lit = append(lit, l.DMName, devToken("LABDEV", i))
		word := func(s string) *regexp.Regexp {
			return regexp.MustCompile(`(^|[^\w:])` + regexp.QuoteMeta(s) + `($|[^\w:])`)
		}
		n.res = append(n.res,
			reRule{word(l.DevNo()), "${1}" + devToken("LABDEVNO", i) + "${2}"},
			reRule{word("dm-" + strconv.FormatUint(uint64(l.Minor), 10)), "${1}" + devToken("LABDM", i) + "${2}"},
		)
		if e.loopNo != "" {
			n.res = append(n.res, reRule{word(e.loopNo), "${1}" + devToken("LABLOOPNO", i) + "${2}"})
		}
		if l.LoopDev != "" {
			loop := strings.TrimPrefix(l.LoopDev, "/dev/")
			n.res = append(n.res, reRule{word(loop), "${1}" + devToken("LABLOOP", i) + "${2}"})
		}
	}
	if st.labDir != "" {
		lit = append(lit, st.labDir, "$LABDIR")
	}
	if st.work != "" {
		lit = append(lit, st.work, "$WORK")
	}
	n.lit = strings.NewReplacer(lit...)
	return n
}

func (n *normalizer) apply(s string) string {
	s = n.lit.Replace(s)
	for _, r := range n.res {
		// A match consumes its delimiters: apply twice so that adjacent
		// occurrences ("253:3 253:3") are both replaced.
		s = r.re.ReplaceAllString(s, r.new)
		s = r.re.ReplaceAllString(s, r.new)
	}
	return s
}
