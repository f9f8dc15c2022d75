#!/usr/bin/env python3
"""Writes tests/fixtures/families/: tiny random models of the families gemma3,
gemma2, qwen3, olmo2 and phi3, each as a GGUF file and as a Hugging Face
folder holding the same weights, with reference outputs checked against
llama.cpp before anything is written.

Per family, tests/fixtures/families/<family>/ holds
  model.gguf          F32, laid out as llama.cpp's convert_hf_to_gguf.py
                      (vendored in llama-cpp-python 0.3.36) writes the HF
                      folder: its metadata keys, its tensor names (gguf-py's
                      TensorNameMap, the converter's own mapping), Gemma's
                      +1 on every *norm.weight, no q/k row permutation (all
                      five families use NeoX rope in llama.cpp), Phi-3's
                      fused attn_qkv / ffn_up kept fused, no output.weight
                      where the head is tied;
  hf/config.json      the family's real model_type and keys;
  hf/model.safetensors  F32 (every weight is exactly a bfloat16 value, so a
                      BF16 copy is lossless and the files compress);
  hf/tokenizer.json, hf/tokenizer_config.json  a byte-level BPE (GPT-2
                      byte alphabet, ChatML specials, a few merges), the same
                      vocabulary in the GGUF (tokenizer.ggml.model gpt2);
  reference.json      what a float64 NumPy forward pass that implements the
                      Hugging Face modeling code of the family computes (see
                      FORWARD_SEMANTICS and "semantics" in the file): the
                      full logits at every position of two token-id prompts
                      (one longer than the sliding window), the logits with
                      neuron 5 of layer 1 clamped to 4.0 (its activation
                      act(gate)*up fixed at every position, as neuronlens's
                      clamp does), and the decode of layer 1's neurons 0..7
                      (up and gate rows, down columns) through the final
                      norm and LM head ("decode_definition").

What it checks before writing (everything is built in a scratch folder
first; nothing under --out changes unless every family passes):
  - safetensors and GGUF read back (our header parser, gguf-py's reader)
    equal the weights they were written from, each GGUF tensor being the
    converter's transform of its HF tensor;
  - tokenizer.json loads in Hugging Face `tokenizers` (if installed) and
    encodes a text to the ids our reference BPE gives;
  - llama.cpp (llama-cpp-python, CPU, float32 weights and KV cache, flash
    attention off, no weight repacking, 2 threads) run on model.gguf gives
    the NumPy reference's logits, computed from hf/model.safetensors, at
    every position of both prompts:
      max |dlogit| < TOL_LOGIT = 1e-3 against the reference with ggml's CPU
      GELU emulated (GGML_GELU_FP16: input rounded to half, output read from
      a table of half values; the SiLU families have no such step), and
      < 1e-3 + 2 x max|exact - emulated| against the exact tanh-GELU
      reference (for the SiLU families that is 1e-3 too).
    Why 1e-3: float32 rounding through these few layers of width <= 128
    moves a logit by ~3e-6 (what the SiLU families show); the half-precision
    GELU table moves Gemma's by ~2e-3, and with it emulated what remains is
    ~3e-5, or up to ~6e-4 where a GELU input lies within float32 rounding of
    a half-precision rounding midpoint (llama.cpp's float32 input and our
    float64 one then round to neighbouring halves).
  - each family feature moves the logits by more than 10 x 1e-3 when left
    out or changed ("feature_effects": rope interleaved instead of NeoX,
    window off or one larger, local rope base, soft-caps, q/k norms (OLMo 2:
    per head instead of over the whole projection), Gemma's embedding scale
    and +1, Phi-3's gate/up order), so the llama.cpp agreement covers it;
    the clamp moves them by more than 1e-2.

Needs numpy, gguf (0.19.0) and llama_cpp (0.3.36); deterministic (fixed
seeds; the recorded llama.cpp differences may change in the last digits
with the CPU's SIMD). Run by hand and commit the output:
  /tmp/llvenv/bin/pip install gguf==0.19.0 tokenizers   # next to llama-cpp-python, see make_llamacpp_reference.py
  /tmp/llvenv/bin/python scripts/make_family_fixtures.py [--only gemma3] [--out DIR]
It prints a table: family, max |NumPy - llama.cpp| logit (exact GELU and
ggml's table GELU), file sizes.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import struct
import sys
import tempfile
import zlib

import numpy as np
import gguf

# ---------------------------------------------------------------------------
# Families
# ---------------------------------------------------------------------------

HIDDEN = 64
FFN = 128
CONTEXT = 256
WINDOW = 4            # sliding window of the Gemma families' local layers
CLAMP = {"layer": 1, "neuron": 5, "value": 4.0}
DECODE = {"layer": 1, "neurons": list(range(8)), "top_k": 5}
TOL_LOGIT = 1e-3
SEED = 20250512

# norm: "gemma" = x/rms * (1 + w) with HF weights near 0 (GGUF stores 1 + w);
#       "plain" = x/rms * w.
# qk_norm: "head" = RMSNorm over each head's head_dim vector (one weight of
#          head_dim shared by all heads); "whole" = RMSNorm over the whole
#          q (H*hd) and k (K*hd) projections before the split into heads.
# block: "sandwich" = Gemma (input, post-attention, pre-feedforward and
#        post-feedforward norms); "post" = OLMo 2 (norms on the sublayer
#        outputs only); "pre" = Llama-like (input and post_attention_layernorm
#        before the MLP).
FAMILIES: dict[str, dict] = {
    "gemma3": dict(
        arch="gemma3", display="Gemma 3", model_type="gemma3_text", hf_class="Gemma3ForCausalLM",
        layers=3, heads=4, kv_heads=1, head_dim=32, tied=True, act="gelu_tanh", norm="gemma",
        qk_norm="head", block="sandwich", embed_scale=True, fused=False,
        rope_theta=1_000_000.0, rope_local=10_000.0, window=WINDOW, pattern=2,
        attn_softcap=None, final_softcap=None, eps=1e-6,
        sigma=dict(embed=0.15, q=0.125, k=0.125, head=None)),
    "gemma2": dict(
        arch="gemma2", display="Gemma 2", model_type="gemma2", hf_class="Gemma2ForCausalLM",
        layers=2, heads=4, kv_heads=2, head_dim=32, tied=True, act="gelu_tanh", norm="gemma",
        qk_norm=None, block="sandwich", embed_scale=True, fused=False,
        rope_theta=10_000.0, rope_local=None, window=WINDOW, pattern=2,
        attn_softcap=5.0, final_softcap=3.0, eps=1e-6,
        # q and k large enough that the scaled scores reach the attention cap
        sigma=dict(embed=0.3, q=0.3, k=0.3, head=None)),
    "qwen3": dict(
        arch="qwen3", display="Qwen 3", model_type="qwen3", hf_class="Qwen3ForCausalLM",
        layers=2, heads=8, kv_heads=2, head_dim=16, tied=True, act="silu", norm="plain",
        qk_norm="head", block="pre", embed_scale=False, fused=False,
        rope_theta=1_000_000.0, rope_local=None, window=None, pattern=None,
        attn_softcap=None, final_softcap=None, eps=1e-6,
        sigma=dict(embed=0.25, q=0.125, k=0.125, head=None)),
    "olmo2": dict(
        arch="olmo2", display="OLMo 2", model_type="olmo2", hf_class="Olmo2ForCausalLM",
        layers=2, heads=4, kv_heads=2, head_dim=16, tied=False, act="silu", norm="plain",
        qk_norm="whole", block="post", embed_scale=False, fused=False,
        rope_theta=500_000.0, rope_local=None, window=None, pattern=None,
        attn_softcap=None, final_softcap=None, eps=1e-6,
        sigma=dict(embed=0.25, q=0.125, k=0.125, head=0.25)),
    "phi3": dict(
        arch="phi3", display="Phi 3", model_type="phi3", hf_class="Phi3ForCausalLM",
        layers=2, heads=4, kv_heads=2, head_dim=16, tied=False, act="silu", norm="plain",
        qk_norm=None, block="pre", embed_scale=False, fused=True,
        rope_theta=10_000.0, rope_local=None, window=None, pattern=None,
        attn_softcap=None, final_softcap=None, eps=1e-5,
        sigma=dict(embed=0.25, q=0.125, k=0.125, head=0.25)),
}
# Qwen 3 with use_sliding_window: the window on layers max_window_layers
# and up (transformers' Qwen2Config/Qwen3Config layer_types). No released
# checkpoint turns it on, and llama.cpp's converter drops it, so this one
# is a Hugging Face folder only, with no GGUF and no llama.cpp check.
FAMILIES["qwen3_window"] = dict(FAMILIES["qwen3"], window=WINDOW, max_window_layers=1, gguf=False)
# Phi-3 with the 128k models' LongRoPE and Phi-4-mini's partial rotary:
# half of each head rotates, with its frequencies divided by the short
# factors while the sequence fits in the original context (12 tokens
# here: the short prompt) and by the long ones beyond (the long prompt);
# cos and sin times the attention factor. Factors are dyadic, so
# float32 (GGUF) and float64 (config.json) hold the same values.
FAMILIES["phi3_longrope"] = dict(
    FAMILIES["phi3"], rotary_dim=8,
    longrope=dict(original=12, short=[1.0, 1.125, 1.25, 1.5], long=[1.5, 2.5, 6.0, 16.0]))


def rotary_dim(fam: dict) -> int:
    return fam.get("rotary_dim") or fam["head_dim"]


def longrope_attention_factor(fam: dict) -> float:
    """Hugging Face's _compute_longrope_parameters (and llama.cpp's converter):
    factor = max_position_embeddings / original_max_position_embeddings,
    sqrt(1 + ln(factor) / ln(original))."""
    factor = CONTEXT / fam["longrope"]["original"]
    return math.sqrt(1.0 + math.log(factor) / math.log(fam["longrope"]["original"])) if factor > 1.0 else 1.0

FORWARD_SEMANTICS = {
    "common": (
        "float64 throughout. rms(x, w) = x / sqrt(mean(x^2) + eps) * g, g = 1 + w for Gemma (HF weights, "
        "GGUF stores 1 + w), g = w otherwise. RoPE NeoX style (transformers' rotate_half): for each head "
        "vector x of head_dim hd, pairs (x[j], x[j + hd/2]), j < hd/2, rotated by pos * base^(-2j/hd), "
        "positions 0..T-1. Scores s = (q . k) * scale; causal mask kv_idx <= q_idx, and on sliding layers "
        "also kv_idx > q_idx - sliding_window (a query sees itself and the window-1 tokens before it); "
        "softmax over allowed keys; grouped-query heads: query head h reads kv head h // (H / K). "
        "logits = rms(x_final, model.norm) @ W_U^T, W_U = lm_head.weight or, tied, embed_tokens.weight."),
    "gemma3": (
        "x0 = embed[ids] * sqrt(hidden_size). Per layer: h = rms(x, input_layernorm); q, k, v = h Wq^T, "
        "h Wk^T, h Wv^T split into heads; q = rms(q_head, q_norm), k = rms(k_head, k_norm) per head "
        "(1 + w); rope with base rope_local_base_freq on sliding layers, rope_theta on full layers; "
        "scale = query_pre_attn_scalar^-0.5 (= head_dim^-0.5 here); sliding layers per layer_types "
        "((i + 1) % sliding_window_pattern != 0 -> sliding); x = x + rms(attn Wo^T, post_attention_layernorm); "
        "x = x + rms(down(gelu_tanh(gate(h2)) * up(h2)), post_feedforward_layernorm), "
        "h2 = rms(x, pre_feedforward_layernorm). No soft-caps."),
    "gemma2": (
        "as gemma3 without q/k norms and with one rope base (rope_theta) on every layer; layer i sliding "
        "when i is even; scores soft-capped before the mask: s = attn_logit_softcapping * tanh(s / "
        "attn_logit_softcapping); final logits z = final_logit_softcapping * tanh(z / "
        "final_logit_softcapping)."),
    "qwen3_window": (
        "as qwen3, with use_sliding_window: layers max_window_layers and up are sliding (layer_types), "
        "the others full."),
    "qwen3": (
        "x0 = embed[ids]. Per layer: h = rms(x, input_layernorm); q, k per head RMS-normed (q_norm, k_norm "
        "of head_dim, weight w) before rope; scale head_dim^-0.5; x = x + attn Wo^T; "
        "x = x + down(silu(gate(h2)) * up(h2)), h2 = rms(x, post_attention_layernorm)."),
    "olmo2": (
        "x0 = embed[ids]. Per layer (no input norm): q = rms(x Wq^T, q_norm) over all H*hd, k = rms(x Wk^T, "
        "k_norm) over all K*hd, then split into heads and rope; scale head_dim^-0.5; "
        "x = x + rms(attn Wo^T, post_attention_layernorm); x = x + rms(down(silu(gate(x)) * up(x)), "
        "post_feedforward_layernorm)."),
    "phi3": (
        "x0 = embed[ids]. Per layer: h = rms(x, input_layernorm); [q | k | v] = h qkv_proj^T split in that "
        "order into H*hd, K*hd, K*hd; rope on the full head_dim; scale head_dim^-0.5; x = x + attn o_proj^T; "
        "[gate | up] = h2 gate_up_proj^T split in halves (gate first), x = x + down(silu(gate) * up), "
        "h2 = rms(x, post_attention_layernorm). sliding_window null (no window)."),
    "phi3_longrope": (
        "as phi3, but rope on the first rotary_dim = head_dim * partial_rotary_factor dimensions of each head "
        "only (pairs (j, j + rotary_dim/2), the rest passed through), with frequency j = base^(-2j/rotary_dim) "
        "/ ext[j], ext = rope_scaling.short_factor when the sequence has at most "
        "original_max_position_embeddings tokens, long_factor when it has more; cos and sin multiplied by "
        "attention_factor = sqrt(1 + ln(max_position_embeddings / original) / ln(original)) "
        "(transformers' _compute_longrope_parameters). Token by token, the first step past the original "
        "context runs the whole sequence again (Phi3ForCausalLM.prepare_inputs_for_generation drops the "
        "cache there): stepwise_logits row t is the last row of the forward pass of tokens 0..t."),
}

# ---------------------------------------------------------------------------
# Vocabulary: GPT-2 byte alphabet, ChatML specials, a few merged words
# ---------------------------------------------------------------------------

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
TOKEN_WORDS = [" the", " a", " of", " and", " to", " in", " is", " it", " dog", " cat", " sea",
               " Paris", " France", " capital", " city", " red", " blue", " Hello", " world", ",", ".", "\n\n"]


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable unicode characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


BYTE_TO_UNICODE = bytes_to_unicode()


def to_byte_level(text: str) -> str:
    return "".join(BYTE_TO_UNICODE[b] for b in text.encode("utf-8"))


def bpe(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    """Reference BPE on one pre-token: repeatedly merge the lowest-ranked pair."""
    pieces = list(word)
    while len(pieces) > 1:
        best = min(range(len(pieces) - 1), key=lambda i: ranks.get((pieces[i], pieces[i + 1]), 1 << 30))
        pair = (pieces[best], pieces[best + 1])
        if pair not in ranks:
            break
        merged: list[str] = []
        i = 0
        while i < len(pieces):
            if i + 1 < len(pieces) and (pieces[i], pieces[i + 1]) == pair:
                merged.append(pieces[i] + pieces[i + 1])
                i += 2
            else:
                merged.append(pieces[i])
                i += 1
        pieces = merged
    return pieces


def build_vocab() -> tuple[list[str], list[str], dict[tuple[str, str], int]]:
    """(tokens in id order, merges in rank order, ranks). Each word is merged
    left to right until it is one token; a new merge always has the highest
    rank, so it never changes how an earlier word encodes."""
    tokens = list(SPECIAL_TOKENS) + [BYTE_TO_UNICODE[b] for b in range(256)]
    merges: list[tuple[str, str]] = []
    ranks: dict[tuple[str, str], int] = {}
    known = set(tokens)
    for word in TOKEN_WORDS:
        target = to_byte_level(word)
        while len(pieces := bpe(target, ranks)) > 1:
            pair = (pieces[0], pieces[1])
            ranks[pair] = len(merges)
            merges.append(pair)
            if pair[0] + pair[1] not in known:
                known.add(pair[0] + pair[1])
                tokens.append(pair[0] + pair[1])
    for word in TOKEN_WORDS:
        assert bpe(to_byte_level(word), ranks) == [to_byte_level(word)], word
    return tokens, [f"{a} {b}" for a, b in merges], ranks


def tokenizer_json(tokens: list[str], merges: list[str]) -> dict:
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True}
            for i, t in enumerate(SPECIAL_TOKENS)
        ],
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": dict(byte_level, trim_offsets=False),
        "decoder": byte_level,
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
            "vocab": {t: i for i, t in enumerate(tokens)},
            "merges": merges,
        },
    }


def add_bos(fam: dict) -> bool:
    return fam["arch"].startswith("gemma")  # Gemma's tokenizers add <bos>; the others' do not


def tokenizer_config(fam: dict) -> dict:
    return {
        "add_bos_token": add_bos(fam),
        "add_eos_token": False,
        "bos_token": SPECIAL_TOKENS[BOS_ID],
        "eos_token": SPECIAL_TOKENS[EOS_ID],
        "pad_token": SPECIAL_TOKENS[PAD_ID],
        "clean_up_tokenization_spaces": False,
        "model_max_length": CONTEXT,
        "tokenizer_class": "GPT2Tokenizer",
    }


# ---------------------------------------------------------------------------
# Weights (Hugging Face names and convention, float32, bfloat16-exact)
# ---------------------------------------------------------------------------

def bf16_exact(a: np.ndarray) -> np.ndarray:
    """Rounds float32 values to the nearest bfloat16 (ties to even), kept as float32."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return r.astype(np.uint32).view(np.float32)


