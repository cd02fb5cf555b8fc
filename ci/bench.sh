#!/usr/bin/env bash
# make bench: the benchmark suite. Boot-to-command is measured on the host
# (it boots VMs); everything that needs dm runs in one lab VM per package
# (natively when the host has dm), with the reference tools side by side in
# the same run. Results go to stdout and .cache/bench/latest.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.cache/bench
mkdir -p "$out"
exec > >(tee "$out/latest.txt") 2>&1

benchtime=${BENCHTIME:-4x}
echo "# dmfm benchmarks, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, benchtime $benchtime"

echo
echo "## boot to command (dmfm lab run -- true), on the host"
go test -run '^$' -bench BootToCommand -benchtime 5x ./lab/vm

pkgs=$(grep -rl --include='*_test.go' -e '^func Benchmark' $(ci/lab-packages.sh | sed 's|^\./||') 2>/dev/null \
  | xargs -r grep -l '^//go:build lab' | xargs -r -n1 dirname | sort -u | sed 's|^|./|')
if [ -z "$pkgs" ]; then
  echo "bench: no lab benchmarks found" >&2
  exit 1
fi
echo
echo "## in the lab: $pkgs"
if [ "$(id -u)" = 0 ] && grep -qw device-mapper /proc/misc; then
  exec_flag=()
else
  exec_flag=(-exec "$PWD/bin/dmfm lab run --timeout 40m --")
fi
PATH="$PWD/bin:$PATH" go test -tags lab -run '^$' -bench . -benchtime "$benchtime" -timeout 60m "${exec_flag[@]}" $pkgs
