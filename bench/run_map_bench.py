"""Neuron-map benchmark: (a) neuronlens, (b) plain PyTorch, (c) bare float32
GEMM (OpenBLAS sgemm) for the same products, run one after the other on the
same machine and thread count, with ratios.

usage: python bench/run_map_bench.py MODEL.gguf [--layers all] [--kinds up,gate,down]
         [--threads N] [--torch-python PATH] [--precisions exact,bf16] [--backends NAME,...]
(a) and (c) come from build/bench/neuron_map_bench, (a) once per precision
(bf16 skipped on a CPU without bf16 units) and once per --backends name
(e.g. cpu-avx2-bf16emu, cpu-portable8-fp32); (b) from bench/torch_baseline.py
run by --torch-python (a Python with torch, numpy, gguf; skipped if it has
none), which also says which BLAS its matmul takes. Each line gives the
process's peak RSS.
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--layers", default="all")
    ap.add_argument("--kinds", default="up,gate,down")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--precisions", default="exact,bf16", help="neuronlens runs, one per precision")
    ap.add_argument("--backends", default="", help="more neuronlens runs, one per decode backend name")
    ap.add_argument("--torch-python", default=sys.executable)
    ap.add_argument("--bench", default=os.path.join(ROOT, "build", "bench", "neuron_map_bench"))
    args = ap.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads))

    def neuronlens(flag, value):
        proc = subprocess.run([args.bench, args.model, "--layers", args.layers, "--kinds", args.kinds, flag, value],
                              env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"(a) {flag} {value} skipped: {proc.stderr.strip()}")
            return None
        return json.loads(proc.stdout)

    runs = [(f"--precision {p}", neuronlens("--precision", p)) for p in args.precisions.split(",") if p]
    runs += [(f"--backend {b}", neuronlens("--backend", b)) for b in args.backends.split(",") if b]
    runs = [(label, r) for label, r in runs if r]
    if not runs:
        sys.exit("no neuronlens run succeeded")
    torch_result = None
    proc = subprocess.run([args.torch_python, os.path.join(ROOT, "bench", "torch_baseline.py"), args.model,
                           "--layers", args.layers, "--kinds", args.kinds, "--threads", str(args.threads)],
                          env=env, capture_output=True, text=True)
    if proc.returncode == 0:
        torch_result = json.loads(proc.stdout.strip().splitlines()[-1])
    else:
        print(f"(b) skipped: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")

    first = runs[0][1]
    c = first["bare_gemm"]["seconds"]
    tflop = first["flops"] / 1e12
    print(f"model {first['model']}: {first['vectors']} vectors x V={first['vocab_size']} x d={first['d_model']} "
          f"= {tflop:.2f} TFLOP, {args.threads} threads")
    if torch_result:
        print(f"PyTorch {torch_result['torch']}: {torch_result['blas']}; CPU capability {torch_result['cpu_capability']}")
    t = torch_result["seconds"] if torch_result else None
    print(f"{'':44} {'seconds':>9} {'GFLOP/s':>8} {'vs PyTorch':>11} {'peak RSS':>9}")
    rows = [(f"(a) neuronlens {r['backend']} ({label})", r["neuronlens"]["total_s"], r["peak_rss_bytes"])
            for label, r in runs]
    if torch_result:
        rows.append((f"(b) PyTorch {torch_result['torch']} (decode only)", t, torch_result["peak_rss_bytes"]))
    rows.append(("(c) bare OpenBLAS sgemm, same products", c, None))
    for name, s, rss in rows:
        ratio = f"{s / t:10.2f}x" if t else f"{'-':>11}"
        mem = f"{rss / 2**20:7.0f} MiB" if rss else f"{'-':>11}"
        print(f"{name:44} {s:9.2f} {first['flops'] / s / 1e9:8.1f} {ratio} {mem}")
    for label, r in runs:
        n = r["neuronlens"]
        print(f"{r['backend']}: setup (dequantise LM head, pack it) {n['setup_s']:.2f} s, load+norm "
              f"{n['load_norm_s']:.2f} s, decode {n['decode_s']:.2f} s; bare sgemm in the same process "
              f"{r['bare_gemm']['seconds']:.2f} s")


if __name__ == "__main__":
    main()
