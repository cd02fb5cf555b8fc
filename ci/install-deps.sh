#!/usr/bin/env bash
# Installs the system packages dmfm's build, tests and lab need, on Debian or
# Ubuntu, as root. Runs apt-get only when something is missing, so a second
# run costs nothing.
set -euo pipefail

pkgs=(
  qemu-system-x86   # the lab VM
  xfsprogs          # mkfs.xfs, xfs_io, xfs_growfs
  e2fsprogs         # mkfs.ext4, filefrag, resize2fs
  dmsetup           # dmsetup and dmstats: the reference tools, used as oracles
  kmod              # depmod -b for the lab kernel, modprobe inside the guest
  util-linux        # losetup, fallocate (host-side tests and scripts)
  xz-utils zstd     # decompress kernel modules for the initramfs
  cpio              # oracle for the initramfs writer's tests
  btrfs-progs       # mkfs.btrfs: file mapping must refuse btrfs, tested for real
  strace            # counting the daemon's system calls in benchmarks
  ca-certificates
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ ${#missing[@]} -gt 0 ]; then
  echo "ci/install-deps.sh: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  # apt-get download of the lab kernel needs current package lists.
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
    $sudo apt-get update -qq
  fi
fi
command -v go >/dev/null || { echo "ci/install-deps.sh: Go is not installed (need Go >= 1.26 on PATH, see go.mod)" >&2; exit 1; }
