#!/usr/bin/env bash
# make demo: the main job on a real device-mapper volume. Builds a lab stack
# (loop + dm linear + xfs), writes a fragmented file, maps it to a group of
# dm-stats regions, does I/O through the file and reports it per file; then
# grows the file and lets dmfilemapd follow it. Runs as root on a kernel with
# dm (make demo boots the lab VM when the host has none).
set -euo pipefail
command -v dmfm >/dev/null || { echo "demo: dmfm is not on PATH (make build)" >&2; exit 1; }

dir=$(mktemp -d /tmp/dmfm-demo.XXXXXX)
name=demo
cleanup() {
  dmfm delete --allregions "$name" >/dev/null 2>&1 || true
  pkill -x dmfilemapd 2>/dev/null || true
  dmfm lab down --dir "$dir" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
show() { printf '\n$ %s\n' "$*"; "$@"; }
# Debian 12's dmstats (lvm2 2.03.16) reads only the legacy group tag; write
# that one so both tools show the same group (dmfm's default is the quoted tag
# of lvm2 >= 2.03.23).
export DMFM_GROUP_FORMAT=legacy

show dmfm lab up --name "$name" --fs xfs --size 512M --mount-opts allocsize=4k --dir "$dir"
img="$dir/$name/mnt/vm.img"

# A file of 24 extents: 64 KiB synced writes with a hole after each.
for i in $(seq 0 23); do
  dd if=/dev/urandom of="$img" bs=64k count=1 seek=$((i * 2)) conv=notrunc,fsync status=none
done

show dmfm create --filemap "$img"
show dmfm list --group "$name"

# Per-file I/O: direct reads of the whole file, and in-place writes to its
# first extent (writes into the holes would allocate new extents).
dd if="$img" of=/dev/null bs=64k iflag=direct status=none
dd if=/dev/zero of="$img" bs=4k count=16 oflag=direct conv=notrunc status=none
show dmfm report --group "$name"

# The file grows; dmfilemapd (started by create) maps the new extents.
for i in $(seq 24 31); do
  dd if=/dev/urandom of="$img" bs=64k count=1 seek=$((i * 2)) conv=notrunc,fsync status=none
done
sleep 1
show dmfm list --group "$name"
show dmstats list --group "$name"
# The counters of the regions that were kept survive the update.
show dmfm report --group -o stats_name,group_id,region_id,reads,writes,read_sectors,write_sectors "$name"
