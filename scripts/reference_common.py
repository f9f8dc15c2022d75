"""What the scripts that write reference fixtures share (imported by them from
this folder; not a test or an entry point): the model file's hash recorded
beside each fixture, and a float64 softmax of float32 logits."""
from __future__ import annotations

import hashlib
import json
import os

import numpy as np


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def softmax64(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in float64."""
    x = np.asarray(logits).astype(np.float64)
    x -= x.max(axis=-1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=-1, keepdims=True)
    return x


def write_fixture(out_path: str, doc: dict) -> None:
    """The fixture as indented JSON with a final newline, and a line saying so."""
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {out_path} ({os.path.getsize(out_path)} bytes)")