def layer_types(fam: dict) -> list[str]:
    if fam.get("max_window_layers") is not None:  # Qwen's use_sliding_window
        return ["sliding_attention" if i >= fam["max_window_layers"] else "full_attention" for i in range(fam["layers"])]
    if fam["pattern"] is None:
        return ["full_attention"] * fam["layers"]
    return ["sliding_attention" if (i + 1) % fam["pattern"] else "full_attention" for i in range(fam["layers"])]


def make_weights(name: str, fam: dict, vocab_size: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([SEED, zlib.crc32(name.encode())])
    d, F, H, K, hd = HIDDEN, FFN, fam["heads"], fam["kv_heads"], fam["head_dim"]
    sig = fam["sigma"]

    def normal(shape, std):
        return bf16_exact(rng.normal(0.0, std, size=shape).astype(np.float32))

    def norm_weight(n):
        # Gemma: HF weight near 0 (the norm multiplies by 1 + w); others near 1
        return normal((n,), 0.1) if fam["norm"] == "gemma" else bf16_exact(1.0 + normal((n,), 0.1))

    w: dict[str, np.ndarray] = {"model.embed_tokens.weight": normal((vocab_size, d), sig["embed"])}
    for i in range(fam["layers"]):
        p = f"model.layers.{i}."
        q = normal((H * hd, d), sig["q"])
        k = normal((K * hd, d), sig["k"])
        v = normal((K * hd, d), d ** -0.5)
        if fam["block"] != "post":
            w[p + "input_layernorm.weight"] = norm_weight(d)
        if fam["fused"]:
            w[p + "self_attn.qkv_proj.weight"] = np.concatenate([q, k, v], axis=0)
        else:
            w[p + "self_attn.q_proj.weight"] = q
            w[p + "self_attn.k_proj.weight"] = k
            w[p + "self_attn.v_proj.weight"] = v
        w[p + "self_attn.o_proj.weight"] = normal((d, H * hd), (H * hd) ** -0.5)
        if fam["qk_norm"] == "head":
            w[p + "self_attn.q_norm.weight"] = norm_weight(hd)
            w[p + "self_attn.k_norm.weight"] = norm_weight(hd)
        elif fam["qk_norm"] == "whole":
            w[p + "self_attn.q_norm.weight"] = norm_weight(H * hd)
            w[p + "self_attn.k_norm.weight"] = norm_weight(K * hd)
        w[p + "post_attention_layernorm.weight"] = norm_weight(d)
        if fam["block"] == "sandwich":
            w[p + "pre_feedforward_layernorm.weight"] = norm_weight(d)
        if fam["block"] in ("sandwich", "post"):
            w[p + "post_feedforward_layernorm.weight"] = norm_weight(d)
        gate = normal((F, d), d ** -0.5)
        up = normal((F, d), d ** -0.5)
        if fam["fused"]:
            w[p + "mlp.gate_up_proj.weight"] = np.concatenate([gate, up], axis=0)
        else:
            w[p + "mlp.gate_proj.weight"] = gate
            w[p + "mlp.up_proj.weight"] = up
        w[p + "mlp.down_proj.weight"] = normal((d, F), F ** -0.5)
    w["model.norm.weight"] = norm_weight(d)
    if not fam["tied"]:
        w["lm_head.weight"] = normal((vocab_size, d), sig["head"])
    return w


# ---------------------------------------------------------------------------
# Hugging Face folder
# ---------------------------------------------------------------------------

def config_json(fam: dict, vocab_size: int) -> dict:
    d, H, K, hd, L = HIDDEN, fam["heads"], fam["kv_heads"], fam["head_dim"], fam["layers"]
    c = {
        "architectures": [fam["hf_class"]],
        "model_type": fam["model_type"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": BOS_ID,
        "eos_token_id": EOS_ID,
        "pad_token_id": PAD_ID,
        "hidden_size": d,
        "initializer_range": 0.02,
        "intermediate_size": FFN,
        "max_position_embeddings": CONTEXT,
        "num_attention_heads": H,
        "num_hidden_layers": L,
        "num_key_value_heads": K,
        "rms_norm_eps": fam["eps"],
        "rope_scaling": None,
        "rope_theta": fam["rope_theta"],
        "tie_word_embeddings": fam["tied"],
        "torch_dtype": "float32",
        "use_cache": True,
        "vocab_size": vocab_size,
    }
    arch = fam["arch"]
    if arch in ("gemma2", "gemma3"):
        c.update({
            "head_dim": hd,
            "hidden_activation": "gelu_pytorch_tanh",
            "query_pre_attn_scalar": hd,   # llama.cpp can only express head_dim^-0.5 (or d/H for the 27B)
            "sliding_window": fam["window"],
            "attn_logit_softcapping": fam["attn_softcap"],
            "final_logit_softcapping": fam["final_softcap"],
            "cache_implementation": "hybrid",
        })
    if arch == "gemma2":
        c["hidden_act"] = "gelu_pytorch_tanh"
    if arch == "gemma3":
        c.update({
            "rope_local_base_freq": fam["rope_local"],
            "sliding_window_pattern": fam["pattern"],
            "layer_types": layer_types(fam),
            "use_bidirectional_attention": False,
        })
    if arch == "qwen3":
        c.update({"head_dim": hd, "hidden_act": "silu", "max_window_layers": L, "sliding_window": None,
                  "use_sliding_window": False})
        if fam["window"]:
            c.update({"max_window_layers": fam["max_window_layers"], "sliding_window": fam["window"],
                      "use_sliding_window": True})
    if arch == "olmo2":
        c.update({"hidden_act": "silu"})
    if arch == "phi3":
        c.update({"hidden_act": "silu", "embd_pdrop": 0.0, "resid_pdrop": 0.0,
                  "original_max_position_embeddings": CONTEXT, "partial_rotary_factor": rotary_dim(fam) / hd,
                  "sliding_window": None})
        if fam.get("longrope"):
            c["original_max_position_embeddings"] = fam["longrope"]["original"]
            c["rope_scaling"] = {"type": "longrope", "short_factor": fam["longrope"]["short"],
                                 "long_factor": fam["longrope"]["long"]}
    return dict(sorted(c.items()))


def write_safetensors(path: str, tensors: dict[str, np.ndarray]) -> None:
    """F32 tensors in the safetensors layout: u64 header length | JSON header
    padded with spaces to 8 bytes | data, packed back to back in name order."""
    header: dict = {"__metadata__": {"format": "pt"}}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        blob = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def read_safetensors(path: str) -> dict[str, np.ndarray]:
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", (name, info["dtype"])
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + a:8 + n + b], dtype="<f4").reshape(info["shape"]).copy()
    return out


