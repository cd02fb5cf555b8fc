// Package script runs dmfm scenarios written as txtar files with
// github.com/rogpeppe/go-internal/testscript: the suites under testscripts/,
// and bug reports replayed by `dmfm lab script FILE.txtar`.
//
// [Params] returns testscript parameters with the lab's commands and
// conditions, and a Setup that puts the tools under test on PATH, gives the
// script a lab directory ($LABDIR, also $DMFM_LAB_DIR for `dmfm lab`) and
// passes on what dmsetup needs without udev. Every command checks its usage
// strictly and names what was wrong, with the usage line; [!] marks those
// that take the ! prefix.
//
//	lab [fs=xfs|ext4|none] [size=SIZE] [mount=OPTS] [name=LABEL]
//	    bring up loop + dm linear + file system for this script, torn down
//	    when the script ends, pass or fail (whatever still uses it is
//	    stopped first). fs defaults to $FS, else ext4; size to 300M for
//	    xfs, else 128M. Sets $LABDEV (dm name), $LABPATH (/dev/mapper
//	    path), $LABDEVNO (major:minor), $LABLOOP and $MNT (mount point).
//	lab down                   take the newest lab down now
//	leaks [DMNAME...]          fail if this script left devices behind [!]
//	exclusive                  run alone: for scripts that look at every
//	                           lab device (dmfm lab status, clean)
//	writefile FILE SIZE        create or truncate FILE, write SIZE bytes [!]
//	grow FILE SIZE             append to FILE up to SIZE bytes [!]
//	                           (both fsync and leave no preallocated
//	                           blocks past EOF, so layouts are the same
//	                           on every machine)
//	fallocate FILE OFF LEN     allocate, extending the file if need be [!]
//	punch FILE OFF LEN         punch a hole, keeping the size
//	fragment FILE N            make FILE hold exactly N physical extents
//	truncate FILE SIZE         set FILE's size (creating it)
//	rename OLD NEW             rename(2): atomic, replaces NEW
//	unlink FILE                unlink(2)
//	hold FILE / release FILE   keep FILE open in this process until released
//	sync [FILE]                fsync FILE, or sync(2) everything
//	readfile FILE              read FILE with O_DIRECT (counted by dm-stats)
//	extents FILE               FILE's extents as sectors on its dm device,
//	                           merged as file mapping merges them
//	statslist [DEV]            the device's @stats_list reply, through lib/dm
//	regions DEV GROUP          the group's member regions, as extents prints
//	groupof VAR DEV ALIAS      set $VAR to the id of the group named ALIAS
//	waitgroup [-exact] DEV GROUP FILE [TIMEOUT]
//	                           wait until the group's regions cover FILE's
//	                           extents (-exact: one region per extent)
//	counters [-reset] DEV GROUP
//	                           print the group's I/O totals; fail if one went
//	                           backwards since the last call [!: expect it]
//	daemon start [-follow inode|path] FILE GROUP
//	daemon running GROUP PATH | daemon exited [-timeout D] GROUP PATH [REASON]
//	daemon stop GROUP PATH | daemon log GROUP PATH
//	                           dmfilemapd, as the script started it or as
//	                           dmfm did; REASON matches its log's exit reason
//	norm                       normalise device names in the last stdout and
//	                           stderr
//
// Conditions: [dm], [root], [xfs], [ext4], [target:NAME] (the dm target is
// available, loading its module if needed), [kernel:OPX.Y] with OP one of
// >=, >, <=, <, == (e.g. [kernel:>=6.1]) and [libdm:OPX.Y.Z] (the
// libdevmapper of dmsetup and dmstats, which tells which group tags they
// read); testscript's own [exec:PROG] works as usual.
//
// Output that names devices is normalised so golden files do not depend on
// loop or dm numbers: the lab's dm name becomes LABDEV, its major:minor
// LABDEVNO, its dm-N node LABDM, its loop device LABLOOP (major:minor
// LABLOOPNO), its mount point $MNT, the script's lab directory $LABDIR and
// its work directory $WORK (a second lab in the same script gets LABDEV2,
// $MNT2 and so on).
//
// A suite folder with a [MatrixFile] runs each of its scripts once per file
// system listed there, with $FS set. The daemons that dmfm starts log to
// syslog: inside the lab VM, where nothing else listens on /dev/log, the
// package keeps what they say so that daemon exited can tell why one left.
//
// [Report] collects one result per script, prints one line per script with
// its time, and writes JUnit XML; [RunTest] runs a suite under go test and
// [RunFiles] runs scripts without it (the `dmfm lab script` command).
package script
