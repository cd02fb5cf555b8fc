// Package script runs dmfm scenarios written as txtar files with
// github.com/rogpeppe/go-internal/testscript: the suites under testscripts/,
// and bug reports replayed by `dmfm lab script FILE.txtar`.
//
// [Params] returns testscript parameters with the lab's commands and
// conditions and a Setup that puts the tools under test on PATH. Every
// command checks its usage strictly and names what was wrong:
//
//	lab [fs=xfs|ext4|none] [size=SIZE] [mount=OPTS] [name=LABEL]
//	    bring up loop + dm linear + file system for this script; torn down
//	    when the script ends, pass or fail. Sets $LABDEV (dm name),
//	    $LABPATH (/dev/mapper path), $LABDEVNO (major:minor), $LABLOOP and
//	    $MNT (the mount point; unset with fs=none).
//	lab down        tear the newest lab down now
//	leaks [NAME...] fail if this script left devices behind ([!] supported)
//	exclusive       run alone: wait for other scripts' labs, block new ones
//	writefile FILE SIZE        create or truncate FILE, write SIZE bytes, fsync
//	grow FILE SIZE             append to FILE up to SIZE bytes, fsync
//	fallocate FILE OFF LEN     allocate (may extend the file)
//	punch FILE OFF LEN         punch a hole, keeping the size
//	fragment FILE N            make FILE hold exactly N physical extents
//	truncate FILE SIZE         set FILE's size
//	rename OLD NEW             rename(2): atomic, replaces NEW
//	unlink FILE                unlink(2)
//	hold FILE / release FILE   keep FILE open in this process until released
//	sync [FILE]                fsync FILE, or sync(2) everything
//	extents FILE               FILE's extents as sectors on its dm device
//	statslist [DEV]            the device's @stats_list reply, through lib/dm
//	regions DEV GROUP          the group's member regions, as extents prints
//	waitgroup DEV GROUP FILE [TIMEOUT]
//	                           wait until the group's regions are FILE's extents
//	counters DEV GROUP         print the group's I/O totals; fail if one went
//	                           backwards since the last call ([!]: expect it)
//	daemon start [-follow inode|path] FILE GROUP
//	daemon running GROUP PATH | daemon exited [-timeout D] GROUP PATH [REASON]
//	daemon stop GROUP PATH | daemon log GROUP PATH
//	norm                       normalise device names in the last stdout/stderr
//
// Conditions: [dm], [root], [xfs], [ext4], [target:NAME] (the dm target is
// available, loading its module if needed) and [kernel:OP X.Y] with OP one of
// >=, >, <=, <, == (e.g. [kernel:>=6.1]); testscript's own [exec:PROG] works
// as usual.
//
// Output that names devices is normalised so golden files do not depend on
// loop or dm numbers: the lab's dm name becomes LABDEV, its major:minor
// LABDEVNO, its dm-N node LABDM, its loop device LABLOOP (major:minor
// LABLOOPNO), its mount point $MNT, the script's lab directory $LABDIR and
// its work directory $WORK (a second lab in the same script gets LABDEV2,
// $MNT2 and so on).
//
// [Report] collects one result per script, prints one line per script with
// its time, and writes JUnit XML; [RunTest] runs a suite under go test and
// [RunFiles] runs scripts without it (the `dmfm lab script` command).
package script
