#!/usr/bin/env bash
# Fetches real tokenizer vocabularies with Hugging Face reference encodings,
# for tests/unit/test_tokenizer_real_vocabs.cpp, into models/vocabs/.
#
# They come from llama.cpp's models/ folder, vendored in the llama-cpp-python
# source distribution on PyPI: vocab-only GGUF files (no weights) and, for
# each, a .inp file of test texts (separated by "\n__ggml_vocab_test__\n") and
# a .out file with, one line per text, the ids that Hugging Face's tokenizer
# gives (`tokenizer.encode(text, add_special_tokens=False)`, written by
# llama.cpp's convert_hf_to_gguf_update.py). Only these data files are
# extracted; no llama.cpp code. Every file's sha256 is checked. A second call
# finds the files and does nothing more than check them.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGE=llama-cpp-python==0.3.16
SDIST=llama_cpp_python-0.3.16.tar.gz
SDIST_SHA256=34ed0f9bd9431af045bb63d9324ae620ad0536653740e9bb163a2e1fcb973be6
MEMBER_DIR=llama_cpp_python-0.3.16/vendor/llama.cpp/models
OUT_DIR=models/vocabs

# name  sha256. llama-bpe: Llama 3; qwen2: Qwen2; llama-spm: Llama 2
# (SentencePiece); phi-3: SentencePiece with added tokens; gpt-2, starcoder:
# the GPT-2 and digit-splitting pre-tokenizers.
FILES="
ggml-vocab-llama-bpe.gguf      97272e430d53bc7688f52d5e0ad8ea8f163ede9f1bbd1694feaa504797d5d96e
ggml-vocab-llama-bpe.gguf.inp  be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0
ggml-vocab-llama-bpe.gguf.out  118abf2034a197fc5c9dec5204dfdeee7004c7c70952ae577f66b99e212fab9b
ggml-vocab-qwen2.gguf          44c2f46b715f585c6ab513970e8a006bfa5badd6108560054921cf598d154d8c
ggml-vocab-qwen2.gguf.inp      be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0
ggml-vocab-qwen2.gguf.out      de785bb305cc6fa9d43908ed5da337f853c0b79e971348fcfb9f0915a39c5363
ggml-vocab-llama-spm.gguf      16c3724582d59aa8bf84711894e833f916ee46a31d80e21312759c48bf8d0e69
ggml-vocab-llama-spm.gguf.inp  be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0
ggml-vocab-llama-spm.gguf.out  ad6905c925c49c022974fe67e030382e8a4f56eb4489a0b9481dcedb1ec73b29
ggml-vocab-phi-3.gguf          967d7190d11c4842eab697079d98d56c2116e10eb617be355a2733bfc132e326
ggml-vocab-phi-3.gguf.inp      be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0
ggml-vocab-phi-3.gguf.out      ad6905c925c49c022974fe67e030382e8a4f56eb4489a0b9481dcedb1ec73b29
ggml-vocab-gpt-2.gguf          cedc56ca6e2e89f63e781696d1fd76b4b1d49e6720dee86463e915f6e90016ac
ggml-vocab-gpt-2.gguf.inp      be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0
ggml-vocab-gpt-2.gguf.out      48e8c4cb3ad5c37915b225f872222567c1c4dd4d66951aa53460c8d152ff6d60
ggml-vocab-starcoder.gguf      fedb892b4e1bd3c1f2fcdae356440b14fb458f4264d586e5c987ed93df4e174d
ggml-vocab-starcoder.gguf.inp  be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0
ggml-vocab-starcoder.gguf.out  3ef12183c57ad076f9defd8e5eb454f509f5f0865cad35646abb4c4b2d2c5764
"

check() { echo "$2  $1" | sha256sum --check --status; }

all_present() {
  local name sum
  while read -r name sum; do
    [ -n "$name" ] || continue
    [ -f "$OUT_DIR/$name" ] && check "$OUT_DIR/$name" "$sum" || return 1
  done <<<"$FILES"
}

if all_present; then
  echo "$OUT_DIR"
  exit 0
fi

mkdir -p "$OUT_DIR" .cache/wheels
if [ ! -f ".cache/wheels/$SDIST" ] || ! check ".cache/wheels/$SDIST" "$SDIST_SHA256"; then
  echo "fetch-vocabs: downloading $PACKAGE (source distribution, ~50 MB)" >&2
  PY=python3
  [ -x .venv/bin/python ] && PY=.venv/bin/python
  "$PY" -m pip download -q --disable-pip-version-check --no-deps --no-binary llama-cpp-python "$PACKAGE" -d .cache/wheels >&2
fi
if ! check ".cache/wheels/$SDIST" "$SDIST_SHA256"; then
  echo "fetch-vocabs: $SDIST does not have the expected sha256 $SDIST_SHA256" >&2
  exit 1
fi

# One pass over the archive for every missing file, then check each.
missing=()
while read -r name sum; do
  [ -n "$name" ] || continue
  [ -f "$OUT_DIR/$name" ] && check "$OUT_DIR/$name" "$sum" || missing+=("$name")
done <<<"$FILES"
python3 - ".cache/wheels/$SDIST" "$MEMBER_DIR" "$OUT_DIR" "${missing[@]}" <<'PY'
import shutil, sys, tarfile
sdist, member_dir, out_dir, *names = sys.argv[1:]
with tarfile.open(sdist) as archive:
    for name in names:
        with archive.extractfile(f"{member_dir}/{name}") as src, open(f"{out_dir}/{name}.part", "wb") as dst:
            shutil.copyfileobj(src, dst)
PY
for name in "${missing[@]}"; do
  sum=$(awk -v n="$name" '$1 == n {print $2}' <<<"$FILES")
  if ! check "$OUT_DIR/$name.part" "$sum"; then
    echo "fetch-vocabs: $MEMBER_DIR/$name does not have the expected sha256 $sum" >&2
    rm -f "$OUT_DIR/$name.part"
    exit 1
  fi
  mv "$OUT_DIR/$name.part" "$OUT_DIR/$name"
done
echo "$OUT_DIR"
