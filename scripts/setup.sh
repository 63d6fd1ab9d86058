#!/usr/bin/env bash
# Installs what this project needs on a Debian machine with npm, when it is missing, saying what it
# does: Deno 2.9.6 (npm), oneDNN (the CPU backend), the real Fashion-MNIST files (the default
# dataset) and PyTorch + torchvision (parity tests and side-by-side benchmarks, run as /usr/bin/python3).
# Usage: bash scripts/setup.sh            (everything)
#        RESSL_SETUP_APT=0 bash scripts/setup.sh   (Deno only)
set -euo pipefail

want_deno="2.9.6"
have_deno="$(deno --version 2>/dev/null | head -n 1 | awk '{print $2}' || true)"
if [ "$have_deno" != "$want_deno" ]; then
  echo "setup: installing Deno $want_deno with npm (found: ${have_deno:-none})"
  npm install -g "deno@$want_deno" >/dev/null
fi

if [ "${RESSL_SETUP_APT:-1}" != "0" ]; then
  missing=()
  for pkg in libdnnl2 libdnnl-dev dataset-fashion-mnist python3-torch python3-torchvision; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=""
    if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
    echo "setup: installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

# Optional parts, each in its own script: the cpu backend's own kernels (scripts/setup_cpu.sh: C,
# about 2 s; without them batch norm runs on oneDNN, slower), the CUDA libraries from NVIDIA's
# wheels and the emulated device (scripts/setup_cuda.sh), MPI engines (scripts/setup_mpi.sh).
# Training on the CPU needs none of them: where one fails (no C compiler, no pip, no g++/make or
# CUDA's cuda.h for the emulated device), setup says so and goes on, unless RESSL_SETUP_STRICT=1
# (what .ci/run sets: its tests need them).
here="$(dirname "$0")"
for part in setup_cpu.sh setup_cuda.sh setup_mpi.sh; do
  [ -f "$here/$part" ] || continue
  if ! bash "$here/$part"; then
    if [ "${RESSL_SETUP_STRICT:-0}" = "1" ]; then
      echo "setup: scripts/$part failed (RESSL_SETUP_STRICT=1)" >&2
      exit 1
    fi
    echo "setup: warning: scripts/$part failed (see above); going on without it: the cpu" \
      "backend does not need it (run 'bash scripts/$part' again to retry)" >&2
  fi
done
