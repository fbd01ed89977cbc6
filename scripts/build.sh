#!/usr/bin/env bash
# Configures and builds fusor in ./build (or $FUSOR_BUILD_DIR), after installing what is
# missing.  Extra arguments go to cmake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
build=${FUSOR_BUILD_DIR:-build}
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=${FUSOR_BUILD_TYPE:-Release} "$@" >/dev/null
cmake --build "$build" -j "$jobs"
