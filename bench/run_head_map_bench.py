"""Times `neuronlens map --kinds ov,qk` (the head atlas) on a Llama-3.1-8B-shaped
model and extrapolates to all 32 layers: the map of layer 0 alone and of
layers 0..L-1 give the one-off setup (hashing the file, the decoders' heads
dequantised and packed) and the cost of a layer.

usage: python bench/run_head_map_bench.py [--model /tmp/synth8b_l6.gguf] [--layers 6] [--threads 2]
       [--cli build/neuronlens] [--precision auto] [--backend NAME] [--rounds 2]

Each map runs --rounds times, in turns, and the fastest counts (the first
run of a cold file pays for reading it from disk).

The model is made by bench/make_synthetic_model.py (random F16 weights, the
LM head tied to the embedding) when the file is absent.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

FULL_LAYERS = 32


def run_map(cli, model, layers, threads, precision, backend):
    with tempfile.TemporaryDirectory() as tmp:
        atlas = os.path.join(tmp, "heads.db")
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        start = time.perf_counter()
        out = subprocess.run(["/usr/bin/time", "-f", "peak %M KB", cli, "map", model, "-o", atlas, "--kinds", "ov,qk",
                              "--layers", layers, "--precision", precision, "--examples", ""] +
                             (["--backend", backend] if backend else []),
                             env=env, check=True, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    peak = re.search(r"peak (\d+) KB", out.stderr)
    return seconds, int(peak.group(1)) if peak else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="/tmp/synth8b_l6.gguf")
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cli", default="build/neuronlens")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backend", default="", help="a decode backend by name (neuronlens info MODEL lists them)")
    args = parser.parse_args()
    if not os.path.exists(args.model):
        subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "make_synthetic_model.py"), args.model,
                        "--layers", str(args.layers)], check=True)
    ones, manys = [], []
    for _ in range(args.rounds):
        ones.append(run_map(args.cli, args.model, "0", args.threads, args.precision, args.backend))
        manys.append(run_map(args.cli, args.model, f"0-{args.layers - 1}", args.threads, args.precision, args.backend))
    one, peak_one = min(ones)
    many, peak_many = min(manys)
    per_layer = (many - one) / (args.layers - 1)
    setup = one - per_layer
    total = setup + FULL_LAYERS * per_layer
    print(f"layer 0: {one:.1f} s; layers 0-{args.layers - 1}: {many:.1f} s (peak RSS {max(peak_one, peak_many) / 1e6:.2f} GB)")
    print(f"setup {setup:.1f} s + {per_layer:.2f} s a layer -> {FULL_LAYERS} layers in {total:.0f} s "
          f"({total / 60:.1f} min; {total / 60:.2f}x the one-minute goal), {args.threads} threads")


if __name__ == "__main__":
    main()
