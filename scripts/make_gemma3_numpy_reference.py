#!/usr/bin/env python3
"""Writes tests/fixtures/forward/gemma3_270m_q4_k_m.numpy.json: a float64
NumPy forward pass of the real Gemma 3 270M Q4_K_M GGUF, as an exact
reference for the runtime (llama.cpp, the other reference, quantises its
activations to 8 bits and so carries noise of its own, up to 0.08 in a
probability on these prompts: scripts/make_llamacpp_reference.py --check).

The weights are gguf-py's dequantisation of the file (bit-identical to
neuronlens's), turned into Hugging Face's convention (Gemma's converter
stored 1 + γ for every norm: γ = stored - 1), and run through the Gemma 3
forward pass of scripts/make_family_fixtures.py (the one checked against
llama.cpp on the tiny fixtures). So any difference from neuronlens's
`--weights float32` run is float32 rounding, and the quantised run's
difference is its 8-bit activation rounding alone.

Prompts: the four of the llama.cpp reference (their token ids, from its
fixture), plus one of 600 tokens, longer than Gemma 3's 512-token sliding
window, so the local layers' window is exercised on the real model. For each
prompt and position: the top 20 token ids by the reference logits, their
logits, and the logsumexp over the whole vocabulary; for the short prompts
also 32 greedy tokens (argmax of the float64 logits, with the top two
probabilities at each step) and the logits with one neuron clamped.

Not a fixture generator (minutes of float64 work, ~4 GiB of memory); run by
hand and commit the output:
  /tmp/llvenv/bin/python scripts/make_gemma3_numpy_reference.py
(the venv of scripts/make_llamacpp_reference.py, with gguf==0.19.0 and numpy).
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import sys

import numpy as np
import gguf

from reference_common import sha256

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "models", "gemma-3-270m-q4_k_m.gguf")
LLAMACPP_FIXTURE = os.path.join(ROOT, "tests", "fixtures", "forward", "gemma3_270m_q4_k_m.llamacpp.json")
OUT = os.path.join(ROOT, "tests", "fixtures", "forward", "gemma3_270m_q4_k_m.numpy.json")
TOP = 20
GREEDY_TOKENS = 32
LONG_PROMPT_TOKENS = 600
CLAMP = {"layer": 6, "neuron": 1234, "value": 8.0}

spec = importlib.util.spec_from_file_location("families", os.path.join(ROOT, "scripts", "make_family_fixtures.py"))
families = importlib.util.module_from_spec(spec)
spec.loader.exec_module(families)

GGUF_TO_HF = {
    "attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm", "post_attention_norm": "post_attention_layernorm",
    "ffn_norm": "pre_feedforward_layernorm", "post_ffw_norm": "post_feedforward_layernorm",
    "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}


def load_weights(reader: gguf.GGUFReader) -> dict[str, np.ndarray]:
    W = {}
    for t in reader.tensors:
        values = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64)
        if t.name == "token_embd.weight":
            name = "model.embed_tokens.weight"
        elif t.name == "output_norm.weight":
            name = "model.norm.weight"
        else:
            _, layer, kind, _ = t.name.split(".")
            name = f"model.layers.{layer}.{GGUF_TO_HF[kind]}.weight"
        if name.endswith("norm.weight"):
            values = values - 1.0  # the converter stored 1 + γ
        W[name] = values
    return W


def field(reader: gguf.GGUFReader, key: str):
    return reader.fields[key].contents()


def main() -> int:
    reader = gguf.GGUFReader(MODEL)
    d = int(field(reader, "gemma3.embedding_length"))
    layers = int(field(reader, "gemma3.block_count"))
    fam = dict(families.FAMILIES["gemma3"])
    fam.update(layers=layers, heads=int(field(reader, "gemma3.attention.head_count")),
               kv_heads=int(field(reader, "gemma3.attention.head_count_kv")),
               head_dim=int(field(reader, "gemma3.attention.key_length")),
               eps=float(field(reader, "gemma3.attention.layer_norm_rms_epsilon")),
               rope_theta=float(field(reader, "gemma3.rope.freq_base")), rope_local=10_000.0,
               window=int(field(reader, "gemma3.attention.sliding_window")), pattern=6)
    families.HIDDEN = d
    families.FFN = int(field(reader, "gemma3.feed_forward_length"))
    W = load_weights(reader)

    llamacpp = json.load(open(LLAMACPP_FIXTURE))
    prompts = [p["tokens"] for p in llamacpp["prompts"]]
    # The long prompt: the short ones' tokens (BOS dropped) repeated, after one BOS.
    body = [t for p in prompts for t in p[1:]]
    long_prompt = [prompts[0][0]] + (body * (LONG_PROMPT_TOKENS // len(body) + 1))[: LONG_PROMPT_TOKENS - 1]

    def summary(z: np.ndarray) -> dict:
        tops = [families.top_k(row, TOP) for row in z]
        m = z.max(axis=-1, keepdims=True)
        lse = (m[:, 0] + np.log(np.exp(z - m).sum(axis=-1))).tolist()
        return {"top_ids": tops, "top_logits": [[round(float(z[t, i]), 7) for i in row] for t, row in enumerate(tops)],
                "logsumexp": [round(x, 7) for x in lse]}

    records = []
    for n, ids in enumerate(prompts + [long_prompt]):
        z = families.forward(fam, W, ids)
        rec = {"tokens": ids, **summary(z)}
        if n < len(prompts):
            rec["clamped"] = summary(families.forward(fam, W, ids, clamp=CLAMP))
            seq, greedy, top2 = list(ids), [], []
            row = z[-1]
            for _ in range(GREEDY_TOKENS):
                tok = int(np.argmax(row))
                p = np.exp(row - row.max())
                p /= p.sum()
                top2.append(sorted(p[families.top_k(row, 2)].tolist(), reverse=True))
                greedy.append(tok)
                seq.append(tok)
                row = families.forward(fam, W, seq)[-1]
            rec["greedy"] = greedy
            rec["greedy_top2_probs"] = [[round(a, 7), round(b, 7)] for a, b in top2]
        records.append(rec)
        print(f"prompt {n}: {len(ids)} tokens, top-1 at the last position {rec['top_ids'][-1][0]}", flush=True)

    doc = {
        "model": os.path.basename(MODEL),
        "model_sha256": sha256(MODEL),
        "generator": "scripts/make_gemma3_numpy_reference.py",
        "reference": "float64 NumPy Gemma 3 forward (scripts/make_family_fixtures.py forward(), exact tanh GELU) "
                     "of gguf-py's dequantisation of the file",
        "top": TOP,
        "clamp": {**CLAMP, "definition": "act(gate) * up of the neuron fixed to value at every position"},
        "prompts": records,
    }
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
