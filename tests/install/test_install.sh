#!/usr/bin/env bash
# Installs the build tree into a temporary prefix, then builds and runs examples/axpy.c
# against it twice: with find_package(fusor) and with pkg-config.
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(ls -d "$tmp"/prefix/lib*/ | head -n1)

# 1. CMake package.
cmake -S "$src/tests/install/app" -B "$tmp/app" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
      -DEXAMPLE="$src/examples/axpy.c" >/dev/null
cmake --build "$tmp/app" >/dev/null
LD_LIBRARY_PATH="$libdir" "$tmp/app/user_axpy"

# 2. pkg-config.
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -std=c11 "$src/examples/axpy.c" -o "$tmp/axpy_pc" $(pkg-config --cflags --libs fusor) -lm
LD_LIBRARY_PATH="$libdir" "$tmp/axpy_pc"
test -x "$tmp/prefix/bin/fusor" && test -f "$tmp/prefix/include/fusor.h" && test -f "$libdir/libfusor.a"
echo "1 passed, 0 failed"
