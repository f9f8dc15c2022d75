#!/usr/bin/env python3
"""Writes tests/fixtures/forward/smollm2_135m_q4_1.json: what Hugging Face
transformers computes for the default model, as the runtime test's reference.

transformers reads the GGUF itself (dequantising every weight to float32 with
gguf-py, and undoing llama.cpp's q/k row permutation), so this checks our
forward pass, interleaved rope included, against an independent
implementation of the same weights. For a few prompts (stored as token ids;
the C++ test needs no tokenizer) it records, per position, the top-5 token
ids and their logits, and a greedy continuation of 8 tokens.

Not a fixture generator (needs torch + transformers, which the build does not
have); run by hand and commit the output:
  python -m venv /tmp/tv && /tmp/tv/bin/pip install torch transformers gguf
  /tmp/tv/bin/python scripts/make_forward_reference.py [--model models/SmolLM2-135M-Instruct.Q4_1.gguf]
"""
from __future__ import annotations

import argparse
import json
import os

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

PROMPTS = [
    "The capital of France is",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "One, two, three, four, five, six,",
]
TOP_K = 5
GREEDY_TOKENS = 8


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.path.join(root, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    parser.add_argument("--out", default=os.path.join(root, "tests", "fixtures", "forward", "smollm2_135m_q4_1.json"))
    args = parser.parse_args()

    folder, name = os.path.split(os.path.abspath(args.model))
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model.eval()

    prompts = []
    with torch.no_grad():
        for text in PROMPTS:
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            logits = model(torch.tensor([ids])).logits[0].double()  # [T, V]
            top = torch.topk(logits, TOP_K, dim=-1)
            greedy = model.generate(torch.tensor([ids]), max_new_tokens=GREEDY_TOKENS, do_sample=False,
                                    attention_mask=torch.ones(1, len(ids), dtype=torch.long))[0, len(ids):].tolist()
            prompts.append({
                "text": text,
                "tokens": ids,
                "top_ids": top.indices.tolist(),          # [T, TOP_K]
                "top_logits": top.values.tolist(),        # [T, TOP_K]
                "greedy": greedy,
                "greedy_text": tokenizer.decode(greedy),
            })
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"model": name, "generator": "scripts/make_forward_reference.py",
                   "reference": "transformers AutoModelForCausalLM (GGUF dequantised to float32), CPU",
                   "prompts": prompts}, f, indent=1)
        f.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
