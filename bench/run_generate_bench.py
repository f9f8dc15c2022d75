"""Generation benchmark: neuronlens's runtime side by side with llama.cpp's
llama-bench and a Hugging Face transformers loop, on the same GGUF file,
prompt length, generation length and thread count, with ratios.

usage: python bench/run_generate_bench.py MODEL.gguf [--threads N] [--prompt-tokens 128]
         [--gen-tokens 64] [--repeats 3] [--rounds 3] [--clamp 29:808=36]
         [--llama-bench PATH] [--torch-python PY] [--torch-repeats 1] [--weights quantized,float32]

  neuronlens    build/bench/generate_bench (both weight formats, --weights)
  llama.cpp     `llama-bench -m MODEL -p P -n N -t T -r R -o json` when
                --llama-bench is given (how to build it: bench/README.md)
  transformers  bench/transformers_generate_baseline.py run by --torch-python
                (a Python with torch and transformers) when given

The programs take turns, --rounds times, so that a change in the machine's
load hits all of them alike; each figure is the median over every run of
every round. pp = prompt processing (P tokens in one batch), tg = generation
(N tokens one at a time from an empty cache), tokens/s. llama.cpp has no
clamp: the clamped rows are compared with its one figure.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

from generate_workload import add_workload_arguments

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_json(cmd, env):
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr.strip()[-2000:]}")
    return proc.stdout


def last_json_line(text):
    return json.loads([line for line in text.splitlines() if line.startswith("{")][-1])


def main():
    ap = argparse.ArgumentParser()
    add_workload_arguments(ap)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--weights", default="quantized,float32", help="neuronlens weight formats to time")
    ap.add_argument("--bench", default=os.path.join(ROOT, "build", "bench", "generate_bench"))
    ap.add_argument("--llama-bench")
    ap.add_argument("--torch-python")
    ap.add_argument("--torch-repeats", type=int, default=1,
                    help="timed transformers runs per round (each takes minutes on 2 cores)")
    args = ap.parse_args()
    t = str(args.threads)
    env = dict(os.environ, OMP_NUM_THREADS=t, OPENBLAS_NUM_THREADS=t)
    common = ["--prompt-tokens", str(args.prompt_tokens), "--gen-tokens", str(args.gen_tokens),
              "--repeats", str(args.repeats), "--clamp", args.clamp, "--threads", t]

    # name -> {"pp": [tok/s...], "tg": [...]}
    runs = {}

    def add(name, pp, tg):
        entry = runs.setdefault(name, {"pp": [], "tg": []})
        entry["pp"] += pp
        entry["tg"] += tg

    versions = {}
    for round_index in range(args.rounds):
        print(f"round {round_index + 1}/{args.rounds}", file=sys.stderr, flush=True)
        for fmt in args.weights.split(","):
            out = json.loads(run_json([args.bench, args.model, "--weights", fmt, "--json"] + common, env))
            versions[f"neuronlens {fmt}"] = f"{out['weight_bytes'] / 2**20:.0f} MiB of weights"
            for s in out["setups"]:
                add(f"neuronlens {fmt}, {s['name']}", s["pp_runs"], s["tg_runs"])
        if args.llama_bench:
            out = json.loads(run_json([args.llama_bench, "-m", args.model, "-p", str(args.prompt_tokens),
                                       "-n", str(args.gen_tokens), "-t", t, "-r", str(args.repeats),
                                       "-o", "json"], env))
            pp = next(r for r in out if r["n_prompt"] > 0 and r["n_gen"] == 0)
            tg = next(r for r in out if r["n_gen"] > 0 and r["n_prompt"] == 0)
            versions["llama.cpp"] = f"build {pp.get('build_commit', '?')} ({pp.get('build_number', '?')}), " \
                                    f"{pp.get('backends', '?')}"
            add("llama.cpp (llama-bench)", pp["samples_ts"], tg["samples_ts"])
        if args.torch_python:
            out = last_json_line(run_json(
                [args.torch_python, os.path.join(ROOT, "bench", "transformers_generate_baseline.py"), args.model]
                + ["--prompt-tokens", str(args.prompt_tokens), "--gen-tokens", str(args.gen_tokens),
                   "--repeats", str(args.torch_repeats), "--clamp", args.clamp, "--threads", t], env))
            versions["transformers"] = f"transformers {out['transformers']}, torch {out['torch']}, float32"
            for s in out["setups"]:
                add(f"transformers, {s['name']}", s["pp_runs"], s["tg_runs"])

    med = {name: (statistics.median(r["pp"]), statistics.median(r["tg"]), len(r["pp"])) for name, r in runs.items()}
    llama = med.get("llama.cpp (llama-bench)")
    torch_plain = next((v for k, v in med.items() if k.startswith("transformers, no hooks")), None)
    torch_clamp = next((v for k, v in med.items() if k.startswith("transformers, clamp")), None)

    print(f"{args.model}: pp{args.prompt_tokens} and tg{args.gen_tokens}, {args.threads} threads, "
          f"median of {args.rounds} rounds x {args.repeats} runs")
    for name, version in versions.items():
        print(f"  {name}: {version}")
    head = f"{'':48} {'pp tok/s':>9} {'tg tok/s':>9}"
    if llama:
        head += f" {'pp/llama':>9} {'tg/llama':>9}"
    if torch_plain:
        head += f" {'pp/torch':>9} {'tg/torch':>9}"
    print(head)
    for name, (pp, tg, _) in med.items():
        line = f"{name:48} {pp:9.1f} {tg:9.1f}"
        if llama:
            line += f" {pp / llama[0]:9.2f} {tg / llama[1]:9.2f}"
        if torch_plain:
            # Clamped rows against transformers with the same clamp.
            ref = torch_clamp if ("clamp" in name and torch_clamp) else torch_plain
            line += f" {pp / ref[0]:9.1f} {tg / ref[1]:9.1f}"
        print(line)


if __name__ == "__main__":
    main()
