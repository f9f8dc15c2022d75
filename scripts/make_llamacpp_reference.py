#!/usr/bin/env python3
"""Writes tests/fixtures/forward/*.llamacpp.json: what llama.cpp computes for
a GGUF model, as a second, independent reference for the runtime test.

Runs llama.cpp through its Python binding (llama-cpp-python 0.3.36, which
vendors llama.cpp 0c1e570; CPU, 2 threads, flash attention off). llama.cpp
uses its own quantised kernels (the activations are quantised to 8 bits for
the int8 dot products), so its logits differ from a float32 forward pass by
more than rounding; compare with a tolerance. For a few prompts (stored as
token ids; the C++ test needs no tokenizer) it records:
  - tokens: the prompt's token ids, tokenized with add_bos as the model's
    metadata says (recorded as "add_bos") and special=True, so chat markers
    such as <|im_start|> are single tokens;
  - top_ids / top_probs: at every position, the top-5 token ids and their
    softmax probabilities over the full vocabulary (float64 softmax of
    llama.cpp's float32 logits);
  - top1_logit: the largest logit at every position;
  - greedy: 32 tokens continued from the end of the prompt, argmax at each
    step, one token per decode call, not stopping at end-of-generation
    tokens ("eog_ids" lists them); greedy_top2_probs: at each step the two
    largest probabilities, so a test can tell a near tie from a real
    disagreement.

Not a fixture generator (needs llama-cpp-python, which the build does not
have); run by hand and commit the output:
  python3 -m venv /tmp/llvenv
  CMAKE_ARGS="-DGGML_NATIVE=ON -DLLAMA_CURL=OFF" /tmp/llvenv/bin/pip install \\
      llama_cpp_python-0.3.36.tar.gz numpy   # the sdist, see bench/README.md
  /tmp/llvenv/bin/python scripts/make_llamacpp_reference.py        # both models
  /tmp/llvenv/bin/python scripts/make_llamacpp_reference.py --only qwen --check
The KV cache is float32 (llama.cpp's default is F16), as neuronlens's is:
llama.cpp's own probabilities move by up to 0.05 between the two on the Qwen
chat prompt, more than the test's tolerance, so the reference must hold the
cache as neuronlens does. Weight repacking is off (use_extra_bufts=False):
with it, llama.cpp's logits for a position depend on how many tokens the
batch has (up to 0.63 apart on Qwen), without it a row is the same whether
the prompt is evaluated whole or as a prefix of 8 tokens or more.

--check also reruns the greedy continuations (they must match) and compares
the logits at each prompt position with those of the last position when
only that prefix is evaluated, printing the largest difference. They are not
always equal: llama.cpp's result for a row depends on the batch it is in (for
Q4_K the repacked q4_K_8x8 kernels take rows in groups of 4, the rest go
through the vector path; batches under 8 rows take another path too), by up
to ~0.6 in a logit for Qwen2.5-Coder-1.5B Q4_K_M, so a test against these
logits needs a tolerance of that order and must allow the argmax to change
where the top two are close. SmolLM2 Q4_1 rows come out bit-identical.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import llama_cpp
from llama_cpp import Llama

from reference_common import sha256, softmax64, write_fixture

# llama.cpp commit vendored by each llama-cpp-python release (its CHANGELOG,
# and vendor/llama.cpp's git HEAD in the sdist).
LLAMA_CPP_COMMITS = {"0.3.36": "0c1e57098bba43ac29e6e3b677cdceebdd22334f"}

SMOLLM2_PROMPTS = [  # the ones scripts/make_forward_reference.py uses
    "The capital of France is",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "One, two, three, four, five, six,",
]
QWEN_PROMPTS = [
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    "Write a Python function that reverses a string.<|im_end|>\n<|im_start|>assistant\n",
    "def fibonacci(n):",
    "The capital of France is",
    "#include <vector>\n\nint sum(const std::vector<int>& v) {\n",
]
GEMMA3_PROMPTS = [
    "The capital of France is",
    "<start_of_turn>user\nWrite a haiku about the sea.<end_of_turn>\n<start_of_turn>model\n",
    "def fibonacci(n):",
    "My dog likes to chase the",
]
MODELS = {  # --only NAME: model file, fixture, prompts
    "smollm2": ("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2_135m_q4_1.llamacpp.json", SMOLLM2_PROMPTS),
    "qwen": ("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", "qwen2.5_coder_1.5b_q4_k_m.llamacpp.json", QWEN_PROMPTS),
    "gemma3": ("gemma-3-270m-q4_k_m.gguf", "gemma3_270m_q4_k_m.llamacpp.json", GEMMA3_PROMPTS),
}
TOP_K = 5
GREEDY_TOKENS = 32
N_CTX = 512
THREADS = 2
SEED = 1234
KV_TYPE = 0  # GGML_TYPE_F32


def top_k(row: np.ndarray, k: int) -> list[int]:
    """Indices of the k largest entries, largest first; ties by lower id."""
    part = np.argpartition(-row, k)[:k]
    return sorted(part.tolist(), key=lambda i: (-float(row[i]), i))


def prompt_logits(llm: Llama, ids: list[int]) -> np.ndarray:
    llm.reset()
    llm.eval(ids)
    return np.array(llm.scores[: len(ids)], dtype=np.float32)  # [T, V]


def greedy(llm: Llama, ids: list[int], n: int) -> tuple[list[int], list[list[float]]]:
    """n argmax tokens, and at each step the two largest probabilities (how
    near a tie the choice was)."""
    llm.reset()
    llm.eval(ids)
    out, top2 = [], []
    for _ in range(n):
        row = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
        tok = int(np.argmax(row))
        p = softmax64(row)
        top2.append(sorted(p[top_k(row, 2)].tolist(), reverse=True))
        out.append(tok)
        llm.eval([tok])
    return out, top2


def model_params_without_repacking():
    """llama_model_default_params with use_extra_bufts off. Llama() has no
    argument for it (unknown keyword arguments are silently ignored), so its
    call to the default-params function is replaced by this one."""
    params = _default_model_params()
    params.use_extra_bufts = False
    return params


_default_model_params = llama_cpp.llama_cpp.llama_model_default_params
llama_cpp.llama_cpp.llama_model_default_params = model_params_without_repacking


def kv_precision_sensitivity(model_path: str, ids: list[int], probs: np.ndarray, tops: list[list[int]]) -> float:
    """How far llama.cpp's own top-k probabilities move when only its KV
    cache is F16 instead of F32: the noise floor of this reference."""
    llm = Llama(model_path=model_path, n_ctx=N_CTX, logits_all=True, n_threads=THREADS,
                n_threads_batch=THREADS, seed=SEED, verbose=False, type_k=1, type_v=1)
    p16 = softmax64(prompt_logits(llm, ids))
    return max(abs(float(p16[t, i] - probs[t, i])) for t, row in enumerate(tops) for i in row)


def make(name: str, model_path: str, out_path: str, prompts: list[str], check: bool) -> None:
    llm = Llama(model_path=model_path, n_ctx=N_CTX, logits_all=True, n_threads=THREADS,
                n_threads_batch=THREADS, seed=SEED, verbose=False, type_k=KV_TYPE, type_v=KV_TYPE)
    add_bos = bool(llm._model.add_bos_token())
    vocab = llm._model.vocab
    eog_ids = [i for i in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, i)]
    records = []
    for text in prompts:
        ids = llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)
        logits = prompt_logits(llm, ids)
        probs = softmax64(logits)
        tops = [top_k(row, TOP_K) for row in logits]
        cont, cont_top2 = greedy(llm, ids, GREEDY_TOKENS)
        rec = {
            "text": text,
            "tokens": ids,
            "top_ids": tops,                                                    # [T, TOP_K]
            "top_probs": [[float(probs[t, i]) for i in row] for t, row in enumerate(tops)],  # [T, TOP_K]
            "top1_logit": [float(logits[t, row[0]]) for t, row in enumerate(tops)],           # [T]
            "greedy": cont,
            "greedy_top2_probs": cont_top2,                                     # [GREEDY_TOKENS, 2]
            "greedy_text": llm.detokenize(cont, special=True).decode("utf-8", errors="replace"),
        }
        records.append(rec)
        if check:
            again, _ = greedy(llm, ids, GREEDY_TOKENS)
            print(f"[{name}] {text[:40]!r}: {len(ids)} tokens, greedy rerun "
                  f"{'identical' if again == cont else 'DIFFERS: ' + str(again)}")
            worst = 0.0
            flips = 0
            for t in range(1, len(ids) + 1):
                last = prompt_logits(llm, ids[:t])[-1]
                worst = max(worst, float(np.abs(last - logits[t - 1]).max()))
                flips += int(np.argmax(last)) != tops[t - 1][0]
            print(f"[{name}]   prefix-only eval vs logits_all row: max |diff| {worst:.3g}, "
                  f"argmax differs at {flips}/{len(ids)} positions")
            print(f"[{name}]   the same prompt with llama.cpp's default F16 KV cache: max |p - p_F32 KV| "
                  f"over the top-{TOP_K} = {kv_precision_sensitivity(model_path, ids, probs, tops):.4f}")
    version = llama_cpp.__version__
    doc = {
        "model": os.path.basename(model_path),
        "model_sha256": sha256(model_path),
        "generator": "scripts/make_llamacpp_reference.py",
        "command": "/tmp/llvenv/bin/python " + " ".join(["scripts/make_llamacpp_reference.py"] + sys.argv[1:]),
        "reference": f"llama.cpp via llama-cpp-python {version} (llama.cpp {LLAMA_CPP_COMMITS.get(version, 'unknown')}), "
                     f"CPU, n_threads={THREADS}, n_ctx={N_CTX}, logits_all, flash attention off, "
                     f"KV cache F32, no weight repacking, seed {SEED}",
        "llama_cpp_python": version,
        "llama_cpp_commit": LLAMA_CPP_COMMITS.get(version, "unknown"),
        "system_info": llama_cpp.llama_print_system_info().decode().strip(),
        "add_bos": add_bos,
        "special": True,
        "n_vocab": llm.n_vocab(),
        "eog_ids": eog_ids,
        "top_k": TOP_K,
        "greedy_tokens": GREEDY_TOKENS,
        "prompts": records,
    }
    write_fixture(out_path, doc)


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(MODELS), help="one model only (default: both)")
    parser.add_argument("--models-dir", default=os.path.join(root, "models"))
    parser.add_argument("--out-dir", default=os.path.join(root, "tests", "fixtures", "forward"))
    parser.add_argument("--check", action="store_true",
                        help="rerun greedy and compare logits_all rows with prefix-only evaluation")
    args = parser.parse_args()
    for name in ([args.only] if args.only else sorted(MODELS)):
        model, fixture, prompts = MODELS[name]
        make(name, os.path.join(args.models_dir, model), os.path.join(args.out_dir, fixture), prompts, args.check)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
