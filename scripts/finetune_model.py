#!/usr/bin/env python3
"""A real fine-tune to compare (issue 19): full fine-tune of a Llama-family
GGUF model in PyTorch on the CPU, writing GGUF checkpoints at chosen steps.

The model is built in PyTorch straight from the GGUF's tensors (dequantised
to float32 by gguf-py): embedding, RMSNorm, attention with llama.cpp's
interleaved rotary pairs and grouped KV heads, SwiGLU MLP, the LM head (tied
to the embedding where the file has no output.weight). `--check` first
compares its next-token distribution on a prompt with `neuronlens probe`'s,
so the network trained is the one neuronlens reads.

Training: AdamW (lr, betas 0.9/0.95, no weight decay), linear warm-up over
the first 10% of steps, batches of --batch windows of --seq-len tokens drawn
with a seeded generator from the tokenised text (`neuronlens tokenize`), next-
token cross-entropy. Every parameter is trained (the tied embedding too).

Checkpoints: CKPT_DIR/step-N.gguf for each N in --save-at (0 = the base
weights before any step), every tensor float32 (so step 0 holds the base's
dequantised values exactly), every metadata key copied, `general.file_type`
ALL_F32 and `neuronlens.finetune` describing the run. The same arguments
give the same bytes (deterministic algorithms, a fixed thread count); the
run prints each checkpoint's sha256.

usage: python scripts/finetune_model.py MODEL.gguf TEXT_FILE CKPT_DIR
       [--steps 200] [--save-at 0,25,50,100,200] [--lr 1e-4] [--batch 4]
       [--seq-len 64] [--seed 1] [--threads 2] [--cli build/neuronlens] [--check]

Needs torch (Debian's python3-torch 1.13 is enough), numpy and gguf.
"""
import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import torch
import gguf

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from requantize_model import copy_metadata  # noqa: E402  (the same metadata copy as the re-quantised models)


def field(reader, key, default=None):
    f = reader.fields.get(key)
    return default if f is None else f.contents()


