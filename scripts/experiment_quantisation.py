"""Quantisation as a fine-tune of its own (issue 19): how many neurons keep
their top token when the default model's weights are written again as
float32, Q8_0 and Q4_0?

Makes the copies with scripts/requantize_model.py (cached under
models/requant/), maps the original and every copy in one
`neuronlens map --jobs` run (under mpirun when --ranks > 1), compares each
copy with the original (`neuronlens compare --json`) and prints the share
of neurons whose top-1 token is unchanged, per kind and per layer, and
writes a plot of it by layer (SVG). A type with "-layers" appended
(q4_0-layers) re-quantises the layers' weights only, the token embedding
and LM head kept byte for byte: the neurons move, the decoder does not.
The float32 copy holds the original's
exact values, so it must agree 100% everywhere: the check that the pipeline
itself moves nothing.

usage: .venv/bin/python scripts/experiment_quantisation.py [--model M] [--types f32,q8_0,q4_0]
       [--cli build/neuronlens] [--out-dir models/requant] [--plot docs/quantisation-top1.svg] [--ranks 1]
"""
import argparse
import json
import os
import subprocess
import sys

KINDS = ("up", "gate", "down")
COLOURS = {"f32": "#888888", "q8_0": "#1f77b4", "q4_0": "#d62728", "q4_0-layers": "#ff7f0e", "q8_0-layers": "#17becf",
           "f16": "#2ca02c", "q4_1": "#9467bd"}
DASHES = {"up": "", "gate": "6,3", "down": "2,2"}


