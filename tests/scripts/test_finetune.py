"""scripts/finetune_model.py, checked end to end on the tiny model (a CTest,
run with a Python that has torch, numpy and gguf: .venv-torch): its PyTorch
network computes neuronlens's next-token distribution (--check); two runs
with the same seed write checkpoints with the same sha256; the step-0
checkpoint holds the base model's dequantised values exactly, so `neuronlens
compare` finds 100% of neurons keeping their top token in every kind and
layer (as it does for the base against itself); later checkpoints differ
from the base.

usage: test_finetune.py --cli build/neuronlens --model tiny_llama.gguf --text FILE
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import gguf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "finetune_model.py")


def finetune(args, out_dir):
    run = subprocess.run([sys.executable, SCRIPT, args.model, args.text, out_dir, "--steps", "4", "--save-at", "0,2,4",
                          "--seq-len", "16", "--cli", args.cli, "--check"], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"finetune_model.py failed ({run.returncode}):\n{run.stdout}\n{run.stderr}")
    return dict(re.findall(r"step (\d+): wrote \S+ sha256 ([0-9a-f]{64})", run.stdout)), run.stdout


def weights(path):
    return {t.name: gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32) for t in gguf.GGUFReader(path).tensors}


def compare(cli, a, b):
    run = subprocess.run([cli, "compare", a, b, "--kinds", "up,gate,down", "--json"], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"neuronlens compare failed: {run.stderr}")
    return json.loads(run.stdout)


def all_same(report):
    return all(r["top1_same"] == 1.0 and r["mean_topk_overlap"] == 1.0 for r in report["layers"]) and \
        {r["kind"] for r in report["layers"]} == {"up", "gate", "down"}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cli", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--text", required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        first, log = finetune(args, os.path.join(tmp, "a"))
        second, _ = finetune(args, os.path.join(tmp, "b"))
        check("check: top-10 next-token probabilities differ" in log, "the PyTorch model matches neuronlens (--check)")
        check(sorted(first) == ["0", "2", "4"], f"checkpoints at steps 0, 2, 4: {sorted(first)}")
        check(first == second, "same seed, same checkpoint hashes")
        base, step0, step4 = (weights(args.model), weights(os.path.join(tmp, "a", "step-0.gguf")),
                              weights(os.path.join(tmp, "a", "step-4.gguf")))
        check(base.keys() == step0.keys() and all(np.array_equal(base[k], step0[k]) for k in base),
              "step 0 holds the base's values exactly")
        check(all(not np.array_equal(base[k], step4[k]) for k in base if k.startswith("blk.") and "ffn_" in k),
              "step 4 has changed every FFN weight")
        check(all_same(compare(args.cli, args.model, args.model)), "compare base vs base: 100% in every kind and layer")
        check(all_same(compare(args.cli, args.model, os.path.join(tmp, "a", "step-0.gguf"))),
              "compare base vs step 0: 100% in every kind and layer")
    finish()


if __name__ == "__main__":
    main()
