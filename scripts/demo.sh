#!/usr/bin/env bash
# Installs what is missing, builds fusor, and runs a real kernel: Black–Scholes on ten
# million options, against the same formula as a plain C loop — on the GPU when one is
# usable, else on every CPU core.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
build=${FUSOR_BUILD_DIR:-build}
"$build"/fusor info | grep -E '^(fusor|LLVM|default threads|CUDA)' | cut -c1-160
"$build"/examples/example_demo "${1:-10000000}"
