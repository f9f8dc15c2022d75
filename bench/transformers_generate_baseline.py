"""Prompt processing and greedy generation in Hugging Face transformers (PyTorch,
float32, CPU): the baseline "a PyTorch/transformers loop" of the generate
benchmark. Measures what bench/generate_bench.cpp measures, the same way:

  pp: P prompt tokens in one forward from an empty cache, logits for the last
      token only (logits_to_keep=1);
  tg: n tokens one at a time through the KV cache (DynamicCache) from an
      empty cache, each the argmax of the previous step's logits;

without hooks and with one neuron clamped (a forward pre-hook on layer L's
down_proj that sets input column I to V: the MLP post-activation
act(gate)*up, as neuronlens clamps it). Median tokens/s of --repeats runs
after one warm-up, printed as one JSON line. transformers reads the GGUF
itself (dequantising every weight to float32), as in
scripts/make_forward_reference.py.

usage: transformers_generate_baseline.py MODEL.gguf [--threads N] [--prompt-tokens 128]
         [--gen-tokens 64] [--repeats 5] [--clamp 29:808=36]
The prompt is token ids 1 + (7919 t mod (V-1)), t = 0..P-1, as in generate_bench.
"""
import argparse
import json
import os
import statistics
import time

import torch
import transformers
from transformers import AutoModelForCausalLM, DynamicCache

from generate_workload import add_workload_arguments, prompt_ids


def time_prompt(model, prompt):
    with torch.inference_mode():
        start = time.perf_counter()
        out = model(prompt, past_key_values=DynamicCache(), use_cache=True, logits_to_keep=1)
        out.logits[0, -1].argmax()
        return time.perf_counter() - start


def time_generation(model, first, n):
    produced = []
    with torch.inference_mode():
        cache = DynamicCache()
        token = torch.tensor([[first]])
        start = time.perf_counter()
        for _ in range(n):
            out = model(token, past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            token = out.logits[:, -1].argmax(dim=-1, keepdim=True)
            produced.append(int(token))
        return time.perf_counter() - start, produced


def main():
    ap = argparse.ArgumentParser()
    add_workload_arguments(ap, repeats=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    folder, name = os.path.split(os.path.abspath(args.model))
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model.eval()
    vocab = model.config.vocab_size
    prompt = torch.tensor([prompt_ids(vocab, args.prompt_tokens)])

    where, _, value = args.clamp.partition("=")
    layer, _, neuron = where.partition(":")
    layer, neuron, value = int(layer), int(neuron), float(value)

    def clamp(_module, inputs):
        act = inputs[0].clone()
        act[..., neuron] = value
        return (act,)

    setups = ["no hooks", f"clamp {layer}:{neuron}={value:g}"]
    pp = {s: [] for s in setups}
    tg = {s: [] for s in setups}
    produced = {}
    for r in range(-1, args.repeats):  # r = -1: warm-up
        for s in setups:
            handle = None
            if s != "no hooks":
                handle = model.model.layers[layer].mlp.down_proj.register_forward_pre_hook(clamp)
            p = time_prompt(model, prompt)
            g, produced[s] = time_generation(model, int(prompt[0, 0]), args.gen_tokens)
            if handle is not None:
                handle.remove()
            if r >= 0:
                pp[s].append(args.prompt_tokens / p)
                tg[s].append(args.gen_tokens / g)
    print(json.dumps({
        "torch": torch.__version__, "transformers": transformers.__version__, "threads": torch.get_num_threads(),
        "prompt_tokens": args.prompt_tokens, "gen_tokens": args.gen_tokens, "repeats": args.repeats,
        "setups": [{"name": s, "pp_tok_s": statistics.median(pp[s]), "tg_tok_s": statistics.median(tg[s]),
                    "pp_runs": pp[s], "tg_runs": tg[s], "generated_first": produced[s][:8]} for s in setups],
    }))


if __name__ == "__main__":
    main()
