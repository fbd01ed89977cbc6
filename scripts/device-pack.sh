#!/usr/bin/env bash
# device-pack.sh — builds fusor for a GPU machine and packs it into one archive to carry
# there (scripts/device-run.sh unpacks and runs it).
#
#   scripts/device-pack.sh [ARCHIVE]      default: build-pack/fusor-device.tar.xz
#
# The archive holds, stripped: the `fusor` command and libfusor.so with LLVM linked in
# statically; the GPU tests (tests/gpu), the CUDA unit tests (tests/unit/test_cuda_*,
# which run on the fake driver anywhere), the GPU benchmarks (bench_gpu, probe_driver) and the
# examples; the shared libraries they need beyond the C and C++ runtimes (hwloc,
# OpenMP, zstd, tinfo, SLEEF, ...); CUDA's libdevice, so the NVPTX path needs no
# toolkit there; and the sources the tests read at run time (kernels/std, test data).
# It fails if the archive is 64 MiB or more (what a device call may carry).
#
# FUSOR_PACK_BUILD names the build directory (default build-pack), FUSOR_PACK_JOBS the
# build's parallelism (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${FUSOR_PACK_BUILD:-build-pack}
archive=${1:-$build/fusor-device.tar.xz}
jobs=${FUSOR_PACK_JOBS:-2}
limit=$((64 * 1024 * 1024))

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DFUSOR_LLVM_STATIC=ON -DBUILD_TESTING=ON \
    >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
tests=$(cd tests && ls gpu/test_*.c unit/test_cuda_*.c | sed 's|.*/||; s|\.c$||')
examples=$(cd examples && ls *.c | sed 's|\.c$||; s|^|example_|')
cmake --build "$build" -j "$jobs" --target fusor_cli fusor bench_gpu probe_driver $tests $examples

stage=$build/stage/fusor-device
rm -rf "$build/stage"
mkdir -p "$stage/bin" "$stage/lib" "$stage/share" "$stage/src"
cp "$build/fusor" "$stage/bin/"
cp "$build/tests/bench_gpu" "$build/tests/probe_driver" "$stage/bin/"
for t in $tests; do cp "$build/tests/$t" "$stage/bin/"; done
for e in $examples; do
    [ -x "$build/examples/$e" ] && cp "$build/examples/$e" "$stage/bin/"
done
cp -L "$build/libfusor.so.0" "$stage/lib/"

# Shared libraries beyond what every Linux with a C++ runtime has.
system_libs='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libstdc\+\+\.so|libgcc_s\.so|libfusor\.so)'
for f in "$stage"/bin/* "$stage"/lib/libfusor.so.0; do
    ldd "$f" 2>/dev/null | awk '/=> \// {print $1, $3}'
done | sort -u | while read -r name path; do
    if ! [[ $name =~ $system_libs ]]; then cp -L "$path" "$stage/lib/$name"; fi
done
# Opened with dlopen by the host JIT (the default math library), so ldd does not list it.
for name in libsleef.so.3; do
    path=$(ldconfig -p | awk -v n="$name" '$1 == n {print $NF; exit}')
    [ -n "$path" ] && cp -L "$path" "$stage/lib/$name"
done

# libdevice for the NVPTX path, wherever the toolkit keeps it.
for p in "${FUSOR_LIBDEVICE:-}" "${CUDA_HOME:-/usr/local/cuda}/nvvm/libdevice/libdevice.10.bc" \
    /usr/local/cuda/nvvm/libdevice/libdevice.10.bc; do
    if [ -n "$p" ] && [ -f "$p" ]; then cp "$p" "$stage/share/libdevice.10.bc"; break; fi
done

# What tests read from the source tree (they were built with its path, recorded here).
echo "$root" >"$stage/SOURCE_DIR"
mkdir -p "$stage/src/kernels" "$stage/src/tests/e2e"
cp -r kernels/std "$stage/src/kernels/"
cp -r tests/e2e/data "$stage/src/tests/e2e/"
mkdir -p "$stage/src/bench/peers"
cp bench/peers/cupy_bench.py "$stage/src/bench/peers/"
git rev-parse --short HEAD >"$stage/COMMIT" 2>/dev/null || echo unknown >"$stage/COMMIT"

strip --strip-unneeded "$stage"/bin/* "$stage"/lib/*.so* 2>/dev/null || true
mkdir -p "$(dirname "$archive")"
tar -C "$build/stage" -cf - fusor-device | xz -T2 -6 >"$archive"
size=$(stat -c %s "$archive")
unpacked=$(du -sb "$stage" | cut -f1)
awk -v a="$archive" -v s="$size" -v u="$unpacked" -v n="$(ls "$stage/bin" | wc -l)" \
    'BEGIN { printf "device pack: %s, %.1f MiB (%.1f MiB unpacked, %d programs)\n", a, s / 1048576, u / 1048576, n }'
if [ "$size" -ge "$limit" ]; then
    echo "device pack: $archive is over 64 MiB" >&2
    exit 1
fi
