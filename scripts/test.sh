#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (ctest, in parallel).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh "$@"
build=${FUSOR_BUILD_DIR:-build}
jobs=$(nproc 2>/dev/null || echo 2)
cd "$build"
ctest -j "$jobs" --output-on-failure --timeout 900
