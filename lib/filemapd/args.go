package filemapd

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
)

// Mode says what the daemon follows when the file changes name.
type Mode int

const (
	// ModeInode follows the open file (its inode) through renames and moves,
	// and ends when the file is unlinked and no other process holds it open.
	ModeInode Mode = iota
	// ModePath follows the path: a file put there by rename or by unlink and
	// create replaces the one being watched; the daemon ends when nothing
	// appears at the path within [Timing.VanishWait].
	ModePath
)

// String returns the mode as written on the command line: "inode" or "path".
func (m Mode) String() string {
	switch m {
	case ModeInode:
		return "inode"
	case ModePath:
		return "path"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode reads a mode as written on the command line ("inode" or "path").
func ParseMode(s string) (Mode, error) {
	switch s {
	case "inode":
		return ModeInode, nil
	case "path":
		return ModePath, nil
	}
	return 0, fmt.Errorf("bad mode %q: want inode or path", s)
}

// MaxVerbose is the highest verbosity the command line accepts.
const MaxVerbose = 3

// Args is a parsed dmfilemapd command line.
type Args struct {
	FD         int    // open file descriptor of the mapped file
	GroupID    uint64 // dm-stats group to keep up to date
	Path       string // absolute path of the file
	Mode       Mode
	Foreground bool // run in place instead of detaching
	Verbose    int  // 0..MaxVerbose; > 0 logs to stderr
}

// ErrHelp is returned by [ParseArgs] when the command line asks for help.
var ErrHelp = errors.New("help requested")

// Usage is the dmfilemapd usage text.
const Usage = `usage: dmfilemapd <fd> <group_id> <abs_path> inode|path [<foreground 0|1> [<verbose 0..3>]]

Keeps the dm-stats group <group_id> in step with the file at <abs_path>, open
as file descriptor <fd>, re-mapping its regions whenever the file's extents
change.

  fd          open file descriptor of the file, inherited from the caller
  group_id    id of the file's dm-stats group (a region id, decimal)
  abs_path    absolute path of the file
  inode       follow the open file through renames; exit once it is unlinked
              and no other process holds it open
  path        follow the path; re-open a file put there by rename or
              unlink+create; exit when nothing appears there within a second
  foreground  1: run in place and log to stderr; 0 (default): detach
  verbose     0 (default) to 3; above 0, log to stderr

The daemon exits when the group is deleted. SIGTERM or SIGINT: finish the
update in progress and exit. SIGHUP: re-read the file's extents now.
`

// ParseArgs parses the arguments that follow the program name. A lone "-h",
// "-help" or "--help" returns [ErrHelp]; any other problem returns an error
// naming the bad argument.
func ParseArgs(argv []string) (Args, error) {
	if len(argv) == 1 {
		switch argv[0] {
		case "-h", "-help", "--help":
			return Args{}, ErrHelp
		}
	}
	if len(argv) < 4 {
		return Args{}, fmt.Errorf("need at least 4 arguments (fd, group_id, abs_path, mode), got %d", len(argv))
	}
	if len(argv) > 6 {
		return Args{}, fmt.Errorf("too many arguments: %d, at most 6", len(argv))
	}
	var a Args
	fd, err := strconv.ParseUint(argv[0], 10, 31)
	if err != nil {
		return Args{}, fmt.Errorf("bad fd %q: want a file descriptor number", argv[0])
	}
	a.FD = int(fd)
	if a.GroupID, err = strconv.ParseUint(argv[1], 10, 64); err != nil {
		return Args{}, fmt.Errorf("bad group_id %q: want a decimal region id", argv[1])
	}
	a.Path = argv[2]
	if a.Path == "" || !filepath.IsAbs(a.Path) {
		return Args{}, fmt.Errorf("bad abs_path %q: want an absolute path", argv[2])
	}
	if a.Mode, err = ParseMode(argv[3]); err != nil {
		return Args{}, err
	}
	if len(argv) > 4 {
		switch argv[4] {
		case "0":
		case "1":
			a.Foreground = true
		default:
			return Args{}, fmt.Errorf("bad foreground %q: want 0 or 1", argv[4])
		}
	}
	if len(argv) > 5 {
		v, err := strconv.ParseUint(argv[5], 10, 8)
		if err != nil || v > MaxVerbose {
			return Args{}, fmt.Errorf("bad verbose %q: want 0 to %d", argv[5], MaxVerbose)
		}
		a.Verbose = int(v)
	}
	return a, nil
}

// Argv formats a as the arguments that follow the program name, always with
// the foreground and verbose fields, so that ParseArgs(a.Argv()) == a.
func (a Args) Argv() []string {
	fg := "0"
	if a.Foreground {
		fg = "1"
	}
	return []string{
		strconv.Itoa(a.FD),
		strconv.FormatUint(a.GroupID, 10),
		a.Path,
		a.Mode.String(),
		fg,
		strconv.Itoa(a.Verbose),
	}
}
