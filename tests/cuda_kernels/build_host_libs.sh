#!/usr/bin/env bash
# Builds the host kernel libraries of the development rig (rig_host.ts): each ffi/cuda/kernels/*.cu
# through emulator/gen_kernel_module.sh, linked with the emulator's block scheduler, into one
# shared library per file. Usage: tests/cuda_kernels/build_host_libs.sh OUT_DIR
# Then: RESSL_KERNEL_HOST_LIBS=OUT_DIR deno test --allow-all tests/cuda_kernels/
set -euo pipefail
out="${1:?usage: build_host_libs.sh OUT_DIR}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
emu="$repo/emulator"
cxx="${CXX:-g++}"
mkdir -p "$out"
for src in "$repo"/ffi/cuda/kernels/*.cu; do
  name="$(basename "$src" .cu)"
  bash "$emu/gen_kernel_module.sh" "$src" "$out/$name.cpp"
  "$cxx" -std=c++17 -O2 -fPIC -shared -I "$emu/include/device" -include ressl_emu_qualifiers.h \
    "$out/$name.cpp" "$emu/runtime/scheduler.cpp" "$emu/runtime/sync_ops.cpp" \
    "$emu/runtime/fiber_x86_64.S" -o "$out/$name.so"
  rm -f "$out/$name.cpp"
done
echo "build_host_libs.sh: host kernel libraries in $out"