def write_json(path: str, obj, compact_lists: bool = False) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(dumps(obj) if compact_lists else json.dumps(obj, indent=2, ensure_ascii=False))
        f.write("\n")


def dumps(obj, indent: int = 0) -> str:
    """JSON with lists of scalars on one line (one logits row a line)."""
    pad = " " * (indent + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{pad}{json.dumps(k)}: {dumps(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    if isinstance(obj, list):
        if all(not isinstance(x, (list, dict)) for x in obj):
            return "[" + ",".join(json.dumps(x, ensure_ascii=False) for x in obj) + "]"
        return "[\n" + ",\n".join(pad + dumps(x, indent + 1) for x in obj) + "\n" + " " * indent + "]"
    return json.dumps(obj, ensure_ascii=False)


# ---------------------------------------------------------------------------
# GGUF, as convert_hf_to_gguf.py writes it
# ---------------------------------------------------------------------------

def gguf_name(fam: dict, hf_name: str) -> str:
    tmap = gguf.get_tensor_name_map(getattr(gguf.MODEL_ARCH, fam["arch"].upper()), fam["layers"])
    name = tmap.get_name(hf_name, try_suffixes=(".weight", ".bias"))
    assert name is not None, hf_name
    return name


def gguf_tensor(fam: dict, hf_name: str, w: np.ndarray) -> np.ndarray:
    """The converter's modify_tensors: Gemma (GemmaModel, Gemma2Model,
    Gemma3Model) adds 1 to every tensor whose name ends in norm.weight; no
    other family changes a tensor (no rope permutation: NeoX in llama.cpp)."""
    if fam["norm"] == "gemma" and hf_name.endswith("norm.weight"):
        return (w + np.float32(1.0)).astype(np.float32)
    return w


def write_gguf(path: str, name: str, fam: dict, weights: dict[str, np.ndarray], tokens: list[str], merges: list[str],
               original_context_key: int | None = None) -> list[str]:
    """Writes the keys in the converter's order (general.*, the model's
    set_gguf_parameters, quantization version, the tokenizer); returns the
    metadata keys written. original_context_key: another value for
    rope.scaling.original_context_length (only for llama.cpp's LongRoPE
    check, see llama_logits)."""
    arch = fam["arch"]
    d, H, K, hd, L = HIDDEN, fam["heads"], fam["kv_heads"], fam["head_dim"], fam["layers"]
    w = gguf.GGUFWriter(path, arch)
    n_params = sum(int(a.size) for a in weights.values())
    w.add_type(gguf.GGUFType.MODEL)
    # (llama.cpp sets Phi-3 token attributes when general.name holds "phi3" or
    # "phi-3", and needs a "</s>" token for that: hence "Phi 3")
    w.add_name(f"Tiny {fam['display']} (neuronlens fixture)")
    w.add_size_label(gguf.size_label(n_params, 0, 0, 0))
    if arch == "gemma2":       # Gemma2Model.set_gguf_parameters (no TextModel base, so no rope.freq_base)
        w.add_context_length(CONTEXT)
        w.add_embedding_length(d)
        w.add_block_count(L)
        w.add_feed_forward_length(FFN)
        w.add_head_count(H)
        w.add_head_count_kv(K)
        w.add_layer_norm_rms_eps(fam["eps"])
        w.add_key_length(hd)
        w.add_value_length(hd)
        w.add_file_type(gguf.LlamaFileType.ALL_F32)
        w.add_attn_logit_softcapping(fam["attn_softcap"])
        w.add_final_logit_softcapping(fam["final_softcap"])
        w.add_sliding_window(fam["window"])
    elif arch == "phi3":       # Phi3MiniModel.set_gguf_parameters
        w.add_context_length(CONTEXT)
        w.add_rope_scaling_orig_ctx_len(original_context_key or
                                        (fam["longrope"]["original"] if fam.get("longrope") else CONTEXT))
        w.add_embedding_length(d)
        w.add_feed_forward_length(FFN)
        w.add_block_count(L)
        w.add_head_count(H)
        w.add_head_count_kv(K)
        w.add_layer_norm_rms_eps(fam["eps"])
        w.add_rope_dimension_count(rotary_dim(fam))
        w.add_rope_freq_base(fam["rope_theta"])
        w.add_file_type(gguf.LlamaFileType.ALL_F32)
        w.add_sliding_window(0)  # sliding_window null -> 0 (the converter's Phi-4 convention)
    else:                      # TextModel.set_gguf_parameters (+ Gemma3Model's additions)
        w.add_block_count(L)
        w.add_context_length(CONTEXT)
        w.add_embedding_length(d)
        w.add_feed_forward_length(FFN)
        w.add_head_count(H)
        w.add_head_count_kv(K)
        w.add_rope_freq_base(fam["rope_theta"])
        if fam["rope_local"] is not None:
            w.add_rope_freq_base_swa(fam["rope_local"])
        w.add_layer_norm_rms_eps(fam["eps"])
        if arch in ("qwen3", "gemma3"):  # config.json has head_dim
            w.add_key_length(hd)
            w.add_value_length(hd)
        w.add_file_type(gguf.LlamaFileType.ALL_F32)
        if arch == "gemma3":
            w.add_sliding_window(fam["window"])
            # Not written by the converter (llama.cpp then assumes 6, Gemma 3's
            # own); llama.cpp reads it (load_swa_pattern), and with pattern 6
            # a 3-layer model would have no full-attention layer.
            w.add_sliding_window_pattern(fam["pattern"])
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    # _set_vocab_gpt2 + SpecialVocab
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.CONTROL if t in SPECIAL_TOKENS else gguf.TokenType.NORMAL for t in tokens])
    w.add_token_merges(merges)
    w.add_bos_token_id(BOS_ID)
    w.add_eos_token_id(EOS_ID)
    w.add_pad_token_id(PAD_ID)
    w.add_add_bos_token(add_bos(fam))
    w.add_add_eos_token(False)
    if fam.get("longrope"):    # Phi3MiniModel.generate_extra_tensors, before the model's own tensors
        w.add_rope_scaling_attn_factors(longrope_attention_factor(fam))
        for name, key in (("rope_factors_long.weight", "long"), ("rope_factors_short.weight", "short")):
            w.add_tensor(name, np.array(fam["longrope"][key], dtype=np.float32))
    for hf_name in sorted(weights):
        w.add_tensor(gguf_name(fam, hf_name), np.ascontiguousarray(gguf_tensor(fam, hf_name, weights[hf_name])))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    keys = [k for kv in w.kv_data for k in kv]
    return keys


# ---------------------------------------------------------------------------
# The float64 reference forward pass (Hugging Face semantics)
# ---------------------------------------------------------------------------

def gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def gelu_ggml_table(x: np.ndarray) -> np.ndarray:
    """ggml's CPU GELU (GGML_GELU_FP16, ggml_vec_geglu_f32): x rounded to
    half, the result read from a table of half-precision values of
    ggml_gelu_f32; x <= -10 gives 0, x >= 10 gives x."""
    x16 = x.astype(np.float16).astype(np.float64)
    y = gelu_tanh(x16).astype(np.float32).astype(np.float16).astype(np.float64)
    return np.where(x <= -10.0, 0.0, np.where(x >= 10.0, x, y))


_erf = np.frompyfunc(math.erf, 1, 1)


def gelu_erf(x: np.ndarray) -> np.ndarray:
    """The exact (erf) GELU, only to measure how far it is from the tanh one."""
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))


def silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def rms(x: np.ndarray, w: np.ndarray, eps: float, gemma: bool) -> np.ndarray:
    g = 1.0 + w if gemma else w
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * g


def rope_neox(x: np.ndarray, base: float, interleaved: bool = False, rot: int | None = None,
              ext: list[float] | None = None, mscale: float = 1.0) -> np.ndarray:
    """x [T, heads, hd]: of the first rot dimensions (all hd by default),
    pairs (j, j + rot/2) rotated by pos * base^(-2j/rot) / ext[j] (NeoX,
    transformers' rotate_half; ext: LongRoPE's factors), cos and sin times
    mscale; the other dimensions pass through. interleaved=True pairs
    (2j, 2j + 1) instead (GPT-J / llama.cpp's NORM), only for the feature check."""
    T, _, hd = x.shape
    rot = rot or hd
    half = rot // 2
    inv = base ** (-np.arange(0, rot, 2, dtype=np.float64) / rot)
    if ext is not None:
        inv = inv / np.asarray(ext, dtype=np.float64)
    ang = np.arange(T, dtype=np.float64)[:, None] * inv[None, :]
    c, s = mscale * np.cos(ang)[:, None, :], mscale * np.sin(ang)[:, None, :]
    xr, passed = x[..., :rot], x[..., rot:]
    if interleaved:
        x1, x2 = xr[..., 0::2], xr[..., 1::2]
        rotated = np.stack([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1).reshape(xr.shape)
    else:
        x1, x2 = xr[..., :half], xr[..., half:]
        rotated = np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1)
    return np.concatenate([rotated, passed], axis=-1)


