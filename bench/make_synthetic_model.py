"""Writes a Llama-shaped GGUF with random F16 weights, for timing the neuron
map at the sizes of a real large model without downloading one.

Default shapes are Llama-3.1-8B's (d=4096, FFN 14336, vocab 128256, 32 heads,
8 KV heads); --layers sets how many layers the file holds (timings are then
extrapolated to the real layer count). The LM head is tied to the embedding
(one [V, d] matrix, as a decode reads only that).

usage: python bench/make_synthetic_model.py OUT.gguf [--layers 1] [--d 4096] [--ffn 14336] [--vocab 128256]
"""
import argparse

import numpy as np
import gguf


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--d", type=int, default=4096)
    ap.add_argument("--ffn", type=int, default=14336)
    ap.add_argument("--vocab", type=int, default=128256)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    d, F, V, H, K = args.d, args.ffn, args.vocab, args.heads, args.kv_heads
    hd = d // H

    def rand(*shape, scale=0.02):
        return (rng.standard_normal(shape, dtype=np.float32) * scale).astype(np.float16)

    w = gguf.GGUFWriter(args.out, "llama")
    w.add_name("synthetic-llama-%dx%d" % (d, F))
    w.add_block_count(args.layers)
    w.add_context_length(8192)
    w.add_embedding_length(d)
    w.add_feed_forward_length(F)
    w.add_head_count(H)
    w.add_head_count_kv(K)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(500000.0)
    w.add_vocab_size(V)
    w.add_tokenizer_model("gpt2")
    w.add_token_list([f"tok{i}" for i in range(V)])
    w.add_token_types([1] * V)
    w.add_tensor("token_embd.weight", rand(V, d))
    w.add_tensor("output_norm.weight", (1 + 0.1 * rng.standard_normal(d)).astype(np.float32))
    for layer in range(args.layers):
        p = f"blk.{layer}."
        w.add_tensor(p + "attn_norm.weight", np.ones(d, dtype=np.float32))
        w.add_tensor(p + "ffn_norm.weight", np.ones(d, dtype=np.float32))
        w.add_tensor(p + "attn_q.weight", rand(H * hd, d))
        w.add_tensor(p + "attn_k.weight", rand(K * hd, d))
        w.add_tensor(p + "attn_v.weight", rand(K * hd, d))
        w.add_tensor(p + "attn_output.weight", rand(d, H * hd))
        w.add_tensor(p + "ffn_gate.weight", rand(F, d))
        w.add_tensor(p + "ffn_up.weight", rand(F, d))
        w.add_tensor(p + "ffn_down.weight", rand(d, F))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(args.out)


if __name__ == "__main__":
    main()
