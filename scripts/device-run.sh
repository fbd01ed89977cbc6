#!/usr/bin/env bash
# device-run.sh — on a GPU machine: unpacks an archive made by scripts/device-pack.sh and
# runs the GPU tests, the CUDA unit tests, the examples on the GPU and the GPU
# benchmarks, then prints a short table of results last.
#
#   scripts/device-run.sh [ARCHIVE] [RESULTS_DIR]
#
# ARCHIVE defaults to build-pack/fusor-device.tar.xz; RESULTS_DIR (default $OUT, else a
# temporary folder) receives the log and the benchmark table.  The exit status is 0 when
# nothing failed (a test skipped for want of a GPU is not a failure).
set -uo pipefail
archive=${1:-build-pack/fusor-device.tar.xz}
results=${2:-${OUT:-$(mktemp -d)}}
mkdir -p "$results"
work=$(mktemp -d)
tar -C "$work" -xJf "$archive" || { echo "device-run: cannot unpack $archive" >&2; exit 1; }
d=$work/fusor-device
export LD_LIBRARY_PATH=$d/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
[ -f "$d/share/libdevice.10.bc" ] && export FUSOR_LIBDEVICE=$d/share/libdevice.10.bc
export FUSOR_CACHE_DIR=$work/cache
# The tests open kernels/std and test data under the path they were built in.
src=$(cat "$d/SOURCE_DIR")
if [ ! -e "$src/kernels/std" ] && [ ! -e "$src" ]; then
    mkdir -p "$(dirname "$src")" && ln -s "$d/src" "$src"
fi

log=$results/device-run.log
: >"$log"
declare -a rows
run() { # name timeout command...
    local name=$1 limit=$2
    shift 2
    local t0 t1 rc out
    t0=$(date +%s.%N)
    out=$(timeout "$limit" "$@" 2>&1)
    rc=$?
    t1=$(date +%s.%N)
    printf '===== %s (exit %d)\n%s\n' "$name" "$rc" "$out" >>"$log"
    local verdict=PASS
    [ $rc -eq 77 ] && verdict=SKIP
    [ $rc -ne 0 ] && [ $rc -ne 77 ] && verdict=FAIL
    [ $rc -eq 124 ] && verdict=TIMEOUT
    local last
    last=$(printf '%s\n' "$out" | grep -E 'passed, [0-9]+ failed|^SKIP' | tail -1)
    rows+=("$(printf '| %-26s | %-7s | %7.1f | %s |' "$name" "$verdict" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$last")")
    printf '%-26s %-7s %s\n' "$name" "$verdict" "$last"
}

echo "== device" | tee -a "$log"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$log"
echo "fusor $(cat "$d/COMMIT"), $(date -u +%Y-%m-%dT%H:%MZ)" | tee -a "$log"
"$d/bin/fusor" info 2>&1 | grep -E '^(CUDA|  device|NVRTC)' | tee -a "$log"

echo "== tests"
for t in "$d"/bin/test_cuda_* "$d"/bin/test_gpu_*; do
    [ -x "$t" ] && run "$(basename "$t")" 120 "$t"
done
# Every form of an axis reduction's kernels on every shape test_gpu_axis tries, whatever
# form the shape would pick (scheduler/gpuaxis.h).
for form in thread threadsplit block split; do
    [ -x "$d/bin/test_gpu_axis" ] &&
        run "test_gpu_axis, $form" 120 env FUSOR_GPU_AXIS_FORM=$form "$d/bin/test_gpu_axis"
done
echo "== examples on the GPU (FUSOR_TARGET=gpu)"
for e in "$d"/bin/example_*; do
    [ -x "$e" ] || continue
    case "$(basename "$e")" in
    # heat2d runs its CPU loops and then, with a GPU, the GPU loops itself (fusor_launch and
    # prepared CUDA Graph replays, time per step and host cost per step): a big plate.
    example_heat2d)
        run "$(basename "$e") 1024 x 1024" 60 "$e" 1024 200
        run "$(basename "$e") 128 x 128" 60 "$e" 128 5000 ;; # the cost of a step itself
    *) run "$(basename "$e")" 60 env FUSOR_TARGET=gpu "$e" ;;
    esac
done
run "fusor run --target gpu" 60 "$d/bin/fusor" run -v --target gpu -e 'sqrt(a*a + b*b)' a=3 b=4
run "fusor bench --target gpu" 90 "$d/bin/fusor" bench -e 'a * b + c' --target gpu \
    --size 1e3,1e6,1e8 -q
echo "== benchmarks"
timeout 240 "$d/bin/bench_gpu" "$results/bench.md" 2>&1 | tee -a "$log"
# The driver's own costs beside fusor's launch table: what a launch cannot go below.
timeout 60 "$d/bin/probe_driver" 2>&1 | tee -a "$results/bench.md" "$log"
# CuPy's fused kernels on the same device and sizes, when CuPy is installed.
if python3 -c 'import cupy' 2>/dev/null; then
    timeout 120 python3 "$d/src/bench/peers/cupy_bench.py" 2>&1 | tee -a "$results/bench.md" "$log"
else
    echo "no CuPy here: no comparison" | tee -a "$log"
fi
"$d/bin/fusor" info --memory >>"$log" 2>&1

echo
echo "| program | result | seconds | summary |"
echo "| --- | --- | ---: | --- |"
failed=0
for r in "${rows[@]}"; do
    echo "$r"
    case $r in *FAIL*|*TIMEOUT*) failed=1 ;; esac
done
[ -f "$results/bench.md" ] && cat "$results/bench.md"
exit $failed