def attention(q, k, v, scale, window, softcap, stats):
    T, H, hd = q.shape
    rep = H // k.shape[1]
    qi = np.arange(T)[:, None]
    ki = np.arange(T)[None, :]
    allowed = ki <= qi
    if window:
        allowed &= ki > qi - window
    out = np.empty_like(q)
    for h in range(H):
        s = (q[:, h, :] @ k[:, h // rep, :].T) * scale
        stats["max_abs_attention_score"] = max(stats.get("max_abs_attention_score", 0.0),
                                               float(np.abs(np.where(allowed, s, 0)).max()))
        if softcap:
            s = softcap * np.tanh(s / softcap)
        s = np.where(allowed, s, -np.inf)
        s -= s.max(axis=-1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(axis=-1, keepdims=True)
        out[:, h, :] = p @ v[:, h // rep, :]
    return out


def lm_head(fam: dict, W: dict) -> np.ndarray:
    return W["lm_head.weight"] if not fam["tied"] else W["model.embed_tokens.weight"]


def forward(fam: dict, W: dict[str, np.ndarray], ids: list[int], clamp: dict | None = None,
            gelu: str = "exact", stats: dict | None = None) -> np.ndarray:
    """Logits [T, V] in float64. W: HF-convention weights as float64."""
    stats = {} if stats is None else stats
    d, F, H, K, hd = HIDDEN, FFN, fam["heads"], fam["kv_heads"], fam["head_dim"]
    eps, gem = fam["eps"], fam["norm"] == "gemma"
    act = {"silu": silu, "gelu_erf": gelu_erf,
           "gelu_tanh": gelu_tanh if gelu == "exact" else gelu_ggml_table}[fam["act"]]
    T = len(ids)
    x = W["model.embed_tokens.weight"][ids]
    if fam["embed_scale"]:
        x = x * math.sqrt(d)
    kinds = layer_types(fam)
    for i in range(fam["layers"]):
        p = f"model.layers.{i}."
        h = rms(x, W[p + "input_layernorm.weight"], eps, gem) if fam["block"] != "post" else x
        if fam["fused"]:
            qkv = h @ W[p + "self_attn.qkv_proj.weight"].T
            q, k, v = np.split(qkv, [H * hd, H * hd + K * hd], axis=-1)
        else:
            q = h @ W[p + "self_attn.q_proj.weight"].T
            k = h @ W[p + "self_attn.k_proj.weight"].T
            v = h @ W[p + "self_attn.v_proj.weight"].T
        if fam["qk_norm"] == "whole":
            q = rms(q, W[p + "self_attn.q_norm.weight"], eps, gem)
            k = rms(k, W[p + "self_attn.k_norm.weight"], eps, gem)
        q, k, v = q.reshape(T, H, hd), k.reshape(T, K, hd), v.reshape(T, K, hd)
        if fam["qk_norm"] == "head":
            q = rms(q, W[p + "self_attn.q_norm.weight"], eps, gem)
            k = rms(k, W[p + "self_attn.k_norm.weight"], eps, gem)
        if fam["qk_norm"] == "head_of_whole":  # feature check only: OLMo 2's weights, normed per head
            q = rms(q, W[p + "self_attn.q_norm.weight"].reshape(H, hd), eps, gem)
            k = rms(k, W[p + "self_attn.k_norm.weight"].reshape(K, hd), eps, gem)
        sliding = kinds[i] == "sliding_attention"
        base = fam["rope_local"] if (sliding and fam["rope_local"] is not None) else fam["rope_theta"]
        inter = fam.get("rope_interleaved", False)
        ext, mscale = None, 1.0
        if fam.get("longrope"):
            lr = fam["longrope"]
            ext = lr["long"] if T > lr["original"] else lr["short"]
            if fam.get("longrope_short_always"):  # feature check only
                ext = lr["short"]
            mscale = fam.get("longrope_mscale", longrope_attention_factor(fam))
        rot = rotary_dim(fam)
        q, k = rope_neox(q, base, inter, rot, ext, mscale), rope_neox(k, base, inter, rot, ext, mscale)
        scale = hd ** -0.5  # Gemma: query_pre_attn_scalar^-0.5, query_pre_attn_scalar = head_dim
        a = attention(q, k, v, scale, fam["window"] if sliding else None, fam["attn_softcap"], stats)
        o = a.reshape(T, H * hd) @ W[p + "self_attn.o_proj.weight"].T
        if fam["block"] in ("sandwich", "post"):
            o = rms(o, W[p + "post_attention_layernorm.weight"], eps, gem)
        x = x + o
        if fam["block"] == "sandwich":
            h = rms(x, W[p + "pre_feedforward_layernorm.weight"], eps, gem)
        elif fam["block"] == "post":
            h = x
        else:
            h = rms(x, W[p + "post_attention_layernorm.weight"], eps, gem)
        if fam["fused"]:
            gate, up = np.split(h @ W[p + "mlp.gate_up_proj.weight"].T, 2, axis=-1)
        else:
            gate, up = h @ W[p + "mlp.gate_proj.weight"].T, h @ W[p + "mlp.up_proj.weight"].T
        m = act(gate) * up
        if clamp is not None and clamp["layer"] == i:
            m[:, clamp["neuron"]] = clamp["value"]
        m = m @ W[p + "mlp.down_proj.weight"].T
        if fam["block"] in ("sandwich", "post"):
            m = rms(m, W[p + "post_feedforward_layernorm.weight"], eps, gem)
        x = x + m
    z = rms(x, W["model.norm.weight"], eps, gem) @ lm_head(fam, W).T
    if fam["final_softcap"]:
        cap = fam["final_softcap"]
        stats["max_abs_raw_logit"] = max(stats.get("max_abs_raw_logit", 0.0), float(np.abs(z).max()))
        stats["raw_logits_over_cap"] = stats.get("raw_logits_over_cap", 0) + int(np.sum(np.abs(z) > cap))
        stats["raw_logits"] = stats.get("raw_logits", 0) + int(z.size)
        z = cap * np.tanh(z / cap)
    return z


# ---------------------------------------------------------------------------
# The decode of FFN vectors (the neuron map's definition)
# ---------------------------------------------------------------------------

def ffn_vectors(fam: dict, W: dict, layer: int, neuron: int) -> dict[str, np.ndarray]:
    p = f"model.layers.{layer}."
    if fam["fused"]:
        gu = W[p + "mlp.gate_up_proj.weight"]
        gate, up = gu[neuron], gu[FFN + neuron]
    else:
        gate, up = W[p + "mlp.gate_proj.weight"][neuron], W[p + "mlp.up_proj.weight"][neuron]
    down = W[p + "mlp.down_proj.weight"][:, neuron]
    if fam["block"] in ("sandwich", "post"):
        g = W[p + "post_feedforward_layernorm.weight"]
        down = down * ((1.0 + g) if fam["norm"] == "gemma" else g)
    return {"up": up, "gate": gate, "down": down}


def top_k(row: np.ndarray, k: int) -> list[int]:
    return sorted(range(len(row)), key=lambda i: (-float(row[i]), i))[:k]


def decode(fam: dict, W: dict, v: np.ndarray, k: int) -> dict:
    z = lm_head(fam, W) @ rms(v, W["model.norm.weight"], fam["eps"], fam["norm"] == "gemma")
    if fam["final_softcap"]:
        z = fam["final_softcap"] * np.tanh(z / fam["final_softcap"])
    m = z.max()
    lse = m + math.log(np.exp(z - m).sum())
    p = np.exp(z - lse)
    ids = top_k(p, k)
    entropy = float(-(p * np.log(p)).sum())
    return {"top_ids": ids, "top_probs": [round9(p[i]) for i in ids], "top_logits": [round9(z[i]) for i in ids],
            "logsumexp": round9(lse), "entropy": round9(entropy)}


def decode_definition(fam: dict) -> str:
    gem = fam["norm"] == "gemma"
    g_final = "(1 + model.norm.weight)" if gem else "model.norm.weight"
    if fam["fused"]:
        rows = ("up: mlp.gate_up_proj.weight[FFN + i, :] (the second half of the fused matrix); "
                "gate: mlp.gate_up_proj.weight[i, :]")
    else:
        rows = "up: mlp.up_proj.weight[i, :]; gate: mlp.gate_proj.weight[i, :]"
    if fam["block"] in ("sandwich", "post"):
        g = "(1 + post_feedforward_layernorm.weight)" if gem else "post_feedforward_layernorm.weight"
        down = f"down: {g} * mlp.down_proj.weight[:, i] elementwise (what reaches the residual stream)"
    else:
        down = "down: mlp.down_proj.weight[:, i]"
    head = "lm_head.weight" if not fam["tied"] else "model.embed_tokens.weight (tied)"
    cap = (f"; z = {fam['final_softcap']} * tanh(z / {fam['final_softcap']}) (final_logit_softcapping)"
           if fam["final_softcap"] else "")
    return (f"float64, Hugging Face weights of layer {DECODE['layer']}. Vectors of neuron i: {rows}; {down}. "
            f"p = softmax(z), z = W_U @ (v / sqrt(mean(v^2) + {fam['eps']}) * {g_final}), W_U = {head}"
            f"{cap}. top_ids: the {DECODE['top_k']} largest p, ties by lower id; logsumexp and entropy (nats) "
            f"of z over the whole vocabulary.")


# ---------------------------------------------------------------------------
# llama.cpp
# ---------------------------------------------------------------------------

LLAMA_CPP_COMMITS = {"0.3.36": "0c1e57098bba43ac29e6e3b677cdceebdd22334f"}
THREADS = 2


def llama_logits(path: str, prompts: list[list[int]], original_context: int = 0,
                 short_factor_path: str | None = None) -> list[np.ndarray]:
    """llama.cpp's logits for each prompt. LongRoPE: llama.cpp takes the long
    factors when its context (n_ctx, padded to 256) exceeds the file's
    original context, transformers when the sequence does. So a prompt that
    fits in the original context (`original_context`, the file's) is run on
    `short_factor_path`, the same
    file with a larger original context (that key is all it differs in;
    without YaRN llama.cpp reads it for nothing else), where llama.cpp too
    takes the short factors."""
    import llama_cpp
    from llama_cpp import Llama

    default_params = llama_cpp.llama_cpp.llama_model_default_params

    def without_repacking():
        params = default_params()
        params.use_extra_bufts = False
        return params

    def load(model_path: str):
        llama_cpp.llama_cpp.llama_model_default_params = without_repacking
        try:
            return Llama(model_path=model_path, n_ctx=CONTEXT, n_batch=64, n_ubatch=64, logits_all=True,
                         n_threads=THREADS, n_threads_batch=THREADS, seed=SEED, verbose=False, type_k=0, type_v=0,
                         flash_attn=False)
        finally:
            llama_cpp.llama_cpp.llama_model_default_params = default_params

    models = {path: load(path)}
    if short_factor_path:
        models[short_factor_path] = load(short_factor_path)
    out = []
    for ids in prompts:
        llm = models[short_factor_path if short_factor_path and len(ids) <= original_context else path]
        llm.reset()
        llm.eval(ids)
        out.append(np.array(llm.scores[: len(ids)], dtype=np.float64))
    for llm in models.values():
        llm.close()
    return out


# ---------------------------------------------------------------------------
# Checks and the fixture
# ---------------------------------------------------------------------------

def round9(x) -> float:
    """Nine significant digits: float32 round-trips."""
    return float(f"{float(x):.9g}")


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def check_readback(fam: dict, weights: dict, st_path: str, gguf_path: str | None) -> None:
    st = read_safetensors(st_path)
    assert sorted(st) == sorted(weights), "safetensors names"
    for n, a in weights.items():
        assert st[n].shape == a.shape and np.array_equal(st[n], a), n
    if gguf_path is None:
        return
    reader = gguf.GGUFReader(gguf_path)
    got = {t.name: t for t in reader.tensors}
    if fam.get("longrope"):
        for name, key in (("rope_factors_long.weight", "long"), ("rope_factors_short.weight", "short")):
            assert np.array_equal(np.asarray(got.pop(name).data), np.array(fam["longrope"][key], np.float32)), name
    assert len(got) == len(weights), (len(got), len(weights))
    for n, a in weights.items():
        t = got[gguf_name(fam, n)]
        assert t.tensor_type == gguf.GGMLQuantizationType.F32, n
        data = np.asarray(t.data).reshape(a.shape)
        assert np.array_equal(data, gguf_tensor(fam, n, a)), n
    if fam["norm"] == "gemma":
        n = "model.norm.weight"
        assert np.array_equal(np.asarray(got["output_norm.weight"].data), weights[n] + np.float32(1)), "gemma +1"
        for n, a in weights.items():  # bfloat16 weights: 1 + w is exact in float32, as in float64
            if n.endswith("norm.weight"):
                assert np.array_equal((a + np.float32(1)).astype(np.float64), a.astype(np.float64) + 1.0), n


def check_tokenizer(tok_path: str, tokens: list[str], ranks: dict) -> str:
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return "tokenizers not installed: tokenizer.json not loaded"
    tok = Tokenizer.from_file(tok_path)
    text = "Hello world, the dog is in the sea.\n\nParis"
    ids = tok.encode(text, add_special_tokens=False).ids
    # our reference: GPT-2 pre-tokenizer split done by tokenizers itself, then our BPE
    pre = tok.pre_tokenizer.pre_tokenize_str(text)
    index = {t: i for i, t in enumerate(tokens)}
    want = [index[piece] for word, _ in pre for piece in bpe(word, ranks)]
    assert ids == want, (ids, want)
    assert tok.get_vocab_size() == len(tokens)
    return f"tokenizers loads tokenizer.json; {text!r} -> {len(ids)} ids as our BPE"


def make_prompts(vocab_size: int) -> list[list[int]]:
    rng = np.random.default_rng([SEED, 7])
    long = [BOS_ID] + rng.integers(len(SPECIAL_TOKENS), vocab_size, 15).tolist()
    short = rng.integers(len(SPECIAL_TOKENS), vocab_size, 7).tolist()
    return [long, short]


def feature_effects(fam: dict, W: dict, ids: list[int], logits: np.ndarray) -> dict[str, float]:
    """How far the logits of the prompt move when one of the family's
    features is left out (or Phi-3's gate/up halves are swapped): each must
    move them by far more than the llama.cpp agreement, so that agreement
    shows the feature is implemented the same way on both sides."""
    variants: dict[str, tuple[dict, dict]] = {"rope_interleaved_instead_of_neox": (dict(fam, rope_interleaved=True), W)}
    if fam.get("max_window_layers") is not None:
        variants["sliding_window_on_every_layer"] = (dict(fam, max_window_layers=0), W)
    if fam["window"]:
        variants["sliding_window"] = (dict(fam, window=None), W)
        variants["sliding_window_one_larger"] = (dict(fam, window=fam["window"] + 1), W)
    if fam["qk_norm"] == "whole":
        variants["qk_norm_per_head_instead_of_whole"] = (dict(fam, qk_norm="head_of_whole"), W)
    if fam["rope_local"] is not None:
        variants["rope_local_base_freq"] = (dict(fam, rope_local=None), W)
    if fam["attn_softcap"]:
        variants["attn_logit_softcapping"] = (dict(fam, attn_softcap=None), W)
    if fam["final_softcap"]:
        variants["final_logit_softcapping"] = (dict(fam, final_softcap=None), W)
    if fam["qk_norm"]:
        variants["qk_norm"] = (dict(fam, qk_norm=None), W)
    if fam["embed_scale"]:
        variants["embedding_scale"] = (dict(fam, embed_scale=False), W)
    if fam["norm"] == "gemma":
        shifted = {n: (a + 1.0 if n.endswith("norm.weight") else a) for n, a in W.items()}
        variants["norm_weight_plus_one_applied_twice"] = (fam, shifted)
    if rotary_dim(fam) != fam["head_dim"]:
        variants["rotary_on_the_whole_head"] = (dict(fam, rotary_dim=None, longrope=None), W)
    if fam.get("longrope"):
        variants["longrope_short_factors_on_the_long_prompt"] = (dict(fam, longrope_short_always=True), W)
        variants["longrope_attention_factor"] = (dict(fam, longrope_mscale=1.0), W)
        variants["longrope_factors"] = (dict(fam, longrope=None), W)
    if fam["fused"]:
        swapped = dict(W)
        for i in range(fam["layers"]):
            n = f"model.layers.{i}.mlp.gate_up_proj.weight"
            swapped[n] = np.concatenate([W[n][FFN:], W[n][:FFN]], axis=0)
        variants["gate_up_split_order"] = (fam, swapped)
    return {k: round9(np.abs(forward(f, w, ids) - logits).max()) for k, (f, w) in variants.items()}


def build_family(name: str, fam: dict, out: str, tokens: list[str], merges: list[str], ranks: dict) -> dict:
    V = len(tokens)
    weights = make_weights(name, fam, V)
    folder = os.path.join(out, name)
    hf = os.path.join(folder, "hf")
    os.makedirs(hf, exist_ok=True)
    st_path = os.path.join(hf, "model.safetensors")
    gguf_path = os.path.join(folder, "model.gguf")
    write_json(os.path.join(hf, "config.json"), config_json(fam, V))
    write_json(os.path.join(hf, "tokenizer.json"), tokenizer_json(tokens, merges))
    write_json(os.path.join(hf, "tokenizer_config.json"), tokenizer_config(fam))
    write_safetensors(st_path, weights)
    with_gguf = fam.get("gguf", True)
    keys = write_gguf(gguf_path, name, fam, weights, tokens, merges) if with_gguf else []
    check_readback(fam, weights, st_path, gguf_path if with_gguf else None)
    tok_note = check_tokenizer(os.path.join(hf, "tokenizer.json"), tokens, ranks)

    # The reference reads the HF file, llama.cpp the GGUF.
    W = {n: a.astype(np.float64) for n, a in read_safetensors(st_path).items()}
    prompts = make_prompts(V)
    stats: dict = {}
    exact = [forward(fam, W, ids, stats=stats) for ids in prompts]
    table = [forward(fam, W, ids, gelu="ggml") for ids in prompts]
    clamped = [forward(fam, W, ids, clamp=CLAMP) for ids in prompts]
    # Token by token: row t as the forward pass of tokens 0..t gives it. The
    # same rows as `exact` except where LongRoPE switches factors mid-prompt.
    stepwise = [np.array([forward(fam, W, ids[:t + 1])[t] for t in range(len(ids))]) for ids in prompts]
    if not with_gguf:
        ll = table  # no llama.cpp check: the differences below are 0
    elif fam.get("longrope"):
        short_factor_path = os.path.join(folder, "short-factors.gguf")
        write_gguf(short_factor_path, name, fam, weights, tokens, merges, original_context_key=CONTEXT)
        ll = llama_logits(gguf_path, prompts, fam["longrope"]["original"], short_factor_path)
        os.remove(short_factor_path)
    else:
        ll = llama_logits(gguf_path, prompts)
    diff_exact = max(float(np.abs(a - b).max()) for a, b in zip(exact, ll))
    diff_table = max(float(np.abs(a - b).max()) for a, b in zip(table, ll))
    diff_gelu = max(float(np.abs(a - b).max()) for a, b in zip(exact, table))
    # The exact reference may differ from llama.cpp by the GELU table's effect
    # (measured here as |exact - table|) plus float32 noise.
    tol_exact = TOL_LOGIT + 2.0 * diff_gelu if fam["act"] == "gelu_tanh" else TOL_LOGIT
    if with_gguf:
        print(f"[{name}] max |NumPy - llama.cpp|: {diff_exact:.3g} (exact GELU), {diff_table:.3g} (ggml table GELU); "
              f"|exact - table| {diff_gelu:.3g}; {tok_note}")
    else:
        print(f"[{name}] Hugging Face folder only: no GGUF, no llama.cpp check; {tok_note}")
    if not diff_table < TOL_LOGIT or not diff_exact < tol_exact:
        raise SystemExit(f"[{name}] llama.cpp disagrees with the NumPy reference: {diff_table:.3g} "
                         f"(tolerance {TOL_LOGIT}), {diff_exact:.3g} (tolerance {tol_exact:.3g})")
    clamp_effect = max(float(np.abs(a - b).max()) for a, b in zip(exact, clamped))
    assert clamp_effect > 1e-2, f"[{name}] the clamp does not change the logits ({clamp_effect})"
    features = feature_effects(fam, W, prompts[0], exact[0])
    if fam["act"] == "gelu_tanh":  # recorded, not required to be large
        stats["logit_change_gelu_erf_instead_of_tanh"] = float(
            np.abs(forward(dict(fam, act="gelu_erf"), W, prompts[0]) - exact[0]).max())
    for feature, effect in features.items():
        assert effect > 10 * TOL_LOGIT, f"[{name}] {feature} changes the logits by only {effect:.3g}"

    dec = {kind: [] for kind in ("up", "gate", "down")}
    for i in DECODE["neurons"]:
        for kind, v in ffn_vectors(fam, W, DECODE["layer"], i).items():
            dec[kind].append(dict(neuron=i, **decode(fam, W, v, DECODE["top_k"])))

    import llama_cpp
    version = llama_cpp.__version__
    ref = {
        "family": name,
        "generator": "scripts/make_family_fixtures.py",
        "gguf_arch": fam["arch"],
        "hf_model_type": fam["model_type"],
        "hf_architecture": fam["hf_class"],
        "files": {"gguf": "model.gguf" if with_gguf else None, "hf": "hf",
                  "gguf_sha256": sha256_file(gguf_path) if with_gguf else None,
                  "safetensors_sha256": sha256_file(st_path)},
        "hyperparameters": {
            "vocab_size": V, "hidden_size": HIDDEN, "intermediate_size": FFN, "num_hidden_layers": fam["layers"],
            "num_attention_heads": fam["heads"], "num_key_value_heads": fam["kv_heads"],
            "head_dim": fam["head_dim"], "rms_norm_eps": fam["eps"], "rope_theta": fam["rope_theta"],
            "rope_local_base_freq": fam["rope_local"], "sliding_window": fam["window"],
            "sliding_window_pattern": fam["pattern"], "layer_types": layer_types(fam),
            "attn_logit_softcapping": fam["attn_softcap"], "final_logit_softcapping": fam["final_softcap"],
            "attention_scale": fam["head_dim"] ** -0.5, "tie_word_embeddings": fam["tied"],
            "rotary_dim": rotary_dim(fam),
            "longrope": (dict(fam["longrope"], attention_factor=longrope_attention_factor(fam))
                         if fam.get("longrope") else None),
            "activation": fam["act"], "max_position_embeddings": CONTEXT,
            "bos_token_id": BOS_ID, "eos_token_id": EOS_ID, "pad_token_id": PAD_ID,
        },
        "weights": "random normal (fixed seed), each value rounded to the nearest bfloat16 and stored as float32",
        "gguf_metadata_keys": keys,
        "gguf_tensors": {n: gguf_name(fam, n) for n in sorted(weights)} if with_gguf else {},
        "gguf_norm_shift": ("GGUF *norm.weight = HF weight + 1 (Gemma convert_hf_to_gguf)"
                            if fam["norm"] == "gemma" else "none"),
        "semantics": FORWARD_SEMANTICS["common"] + " " + FORWARD_SEMANTICS[name],
        "reference": "float64 NumPy forward pass of the Hugging Face modeling code's semantics, from hf/model.safetensors",
        "llamacpp": None if not with_gguf else {
            "version": f"llama-cpp-python {version} (llama.cpp {LLAMA_CPP_COMMITS.get(version, 'unknown')})",
            "settings": f"CPU, n_threads={THREADS}, F32 weights and KV cache, flash attention off, no weight "
                        f"repacking, logits_all, the whole prompt in one batch",
            "max_abs_diff_logits": float(f"{diff_exact:.2g}"),
            "max_abs_diff_logits_ggml_gelu": float(f"{diff_table:.2g}"),
            "max_abs_diff_exact_vs_ggml_gelu_reference": float(f"{diff_gelu:.2g}"),
            "tolerance": TOL_LOGIT,
            "note": ("llama.cpp's CPU GELU rounds its input to half and reads a half-precision table; the "
                     "second difference is against this reference with that GELU emulated, the first against "
                     "the exact tanh GELU" if fam["act"] == "gelu_tanh" else
                     "SiLU families: the two references are the same"),
        },
        "stats": {
            "definition": "over both prompts, without the clamp: max |attention score| (scaled q.k, before any "
                          "soft-cap and mask, allowed keys only); final soft-cap: max |raw logit| and how many raw "
                          "logits exceed the cap; the largest logit change from the erf GELU instead of the tanh "
                          "one (not covered by the llama.cpp check: about its tolerance)",
            **{k: (v if isinstance(v, int) else round9(v)) for k, v in sorted(stats.items())}},
        "feature_effects": {
            "definition": "max |logit change| over the first prompt when the feature is left out; each is "
                          "> 10 x the llama.cpp tolerance, so the cross-check covers it",
            **features},
        "clamp": dict(CLAMP, definition=(
            f"the activation act(gate)_i * up_i of neuron {CLAMP['neuron']} of layer {CLAMP['layer']} (0-based) "
            f"set to {CLAMP['value']} at every position before down_proj"
            + (" (gate = row i, up = row FFN + i of gate_up_proj)" if fam["fused"] else "")),
            max_abs_effect_on_logits=round9(clamp_effect)),
        "prompts": [
            dict({"tokens": ids, "logits": [[round9(x) for x in row] for row in e],
                  "clamp_logits": [[round9(x) for x in row] for row in c]},
                 **({"stepwise_logits": [[round9(x) for x in row] for row in sw]}
                    if np.abs(sw - e).max() > 10 * TOL_LOGIT else {}))
            for ids, e, c, sw in zip(prompts, exact, clamped, stepwise)
        ],
        "decode_definition": decode_definition(fam),
        "decode": dict(DECODE, **dec),
    }
    write_json(os.path.join(folder, "reference.json"), ref, compact_lists=True)
    return {"family": name, "diff_exact": diff_exact, "diff_table": diff_table,
            "gguf": os.path.getsize(gguf_path) if with_gguf else 0, "safetensors": os.path.getsize(st_path),
            "reference": os.path.getsize(os.path.join(folder, "reference.json"))}


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(root, "tests", "fixtures", "families"))
    ap.add_argument("--only", choices=sorted(FAMILIES), action="append", help="these families only (repeatable)")
    args = ap.parse_args()
    names = args.only or list(FAMILIES)
    tokens, merges, ranks = build_vocab()
    rows = []
    with tempfile.TemporaryDirectory(prefix="family-fixtures-") as scratch:
        for name in names:
            rows.append(build_family(name, FAMILIES[name], scratch, tokens, merges, ranks))
        # every family passed: replace the committed folders
        for name in names:
            dest = os.path.join(args.out, name)
            if os.path.isdir(dest):
                shutil.rmtree(dest)
            shutil.copytree(os.path.join(scratch, name), dest)
    print(f"\n{'family':8} {'max|dlogit| exact':>18} {'ggml GELU':>10} {'model.gguf':>11} {'safetensors':>12} {'reference':>10}")
    for r in rows:
        print(f"{r['family']:8} {r['diff_exact']:18.2e} {r['diff_table']:10.2e} {r['gguf']:11,d} "
              f"{r['safetensors']:12,d} {r['reference']:10,d}")
    print(f"vocabulary {len(tokens)} tokens; wrote {args.out} (model.gguf 0: none, no llama.cpp check)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
