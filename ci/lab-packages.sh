#!/usr/bin/env bash
# Prints the Go packages that have kernel tests (files tagged `//go:build lab`).
set -euo pipefail
cd "$(dirname "$0")/.."
grep -rl --include='*_test.go' '^//go:build lab' lib lab tools testscripts 2>/dev/null \
  | xargs -r -n1 dirname | sort -u | sed 's|^|./|'
