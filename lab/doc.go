// Package lab builds device stacks for tests on demand: a sparse backing
// file, a loop device over it, a device-mapper target over the loop device,
// and optionally an xfs or ext4 file system mounted on top.
//
// A [Spec] says what to build; [Up] builds it and returns the live [*Lab];
// [Lab.Close] tears it down in reverse order. Every step that succeeds
// registers its undo, so a failure half-way leaves nothing behind, and every
// dm device carries a dm UUID starting with [UUIDPrefix] so that [Clean] can
// find lab leftovers (and only those) after a crash.
//
// The kernel must have device-mapper and the caller must be root; on hosts
// without dm, run inside `dmfm lab run` (package lab/vm).
package lab
