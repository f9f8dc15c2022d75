"""The paper's "how many neurons keep their top token after fine-tuning"
(75.4% of Llama 3.1 8B's up-projection neurons after instruct tuning), on a
fine-tune we can make: the default model fine-tuned on Python documentation
and code by scripts/finetune_model.py, compared with itself at every
checkpoint.

Writes the training text (the `docs:*` and `code:*` documents of
data/corpus/mini.jsonl, Python 3.11 docstrings and source), runs the
fine-tune unless its checkpoints exist (models/finetune/step-N.gguf, float32),
maps the base model and every checkpoint in one `neuronlens map --jobs` run,
compares each checkpoint with the base (`neuronlens compare --json`), and
prints the share of neurons whose top-1 token is unchanged per step, kind and
layer. Plots: that share against the training step, one line per kind
(--plot-steps), and by layer for each checkpoint's up neurons (--plot-layers).

usage: .venv/bin/python scripts/experiment_finetune.py [--model M] [--steps 200] [--save-at 0,25,50,100,200]
       [--torch-python .venv-torch/bin/python] [--cli build/neuronlens] [--out-dir models/finetune]
       [--plot-steps docs/finetune-top1-steps.svg] [--plot-layers docs/finetune-top1-layers.svg]
"""
import argparse
import json
import os

from experiment_quantisation import COLOURS, KINDS, map_and_compare, plot, print_kind_table, run, share_axes

COLOURS.update({"step 25": "#9ecae1", "step 50": "#4292c6", "step 100": "#2171b5", "step 200": "#08306b"})

KIND_COLOURS = {"up": "#1f77b4", "gate": "#2ca02c", "down": "#d62728"}


def write_training_text(corpus, path):
    with open(corpus) as f, open(path, "w") as out:
        for line in f:
            doc = json.loads(line)
            if doc["source"].split(":")[0] in ("docs", "code"):
                out.write(doc["text"].strip() + "\n\n")


def plot_steps(results, path, model_name):
    """Same top-1 token (%) against the training step, one line per kind."""
    width, height, left, right, top, bottom = 640, 380, 60, 110, 40, 50
    steps = sorted(results)
    y_min = min(0.5, min(k["top1_same"] for r in results.values() for k in r["kinds"]) // 0.1 * 0.1)

    def x(step):
        return left + (width - left - right) * step / max(1, steps[-1])

    out, y = share_axes(width, height, left, right, top, bottom, y_min,
                        f"{model_name}: neurons keeping their top-1 token while fine-tuning", "training step",
                        [(x(step), step) for step in steps])
    for i, kind in enumerate(KINDS):
        pts = [(s, next(k["top1_same"] for k in results[s]["kinds"] if k["kind"] == kind)) for s in steps]
        d = " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in pts)
        colour = KIND_COLOURS[kind]
        out.append(f'<polyline points="{d}" fill="none" stroke="{colour}" stroke-width="1.8"/>')
        out.extend(f'<circle cx="{x(s):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"/>' for s, v in pts)
        ly = top + 16 * i
        out.append(f'<line x1="{width - right + 12}" x2="{width - right + 36}" y1="{ly}" y2="{ly}" stroke="{colour}" '
                   f'stroke-width="1.8"/><text x="{width - right + 42}" y="{ly + 4}">{kind}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--save-at", default="0,25,50,100,200")
    parser.add_argument("--torch-python", default=".venv-torch/bin/python")
    parser.add_argument("--cli", default="build/neuronlens")
    parser.add_argument("--out-dir", default="models/finetune")
    parser.add_argument("--plot-steps", default="")
    parser.add_argument("--plot-layers", default="")
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    steps = sorted(int(s) for s in args.save_at.split(","))
    checkpoints = {s: os.path.join(args.out_dir, f"step-{s}.gguf") for s in steps}
    if not all(os.path.exists(p) for p in checkpoints.values()):
        text = os.path.join(args.out_dir, "pydocs.txt")
        write_training_text(os.path.join(here, "..", "data", "corpus", "mini.jsonl"), text)
        run([args.torch_python, os.path.join(here, "finetune_model.py"), args.model, text, args.out_dir, "--steps",
             str(args.steps), "--save-at", args.save_at, "--cli", args.cli, "--check"])
    stem = os.path.splitext(os.path.basename(args.model))[0]
    base_atlas = os.path.join(args.out_dir, stem + ".db")
    jobs = [(args.model, base_atlas)] + [(p, p.removesuffix(".gguf") + ".db") for p in checkpoints.values()]
    results = map_and_compare(args.cli, jobs, steps, os.path.join(args.out_dir, "jobs.txt"))
    print(f"{args.model} fine-tuned ({args.out_dir}): neurons keeping their top-1 token (mean top-k overlap)")
    print_kind_table(results, "step")
    print("\nper layer, same top-1 (%), last checkpoint:")
    last = results[steps[-1]]
    for layer in sorted({row["layer"] for row in last["layers"]}):
        cells = [next(x for x in last["layers"] if x["layer"] == layer and x["kind"] == k)["top1_same"] for k in KINDS]
        print(f"{layer:5d} " + " ".join(f"{k} {100 * c:5.1f}" for k, c in zip(KINDS, cells)))
    if args.plot_steps:
        plot_steps(results, args.plot_steps, stem)
        print(f"\nplot: {args.plot_steps}")
    if args.plot_layers:
        by_layer = {f"step {s}": {"layers": [r for r in results[s]["layers"] if r["kind"] == "up"]} for s in steps if s}
        plot(by_layer, args.plot_layers, stem, "up neurons keeping their top-1 token while fine-tuning, by layer")
        print(f"plot: {args.plot_layers}")


if __name__ == "__main__":
    main()
