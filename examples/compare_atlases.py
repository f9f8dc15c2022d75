"""Compare two atlases neuron by neuron and plot the agreement by layer.

A base model and its fine-tune are the usual pair (the paper: over 75% of
Llama 3.1 8B's up neurons keep their top token after instruct tuning).
Given two atlas files it compares them; given a model instead, it maps it
twice (decoded through the final norm and without it) to have a pair.

    python examples/compare_atlases.py A.db B.db -o agreement.png
    python examples/compare_atlases.py MODEL --layers 0-3 -o agreement.png
"""

import argparse
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

import neuronlens as nl  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("sources", nargs="+", help="two atlases, or one model")
parser.add_argument("--layers", default=None, help="first-last layers to map for a model, e.g. 0-3")
parser.add_argument("-o", "--output", default="agreement.png")
args = parser.parse_args()

if len(args.sources) == 2:
    a, b = args.sources
else:
    layers = None
    if args.layers:
        first, last = (int(x) for x in args.layers.split("-"))
        layers = range(first, last + 1)
    folder = Path(tempfile.mkdtemp())
    a, b = folder / "final.db", folder / "none.db"
    m = nl.load(args.sources[0])
    nl.map(m, a, layers=layers, norm="final")
    nl.map(m, b, layers=layers, norm="none")

agreement = nl.compare(a, b)
print(agreement.attrs["kinds"].to_string(index=False))

fig, ax = plt.subplots(figsize=(7, 4))
for kind, rows in agreement.groupby("kind", sort=False):
    ax.plot(rows["layer"], rows["top1_same"], marker="o", label=kind)
ax.set_xlabel("layer")
ax.xaxis.set_major_locator(MaxNLocator(integer=True))
ax.set_ylabel("share of neurons with the same top-1 token")
ax.set_ylim(0, 1)
ax.set_title(f"{Path(str(a)).name} vs {Path(str(b)).name}")
ax.legend()
fig.tight_layout()
fig.savefig(args.output, dpi=120)
print(f"wrote {args.output}")
