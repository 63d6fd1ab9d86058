#!/usr/bin/env bash
# Builds the stand-in NCCL (libnccl.so.2, soname libressl_emu_nccl.so.2: not NVIDIA's, so that it
# never captures the real library loaded later in the same process) into $EMU_LIB_DIR, against
# NVIDIA's real nccl.h from the wheel (RESSL_CUDA_WHEELS_DIR/nvidia/nccl/include) and the CUDA
# headers (CUDA_INCLUDE). Called by emulator/build.sh with EMU_LIB_DIR, EMU_BUILD_DIR, CXX,
# CUDA_INCLUDE, RESSL_CUDA_WHEELS_DIR; incremental (skips when the library is newer than its
# sources).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
: "${EMU_LIB_DIR:?set by emulator/build.sh}" "${EMU_BUILD_DIR:?}" "${CUDA_INCLUDE:?}"
cxx="${CXX:-g++}"
nccl_include="${RESSL_CUDA_WHEELS_DIR:?}/nvidia/nccl/include"
if [ ! -f "$nccl_include/nccl.h" ]; then
  echo "emulator/nccl/build.sh: $nccl_include/nccl.h not found: run scripts/setup_cuda.sh (NVIDIA's nvidia-nccl-cu13 wheel) or set RESSL_CUDA_WHEELS_DIR" >&2
  exit 1
fi
out="$EMU_LIB_DIR/libnccl.so.2"
srcs=("$here"/*.cpp "$here/build.sh" "$here/../include/ressl_emu_api.h")
if [ -f "$out" ]; then
  stale=0
  for s in "${srcs[@]}"; do [ "$s" -nt "$out" ] && stale=1; done
  [ -f "$EMU_LIB_DIR/libcuda.so.1" ] && [ "$EMU_LIB_DIR/libcuda.so.1" -nt "$out" ] && stale=1
  [ "$stale" = 0 ] && exit 0
fi
mkdir -p "$EMU_LIB_DIR"
# Written under a temporary name and renamed: a process that has the old one loaded keeps it.
"$cxx" -std=c++17 -O2 -fPIC -fvisibility=hidden -Wall -shared -o "$out.tmp" "$here"/*.cpp \
  -I"$CUDA_INCLUDE" -I"$nccl_include" -Wl,-soname,libressl_emu_nccl.so.2 \
  "$EMU_LIB_DIR/libcuda.so.1" '-Wl,-rpath,$ORIGIN' -lpthread
mv "$out.tmp" "$out"