def run(cmd, **kw):
    print("+", " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, check=True, **kw)


def map_and_compare(cli, jobs, names, jobs_file, launcher=()):
    """Maps every (model, atlas) of `jobs` in one `neuronlens map --jobs` run
    and compares each atlas after the first with the first: {name: compare
    JSON}, names in the order of jobs[1:]."""
    with open(jobs_file, "w") as f:
        f.writelines(f'"{model}" "{atlas}"\n' for model, atlas in jobs)
    run(list(launcher) + [cli, "map", "--jobs", jobs_file, "--examples", ""], stdout=subprocess.DEVNULL)
    results = {}
    for name, (_, atlas) in zip(names, jobs[1:]):
        out = run([cli, "compare", jobs[0][1], atlas, "--json"], capture_output=True, text=True).stdout
        results[name] = json.loads(out)
    return results


def print_kind_table(results, label):
    """One row per result: the share of same top-1 tokens (and mean top-k
    overlap) per kind."""
    print(f"{label:>6}" + "".join(f"{k:>22}" for k in KINDS))
    for name, r in results.items():
        by_kind = {k["kind"]: k for k in r["kinds"]}
        print(f"{name!s:>6}" + "".join(
            f"{100 * by_kind[k]['top1_same']:12.1f}% ({100 * by_kind[k]['mean_topk_overlap']:4.1f}%)" for k in KINDS))


def share_axes(width, height, left, right, top, bottom, y_min, title, x_label, ticks):
    """An SVG chart's frame for shares from y_min to 100%: the title, a
    horizontal grid every 10%, and `ticks` ((x position, label) pairs) under
    the x axis. Returns the SVG lines so far and the share -> y function."""

    def y(share):
        return top + (height - top - bottom) * (1 - (share - y_min) / (1 - y_min))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           f'font-size="12"><rect width="100%" height="100%" fill="white"/>',
           f'<text x="{left}" y="20" font-size="14">{title}</text>']
    for i in range(int(round((1 - y_min) / 0.1)) + 1):
        share = y_min + 0.1 * i
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(share):.1f}" y2="{y(share):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{left - 8}" y="{y(share) + 4:.1f}" text-anchor="end">{100 * share:.0f}%</text>')
    for x, label in ticks:
        out.append(f'<text x="{x:.1f}" y="{height - bottom + 18}" text-anchor="middle">{label}</text>')
    out.append(f'<text x="{(left + width - right) / 2}" y="{height - 12}" text-anchor="middle">{x_label}</text>')
    return out, y


def plot(results, path, model_name, title="neurons keeping their top-1 token after re-quantisation, by layer"):
    """Same top-1 token (%) by layer: one line per (type, kind)."""
    width, height, left, right, top, bottom = 760, 420, 60, 150, 40, 50
    layers = max(r["layer"] for rows in results.values() for r in rows["layers"]) + 1
    lows = [r["top1_same"] for rows in results.values() for r in rows["layers"]]
    y_min = min(0.5, (min(lows) // 0.1) * 0.1)

    def x(layer):
        return left + (width - left - right) * layer / max(1, layers - 1)

    out, y = share_axes(width, height, left, right, top, bottom, y_min, f"{model_name}: {title}", "layer",
                        [(x(layer), layer) for layer in range(0, layers, max(1, layers // 10))])
    legend_y = top
    for type_name, rows in results.items():
        for kind in KINDS:
            pts = sorted((r["layer"], r["top1_same"]) for r in rows["layers"] if r["kind"] == kind)
            if not pts:
                continue
            colour = COLOURS.get(type_name, "#000")
            d = " ".join(f"{x(l):.1f},{y(s):.1f}" for l, s in pts)
            out.append(f'<polyline points="{d}" fill="none" stroke="{colour}" stroke-width="1.6" '
                       f'stroke-dasharray="{DASHES[kind]}"/>')
            lx = width - right + 12
            out.append(f'<line x1="{lx}" x2="{lx + 24}" y1="{legend_y}" y2="{legend_y}" stroke="{colour}" '
                       f'stroke-width="1.6" stroke-dasharray="{DASHES[kind]}"/>')
            out.append(f'<text x="{lx + 30}" y="{legend_y + 4}">{type_name} {kind}</text>')
            legend_y += 16
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    parser.add_argument("--types", default="f32,q8_0,q4_0")
    parser.add_argument("--cli", default="build/neuronlens")
    parser.add_argument("--out-dir", default="models/requant")
    parser.add_argument("--plot", default="")
    parser.add_argument("--ranks", type=int, default=1)
    parser.add_argument("--mpirun", default="mpirun")
    args = parser.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    os.makedirs(args.out_dir, exist_ok=True)
    stem = os.path.splitext(os.path.basename(args.model))[0]
    types = args.types.split(",")
    jobs = [(args.model, os.path.join(args.out_dir, stem + ".db"))]
    for type_name in types:
        copy = os.path.join(args.out_dir, f"{stem}.{type_name}.gguf")
        if not os.path.exists(copy):
            base_type = type_name.removesuffix("-layers")
            keep = ["--keep-embedding"] if type_name.endswith("-layers") else []
            run([sys.executable, os.path.join(here, "requantize_model.py"), args.model, copy + ".part", "--type",
                 base_type] + keep)
            os.replace(copy + ".part", copy)
        jobs.append((copy, os.path.join(args.out_dir, f"{stem}.{type_name}.db")))
    launcher = [args.mpirun, "-n", str(args.ranks)] if args.ranks > 1 else []
    results = map_and_compare(args.cli, jobs, types, os.path.join(args.out_dir, "jobs.txt"), launcher)
    print(f"{args.model}: neurons keeping their top-1 token (and mean top-k overlap) against the original")
    print_kind_table(results, "type")
    print("\nper layer, same top-1 (%):")
    print(f"{'layer':>5} " + " ".join(f"{t + ' ' + k:>11}" for t in results for k in KINDS))
    layers = sorted({row["layer"] for r in results.values() for row in r["layers"]})
    for layer in layers:
        cells = []
        for r in results.values():
            for k in KINDS:
                row = next(x for x in r["layers"] if x["layer"] == layer and x["kind"] == k)
                cells.append(f"{100 * row['top1_same']:11.1f}")
        print(f"{layer:5d} " + " ".join(cells))
    if args.plot:
        plot(results, args.plot, stem)
        print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()
