// Command dmfilemapd keeps a dm-stats file-map group in step with its file.
//
//	dmfilemapd <fd> <group_id> <abs_path> inode|path [<foreground 0|1> [<verbose 0..3>]]
//
// It takes lvm2's command line, so that lvm2's dmstats and dmfm can each start
// either daemon; see package lib/filemapd for what it does.
package main

import (
	"os"

	"github.com/dmfm/dmfm/lib/filemapd"
)

func main() {
	os.Exit(filemapd.Program{NewUpdater: filemapd.NewStatsUpdaterFunc}.Main(os.Args[1:]))
}
