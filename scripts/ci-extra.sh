#!/usr/bin/env bash
# CI after scripts/test.sh (.ci/run calls it): the reliability checks of
# docs/reliability.md.
#
#   1. the whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer
#      (build-asan, FUSOR_SANITIZE=ON; LeakSanitizer checks every test at exit);
#   2. the eight-thread stress test under ThreadSanitizer (build-tsan,
#      FUSOR_SANITIZE_THREAD=ON, tests/tsan.supp);
#   3. each fuzz target for FUSOR_FUZZ_SECONDS (default 60) seconds (scripts/fuzz.sh).
#
# Each tree is configured and built once (incrementally on a warm machine); suites run
# with ctest -j2.  Prints the time of each step.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=2
fuzz_seconds=${FUSOR_FUZZ_SECONDS:-60}
t0=$(date +%s)
step() { echo "== ci-extra: $1 (at $(($(date +%s) - t0)) s)"; }

bash scripts/setup.sh

step "ASan+UBSan: build"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFUSOR_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$jobs" >/dev/null
step "ASan+UBSan: the test suite"
ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:detect_stack_use_after_return=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan -j "$jobs" --output-on-failure --timeout 600

step "TSan: build"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFUSOR_SANITIZE_THREAD=ON >/dev/null
cmake --build build-tsan -j "$jobs" --target test_stress_threads >/dev/null
step "TSan: the stress test"
TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp halt_on_error=1 second_deadlock_stack=1" \
  ctest --test-dir build-tsan -R '^test_stress_threads$' --output-on-failure --timeout 600

step "fuzzing, ${fuzz_seconds} s per target"
bash scripts/fuzz.sh "$fuzz_seconds"
step "done"
