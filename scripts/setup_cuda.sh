#!/usr/bin/env bash
# The CUDA part of the setup (called by scripts/setup.sh when present), saying what it does:
#  1. NVIDIA's libraries and headers from their Python wheels (cuBLAS + cuBLASLt, cuDNN 9, NVRTC,
#     NCCL, nvJitLink), installed with pip from the machine's configured package index into the
#     git-ignored folder .cache/nvidia (override: RESSL_CUDA_WHEELS_DIR). Skipped when already there.
#     The CUDA bindings (ffi/cuda/discovery.ts) search <repo>/.cache/nvidia/nvidia/*/lib by default;
#     the emulator compiles against the headers in .cache/nvidia/nvidia/*/include.
#  2. The emulated device (stand-in libcuda/cuBLAS/cuDNN/NCCL for machines without a GPU), built by
#     emulator/build.sh into build/emulator/lib when that script exists.
# Usage: bash scripts/setup_cuda.sh          RESSL_SETUP_CUDA=0 bash scripts/setup.sh  (skip this part)
set -euo pipefail

if [ "${RESSL_SETUP_CUDA:-1}" = "0" ]; then
  echo "setup_cuda: skipped (RESSL_SETUP_CUDA=0)"
  exit 0
fi

repo="$(cd "$(dirname "$0")/.." && pwd)"
dest="${RESSL_CUDA_WHEELS_DIR:-$repo/.cache/nvidia}"

# Major versions the bindings are written against (enum values and signatures read from these
# headers); pip picks the newest of each major that the index has.
wheels=(
  "nvidia-cublas==13.*"
  "nvidia-cudnn-cu13==9.*"
  "nvidia-cuda-nvrtc==13.*"
  "nvidia-nccl-cu13==2.*"
  "nvidia-nvjitlink==13.*"
)
# One file per wheel that proves it is installed.
markers=(
  nvidia/cu13/lib/libcublas.so.13
  nvidia/cu13/lib/libcublasLt.so.13
  nvidia/cu13/include/cublas_v2.h
  nvidia/cudnn/lib/libcudnn.so.9
  nvidia/cudnn/include/cudnn.h
  nvidia/cu13/lib/libnvrtc.so.13
  nvidia/cu13/include/nvrtc.h
  nvidia/nccl/lib/libnccl.so.2
  nvidia/nccl/include/nccl.h
  nvidia/cu13/lib/libnvJitLink.so.13
)

missing=()
for m in "${markers[@]}"; do
  [ -f "$dest/$m" ] || missing+=("$m")
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup_cuda: NVIDIA wheels already installed in $dest"
else
  echo "setup_cuda: installing NVIDIA wheels into $dest (missing: ${missing[0]}${missing[1]:+ ...})"
  python="${PYTHON:-python3}"
  if ! "$python" -m pip --version >/dev/null 2>&1; then
    echo "setup_cuda: cannot install the NVIDIA wheels: '$python -m pip' does not run" \
      "(install pip, set PYTHON, or skip this part with RESSL_SETUP_CUDA=0)" >&2
    exit 1
  fi
  tmp="$dest.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$(dirname "$dest")"
  # --retries 0 / --timeout 5: an unreachable default index fails fast instead of retrying for
  # minutes; the wheels come from the index configured in pip's config.
  if ! "$python" -m pip install --quiet --no-deps --no-compile --disable-pip-version-check \
    --retries 0 --timeout 5 --target "$tmp" "${wheels[@]}"; then
    rm -rf "$tmp"
    echo "setup_cuda: pip could not install ${wheels[*]} (no package index with NVIDIA's wheels?" \
      "skip this part with RESSL_SETUP_CUDA=0)" >&2
    exit 1
  fi
  for m in "${markers[@]}"; do
    if [ ! -f "$tmp/$m" ]; then
      rm -rf "$tmp"
      echo "setup_cuda: the installed wheels lack $m (a different wheel layout?)" >&2
      exit 1
    fi
  done
  rm -rf "$dest"
  mv "$tmp" "$dest"
  echo "setup_cuda: installed $(cd "$dest" && ls -d nvidia_*.dist-info | sed 's/\.dist-info//' | tr '\n' ' ')"
fi

# --- The emulated device (built by emulator/build.sh, maintained with the emulator) ---------------
if [ -f "$repo/emulator/build.sh" ]; then
  bash "$repo/emulator/build.sh"
fi
