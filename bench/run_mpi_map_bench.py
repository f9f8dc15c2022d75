"""The MPI map's scaling on this machine, and on paper for a Llama-3.1-70B-shaped
map on N nodes.

Times the same map (default: the default model's `up` layers 0-11) four ways,
each into a fresh atlas, and checks the atlases agree:
  1 rank x 1 thread    neuronlens map ... --threads 1          (the baseline)
  1 rank x 2 threads   neuronlens map ... --threads 2
  2 ranks x 1 thread   mpirun -n 2 --bind-to core neuronlens map ... --threads 1
  3 ranks x 1 thread   mpirun -n 3 --oversubscribe ... (rank 0 shares a core)
and prints each one's wall time and speed-up over the baseline, and the MPI
writer's rows/s (rank 0's own line). Then, from the measured cost of a
vector here (core-seconds per GFLOP of the decode) and the writer's rows/s
and index rows/s from `atlas_writer_bench` (--writer-rates, or it runs it),
the expected wall time of an all-kinds map of a Llama-3.1-70B-shaped model
(80 layers x 28,672 neurons x 3 kinds, d 8192, vocabulary 128,256) on N
nodes of C cores each.

usage: python3 bench/run_mpi_map_bench.py [--model M] [--layers 0-11] [--kinds up]
       [--cli build/neuronlens] [--mpirun mpirun] [--cores-per-node 64]
       [--writer-rates WRITE,INDEX]
"""
import argparse
import json
import os
import re
import sqlite3
import subprocess
import tempfile
import time

ROOT_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
# Llama-3.1-70B: layers, FFN width, model width, vocabulary.
BIG = dict(layers=80, d_ffn=28672, d_model=8192, vocab=128256, kinds=3, top_k=20)


def timed(cmd):
    start = time.perf_counter()
    out = subprocess.run(cmd, env=dict(os.environ, **ROOT_ENV), check=True, capture_output=True, text=True)
    return time.perf_counter() - start, out.stdout + out.stderr


def rows(atlas):
    db = sqlite3.connect(atlas)
    return db.execute("SELECT * FROM neuron_tokens ORDER BY 1, 2, 3, 4").fetchall()


def model_shape(cli, model):
    out = subprocess.run([cli, "info", model, "--json"], check=True, capture_output=True, text=True).stdout
    c = json.loads(out)
    return int(c["hidden_size"]), int(c["vocab_size"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    parser.add_argument("--layers", default="0-11")
    parser.add_argument("--kinds", default="up")
    parser.add_argument("--cli", default="build/neuronlens")
    parser.add_argument("--mpirun", default="mpirun")
    parser.add_argument("--cores-per-node", type=int, default=64)
    parser.add_argument("--writer-rates", default="",
                        help="WRITE,INDEX rows/s (default: run atlas_writer_bench for them)")
    parser.add_argument("--writer-bench", default="build/bench/atlas_writer_bench")
    args = parser.parse_args()

    common = ["map", args.model, "--layers", args.layers, "--kinds", args.kinds, "--examples", ""]
    runs = [
        ("1 rank x 1 thread", [args.cli], "1"),
        ("1 rank x 2 threads", [args.cli], "2"),
        ("2 ranks x 1 thread", [args.mpirun, "-n", "2", "--bind-to", "core", args.cli], "1"),
        ("3 ranks x 1 thread", [args.mpirun, "-n", "3", "--oversubscribe", args.cli], "1"),
    ]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        reference = None
        for i, (name, prefix, threads) in enumerate(runs):
            atlas = os.path.join(tmp, f"run{i}.db")
            seconds, out = timed(prefix + common + ["-o", atlas, "--threads", threads])
            vectors = int(re.search(r"mapped (\d+) vectors", out).group(1))
            writer = re.search(r"writer \(rank 0\): (\d+) units, (\d+) rows in ([\d.]+) s \((\d+) rows/s\)", out)
            got = rows(atlas)
            if reference is None:
                reference = got
            elif got != reference:
                raise SystemExit(f"{name}: the atlas differs from the one-process map")
            results.append((name, seconds, vectors, writer))
    base = results[0][1]
    print(f"map {args.model} --layers {args.layers} --kinds {args.kinds}: {results[0][2]} vectors, "
          "every atlas equal to the 1-rank one")
    print(f"{'run':<22}{'wall s':>9}{'vectors/s':>11}{'vs 1x1':>8}  writer")
    for name, seconds, vectors, writer in results:
        w = f"{writer.group(2)} rows in {writer.group(3)} s ({writer.group(4)} rows/s)" if writer else "-"
        print(f"{name:<22}{seconds:9.2f}{vectors / seconds:11.0f}{base / seconds:7.2f}x  {w}")

    # On paper: core-seconds per GFLOP of decode from the 1 x 1 run (its wall
    # includes loading and hashing, so this is pessimistic for big units).
    d, vocab = model_shape(args.cli, args.model)
    gflop_here = results[0][2] * d * vocab * 2 / 1e9
    core_s_per_gflop = results[0][1] / gflop_here
    if args.writer_rates:
        write_rate, index_rate = (float(x) for x in args.writer_rates.split(","))
    else:
        out = subprocess.run([args.writer_bench, "--units", "4", "--baseline-units", "0"], check=True,
                             capture_output=True, text=True).stdout
        m = re.search(r"writes alone: (\d+) rows/s; the index at the end: (\d+) rows/s", out)
        write_rate, index_rate = float(m.group(1)), float(m.group(2))
    units = BIG["layers"] * BIG["kinds"]
    unit_gflop = BIG["d_ffn"] * BIG["d_model"] * BIG["vocab"] * 2 / 1e9
    unit_rows = BIG["d_ffn"] * (1 + BIG["top_k"])
    all_rows = units * unit_rows
    # Rank 0's writer thread writes while the ranks map; the index is built
    # once after the last unit.
    write_total, index_total = all_rows / write_rate, all_rows / index_rate
    print(f"\nLlama-3.1-70B-shaped map, all kinds: {units} units of {unit_gflop / 1e3:.1f} TFLOP "
          f"({units * unit_gflop / 1e6:.1f} PFLOP), {all_rows / 1e6:.0f}M rows")
    print(f"measured here: {1 / core_s_per_gflop:.1f} GFLOP/s per core (the 1 x 1 run, setup included); "
          f"atlas_writer_bench: {write_rate:.0f} rows/s written ({write_total / 60:.1f} min for all rows, "
          f"alongside the map), the token index at {index_rate:.0f} rows/s ({index_total / 60:.1f} min, after it)")
    print(f"nodes of {args.cores_per_node} such cores (linear in cores: memory bandwidth may cap it lower), "
          "units handed out as ranks ask:")
    print(f"{'nodes':>6}{'unit min':>10}{'compute':>10}{'writes':>9}{'index':>8}{'expected':>10}")
    for nodes in (1, 2, 4, 8, 16, 32, 64):
        unit_s = unit_gflop * core_s_per_gflop / args.cores_per_node
        compute = -(-units // nodes) * unit_s
        expected = max(compute, write_total) + index_total
        print(f"{nodes:6d}{unit_s / 60:10.1f}{compute / 3600:9.2f}h{write_total / 3600:8.2f}h{index_total / 3600:7.2f}h"
              f"{expected / 3600:9.2f}h")

if __name__ == "__main__":
    main()
