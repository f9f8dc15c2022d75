#!/usr/bin/env python3
"""How far apart 8-bit-activation forward passes land, and how far llama.cpp
is from the exact one: the figures behind the llama.cpp tests' tolerance
(tests/unit/test_runtime_kquant.cpp).

For one GGUF and its llama.cpp reference (tests/fixtures/forward/*.llamacpp.json,
from scripts/make_llamacpp_reference.py), over the reference's prompts and
positions, the worst |p - p'| over the top 5 of:
  - llama.cpp against neuronlens --weights exact (float32 activations: the
    float32 forward pass of the file's weights) and --weights quantized
    (8-bit activations, as llama.cpp);
  - neuronlens quantized on its AVX2 kernels against the same on its portable
    kernels: the same integers, only the float rounding of the sums differs,
    so the gap is the noise of 8-bit activations themselves.
Position 0 is reported apart: Qwen's first position has a huge activation
that 8-bit rounding changes (exact and llama.cpp part there by up to 0.95).

Needs the Python package (scripts/test-python.sh builds it into
build-python/venv):
  build-python/venv/bin/python scripts/check_int8_noise.py \\
      models/gemma-3-270m-q4_k_m.gguf tests/fixtures/forward/gemma3_270m_q4_k_m.llamacpp.json
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np


def probabilities(session, prompts):
    """Softmax rows of every prompt's logits, [positions, vocab] per prompt."""
    out = []
    for p in prompts:
        session.reset()
        logits = np.asarray(session.forward(p["tokens"]), dtype=np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        out.append(e / e.sum(axis=1, keepdims=True))
    return out


def worst_vs_reference(probs, prompts):
    """(worst after position 0, worst at position 0) over llama.cpp's top 5."""
    later = first = 0.0
    for pr, p in zip(probs, prompts):
        for t, (ids, ps) in enumerate(zip(p["top_ids"], p["top_probs"])):
            d = max(abs(pr[t, i] - q) for i, q in zip(ids, ps))
            if t == 0:
                first = max(first, d)
            else:
                later = max(later, d)
    return later, first


def worst_between(a, b):
    """(worst after position 0, at position 0) over a's top 5."""
    later = first = 0.0
    for pa, pb in zip(a, b):
        top = np.argsort(-pa, axis=1)[:, :5]
        d = np.abs(np.take_along_axis(pa, top, 1) - np.take_along_axis(pb, top, 1)).max(axis=1)
        first = max(first, d[0])
        if len(d) > 1:
            later = max(later, d[1:].max())
    return later, first


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--dump":  # a child run: one kernel path (read once per process)
        import neuronlens as nl
        _, _, model, reference, out = sys.argv
        prompts = json.load(open(reference))["prompts"]
        np.savez(out, *probabilities(nl.Session(nl.load(model), weights="quantized"), prompts))
        return 0
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    import tempfile

    import neuronlens as nl
    model_path, reference = sys.argv[1:]
    prompts = json.load(open(reference))["prompts"]
    model = nl.load(model_path)
    name = os.path.basename(model_path)
    for weights in ("exact", "quantized"):
        later, first = worst_vs_reference(probabilities(nl.Session(model, weights=weights), prompts), prompts)
        print(f"{name}: llama.cpp vs neuronlens {weights}: worst top-5 |dp| {later:.4f} (position 0: {first:.4f})")
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in ("avx2", "portable"):
            out = os.path.join(tmp, path + ".npz")
            subprocess.run([sys.executable, __file__, "--dump", model_path, reference, out], check=True,
                           env=dict(os.environ, NEURONLENS_KERNEL_PATH=path))
            with np.load(out) as f:
                runs[path] = [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]
    later, first = worst_between(runs["avx2"], runs["portable"])
    print(f"{name}: neuronlens quantized, avx2 vs portable kernels: worst top-5 |dp| {later:.4f} "
          f"(position 0: {first:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
