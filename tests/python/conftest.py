"""Fixtures of the Python package's tests: the default model, the CLI built
from the same checkout (the reference every binding is checked against),
and atlases the CLI maps once per run.

NEURONLENS_CLI names the CLI (default: build/neuronlens); NEURONLENS_MODEL
the model (default: the one scripts/fetch-model.sh fetches). Without the
model the tests skip, unless NEURONLENS_REQUIRE_MODEL=1 (CI), when they fail.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODEL = Path(os.environ.get("NEURONLENS_MODEL", ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"))
CLI = Path(os.environ.get("NEURONLENS_CLI", ROOT / "build" / "neuronlens"))
# The layer the atlas tests map: one layer keeps the suite fast.
LAYER = 3


def _require(path: Path, what: str) -> None:
    if path.exists():
        return
    message = f"{what} not found at {path}"
    if os.environ.get("NEURONLENS_REQUIRE_MODEL") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def model_path() -> Path:
    _require(MODEL, "the default model (scripts/fetch-model.sh)")
    return MODEL


@pytest.fixture(scope="session")
def cli() -> Path:
    _require(CLI, "the neuronlens CLI (cmake --build build)")
    return CLI


@pytest.fixture(scope="session")
def run_cli(cli):
    """Runs the CLI and returns its stdout (parsed JSON with as_json)."""

    def run(*args, as_json=True):
        out = subprocess.run([str(cli), *map(str, args)], check=True, capture_output=True, text=True).stdout
        return json.loads(out) if as_json else out

    return run


@pytest.fixture(scope="session")
def model(model_path):
    import neuronlens as nl

    return nl.load(model_path)


@pytest.fixture(scope="session")
def cli_atlas(tmp_path_factory, run_cli, model_path) -> Path:
    """Layer LAYER, all three kinds, mapped by the CLI."""
    path = tmp_path_factory.mktemp("atlas") / "cli.db"
    run_cli("map", model_path, "-o", path, "--layers", LAYER, as_json=False)
    return path


@pytest.fixture(scope="session")
def cli_atlas_unnormed(tmp_path_factory, run_cli, model_path) -> Path:
    """The same layer decoded without the final norm: a second atlas of the
    same shape, for compare."""
    path = tmp_path_factory.mktemp("atlas") / "cli_none.db"
    run_cli("map", model_path, "-o", path, "--layers", LAYER, "--norm", "none", as_json=False)
    return path
