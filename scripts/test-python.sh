#!/usr/bin/env bash
# The Python package's tests: a fresh virtual environment, `pip install .`
# from this checkout (the extension module built by scikit-build-core), then
# pytest against the CLI of the Release build (build/neuronlens) and the
# default model. Run by scripts/test.sh after the C++ tests; alone, it needs
# `scripts/test.sh --no-sanitize` (or the build/ it makes) first.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=build-python/venv
# Pinned so that CI builds and tests the same thing every time; the package
# itself accepts any recent versions (pyproject.toml).
BUILD_PACKAGES=(scikit-build-core==1.1.2 nanobind==2.15.0)
TEST_PACKAGES=(numpy==2.4.6 pandas==3.1.1 pytest==9.2.0 matplotlib==3.11.2 gguf==0.19.0)

rm -rf "$VENV"
python3 -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
"${PIP[@]}" "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
# The CMake build folder persists between runs (an edit rebuilds only what
# changed); the environment is new each time.
"${PIP[@]}" --no-build-isolation --config-settings=build-dir=build-python/cmake .

# Run from outside the checkout so that `import neuronlens` is the installed
# package, not python/neuronlens.
ROOT=$PWD
cd "$VENV"
NEURONLENS_CLI="$ROOT/build/neuronlens" NEURONLENS_MODEL="$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf" \
  NEURONLENS_ROOT="$ROOT" bin/python -m pytest -q -p no:cacheprovider "$ROOT/tests/python"
