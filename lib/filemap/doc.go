// Package filemap maps a file to dm-stats regions on the device-mapper
// device under it and keeps that group of regions true to the file as the
// file changes: the work of lvm2's `dmstats create --filemap` and
// `dmstats update_filemap`, with lvm2's layout available for interoperation
// and its known bugs fixed.
//
// # Binding and ranges
//
// Bind takes the file's st_dev; its major must be device-mapper's (from
// /proc/devices) and its name comes from /sys/dev/block/MAJ:MIN/dm/name.
// btrfs is refused (it reports no physical offsets), and so are files on
// filesystems without a block device (tmpfs, proc, NFS, ...) and on block
// devices that are not dm devices, each with an error naming the file.
//
// Ranges reads the file's extents with FIEMAP (FIEMAP_FLAG_SYNC, so delayed
// allocations get their place first). Physical byte offsets are used
// directly as 512-byte sectors on the dm device. Extents whose place is
// unknown or delayed are skipped, and so is inline data, which has no
// block of its own; unwritten (fallocated) extents are mapped. Extents that
// are adjacent on the device are merged, even across a hole in the file.
//
// # Create
//
// Create makes one region of one area per range, in file order, with the
// program id dmstats uses unless told otherwise, and groups them: the
// leader is the lowest id, the alias the base name of the file's canonical
// path. A failure half-way deletes every region made so far (and reports a
// failure of that cleanup too). With Options.NoGroup no tag is written.
//
// # Update: two strategies
//
// Exact reproduces lvm2's layout region for region, so that lvm2's tools
// and ours can take turns on one group: a member is kept only when a range
// has exactly its start and length; the others are deleted (lowest id
// first but the lowest last, so that a deleted leader goes last, as with
// lvm2's highest id first; many deletes get a scratch region, see
// dmstats.DeleteScratchGain), then the ranges left without a member get
// new regions in file order, inheriting the leader's program id,
// precision and histogram. The
// kernel gives each new region the lowest free id, so the ids are lvm2's
// too. Its cost is lvm2's: when the last extent of a file grows in place,
// its region is deleted and made again and its counters are lost.
//
// Preserve (the default) keeps every member that still lies wholly inside
// the file's ranges and gives new regions only to the parts of the ranges no
// member covers. A growing file keeps the counters it has; only regions
// over space the file gave back are removed.
//
// In both, the group's leader is its lowest member. When a new region gets
// an id below the old leader (the kernel hands out the lowest free id, which
// may have been left by another group), or when the leader itself goes, the
// group is regrouped under its new lowest id and Result reports the change.
// lvm2 instead writes a tag whose first member is not its carrier, which
// invalidates the group; Update also repairs such a tag when it meets one
// on the group it is given.
//
// # A file with no extents
//
// lvm2 fails to update a group whose file was truncated to nothing, and its
// daemon then exits, leaving a stale group. Here the group stays, as an
// empty placeholder: every member but the leader is deleted, the leader is
// kept as it is (a region cannot be empty), and the tag's user data becomes
// "DMFM_EMPTY" (or "DMFM_EMPTY+<user data>"; see DecodeUserData). The
// group id, alias and user data therefore survive, GroupExists stays true,
// and a daemon following the file carries on: when the file gets extents
// again, the next Update maps them like any change, keeping the placeholder
// only if it lies inside the new ranges (its counters are cleared then, as
// what it counted meanwhile was not the file's I/O). Readers should treat
// the counters of an empty group as meaningless.
//
// # Crash safety
//
// A Create or Update killed at any point (SIGKILL between two messages)
// leaves a state from which the next Update converges to a correct group
// with no orphan regions. The only kernel state is the regions, their
// mutable aux data and the leader's DMS_GROUP tag, so the protocol is built
// from these rules:
//
//  1. A region made by Create or Update is recognisable as the group's from
//     birth, in one of two ways. Fast path: before the regions are made, the
//     leader's tag lists the ids the kernel will give them (it hands out the
//     lowest free id, so they can be predicted) and its user data starts with
//     an intent, DMFM_INTENT=<id>:<start>+<length>,...; naming the range each
//     is for; the regions are then made with plain aux data, and the final
//     tag, without the intent, is written last. A listed id counts as the
//     group's region only while it maps the range announced for it: an id
//     that was never made is ignored like any missing member, and one that
//     another tool got meanwhile (another range) is left alone. Slow path:
//     each region carries a pending marker as aux data, DMFM_PENDING=<anchor>:
//     <hex alias>:<hex user data>, the anchor being the leader of the group
//     it is made for, and the marker is replaced by "-" only after the region
//     is listed in the group's tag. The fast path costs one message per
//     region, as lvm2's tools do; the slow path two.
//  2. Create takes the fast path: it makes the leader first, its tag and
//     intent given at birth (@stats_create carries aux data), so the group
//     exists from the first message on. If the kernel gives an id other than
//     the predicted one (another tool made or deleted a region meanwhile),
//     Create deletes what it made and tries once more, then falls back to
//     the slow path: the leader with its own tag, the other regions pending,
//     the full tag, then the markers reset. For a large file Create puts a
//     scratch region (dmstats.CreateScratch) at the second predicted id
//     right after the leader, makes the third region onwards, deletes the
//     scratch region and makes the second region last: every @stats_create
//     rescans the kernel's list for a precise region, and the scratch
//     region stops those rescans before the regions made so far. The ids,
//     the intent and the tag are the same; the second region is only made
//     late, which the intent covers like any region not yet made.
//  3. Update deletes before it creates (so new regions get lvm2's ids) and
//     never unlists a member that still exists: members are deleted while
//     still listed (a tag naming a missing region is harmless, the member
//     is ignored), and the tag is rewritten once, after the deletions and
//     creations. It takes the fast path while the leader stays the leader;
//     from the first id the kernel did not give as predicted, it marks that
//     region and makes the rest pending. If the leader itself is to be
//     deleted, or a new region is to take an id below it, every member that
//     stays is first marked pending (when the leader goes), so that after
//     the leader (and with it the tag) is gone every survivor still names
//     the group, its alias and user data, and new regions are made pending.
//  4. A regroup writes the new leader's tag first, then resets the old
//     leader's stale tag (when the old leader stays as a member), then the
//     pending markers.
//  5. A scratch region names its process. Create and Update first delete
//     every scratch region whose process died (listLive): one a killed
//     Create left sits on an id its intent announced, for another range.
//
// Update starts by resolving the group it is given (see resolve): the group
// it leads; or the group whose tag lists it or regions pending for it (the
// leader changed before the crash); or, when no tag survives, the regions
// pending for it, from whose markers the group is rebuilt. Every region
// pending for the group, and every region an intent announced that maps
// its announced range, joins the candidate members, which are then planned
// like members: kept if they fit the file, deleted otherwise. A crash
// therefore leaves nothing that the next Update does not either adopt or
// delete. One exception guards other groups: because members are deleted
// while still listed, a crash can leave a tag naming an id that the kernel
// has since given to another group's region. A candidate that another
// group's tag also lists is therefore never deleted or marked: it is kept
// if it fits the file and otherwise only left out of the new tag. Until the last message of a regroup, Update with the old group
// id still finds the group; after it the old id is gone like any deleted
// region and the group answers to its new id (Result.GroupID), so a caller
// that died in that instant must look the group up again (its alias is
// unchanged).
//
// If a message fails (rather than the process dying), Update runs a second
// pass at once, which does what the next Update after a crash would do,
// and returns its Result together with the error; Create deletes what it
// made.
//
// # Locking
//
// Create and Update hold an exclusive flock on LockDir/stats-MAJ_MIN.lock
// for the device while they work, so two dmfm processes changing groups on
// one device (two files followed by two daemons, say) never interleave
// their messages. Tools that do not take the lock (lvm2's dmstats) can
// still race with us; the kernel's lowest-free-id allocation is then the
// only thing the protocol relies on, and a wrong prediction of the
// leader's id is corrected at once.
package filemap
