#!/usr/bin/env python3
"""Checks that each family fixture's model.gguf is what llama.cpp's own
converter makes of its Hugging Face folder: runs convert_hf_to_gguf.py (from
the llama-cpp-python 0.3.36 sdist's vendored llama.cpp) on
tests/fixtures/families/<family>/hf with --outtype f32 and compares the two
files: every tensor (name, type, bytes) and every metadata value.

Two patches to the converter, both about the vocabulary, not the weights or
the model's keys: the fixtures' tiny byte-level BPE is not one of the
pre-tokenizers it recognises by hash, so it is named "gpt-2" (what
scripts/make_family_fixtures.py writes); and Gemma 2's converter reads only a
SentencePiece tokenizer.model, so it reads the BPE tokenizer.json as the
other families do.

Prints, per family, the tensors that differ (expected: none) and the
metadata keys that differ or exist on one side only. Exit status 1 when a
tensor differs or a key other than those listed in EXPECTED differs.

Not part of the test suite (the converter needs torch); run by hand:
  /tmp/tv2/bin/python scripts/check_families_converter.py --llama-cpp llama_cpp_python-0.3.36/vendor/llama.cpp
(/tmp/tv2: torch and transformers, see check_families_transformers.py).
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

# Keys where the fixture deliberately differs from the converter's output.
EXPECTED = {
    "general.name": "the fixture names itself (the converter uses the folder's name)",
    "tokenizer.ggml.add_bos_token": "the fixture writes tokenizer_config.json's add_bos_token; the converter reads "
                                    "the tokenizer.json post-processor, which the tiny tokenizer does not have",
    "gemma3.attention.sliding_window_pattern": "the converter does not write it (llama.cpp then assumes Gemma 3's "
                                               "6); the 3-layer fixture's pattern is 2",
}

RUNNER = """
import runpy, sys
sys.path.insert(0, "gguf-py"); sys.path.insert(0, ".")
import conversion.base as base
for cls in vars(base).values():
    if isinstance(cls, type) and hasattr(cls, "get_vocab_base_pre"):
        cls.get_vocab_base_pre = lambda self, tokenizer: "gpt-2"
import conversion.gemma as gemma
gemma.Gemma2Model.set_vocab = lambda self: self._set_vocab_gpt2()
sys.argv = ["convert_hf_to_gguf.py"] + sys.argv[1:]
runpy.run_path("convert_hf_to_gguf.py", run_name="__main__")
"""


def metadata(reader) -> dict:
    out = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        out[key] = field.contents()
    return out


def same_value(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or abs(a - b) <= 1e-7 * abs(a)
    return a == b


def compare(ours_path: str, theirs_path: str, gguf) -> tuple[list[str], list[str]]:
    ours, theirs = gguf.GGUFReader(ours_path), gguf.GGUFReader(theirs_path)
    a, b = metadata(ours), metadata(theirs)
    keys = []
    for k in sorted(set(a) | set(b)):
        if k not in b:
            keys.append(f"{k}: only in the fixture ({str(a[k])[:40]})")
        elif k not in a:
            keys.append(f"{k}: only in the converter's ({str(b[k])[:40]})")
        elif not same_value(a[k], b[k]):
            keys.append(f"{k}: {str(a[k])[:40]} vs the converter's {str(b[k])[:40]}")
    ta, tb = {t.name: t for t in ours.tensors}, {t.name: t for t in theirs.tensors}
    tensors = sorted(set(ta) ^ set(tb))
    for name in sorted(set(ta) & set(tb)):
        x, y = ta[name], tb[name]
        if x.tensor_type != y.tensor_type or not np.array_equal(np.asarray(x.data), np.asarray(y.data)):
            tensors.append(name)
    return tensors, keys


def main() -> int:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--llama-cpp", required=True, help="llama.cpp's source folder (holds convert_hf_to_gguf.py)")
    ap.add_argument("--fixtures", default=os.path.join(root, "tests", "fixtures", "families"))
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(args.llama_cpp, "gguf-py"))
    import gguf

    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        runner = os.path.join(tmp, "run_convert.py")
        with open(runner, "w") as f:
            f.write(RUNNER)
        for name in sorted(os.listdir(args.fixtures)):
            ours = os.path.join(args.fixtures, name, "model.gguf")
            if not os.path.exists(ours):
                print(f"{name}: no GGUF (Hugging Face folder only)")
                continue
            out = os.path.join(tmp, name + ".gguf")
            run = subprocess.run([sys.executable, runner, os.path.join(args.fixtures, name, "hf"), "--outfile", out,
                                  "--outtype", "f32"], cwd=args.llama_cpp, capture_output=True, text=True)
            if run.returncode != 0:
                print(f"{name}: the converter failed:\n{run.stderr[-2000:]}")
                failed = True
                continue
            tensors, keys = compare(ours, out, gguf)
            unexpected = [k for k in keys if k.split(":")[0] not in EXPECTED]
            failed = failed or bool(tensors) or bool(unexpected)
            n = len(gguf.GGUFReader(ours).tensors)
            print(f"{name}: {n - len(tensors)}/{n} tensors identical; keys that differ: "
                  + ("; ".join(keys) if keys else "none"))
    print("expected differences: " + "; ".join(f"{k} ({why})" for k, why in EXPECTED.items()))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
