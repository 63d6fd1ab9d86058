#!/usr/bin/env bash
# Builds the cpu backend's own kernels (ffi/cpu/kernels/*.c, *.h) into build/cpu/libressl_cpu.so with
# the C compiler (cc, else gcc): -O3 for x86-64-v3 (AVX2 + FMA; the library checks the CPU when it
# loads), OpenMP (the libgomp that oneDNN uses too), no -ffast-math (the kernels' NaN semantics
# need IEEE comparisons) and -ffp-contract=off (a * b + c written in C stays two roundings, as in
# the TypeScript loops the elementwise kernels must match bit for bit; FMA only where a kernel asks
# for it with an intrinsic). About 2 s. Rebuilds only when a source is newer than the library.
# Without a C compiler the cpu backend still works: it runs those kernels on oneDNN (slower).
# Usage: bash scripts/setup_cpu.sh
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
src_dir="$root/ffi/cpu/kernels"
out_dir="$root/build/cpu"
lib="$out_dir/libressl_cpu.so"

cc_bin="${CC:-}"
if [ -z "$cc_bin" ]; then
  for c in cc gcc; do
    if command -v "$c" >/dev/null; then cc_bin="$c"; break; fi
  done
fi
if [ -z "$cc_bin" ]; then
  echo "setup_cpu: no C compiler (cc or gcc) found: install gcc ('apt-get install gcc') to build" \
    "build/cpu/libressl_cpu.so; until then the cpu backend runs batch norm on oneDNN" >&2
  exit 1
fi

sources=("$src_dir"/*.c)
if [ -f "$lib" ]; then
  stale=0
  for s in "${sources[@]}" "$src_dir"/*.h "$0"; do
    if [ "$s" -nt "$lib" ]; then stale=1; fi
  done
  if [ "$stale" = "0" ]; then exit 0; fi
fi

mkdir -p "$out_dir"
tmp="$lib.tmp.$$"
trap 'rm -f "$tmp"' EXIT
# x86-64-v3 by name where the compiler knows it (GCC 11+, Clang 12+), else its main features.
arch="-march=x86-64-v3"
if ! echo 'int main(void){return 0;}' | "$cc_bin" -x c -march=x86-64-v3 -o /dev/null - 2>/dev/null; then
  arch="-march=haswell -mtune=generic"
fi
# shellcheck disable=SC2086
"$cc_bin" -std=gnu11 -O3 $arch -ffp-contract=off -fopenmp -fPIC -shared -Wall -Wextra -Werror \
  -o "$tmp" "${sources[@]}" -lm
mv -f "$tmp" "$lib"
echo "setup_cpu: built $lib with $cc_bin ($("$cc_bin" --version | head -n 1))"
