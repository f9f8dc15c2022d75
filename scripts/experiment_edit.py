#!/usr/bin/env python3
"""Concept removal on a model, measured: `neuronlens edit --remove CONCEPT`
over a grid of methods (tars, zero), kinds (up rows, the paper's; gate rows;
down columns) and edit counts, each reporting the concept's mean probability
after concept prompts before and after, a control concept's after its own
prompts (is the removal specific?), and the KL divergence of the next-token
distributions on neutral text. Prints a Markdown table (the one in
docs/experiments.md).

usage: scripts/experiment_edit.py MODEL [--cli build/neuronlens] [--concept dog]
       [--prompt TEXT ...] [--neutral data/neutral/news.txt]

Everything is deterministic (no sampling): the same command gives the same
table on the same CPU kernels.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

DOG_PROMPTS = [
    "It's raining cats and",
    "The dog barked at the mailman. The",
    "He took his dog for a walk. The",
    "A Labrador is a breed of",
    "Wolves are the wild ancestors of domestic",
]
CAT_PROMPTS = [
    "The cat sat on the mat. The",
    "She fed her cat, and the",
    "Kittens grow up to become",
    "A Siamese is a breed of",
    "The mouse ran away from the hungry",
]
GRID = [  # (method, kinds, max edits)
    ("tars", "up", 1), ("tars", "up", 2), ("tars", "up", 4), ("zero", "up", 1), ("zero", "up", 4),
    ("tars", "gate", 1), ("tars", "down", 1), ("zero", "down", 1), ("tars", "up,gate,down", 4),
]


def add_concept_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments every concept-removal script takes: the model, the CLI,
    the concept and the prompts after which its probability is measured."""
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("model")
    parser.add_argument("--cli", default=os.path.join(here, "..", "build", "neuronlens"))
    parser.add_argument("--concept", default="dog")
    parser.add_argument("--prompt", action="append", help="concept prompt (repeatable; default: five dog prompts)")


def run_edit(cli: str, model: str, output: str, concept: str, method: str, kinds: str, max_edits: int,
             prompts: list, extra: list) -> dict:
    """`neuronlens edit ... --json` with p(concept) measured after each of
    `prompts`; `extra`: more arguments. Exits with the command's error."""
    cmd = [cli, "edit", model, "-o", output, "--remove", concept, "--method", method, "--kinds", kinds,
           "--max-edits", str(max_edits), "--json"] + extra
    for p in prompts:
        cmd += ["-p", p]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"{' '.join(cmd)}\nfailed: {run.stderr}")
    return json.loads(run.stdout)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_concept_arguments(parser)
    parser.add_argument("--control", default="cat", help="a concept the edit should leave alone")
    parser.add_argument("--control-prompt", action="append", help="its prompts (default: five cat prompts)")
    parser.add_argument("--neutral", default=os.path.join(here, "..", "data", "neutral", "news.txt"))
    args = parser.parse_args()
    prompts = args.prompt or DOG_PROMPTS
    control_prompts = args.control_prompt or CAT_PROMPTS
    print(f"| method | kinds | edits | vectors edited (cosine) | p({args.concept}) before | after | "
          f"p({args.control}) before | after | neutral KL mean | median | max |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for method, kinds, n in GRID:
            extra = ["--neutral", args.neutral, "--control", args.control]
            for p in control_prompts:
                extra += ["--control-prompt", p]
            r = run_edit(args.cli, args.model, os.path.join(tmp, "edited.gguf"), args.concept, method, kinds, n,
                         prompts, extra)
            before = sum(p["before"] for p in r["prompts"]) / len(r["prompts"])
            after = sum(p["after"] for p in r["prompts"]) / len(r["prompts"])
            edited = ", ".join(f"{t['kind']} {t['layer']}:{t['neuron']} ({t['cosine']:.3f})" for t in r["targets"])
            kl = r["neutral"]
            c_before = sum(p["before"] for p in r["control"]["prompts"]) / len(r["control"]["prompts"])
            c_after = sum(p["after"] for p in r["control"]["prompts"]) / len(r["control"]["prompts"])
            print(f"| {method} | {kinds} | {n} | {edited} | {before:.3f} | {after:.3f} | {c_before:.3f} | {c_after:.3f} | "
                  f"{kl['kl_mean']:.4f} | "
                  f"{kl['kl_median']:.5f} | {kl['kl_max']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
