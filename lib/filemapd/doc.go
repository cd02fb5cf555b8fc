// Package filemapd keeps a dm-stats file-map group in step with its file: it
// is the library behind the dmfilemapd daemon and the launcher that starts it.
//
// The daemon watches the file with inotify and re-reads the file's extents only
// when its size, allocated blocks or inode changed, and at a low rate in the
// background to catch reallocation that inotify cannot see. In inode mode it
// follows the open file through renames and exits once the file is unlinked
// and nobody else holds it open; in path mode it follows whatever file is at
// the path and exits when nothing reappears there within about a second. Both
// modes exit when the group is deleted.
//
// The command line is lvm2's:
//
//	dmfilemapd <fd> <group_id> <abs_path> inode|path [<foreground 0|1> [<verbose 0..3>]]
//
// so that lvm2's dmstats can start this daemon and [Start] can start lvm2's.
// The watch loop ([Run]) talks to dm-stats only through an [Updater], so its
// rules can be tested against a fake; [NewStatsUpdater] is the real one.
package filemapd
