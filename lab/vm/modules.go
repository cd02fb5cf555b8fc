package vm

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// moduleIndex knows where each module of one kernel lives and what it needs,
// from the modules.dep that depmod wrote.
type moduleIndex struct {
	dir     string              // .../lib/modules/VERSION
	path    map[string]string   // normalised name -> path relative to dir
	deps    map[string][]string // normalised name -> normalised names
	builtin map[string]bool
}

// normModName turns a module file or name into its canonical form: no
// directory, no .ko[.xz|.zst|.gz] suffix, dashes as underscores.
func normModName(s string) string {
	s = path.Base(s)
	if i := strings.Index(s, ".ko"); i >= 0 {
		s = s[:i]
	}
	return strings.ReplaceAll(s, "-", "_")
}

func loadModuleIndex(dir string) (*moduleIndex, error) {
	idx := &moduleIndex{dir: dir, path: map[string]string{}, deps: map[string][]string{}, builtin: map[string]bool{}}
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("read module index (was depmod run?): %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		mod, deps, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		name := normModName(mod)
		idx.path[name] = mod
		for _, d := range strings.Fields(deps) {
			idx.deps[name] = append(idx.deps[name], normModName(d))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			idx.builtin[normModName(l)] = true
		}
	}
	return idx, nil
}

// loadOrder returns the module files (relative to the index directory) that
// must be loaded, dependencies first, for the named modules. Built-in modules
// are skipped; an unknown module is an error.
func (idx *moduleIndex) loadOrder(names ...string) ([]string, error) {
	var order []string
	seen := map[string]bool{}
	var visit func(n string, from string) error
	visit = func(n, from string) error {
		n = normModName(n)
		if seen[n] {
			return nil
		}
		seen[n] = true
		if idx.builtin[n] {
			return nil
		}
		p, ok := idx.path[n]
		if !ok {
			if from != "" {
				return fmt.Errorf("module %s (needed by %s) is not in %s", n, from, idx.dir)
			}
			return fmt.Errorf("module %s is not in %s", n, idx.dir)
		}
		for _, d := range idx.deps[n] {
			if err := visit(d, n); err != nil {
				return err
			}
		}
		order = append(order, p)
		return nil
	}
	for _, n := range names {
		if err := visit(n, ""); err != nil {
			return nil, err
		}
	}
	return order, nil
}
