#!/usr/bin/env bash
# Runs `deno task gpu-check` on the GPU machine from a working tree that carries .gpu/ (made by
# scripts/gpu_pack.sh): unpacks Deno, puts the vendored npm packages where Deno looks for them,
# and runs the check with that Deno first on PATH (logs under $OUT). Arguments go to gpu-check.
# Usage (the device tool's command; docs/gpu.md): bash scripts/gpu_run.sh [--emulated] [...]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -s .gpu/deno.xz ] || [ ! -d .gpu/node_modules ]; then
  echo "gpu_run: .gpu/ is incomplete: run bash scripts/gpu_pack.sh and carry .gpu" >&2
  exit 1
fi
# Unpacked outside .gpu/ (a 95 MB binary there would exceed the carry limit next time).
bin="${TMPDIR:-/tmp}/ressl-gpu-deno-$(id -u)"
if [ ! -x "$bin/deno" ] || [ .gpu/deno.xz -nt "$bin/deno" ]; then
  mkdir -p "$bin"
  if command -v xz >/dev/null 2>&1; then
    xz -dc .gpu/deno.xz >"$bin/deno.tmp"
  else
    python3 -c "import lzma, sys; sys.stdout.buffer.write(lzma.open('.gpu/deno.xz').read())" \
      >"$bin/deno.tmp"
  fi
  chmod +x "$bin/deno.tmp"
  mv "$bin/deno.tmp" "$bin/deno"
fi
if [ ! -e node_modules ]; then ln -s .gpu/node_modules node_modules; fi
export PATH="$bin:$PATH"
echo "gpu_run: $(deno --version | head -n 1); $(nproc) cores; OUT=${OUT:-unset}"
# Not `deno task`: it would first install every npm package of deno.json (no network there); and
# node_modules as it is (the vendored packages), nothing fetched: the task's command otherwise.
exec deno run --allow-all --cached-only --node-modules-dir=manual tasks/gpu_check.ts "$@"
