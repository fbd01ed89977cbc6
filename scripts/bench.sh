#!/usr/bin/env bash
# Regenerates docs/benchmarks.md and docs/bench/*.svg: builds fusor (Release), runs the
# cases against the C loops (bench/bench_cases.c), the compile-latency breakdown, a size
# sweep, `fusor bench`, and NumPy/numexpr/Numba (bench/peers, in a venv this script makes),
# then writes the report (bench/report.py).  Takes a few minutes; not part of the tests.
#   FUSOR_BENCH_PEERS=0   skip the Python peers      FUSOR_BUILD_DIR=...   build directory
set -euo pipefail
cd "$(dirname "$0")/.."
build=${FUSOR_BUILD_DIR:-build-bench}
out=${FUSOR_BENCH_OUT:-$build/bench-results}
bash scripts/setup.sh
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" --target fusor_cli fusor_bench_cases >/dev/null
mkdir -p "$out" docs/bench
export FUSOR_CACHE_DIR="$out/cache"   # the measured bandwidth and kernels stay with the run
# The C loops' OpenMP threads sleep between rounds instead of spinning on fusor's cores.
export OMP_WAIT_POLICY=passive
cases="$build/bench/fusor_bench_cases"
"$build/fusor" info --bandwidth --remeasure >"$out/bandwidth.txt"
"$cases" --sizes 1e3,1e5,1e7 --threads 1,2 --json >"$out/cases.json"
"$cases" --sizes 1e5,1e7 --threads 2 --math fast --json \
    --cases sin2_cos2,exp_gauss,softmax,black_scholes >"$out/cases_fast.json"
"$cases" --sweep --threads 1,2 --cases triad,sin2_cos2 --json >"$out/sweep.json"
"$cases" --compile-only --json >"$out/compile.json"
"$build/fusor" bench -e 'a * b + c' --size 1e3,1e5,1e7 --threads 1,2 --unfused -q \
    >"$out/cli.txt"
"$build/fusor" bench -e 'a * b + c' --sweep 1e3:1e8 --threads 2 --json -q \
    --plot docs/bench/cli_sweep.svg >"$out/cli.json"
if [ "${FUSOR_BENCH_PEERS:-1}" != 0 ]; then
  venv=bench/peers/.venv
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -c 'import numpy, numexpr, numba' 2>/dev/null ||
    "$venv/bin/pip" install -q numpy numexpr numba
  "$venv/bin/python" bench/peers/run_peers.py --sizes 1e5,1e7 --threads 2 --json >"$out/peers.json"
fi
python3 - "$out" "$build" <<'PY'
import json, os, platform, subprocess, sys, datetime
out, build = sys.argv[1], sys.argv[2]
def sh(c):
    try: return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception: return "?"
bw = open(os.path.join(out, "bandwidth.txt")).read().split()
peers = [json.loads(l) for l in open(os.path.join(out, "peers.json"))] if os.path.exists(os.path.join(out, "peers.json")) else []
meta = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "cpu": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip() + " (" + sh(f"{build}/fusor info | grep -o 'host CPU: [a-z0-9]*'") + ")",
        "vcpus": sh("nproc"), "isa": "AVX-512" if "avx512f" in sh("grep -m1 flags /proc/cpuinfo") else "AVX2",
        "kernel": platform.release(), "compiler": sh("gcc --version | head -1"),
        "llvm": sh("llvm-config-16 --version"), "fusor": sh(f"{build}/fusor --version"),
        "load": sh("cat /proc/loadavg"),
        "copy_gbps": float(bw[2]), "bw_threads": int(bw[4].strip("(")),
        **({k: peers[0][k] for k in ("numpy", "numexpr", "numba")} if peers else {})}
json.dump(meta, open(os.path.join(out, "meta.json"), "w"))
PY
python3 bench/report.py "$out"
echo "wrote docs/benchmarks.md"
