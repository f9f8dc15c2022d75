"""The neuron map written plainly in PyTorch: the baseline (b) of the map benchmark.

For each (layer, kind): vectors [F, d] -> RMSNorm with the final norm's
weight -> chunked matmul with the LM head [V, d] -> log_softmax, entropy,
topk. Prints JSON with the time of the decode loop (weights are dequantised
with gguf-py beforehand and not timed, which favours this baseline).

usage: torch_baseline.py MODEL.gguf --layers 0-29 --kinds up,gate,down --threads N
"""
import argparse
import json
import os
import re
import resource
import time

import numpy as np
import torch
from gguf import GGUFReader
from gguf.quants import dequantize


def parse_layers(text, n_layers):
    if text == "all":
        return list(range(n_layers))
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def tensor(reader, name):
    t = next(t for t in reader.tensors if t.name == name)
    return dequantize(t.data, t.tensor_type).astype(np.float32).reshape([int(x) for x in reversed(t.shape)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--layers", default="all")
    ap.add_argument("--kinds", default="up,gate,down")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--chunk", type=int, default=1024)
    ap.add_argument("--top-k", type=int, default=20)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    r = GGUFReader(args.model)
    arch = r.fields["general.architecture"].contents()
    n_layers = int(r.fields[f"{arch}.block_count"].contents())
    eps = float(r.fields[f"{arch}.attention.layer_norm_rms_epsilon"].contents())
    names = {t.name for t in r.tensors}
    head = torch.from_numpy(tensor(r, "output.weight" if "output.weight" in names else "token_embd.weight"))
    gamma = torch.from_numpy(tensor(r, "output_norm.weight"))
    layers = parse_layers(args.layers, n_layers)
    kinds = args.kinds.split(",")
    weights = {}
    for layer in layers:
        for kind in kinds:
            w = tensor(r, f"blk.{layer}.ffn_{kind}.weight")
            weights[(layer, kind)] = torch.from_numpy(np.ascontiguousarray(w.T if kind == "down" else w))

    start = time.perf_counter()
    checksum = 0
    with torch.inference_mode():
        for (layer, kind), v in weights.items():
            x = v * torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + eps) * gamma
            for c in range(0, x.shape[0], args.chunk):
                logits = x[c:c + args.chunk] @ head.T            # [chunk, V]
                logp = torch.log_softmax(logits, dim=-1)
                entropy = -(logp.exp() * logp).sum(-1)
                top = torch.topk(logits, args.top_k, dim=-1)
                lse = torch.logsumexp(logits, dim=-1)
                checksum += int(top.indices[0, 0]) + int(entropy.numel() + lse.numel() * 0)
    seconds = time.perf_counter() - start
    vectors = sum(v.shape[0] for v in weights.values())
    # Which BLAS the matmul takes on this CPU: the ratio means little without it.
    # BLAS_INFO=generic means the system's libblas.so.3, whichever library
    # that resolves to: the one mapped into this process says.
    config = torch.__config__.show()
    info = re.search(r"BLAS_INFO=(\w+)", config)
    isa = re.search(r"CPU capability usage: (\w+)", config)
    with open("/proc/self/maps") as maps:
        libs = sorted({os.path.realpath(line.split()[-1]) for line in maps if "blas" in line.split()[-1].lower()})
    blas = f"BLAS_INFO={info.group(1) if info else '?'} ({', '.join(libs) or 'no BLAS library mapped'})"
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "vectors": vectors,
                      "seconds": seconds, "checksum": checksum, "blas": blas, "cpu_capability": isa.group(1) if isa else "?",
                      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


if __name__ == "__main__":
    main()
