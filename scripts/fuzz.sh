#!/usr/bin/env bash
# Runs each fuzz target of tests/fuzz (frontend, npy, cli) for a bounded time and fails on
# any finding.
#
#   scripts/fuzz.sh            # 60 s per target (what CI runs)
#   scripts/fuzz.sh 3600       # a longer run: one hour per target
#   FUZZ_TARGETS="npy" scripts/fuzz.sh 600
#
# Builds the libFuzzer binaries in build-fuzz (or $FUSOR_FUZZ_BUILD_DIR) with clang
# (CC=clang, FUSOR_FUZZ=ON: ASan+UBSan, coverage), starts from the committed seed corpus
# and past findings, and keeps what it learns in <build>/fuzz-corpus/<target> for the next
# run.  A finding (crash, sanitizer report, broken invariant, an input slower than 10 s or
# using more than 2 GB) is written to <build>/findings/<target>/; copy it into
# tests/fuzz/regressions/<target>/ and fix the bug: the replay tests keep it fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build=${FUSOR_FUZZ_BUILD_DIR:-build-fuzz}
targets=${FUZZ_TARGETS:-frontend npy cli}
jobs=$(nproc 2>/dev/null || echo 2)
[ "$jobs" -gt 2 ] && jobs=2

bash scripts/setup.sh >/dev/null
mkdir -p "$build"
if ! { [ -f "$build/CMakeCache.txt" ] ||
       CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
         -DFUSOR_FUZZ=ON -DFUSOR_WERROR=OFF; } >"$build/fuzz-build.log" 2>&1 ||
   ! cmake --build "$build" -j "$jobs" --target $(printf 'fuzz_%s ' $targets) \
       >>"$build/fuzz-build.log" 2>&1; then
  tail -n 30 "$build/fuzz-build.log"
  echo "fuzz: building the fuzz targets failed (log: $build/fuzz-build.log)"
  exit 1
fi

status=0
for t in $targets; do
  work="$build/fuzz-corpus/$t" findings="$build/findings/$t"
  mkdir -p "$work" "$findings"
  dict=()
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  log="$build/findings/$t.log"
  set +e
  "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$findings/" "${dict[@]}" \
    "$work" "tests/fuzz/corpus/$t" "tests/fuzz/regressions/$t" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n "s/^stat::number_of_executed_units: *//p" "$log" | tail -n1 || true)
  cov=$(grep -o "cov: [0-9]*" "$log" | tail -n1 | cut -d" " -f2 || true)
  if [ "$rc" -ne 0 ]; then
    echo "fuzz $t: FINDING after ${execs:-?} executions (exit $rc); log: $log"
    grep -E 'ERROR|runtime error|fuzz_[a-z]+:|Test unit written' "$log" | head -n 5 || true
    status=1
  else
    echo "fuzz $t: ${execs:-0} executions in ${seconds} s, coverage ${cov:-?}, no finding"
  fi
done
exit $status
