#!/usr/bin/env bash
# Builds the project's CUDA kernels into one fatbin, ffi/cuda/kernels/ressl_kernels.fatbin, and
# writes its manifest, ressl_kernels.manifest.json (nvcc version, the exact nvcc command, the
# sha256 of every source and of this script, the fatbin's sha256 and size, the kernel names).
#
# Every *.cu here is one self-contained file; nvcc gets them as one translation unit (a generated
# file that #includes them in C-locale order), so the fatbin is one module for cuModuleLoadData.
# Code: SASS for sm_80 (A100), sm_90 (H100/H200), sm_100 (B200), sm_120 (RTX 50), plus compute_80
# PTX that the driver JIT-compiles on any other GPU of compute capability >= 8.0. No fast math
# (f32 results are checked against the reference at 1e-4). `--compress-mode=size` (zstd) needs a
# CUDA 12.8+ driver and makes the file ~6x smaller than the default compression.
#
# nvcc 13.0 builds this byte for byte reproducibly (same bytes from another directory and another
# checkout), so tests/cuda_kernels/fatbin_test.ts rebuilds and compares bytes when the same nvcc
# release is installed, and always checks the manifest's hashes against the sources.
#
# Usage: ffi/cuda/kernels/build.sh [--out FATBIN] [--manifest JSON]
#   (defaults: the committed files beside this script). Env: NVCC (default: nvcc on PATH).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="$here/ressl_kernels.fatbin"
manifest="$here/ressl_kernels.manifest.json"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --manifest) manifest="$2"; shift 2 ;;
    *) echo "build.sh: unknown argument '$1' (expected --out FILE or --manifest FILE)" >&2; exit 2 ;;
  esac
done
nvcc="${NVCC:-nvcc}"
if ! command -v "$nvcc" >/dev/null 2>&1; then
  echo "build.sh: '$nvcc' not found: install the CUDA 13 toolkit or set NVCC=/path/to/nvcc" >&2
  exit 1
fi

flags=(-fatbin -O3 -std=c++17 --compress-mode=size
  -gencode arch=compute_80,code=sm_80
  -gencode arch=compute_90,code=sm_90
  -gencode arch=compute_100,code=sm_100
  -gencode arch=compute_120,code=sm_120
  -gencode arch=compute_80,code=compute_80)

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mapfile -t sources < <(cd "$here" && LC_ALL=C ls -1 -- *.cu)
for f in "${sources[@]}"; do echo "#include \"$f\""; done >"$tmp/ressl_kernels.cu"

"$nvcc" "${flags[@]}" -I "$here" -o "$tmp/out.fatbin" "$tmp/ressl_kernels.cu"
# The kernel list, from the PTX entry points (the same front end, so the same kernels).
"$nvcc" -ptx -O3 -std=c++17 -arch=compute_80 -I "$here" -o "$tmp/out.ptx" "$tmp/ressl_kernels.cu"
mapfile -t kernels < <(sed -nE 's/^\.(visible )?\.entry ([A-Za-z_][A-Za-z0-9_]*)\(.*/\2/p' \
  "$tmp/out.ptx" | LC_ALL=C sort)

version="$("$nvcc" --version | sed -nE 's/.*(release [0-9.]+, V[0-9.]+).*/\1/p')"
sha() { sha256sum "$1" | cut -d' ' -f1; }
{
  echo "{"
  echo "  \"fatbin\": \"ressl_kernels.fatbin\","
  echo "  \"fatbinSha256\": \"$(sha "$tmp/out.fatbin")\","
  echo "  \"fatbinBytes\": $(stat -c %s "$tmp/out.fatbin"),"
  echo "  \"nvcc\": \"$version\","
  echo "  \"command\": \"nvcc ${flags[*]} -I ffi/cuda/kernels -o ressl_kernels.fatbin <one file including every *.cu>\","
  echo "  \"sources\": {"
  mapfile -t inputs < <(cd "$here" && LC_ALL=C ls -1 -- *.cu *.cuh build.sh | LC_ALL=C sort)
  for i in "${!inputs[@]}"; do
    sep=","
    [ "$i" -eq $((${#inputs[@]} - 1)) ] && sep=""
    echo "    \"${inputs[$i]}\": \"$(sha "$here/${inputs[$i]}")\"$sep"
  done
  echo "  },"
  echo "  \"kernels\": ["
  for i in "${!kernels[@]}"; do
    sep=","
    [ "$i" -eq $((${#kernels[@]} - 1)) ] && sep=""
    echo "    \"${kernels[$i]}\"$sep"
  done
  echo "  ]"
  echo "}"
} >"$tmp/manifest.json"

cp "$tmp/out.fatbin" "$out"
cp "$tmp/manifest.json" "$manifest"
echo "build.sh: wrote $out ($(stat -c %s "$out") bytes, ${#kernels[@]} kernels) and $manifest"
