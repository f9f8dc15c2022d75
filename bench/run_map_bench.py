"""Neuron-map benchmark: (a) neuronlens, (b) plain PyTorch, (c) bare float32
GEMM (OpenBLAS sgemm) for the same products, run one after the other on the
same machine and thread count, with ratios.

usage: python bench/run_map_bench.py MODEL.gguf [--layers all] [--kinds up,gate,down]
         [--threads N] [--torch-python PATH] [--product auto|gemm|strassen|packed|packed-strassen]
(a) and (c) come from build/bench/neuron_map_bench; (b) from
bench/torch_baseline.py run by --torch-python (a Python with torch, numpy,
gguf; skipped if it has none).
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
    ap.add_argument("--product", default="auto", choices=["auto", "gemm", "strassen", "packed", "packed-strassen"],
                    help="how neuronlens multiplies each logit tile (DecodeSettings::product)")
    ap.add_argument("--torch-python", default=sys.executable)
    ap.add_argument("--bench", default=os.path.join(ROOT, "build", "bench", "neuron_map_bench"))
    args = ap.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads))

    nl = json.loads(subprocess.run([args.bench, args.model, "--layers", args.layers, "--kinds", args.kinds,
                                    "--product", args.product],
                                   env=env, check=True, capture_output=True, text=True).stdout)
    torch_result = None
    proc = subprocess.run([args.torch_python, os.path.join(ROOT, "bench", "torch_baseline.py"), args.model,
                           "--layers", args.layers, "--kinds", args.kinds, "--threads", str(args.threads)],
                          env=env, capture_output=True, text=True)
    if proc.returncode == 0:
        torch_result = json.loads(proc.stdout.strip().splitlines()[-1])
    else:
        print(f"(b) skipped: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")

    a = nl["neuronlens"]["total_s"]
    c = nl["bare_gemm"]["seconds"]
    tflop = nl["flops"] / 1e12
    print(f"model {nl['model']}: {nl['vectors']} vectors x V={nl['vocab_size']} x d={nl['d_model']} "
          f"= {tflop:.2f} TFLOP, {args.threads} threads")
    print(f"{'':32} {'seconds':>9} {'vectors/s':>10} {'GFLOP/s':>8} {'vs neuronlens':>14}")
    rows = [("(a) neuronlens (load+norm+decode)", a)]
    if torch_result:
        rows.append((f"(b) PyTorch {torch_result['torch']} (decode only)", torch_result["seconds"]))
    rows.append(("(c) bare sgemm, same products", c))
    for name, s in rows:
        print(f"{name:32} {s:9.2f} {nl['vectors'] / s:10.0f} {nl['flops'] / s / 1e9:8.1f} {s / a:13.2f}x")
    print(f"neuronlens setup (dequantise LM head, pack it for the product) {nl['neuronlens']['setup_s']:.2f} s, "
          f"load+norm {nl['neuronlens']['load_norm_s']:.2f} s, decode {nl['neuronlens']['decode_s']:.2f} s")


if __name__ == "__main__":
    main()
