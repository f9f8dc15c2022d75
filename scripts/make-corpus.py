#!/usr/bin/env python3
"""Builds the small corpus that `neuronlens record` is tested and shown with.

data/corpus/mini.jsonl: one JSON object per line, {"text": ..., "source": ...},
about 300 KB of varied English text, code and numbers, from sources whose
licences allow shipping them:

  sentences  data/corpus/sentences.txt, written for this project (dogs, cats,
             the sea, cities, food, music, sport, science, daily life), in
             documents of eight sentences, shuffled with a fixed seed;
  docs       docstrings of Python standard-library modules, classes and
             functions (English prose about programming; Python Software
             Foundation License);
  code       source of small Python standard-library modules, in pieces of
             about 1,500 characters (same licence);
  numbers    arithmetic, dates, measurements and tables made up here from a
             seeded random generator.

The output depends on the Python that runs this (its standard library's
text), so it is generated once and committed; the file's sha256 is in
data/corpus/README.md. Usage: scripts/make-corpus.py [--out data/corpus/mini.jsonl]
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import inspect
import json
import os
import random

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DOC_MODULES = ["textwrap", "json", "collections", "argparse", "datetime", "random", "statistics", "fractions",
               "decimal", "pathlib", "calendar", "difflib", "heapq", "bisect", "string", "shutil", "csv",
               "functools", "itertools", "enum", "dataclasses", "zipfile", "tarfile", "logging", "unittest",
               "sqlite3", "urllib.parse", "http.client", "email.message", "threading", "queue", "contextlib"]
CODE_MODULES = ["textwrap", "bisect", "heapq", "colorsys", "fnmatch", "glob", "shlex", "graphlib", "this"]


def sentence_documents(rng: random.Random) -> list[dict]:
    with open(os.path.join(ROOT, "data", "corpus", "sentences.txt"), encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip()]
    docs = []
    for _ in range(3):  # three shuffles: each sentence in three different contexts
        order = lines[:]
        rng.shuffle(order)
        for i in range(0, len(order), 8):
            docs.append({"text": " ".join(order[i:i + 8]), "source": "sentences"})
    return docs


def docstring_documents() -> list[dict]:
    docs, seen = [], set()
    for name in DOC_MODULES:
        module = importlib.import_module(name)
        objects = [module] + [getattr(module, attr) for attr in sorted(dir(module)) if not attr.startswith("_")]
        for obj in objects:
            if not (inspect.ismodule(obj) or inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            doc = inspect.getdoc(obj)
            if not doc or len(doc) < 300 or doc in seen:
                continue
            seen.add(doc)
            docs.append({"text": doc, "source": f"docs:{name}.{getattr(obj, '__name__', '')}"})
    return docs


def code_documents() -> list[dict]:
    docs = []
    for name in CODE_MODULES:
        path = importlib.util.find_spec(name).origin
        with open(path, encoding="utf-8") as f:
            source = f.read()
        piece = ""
        for line in source.splitlines(keepends=True):
            piece += line
            if len(piece) > 1500 and line.strip() == "":
                docs.append({"text": piece, "source": f"code:{name}"})
                piece = ""
        if piece.strip():
            docs.append({"text": piece, "source": f"code:{name}"})
    return docs


def number_documents(rng: random.Random, count: int) -> list[dict]:
    docs = []
    units = [("kilometres", "km"), ("kilograms", "kg"), ("litres", "l"), ("metres", "m")]
    for _ in range(count):
        lines = []
        for _ in range(6):
            kind = rng.randrange(5)
            a, b = rng.randrange(2, 1000), rng.randrange(2, 100)
            if kind == 0:
                lines.append(f"{a} + {b} = {a + b}, and {a} - {b} = {a - b}.")
            elif kind == 1:
                lines.append(f"{a} times {b} is {a * b}; {a * b} divided by {b} is {a}.")
            elif kind == 2:
                day = datetime.date(1900, 1, 1) + datetime.timedelta(days=rng.randrange(50000))
                lines.append(f"On {day.strftime('%d %B %Y')} ({day.isoformat()}) it was a {day.strftime('%A')}.")
            elif kind == 3:
                long_name, short = units[rng.randrange(len(units))]
                x = round(rng.uniform(0.5, 500), 2)
                lines.append(f"The measured value was {x} {short} ({x} {long_name}), within 0.5% of the target.")
            else:
                row = [rng.randrange(100) for _ in range(5)]
                lines.append("| " + " | ".join(str(v) for v in row) + f" | total {sum(row)} |")
        docs.append({"text": "\n".join(lines), "source": "numbers"})
    return docs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "data", "corpus", "mini.jsonl"))
    args = parser.parse_args()
    rng = random.Random(20261207)
    docs = sentence_documents(rng) + docstring_documents() + code_documents() + number_documents(rng, 120)
    rng.shuffle(docs)
    with open(args.out, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    by_source: dict[str, int] = {}
    for d in docs:
        key = d["source"].split(":")[0]
        by_source[key] = by_source.get(key, 0) + len(d["text"].encode("utf-8"))
    print(f"{args.out}: {len(docs)} documents, {os.path.getsize(args.out)} bytes; text bytes by source: {by_source}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
