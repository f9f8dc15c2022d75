#!/usr/bin/env python3
"""Writes tests/fixtures/forward/<stem>.transformers[-clamp].json: what Hugging
Face transformers computes for a GGUF model in float32, with and without one
neuron clamped, as the exact reference of `--weights exact`.

transformers reads the GGUF itself (gguf-py's dequantisation to float32, its
own forward pass), so this is an implementation independent of ours on the
same weights. The prompts are the token ids of the llama.cpp reference of the
same model (tests/fixtures/forward/<stem>.llamacpp.json), so both references
cover the same positions. The output has that file's shape, so one C++ check
reads both (test_runtime_kquant.cpp):
  - top_ids / top_probs: at every position the top-5 ids and their softmax
    probabilities (float64 softmax of the float32 logits);
  - greedy: 32 tokens continued from the prompt through the KV cache, the
    argmax at each step; greedy_top2_probs: the two largest probabilities
    at each step.
With --clamp L:I=V the neuron's activation act(gate) * up (the input of
layer L's down_proj, index I) is set to V at every position, as neuronlens
--clamp does.

Not a fixture generator (needs torch, transformers and gguf, which the build
does not have); run by hand and commit the output:
  python3 -m venv /tmp/tv2 && /tmp/tv2/bin/pip install torch transformers gguf
  /tmp/tv2/bin/python scripts/make_transformers_reference.py models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf \\
      tests/fixtures/forward/qwen2.5_coder_1.5b_q4_k_m [--clamp 27:1713=-40]
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM

from reference_common import sha256, softmax64, write_fixture

TOP_K = 5
GREEDY_TOKENS = 32


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="the GGUF file")
    parser.add_argument("stem", help="fixture path without suffix: reads STEM.llamacpp.json, writes STEM.transformers.json")
    parser.add_argument("--clamp", help="LAYER:NEURON=VALUE (writes STEM.transformers-clamp.json)")
    args = parser.parse_args()

    prompts = json.load(open(args.stem + ".llamacpp.json"))["prompts"]
    folder, name = os.path.split(os.path.abspath(args.model))
    torch.set_num_threads(2)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model.eval()
    if args.clamp:
        where, value = args.clamp.split("=")
        layer, neuron = (int(v) for v in where.split(":"))

        def clamp(_module, inputs):
            x = inputs[0].clone()
            x[..., neuron] = float(value)
            return (x,)

        model.model.layers[layer].mlp.down_proj.register_forward_pre_hook(clamp)

    records = []
    with torch.no_grad():
        for p in prompts:
            ids = p["tokens"]
            out = model(torch.tensor([ids]), use_cache=True)
            probs = softmax64(out.logits[0].numpy())
            tops = [np.argsort(-row)[:TOP_K].tolist() for row in probs]
            cache, last = out.past_key_values, out.logits[0, -1]
            greedy, top2 = [], []
            for _ in range(GREEDY_TOKENS):
                p_last = softmax64(last.numpy())
                nxt = int(np.argmax(p_last))
                greedy.append(nxt)
                top2.append(sorted(p_last.tolist(), reverse=True)[:2])
                step = model(torch.tensor([[nxt]]), past_key_values=cache, use_cache=True)
                cache, last = step.past_key_values, step.logits[0, -1]
            records.append({
                "text": p["text"],
                "tokens": ids,
                "top_ids": tops,                                                    # [T, TOP_K]
                "top_probs": [[float(probs[t][i]) for i in tops[t]] for t in range(len(ids))],
                "greedy": greedy,                                                   # [GREEDY_TOKENS]
                "greedy_top2_probs": top2,                                          # [GREEDY_TOKENS, 2]
            })
            print(f"{p['text'][:40]!r}: {len(ids)} tokens, greedy {greedy[:8]}...", file=sys.stderr)

    out_path = args.stem + (".transformers-clamp.json" if args.clamp else ".transformers.json")
    doc = {
        "model": name,
        "model_sha256": sha256(args.model),
        "generator": "scripts/make_transformers_reference.py",
        "command": "/tmp/tv2/bin/python " + " ".join(["scripts/make_transformers_reference.py"] + sys.argv[1:]),
        "reference": f"transformers {transformers.__version__}, torch {torch.__version__}, float32, CPU, "
                     "the GGUF dequantised by gguf-py",
        "clamp": args.clamp or "",
        "top_k": TOP_K,
        "greedy_tokens": GREEDY_TOKENS,
        "prompts": records,
    }
    write_fixture(out_path, doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
