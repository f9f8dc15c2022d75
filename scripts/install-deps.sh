#!/usr/bin/env bash
# Installs what neuronlens needs to build and test, on Debian 12. Idempotent:
# a second run installs nothing. Python (for fixture generators and reference
# implementations only, never at run time) goes into .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libopenblas-dev libsqlite3-dev nlohmann-json3-dev libcli11-dev libpcre2-dev libutf8proc-dev libcpp-httplib-dev
  libgtest-dev libgmock-dev libbenchmark-dev libomp-dev
  libopenmpi-dev openmpi-bin  # the MPI map (NEURONLENS_WITH_MPI): mpirun -n N neuronlens map
  clang libclang-rt-14-dev  # the fuzz targets (scripts/fuzz.sh): libFuzzer with ASan/UBSan
  python3-venv python3-dev
  python3-torch  # scripts/finetune_model.py and its test (Debian's CPU build; PyPI's wheels pull CUDA)
  chromium chromium-driver
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python for scripts and tests (selenium drives headless Chromium in the web UI's
# end-to-end test). Pinned so reference outputs do not drift.
PY_PACKAGES=(numpy==2.4.6 gguf==0.19.0 selenium==4.51.0)
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import numpy, gguf, selenium' >/dev/null 2>&1; then
  echo "install-deps: installing ${PY_PACKAGES[*]} into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check "${PY_PACKAGES[@]}"
fi
# Debian's torch is built against Debian's numpy (1.24), not .venv's 2.x, so
# the fine-tune script gets a venv of its own over the system packages.
if [ ! -x .venv-torch/bin/python ]; then
  /usr/bin/python3 -m venv --system-site-packages .venv-torch
fi
if ! .venv-torch/bin/python -c 'import torch, numpy, gguf' >/dev/null 2>&1; then
  echo "install-deps: installing gguf==0.19.0 into .venv-torch"
  .venv-torch/bin/python -m pip install -q --disable-pip-version-check gguf==0.19.0
fi
echo "install-deps: ok"
