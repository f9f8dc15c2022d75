#!/usr/bin/env bash
# Sets up, builds and runs the main job on the default model
# (SmolLM2-135M-Instruct): map every FFN neuron (up, gate, down) into
# atlases/smollm2-135m-instruct.db, then print the per-layer summary and the
# neurons for "dog" and "California". A second run reuses the atlas.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
MODEL=$(scripts/fetch-model.sh)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target neuronlens
mkdir -p atlases
build/neuronlens map "$MODEL" -o atlases/smollm2-135m-instruct.db --examples dog,California
