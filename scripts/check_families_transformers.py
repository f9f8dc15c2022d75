#!/usr/bin/env python3
"""Checks the family fixtures' NumPy references against transformers itself:
each tests/fixtures/families/<family>/hf folder is loaded with
AutoModelForCausalLM (float64, eager attention) and run on the reference's
prompts; the logits, the logits with the reference's neuron clamped, and
(where the reference has them) the token-by-token logits through the KV
cache must equal reference.json's within --tolerance.

The C++ tests compare neuronlens with reference.json (test_family_fixtures.cpp);
scripts/make_family_fixtures.py compared reference.json with llama.cpp; this
closes the loop with the modelling code the families are defined by. Not
part of the test suite (transformers for Gemma 3, Qwen 3 and OLMo 2 needs a
torch newer than Debian's); run by hand:
  python3 -m venv /tmp/tv2
  /tmp/tv2/bin/pip install torch==2.5.1 transformers==4.57.1 numpy
  /tmp/tv2/bin/python scripts/check_families_transformers.py [--only phi3_longrope ...]
Prints one line per family and prompt: max |transformers - reference| of the
logits, the clamped logits and the stepwise logits.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM


def clamp_hook(neuron: int, value: float):
    """A forward pre-hook on mlp.down_proj: its input is act(gate) * up."""
    def hook(_module, args):
        x = args[0].clone()
        x[..., neuron] = value
        return (x,)
    return hook


def stepwise_logits(model, ids: list[int]) -> np.ndarray:
    """Row t: the last row of the forward pass of tokens 0..t. What a
    generation through the cache gives where the cache stays valid; Phi-3's
    prepare_inputs_for_generation drops the cache when the sequence first
    passes the original context so that it stays so with LongRoPE (its
    cache_position at that step is the last token's only, so generate()
    itself is not used here)."""
    rows = []
    for t in range(len(ids)):
        with torch.no_grad():
            rows.append(model(torch.tensor([ids[:t + 1]])).logits[0, -1].numpy())
    return np.array(rows)


def main() -> int:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fixtures", default=os.path.join(root, "tests", "fixtures", "families"))
    ap.add_argument("--only", action="append", help="these families only (repeatable)")
    ap.add_argument("--tolerance", type=float, default=1e-5,
                    help="float64 on both sides, but transformers computes rotary frequencies in float32")
    args = ap.parse_args()
    names = args.only or sorted(os.listdir(args.fixtures))
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    worst_all = 0.0
    for name in names:
        folder = os.path.join(args.fixtures, name)
        ref = json.load(open(os.path.join(folder, "reference.json")))
        model = AutoModelForCausalLM.from_pretrained(os.path.join(folder, "hf"), dtype=torch.float64,
                                                     attn_implementation="eager")
        model.eval()
        clamp = ref["clamp"]
        mlp = model.model.layers[clamp["layer"]].mlp
        for prompt in ref["prompts"]:
            ids = prompt["tokens"]
            with torch.no_grad():
                logits = model(torch.tensor([ids])).logits[0].numpy()
            handle = mlp.down_proj.register_forward_pre_hook(clamp_hook(clamp["neuron"], clamp["value"]))
            with torch.no_grad():
                clamped = model(torch.tensor([ids])).logits[0].numpy()
            handle.remove()
            diffs = {"logits": np.abs(logits - np.array(prompt["logits"])).max(),
                     "clamped": np.abs(clamped - np.array(prompt["clamp_logits"])).max()}
            if "stepwise_logits" in prompt:
                diffs["stepwise"] = np.abs(stepwise_logits(model, ids) - np.array(prompt["stepwise_logits"])).max()
            worst_all = max(worst_all, *diffs.values())
            print(f"{name:14} {type(model).__name__:22} {len(ids):3d} tokens: max |transformers - reference| "
                  + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()), flush=True)
    print(f"worst {worst_all:.2e} (tolerance {args.tolerance})")
    return 0 if worst_all <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
