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
if [ ! -x .gpu/deno ]; then
  if command -v xz >/dev/null 2>&1; then
    xz -dc .gpu/deno.xz >.gpu/deno.tmp
  else
    python3 -c "import lzma, sys; sys.stdout.buffer.write(lzma.open('.gpu/deno.xz').read())" \
      >.gpu/deno.tmp
  fi
  chmod +x .gpu/deno.tmp
  mv .gpu/deno.tmp .gpu/deno
fi
if [ ! -e node_modules ]; then ln -s .gpu/node_modules node_modules; fi
export PATH="$PWD/.gpu:$PATH"
echo "gpu_run: $(deno --version | head -n 1); $(nproc) cores; OUT=${OUT:-unset}"
exec deno task gpu-check "$@"
