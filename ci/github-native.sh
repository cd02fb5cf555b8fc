#!/usr/bin/env bash
# What the GitHub Actions workflow runs on an Ubuntu runner, whose kernel has
# device-mapper: the lab tests run natively (make lab-test detects dm and
# root), no VM needed.
set -euo pipefail
cd "$(dirname "$0")/.."
sudo modprobe dm-mod loop || true
sudo bash ci/install-deps.sh
make vet unit
sudo env "PATH=$PATH" make lab-test
