"""Writes a Llama-shaped GGUF with random weights, for timing the neuron map
and the runtime at the sizes of a real large model without downloading one.

--type f16 (default): F16 weights, the LM head tied to the embedding.
--type q4_k_m: the tensor types of llama.cpp's Q4_K_M mix (Q4_K, with Q6_K
for every other layer's attn_v and ffn_down and for a separate LM head),
random blocks with small fp16 scales: with --layers 32 this is the size of
Llama-3.1-8B-Instruct-Q4_K_M.gguf (about 4.9 GB), for the runtime's memory.

Default shapes are Llama-3.1-8B's (d=4096, FFN 14336, vocab 128256, 32 heads,
8 KV heads); --layers sets how many layers the file holds (timings are then
extrapolated to the real layer count). The LM head is tied to the embedding
(one [V, d] matrix, as a decode reads only that).

usage: python bench/make_synthetic_model.py OUT.gguf [--layers 1] [--d 4096] [--ffn 14336] [--vocab 128256]
       [--type f16|q4_k_m]
"""
import argparse

import numpy as np
import gguf


def byte_level_characters():
    """GPT-2's printable stand-ins for the 256 byte values, in byte order."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) + \
        list(range(ord("\u00ae"), ord("\u00ff") + 1))
    extra = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(extra)) for b in range(256)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--d", type=int, default=4096)
    ap.add_argument("--ffn", type=int, default=14336)
    ap.add_argument("--vocab", type=int, default=128256)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--type", choices=["f16", "q4_k_m"], default="f16")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    d, F, V, H, K = args.d, args.ffn, args.vocab, args.heads, args.kv_heads
    hd = d // H

    def f16(*shape, scale=0.02):
        return (rng.standard_normal(shape, dtype=np.float32) * scale).astype(np.float16)

    QT = gguf.GGMLQuantizationType
    # type -> (bytes per block of 256, byte offsets of its fp16 scales, scale value)
    k_layout = {QT.Q4_K: (144, [0, 2], 2e-5), QT.Q6_K: (210, [208], 5e-6)}

    def kquant(qtype, rows, cols):
        """Random blocks of `qtype` (uint8 [rows, row bytes]) whose scales keep weights near +-0.02."""
        block_bytes, offsets, scale = k_layout[qtype]
        blocks = rng.integers(0, 256, (rows, cols // 256, block_bytes), dtype=np.uint8)
        for offset in offsets:
            blocks[:, :, offset:offset + 2] = np.frombuffer(np.float16(scale).tobytes(), dtype=np.uint8)
        return blocks.reshape(rows, -1)

    def rand(name, rows, cols, more_bits=False):
        if args.type == "f16":
            w.add_tensor(name, f16(rows, cols))
        else:
            qtype = QT.Q6_K if more_bits else QT.Q4_K
            w.add_tensor(name, kquant(qtype, rows, cols), raw_dtype=qtype)

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
    # A byte-level vocabulary with one merge: the 256 byte characters first,
    # so that any text tokenizes (about a token a byte) and `generate` runs.
    w.add_tokenizer_model("gpt2")
    w.add_token_list(byte_level_characters() + ["to"] + [f"tok{i}" for i in range(257, V)])
    w.add_token_types([1] * V)
    w.add_token_merges(["t o"])
    rand("token_embd.weight", V, d)
    if args.type == "q4_k_m":
        rand("output.weight", V, d, more_bits=True)
    w.add_tensor("output_norm.weight", (1 + 0.1 * rng.standard_normal(d)).astype(np.float32))
    for layer in range(args.layers):
        p = f"blk.{layer}."
        w.add_tensor(p + "attn_norm.weight", np.ones(d, dtype=np.float32))
        w.add_tensor(p + "ffn_norm.weight", np.ones(d, dtype=np.float32))
        rand(p + "attn_q.weight", H * hd, d)
        rand(p + "attn_k.weight", K * hd, d)
        rand(p + "attn_v.weight", K * hd, d, more_bits=layer % 2 == 0)
        rand(p + "attn_output.weight", d, H * hd)
        rand(p + "ffn_gate.weight", F, d)
        rand(p + "ffn_up.weight", F, d)
        rand(p + "ffn_down.weight", d, F, more_bits=layer % 2 == 0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(args.out)


if __name__ == "__main__":
    main()
