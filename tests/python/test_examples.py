"""The scripts in examples/ run and produce what they say (on a few layers,
to keep the suite fast)."""

import os
import subprocess
import sys
from pathlib import Path

import neuronlens as nl
from conftest import ROOT

EXAMPLES = Path(os.environ.get("NEURONLENS_ROOT", ROOT)) / "examples"


def run(*args):
    return subprocess.run([sys.executable, *map(str, args)], check=True, capture_output=True, text=True).stdout


def test_find_and_clamp_dog(model_path):
    out = run(EXAMPLES / "find_and_clamp_dog.py", model_path, "--layers", "20-22", "--tokens", 12)
    assert "without a clamp:" in out and "clamped to 20.0" in out
    before, after = (float(x) for x in out.rsplit(":", 1)[1].split("->"))
    assert 0 <= before <= 1 and 0 <= after <= 1


def test_compare_atlases_plot(model_path, tmp_path):
    png = tmp_path / "agreement.png"
    out = run(EXAMPLES / "compare_atlases.py", model_path, "--layers", "0-1", "-o", png)
    assert f"wrote {png}" in out and "top1_same" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_the_readme_example_runs(model_path, tmp_path):
    readme = (Path(os.environ.get("NEURONLENS_ROOT", ROOT)) / "README.md").read_text()
    section = readme.split("## Python", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    code = code.replace('"models/SmolLM2-135M-Instruct.Q4_1.gguf"', repr(str(model_path)))
    corpus = Path(os.environ.get("NEURONLENS_ROOT", ROOT)) / "data" / "corpus" / "mini.jsonl"
    code = code.replace('"data/corpus/mini.jsonl"', repr(str(corpus)))
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, capture_output=True,
                         text=True).stdout
    assert "top1_same" in out and "neuron" in out and (tmp_path / "atlas.db").exists()
    assert nl.Atlas(tmp_path / "atlas.db").record_info["tokens_recorded"] > 4000
