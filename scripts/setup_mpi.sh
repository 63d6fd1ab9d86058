#!/usr/bin/env bash
# Installs the MPI engines the data-parallel tests and multi-process training use, when missing,
# saying what it installs: OpenMPI 4.1 (`openmpi-bin` = mpirun, `libopenmpi3` = libmpi.so.40) and
# MPICH 4.0 (`mpich` = mpirun.mpich, which pulls `libmpich12` = libmpich.so.12). No -dev packages:
# the FFI bindings (ffi/mpi/) need only the shared libraries.
# Idempotent; uses sudo only when not root. Skipped entirely with RESSL_SETUP_APT=0.
# Usage: bash scripts/setup_mpi.sh
set -euo pipefail

if [ "${RESSL_SETUP_APT:-1}" = "0" ]; then exit 0; fi

missing=()
for pkg in openmpi-bin libopenmpi3 mpich libmpich12; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -eq 0 ]; then exit 0; fi

SUDO=""
if [ "$(id -u)" != "0" ]; then
  if ! command -v sudo >/dev/null; then
    echo "setup_mpi: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
  SUDO="sudo"
fi
echo "setup_mpi: installing Debian packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup_mpi: mpirun (OpenMPI) at $(command -v mpirun || echo '?'), mpirun.mpich at $(command -v mpirun.mpich || echo '?')"