class GgufLlama(torch.nn.Module):
    """A Llama block stack whose parameters are the GGUF's tensors, by name."""

    def __init__(self, reader):
        super().__init__()
        arch = field(reader, "general.architecture")
        if arch != "llama":
            sys.exit(f"finetune_model: architecture '{arch}' is not supported (llama only)")
        self.n_layers = int(field(reader, "llama.block_count"))
        self.n_heads = int(field(reader, "llama.attention.head_count"))
        self.n_kv = int(field(reader, "llama.attention.head_count_kv", self.n_heads))
        self.eps = float(field(reader, "llama.attention.layer_norm_rms_epsilon", 1e-5))
        self.theta = float(field(reader, "llama.rope.freq_base", 10000.0))
        self.names = [t.name for t in reader.tensors]
        self.weights = torch.nn.ParameterDict()
        for t in reader.tensors:
            values = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)  # [rows, cols] or [n]
            self.weights[t.name.replace(".", "__")] = torch.nn.Parameter(torch.tensor(values))
        d = self.w("token_embd.weight").shape[1]
        self.head_dim = int(field(reader, "llama.attention.key_length", d // self.n_heads))
        self.tied = "output.weight" not in self.names

    def w(self, name):
        return self.weights[name.replace(".", "__")]

    def rms_norm(self, x, weight):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * weight

    def rope(self, x, positions):
        """x [B, T, heads, hd]; llama.cpp's GGUF q/k rows pair 2i with 2i+1."""
        hd = x.shape[-1]
        inv = self.theta ** (-torch.arange(0, hd, 2, dtype=torch.float32) / hd)  # [hd/2]
        angle = positions[:, None].float() * inv[None, :]  # [T, hd/2]
        cos, sin = torch.cos(angle)[None, :, None, :], torch.sin(angle)[None, :, None, :]
        even, odd = x[..., 0::2], x[..., 1::2]
        return torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)

    def forward(self, ids):
        """ids [B, T] -> logits [B, T, V]."""
        B, T = ids.shape
        positions = torch.arange(T)
        x = self.w("token_embd.weight")[ids]  # [B, T, d]
        mask = torch.full((T, T), float("-inf")).triu(1)
        for layer in range(self.n_layers):
            p = f"blk.{layer}."
            h = self.rms_norm(x, self.w(p + "attn_norm.weight"))
            q = (h @ self.w(p + "attn_q.weight").T).view(B, T, self.n_heads, self.head_dim)
            k = (h @ self.w(p + "attn_k.weight").T).view(B, T, self.n_kv, self.head_dim)
            v = (h @ self.w(p + "attn_v.weight").T).view(B, T, self.n_kv, self.head_dim)
            q, k = self.rope(q, positions), self.rope(k, positions)
            group = self.n_heads // self.n_kv
            k = k.repeat_interleave(group, dim=2)
            v = v.repeat_interleave(group, dim=2)
            scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(self.head_dim) + mask
            attn = torch.einsum("bhqk,bkhd->bqhd", scores.softmax(-1), v).reshape(B, T, -1)
            x = x + attn @ self.w(p + "attn_output.weight").T
            h = self.rms_norm(x, self.w(p + "ffn_norm.weight"))
            act = torch.nn.functional.silu(h @ self.w(p + "ffn_gate.weight").T) * (h @ self.w(p + "ffn_up.weight").T)
            x = x + act @ self.w(p + "ffn_down.weight").T
        x = self.rms_norm(x, self.w("output_norm.weight"))
        head = self.w("token_embd.weight") if self.tied else self.w("output.weight")
        return x @ head.T


def tokenize(cli, model, text_file):
    run = subprocess.run([cli, "tokenize", model, "--file", text_file, "--ids", "--no-bos"], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"finetune_model: neuronlens tokenize failed: {run.stderr.strip()}")
    return torch.tensor([int(t) for t in run.stdout.split()], dtype=torch.long)


def check_against_neuronlens(cli, model_path, net, prompt="The quick brown fox jumps over the lazy"):
    """The PyTorch network's next-token distribution must be neuronlens's."""
    ids = [int(t) for t in subprocess.run([cli, "tokenize", model_path, "-p", prompt, "--ids"], capture_output=True,
                                          text=True, check=True).stdout.split()]
    run = subprocess.run([cli, "probe", model_path, "-p", prompt, "--tokens", "\n", "--json"], capture_output=True,
                         text=True)
    if run.returncode != 0:
        sys.exit(f"finetune_model: neuronlens probe failed: {run.stderr.strip()}")
    theirs = {t["id"]: t["p"] for t in json.loads(run.stdout)["top_without"]}
    with torch.no_grad():
        ours = net(torch.tensor([ids]))[0, -1].double().softmax(-1)
    worst = max(abs(float(ours[i]) - p) for i, p in theirs.items())
    print(f"check: top-10 next-token probabilities differ from neuronlens's by at most {worst:.2e}", flush=True)
    if worst > 2e-3:
        sys.exit("finetune_model: the PyTorch model does not compute what neuronlens computes")
    return worst


def save_checkpoint(reader, net, path, description):
    writer = gguf.GGUFWriter(path, field(reader, "general.architecture"))
    copy_metadata(reader, writer, gguf.LlamaFileType.ALL_F32)
    writer.add_string("neuronlens.finetune", description)
    for name in net.names:
        writer.add_tensor(name, net.w(name).detach().numpy().astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("text")
    parser.add_argument("out_dir")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--save-at", default="0,25,50,100,200")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cli", default=os.path.join(HERE, "..", "build", "neuronlens"))
    parser.add_argument("--check", action="store_true", help="compare the PyTorch model with neuronlens first")
    args = parser.parse_args()
    save_at = sorted({int(s) for s in args.save_at.split(",")})
    if args.steps < 0 or any(s < 0 or s > args.steps for s in save_at):
        sys.exit(f"finetune_model: --save-at steps must lie in 0..{args.steps}")

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    reader = gguf.GGUFReader(args.model)
    net = GgufLlama(reader)
    if args.check:
        check_against_neuronlens(args.cli, args.model, net)
    tokens = tokenize(args.cli, args.model, args.text)
    if len(tokens) <= args.seq_len + 1:
        sys.exit(f"finetune_model: the text has {len(tokens)} tokens, fewer than --seq-len + 2")
    os.makedirs(args.out_dir, exist_ok=True)
    description = (f"full fine-tune of {os.path.basename(args.model)} on {os.path.basename(args.text)} "
                   f"({len(tokens)} tokens): AdamW lr {args.lr}, batch {args.batch} x {args.seq_len}, seed {args.seed}")
    print(f"{description}; {sum(p.numel() for p in net.parameters())} parameters", flush=True)

    optimizer = torch.optim.AdamW(net.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.0)
    warmup = max(1, args.steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))
    sampler = torch.Generator().manual_seed(args.seed)
    started = time.time()
    for step in range(args.steps + 1):
        if step in save_at:
            path = os.path.join(args.out_dir, f"step-{step}.gguf")
            digest = save_checkpoint(reader, net, path, f"{description}; step {step}")
            print(f"step {step}: wrote {path} sha256 {digest}", flush=True)
        if step == args.steps:
            break
        starts = torch.randint(0, len(tokens) - args.seq_len - 1, (args.batch,), generator=sampler)
        window = torch.stack([tokens[s:s + args.seq_len + 1] for s in starts.tolist()])  # [B, T+1]
        logits = net(window[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), window[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 10 == 0 or step == args.steps - 1:
            rate = (step + 1) / (time.time() - started)
            print(f"step {step + 1}/{args.steps} loss {loss.item():.4f} ({rate:.2f} steps/s)", flush=True)


if __name__ == "__main__":
    main()
