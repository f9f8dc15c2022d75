"""scripts/requantize_model.py, checked end to end (a CTest, run with the
fixture generators' Python): the copy is the same bytes every time; an f32
copy holds the original's exact values, so its atlas's neuron rows equal the
original's bit for bit and `neuronlens compare` finds 100% everywhere; a Q4_0
copy's weights are each within half a quantisation step of the original
(the step a block's absmax / 8, derived here, not taken from gguf-py; a
step for the clamped top level); the
copies load in neuronlens with the type asked for; an output equal to the
input is refused.

usage: test_requantize.py --cli build/neuronlens --model tiny_llama.gguf
"""
import argparse
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile

import numpy as np
import gguf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "requantize_model.py")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def requantize(src, out, type_name):
    return subprocess.run([sys.executable, SCRIPT, src, out, "--type", type_name], capture_output=True, text=True)


def weights(path):
    reader = gguf.GGUFReader(path)
    return {t.name: gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64) for t in reader.tensors}


def rows(atlas, table):
    return sqlite3.connect(atlas).execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4").fetchall()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cli", required=True)
    parser.add_argument("--model", required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        f32_a, f32_b, q4 = (os.path.join(tmp, n) for n in ("a.f32.gguf", "b.f32.gguf", "c.q4_0.gguf"))
        for out, type_name in ((f32_a, "f32"), (f32_b, "f32"), (q4, "q4_0")):
            done = requantize(args.model, out, type_name)
            check(done.returncode == 0, f"requantize to {type_name}: {done.stderr.strip()[-300:]}")
        check(sha256(f32_a) == sha256(f32_b), "the same input gives the same bytes")

        original, copy = weights(args.model), weights(f32_a)
        check(original.keys() == copy.keys(), "every tensor is copied")
        check(all(np.array_equal(original[n], copy[n]) for n in original), "the f32 copy holds the exact values")

        quantised = weights(q4)
        worst = 0.0
        for name, w in original.items():
            if w.ndim < 2:
                check(np.array_equal(quantised[name], w), f"{name}: 1-D tensors stay float32")
                continue
            blocks = w.reshape(-1, 32)
            step = np.abs(blocks).max(axis=1, keepdims=True) / 8
            error = np.abs(quantised[name].reshape(-1, 32) - blocks) / np.maximum(step, 1e-30)
            # Q4_0's 16 levels run from -8 to +7 steps, the absmax element at
            # -8 (its sign folded into the scale): every weight is rounded to
            # the nearest level, half a step at most, except one of the other
            # sign beyond 7.5 steps, clamped to 7 (under a step). The scale
            # is stored in float16: a hundredth of a step more.
            allowed = np.maximum(0.5, np.abs(blocks) / np.maximum(step, 1e-30) - 7) + 1e-2
            worst = max(worst, float((error - allowed).max()))
        check(worst <= 0, f"Q4_0 weights within half a step of the original, or a clamped step (worst excess {worst:.4f})")

        info = subprocess.run([args.cli, "info", q4, "--json"], capture_output=True, text=True)
        check(info.returncode == 0 and "Q4_0" in info.stdout, "the Q4_0 copy loads in neuronlens as Q4_0")

        base_atlas, copy_atlas = os.path.join(tmp, "base.db"), os.path.join(tmp, "copy.db")
        for model, atlas in ((args.model, base_atlas), (f32_a, copy_atlas)):
            done = subprocess.run([args.cli, "map", model, "-o", atlas, "--examples", ""], capture_output=True, text=True)
            check(done.returncode == 0, f"map {os.path.basename(model)}: {done.stderr.strip()[-300:]}")
        for table in ("neurons", "neuron_tokens"):
            check(rows(base_atlas, table) == rows(copy_atlas, table), f"{table}: the f32 copy's atlas equals the original's")
        compare = json.loads(subprocess.run([args.cli, "compare", base_atlas, copy_atlas, "--json"], check=True,
                                            capture_output=True, text=True).stdout)
        check(all(r["top1_same"] == 1.0 and r["mean_topk_overlap"] == 1.0 for r in compare["layers"]),
              "compare: 100% same top-1 and top-k in every layer and kind")

        # --keep-embedding: the embedding and LM head byte for byte, the rest Q4_0.
        kept = os.path.join(tmp, "d.q4_0.gguf")
        done = subprocess.run([sys.executable, SCRIPT, args.model, kept, "--type", "q4_0", "--keep-embedding"],
                              capture_output=True, text=True)
        check(done.returncode == 0, "requantize with --keep-embedding")
        source = {t.name: t for t in gguf.GGUFReader(args.model).tensors}
        for t in gguf.GGUFReader(kept).tensors:
            if t.name in ("token_embd.weight", "output.weight"):
                check(t.tensor_type == source[t.name].tensor_type and bytes(t.data) == bytes(source[t.name].data),
                      f"{t.name} kept byte for byte")
            elif len(t.shape) == 2:
                check(t.tensor_type == gguf.GGMLQuantizationType.Q4_0, f"{t.name} is Q4_0")

        done = requantize(args.model, args.model, "f32")
        check(done.returncode != 0 and "must not be the input" in done.stderr, "an output equal to the input is refused")
    finish()


if __name__ == "__main__":
    main()
