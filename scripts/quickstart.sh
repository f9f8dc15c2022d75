#!/usr/bin/env bash
# Sets up, builds and runs the main job on the default model (SmolLM2-135M-Instruct).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
MODEL=$(scripts/fetch-model.sh)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target neuronlens
build/neuronlens info "$MODEL"
