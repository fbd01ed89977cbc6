#!/usr/bin/env bash
# Installs what fusor needs to build and test on Debian 12, idempotently:
# only packages that are missing are installed, and `apt-get update` runs once
# (and only when something is missing).
set -euo pipefail

pkgs=(
  cmake pkg-config gcc g++ make
  llvm-16-dev libzstd-dev zlib1g-dev libtinfo-dev   # LLVM C API + static libs
  libpolly-16-dev                                   # llvm-config --link-static lists LLVMPolly's cmake deps
  libhwloc-dev                                      # topology and thread binding
  libsleef-dev                                      # vectorised math within 1 ulp (SLEEF)
  clang libclang-rt-14-dev libomp-14-dev            # fuzzing: clang's libFuzzer (scripts/fuzz.sh)
  python3                                           # only for scripts that regenerate fixtures
  libopenmpi-dev openmpi-bin                        # examples/heat2d-mpi (MPI C bindings, mpirun)
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: all packages present"
fi
