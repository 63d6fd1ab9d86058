#!/usr/bin/env bash
# The current PyTorch for the side-by-side CPU benchmarks (`deno task bench`, issue 15): a virtual
# environment at .cache/torch-venv (git-ignored; override: RESSL_TORCH_VENV) with torch 2.x,
# torchvision and numpy from the machine's configured package index (offline: pip gives up at
# once, no retries, where the index is unreachable).
#
# The torch wheel on this kind of machine is the CUDA build; it runs on the CPU but its shared
# libraries link cuBLAS, cuDNN, cuFFT, cuSPARSE, NCCL, NVSHMEM, ... at load time, so their NVIDIA
# wheels are installed too (about 2.2 GB of wheels, 3.5 GB on disk, a few minutes). No GPU is used.
#
# Idempotent: does nothing when the venv already imports torch. NOT called by scripts/setup.sh or
# CI (the tests use Debian's PyTorch 1.13 at /usr/bin/python3); only the benchmarks call it
# (bench/torch_python.ts), and a person may run it by hand:
#   bash scripts/setup_torch.sh            prints the venv's python path on its last line
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="${RESSL_TORCH_VENV:-$repo/.cache/torch-venv}"
py="$venv/bin/python"

probe() {
  "$py" -c 'import torch, torchvision, numpy; print(torch.__version__)' 2>/dev/null
}

if [ -x "$py" ] && version="$(probe)"; then
  echo "setup_torch: $venv already has torch $version" >&2
  echo "$py"
  exit 0
fi

base="${PYTHON:-python3}"
if [ ! -x "$py" ]; then
  echo "setup_torch: creating the virtual environment $venv with $base" >&2
  mkdir -p "$(dirname "$venv")"
  "$base" -m venv "$venv"
fi

# torch's own pure-Python dependencies, then the NVIDIA libraries its CUDA build links (versions
# pinned by torch 2.14's metadata and its cuda-toolkit 13.0.3 pin); --no-deps keeps pip from
# resolving triton/cuda-bindings, which a CPU run never imports.
packages=(
  torch torchvision typing-extensions sympy mpmath networkx jinja2 markupsafe filelock fsspec
  numpy pillow setuptools
)
nvidia=(
  "nvidia-cublas==13.1.1.3.*" "nvidia-cuda-nvrtc==13.0.88.*" "nvidia-cufft==12.0.0.61.*"
  "nvidia-cufile==1.15.1.6.*" "nvidia-curand==10.4.0.35.*" "nvidia-cusolver==12.0.4.66.*"
  "nvidia-cusparse==12.6.3.3.*" "nvidia-nvjitlink>=13.0.88,<14" "nvidia-cudnn-cu13==9.24.0.43"
  "nvidia-cusparselt-cu13==0.8.1" "nvidia-nccl-cu13==2.30.7" "nvidia-nvshmem-cu13==3.4.5"
)
echo "setup_torch: installing torch and the NVIDIA libraries it links into $venv (offline index)" >&2
pip=("$py" -m pip install --no-deps --retries 0 --timeout 5 --disable-pip-version-check -q)
if ! "${pip[@]}" "${packages[@]}" >&2; then
  echo "setup_torch: cannot install torch into $venv: pip failed (is the local package index" \
    "configured? see pip config list)" >&2
  exit 1
fi
# The NVIDIA pins match torch 2.14; for another torch the newest of each major is taken.
if ! "${pip[@]}" "${nvidia[@]}" >&2; then
  echo "setup_torch: pinned NVIDIA wheels not found; trying the newest of each" >&2
  "${pip[@]}" "${nvidia[@]%%[=<>]*}" >&2 || {
    echo "setup_torch: cannot install the NVIDIA libraries torch links into $venv" >&2
    exit 1
  }
fi
if ! version="$(probe)"; then
  echo "setup_torch: torch is installed in $venv but does not import; run" \
    "'$py -c \"import torch\"' to see why" >&2
  exit 1
fi
echo "setup_torch: $venv has torch $version" >&2
echo "$py"
