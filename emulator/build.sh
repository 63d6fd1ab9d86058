#!/usr/bin/env bash
# Builds the emulated CUDA device into build/emulator/lib/ (git-ignored):
#   libcuda.so.1     the driver API on host memory (emulator/driver/)
#   libcublas.so.13  the cuBLAS stand-in (emulator/cublas/)
#   libcudnn.so.9    the cuDNN stand-in (emulator/cudnn/)
#   kernels/*.so     one host build per kernel source: ffi/cuda/kernels/NAME.cu -> NAME.so and
#                    tests/emulator/kernels/NAME.cu -> test_NAME.so
#   (and whatever emulator/*/build.sh parts add, e.g. libnccl.so.2 from emulator/nccl/build.sh,
#   called with EMU_LIB_DIR, EMU_BUILD_DIR, CXX, CUDA_INCLUDE, RESSL_CUDA_WHEELS_DIR)
# Incremental (make): fast when nothing changed. Needs g++, make, CUDA 13's cuda.h (the toolkit)
# and the cuBLAS / cuDNN headers from NVIDIA's wheels (scripts/setup_cuda.sh installs them).
# Env: CXX (g++), CUDA_HOME, RESSL_CUDA_WHEELS_DIR (where setup_cuda.sh put the wheels; default
# .cache/nvidia), RESSL_EMU_BUILD (output folder; default build/emulator), RESSL_EMU_JOBS (2).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="${RESSL_EMU_BUILD:-$root/build/emulator}"
cxx="${CXX:-g++}"

die() {
  echo "emulator/build.sh: $*" >&2
  exit 1
}

command -v "$cxx" >/dev/null || die "the C++ compiler '$cxx' is not installed (apt-get install g++, or set CXX)"
command -v make >/dev/null || die "make is not installed (apt-get install make)"
[ "$(uname -m)" = "x86_64" ] || die "the fiber switch is written for x86-64; this machine is $(uname -m)"

cuda_include=""
candidates=()
[ -n "${CUDA_HOME:-}" ] && candidates+=("$CUDA_HOME/include")
if command -v nvcc >/dev/null; then
  candidates+=("$(cd "$(dirname "$(readlink -f "$(command -v nvcc)")")/.." && pwd)/include")
fi
candidates+=(/usr/local/cuda/include /usr/local/cuda-13.0/include /usr/local/cuda-13/include)
for dir in "${candidates[@]}"; do
  if [ -f "$dir/cuda.h" ]; then
    cuda_include="$dir"
    break
  fi
done
[ -n "$cuda_include" ] || die "cuda.h not found (looked in ${candidates[*]}): install the CUDA 13 toolkit or set CUDA_HOME"
version="$(sed -n 's/^#define CUDA_VERSION \([0-9]*\).*/\1/p' "$cuda_include/cuda.h")"
[ "${version:-0}" -ge 13000 ] || die "$cuda_include/cuda.h is CUDA_VERSION ${version:-?}; the emulator needs CUDA 13 (13000 or later)"

wheels="${RESSL_CUDA_WHEELS_DIR:-$root/.cache/nvidia}"
cublas_include="$wheels/nvidia/cu13/include"
cudnn_include="$wheels/nvidia/cudnn/include"
hint="run scripts/setup_cuda.sh (it installs NVIDIA's wheels into .cache/nvidia), or set RESSL_CUDA_WHEELS_DIR"
[ -f "$cublas_include/cublas_v2.h" ] || die "$cublas_include/cublas_v2.h not found: $hint"
[ -f "$cudnn_include/cudnn.h" ] || die "$cudnn_include/cudnn.h not found: $hint"

kernels=()
names=()
shopt -s nullglob
for src in "$root"/ffi/cuda/kernels/*.cu; do
  name="$(basename "$src" .cu)"
  kernels+=("$name=$src")
  names+=("$name.so")
done
for src in "$root"/tests/emulator/kernels/*.cu; do
  name="test_$(basename "$src" .cu)"
  kernels+=("$name=$src")
  names+=("$name.so")
done
for src in "${kernels[@]}"; do
  case "$src" in *" "*) die "kernel source path with a space is not supported: ${src#*=}" ;; esac
done

make --no-print-directory -s -j "${RESSL_EMU_JOBS:-2}" -f "$here/Makefile" \
  BUILD="$build" CXX="$cxx" CUDA_INCLUDE="$cuda_include" CUBLAS_INCLUDE="$cublas_include" \
  CUDNN_INCLUDE="$cudnn_include" KERNELS="${kernels[*]}"

# Further stand-ins maintained with their own part (libnccl.so.2: emulator/nccl/build.sh) build
# into the same folder, with the same compiler and headers.
for part in "$here"/*/build.sh; do
  [ -f "$part" ] || continue
  EMU_LIB_DIR="$build/lib" EMU_BUILD_DIR="$build" CXX="$cxx" CUDA_INCLUDE="$cuda_include" \
    RESSL_CUDA_WHEELS_DIR="$wheels" bash "$part"
done

# Host builds of kernel sources that no longer exist would still be loaded: remove them.
for lib in "$build"/lib/kernels/*.so; do
  keep=0
  for n in "${names[@]}"; do [ "$(basename "$lib")" = "$n" ] && keep=1; done
  if [ "$keep" = 0 ]; then rm -f "$lib"; fi
done
echo "emulator: $build/lib (libcuda.so.1, libcublas.so.13, libcudnn.so.9, ${#names[@]} kernel librar$([ ${#names[@]} = 1 ] && echo y || echo ies))"
