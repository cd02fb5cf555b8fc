package script

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// MatrixFile names the file in a suite folder that lists the file systems
// its scripts run on: each script runs once per file system, with $FS set
// (which the lab command uses when it is given no fs=). Words are
// separated by white space; # starts a comment.
const MatrixFile = "FILESYSTEMS"

// Filesystems reads the MatrixFile of a suite folder; nil when it has none.
func Filesystems(dir string) ([]string, error) {
	f, err := os.Open(filepath.Join(dir, MatrixFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		for _, w := range strings.Fields(text) {
			switch w {
			case "xfs", "ext4":
			default:
				return nil, fmt.Errorf("%s:%d: unknown file system %q (want xfs or ext4)", f.Name(), line, w)
			}
			if !seen[w] {
				seen[w] = true
				out = append(out, w)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s names no file system", f.Name())
	}
	return out, nil
}
