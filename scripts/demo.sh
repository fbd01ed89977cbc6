#!/usr/bin/env bash
# Installs what is missing, builds fusor, and runs a real kernel: Black–Scholes on ten
# million options, against the same formula as a plain C loop.  (The GPU is used once
# fusor's GPU runtime lands; today every kernel runs on the CPU pool.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
build=${FUSOR_BUILD_DIR:-build}
"$build"/fusor info | sed -n '1,3p'
"$build"/examples/example_demo "${1:-10000000}"
