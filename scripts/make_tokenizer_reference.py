#!/usr/bin/env python3
"""Writes tests/fixtures/tokenizer/smollm_reference.json: how Hugging Face
`tokenizers` encodes a varied text set with the default model's vocabulary
(SmolLM2-135M-Instruct) under three pre-tokenizers.

  smollm     SmolLM2's own pre_tokenizer: Digits(individual_digits) then
             ByteLevel with GPT-2's regex (llama.cpp "smollm" does the same)
  llama-bpe  Meta Llama 3's Split regex + ByteLevel(use_regex=false),
             ignore_merges (llama.cpp "llama-bpe")
  qwen2      Qwen2's NFC normalizer, Split regex + ByteLevel(use_regex=false)
             (llama.cpp "qwen2" has the same split but no NFC; we follow HF)

The tokenizer.json files are built by scripts/fixtures/gen_tokenizer_fixtures.py
(hf_tokenizer_json), the same code that writes the copies the C++ tests load.
"pieces" holds the pre-tokenizer's split alone (UTF-8 byte offsets).
"hf_sentencepiece" holds ids for gen_vocab_reference.py's tiny Llama-2-style
tokenizer.json (SentencePiece-style BPE by merge rank, byte fallback).
Control tokens (<|im_start|> ...) are added tokens marked special, so HF
matches them in the text (the C++ side: encode(text, parse_special=true)).

Not run by the test suite (it needs `tokenizers`, which CI does not have);
rerun by hand after changing the text set and commit the output:
  python3 -m venv /tmp/tokref && /tmp/tokref/bin/pip install tokenizers gguf numpy
  /tmp/tokref/bin/python scripts/make_tokenizer_reference.py --model models/SmolLM2-135M-Instruct.Q4_1.gguf
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import unicodedata

import tokenizers

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "fixtures"))
import gen_tokenizer_fixtures as fixtures  # noqa: E402
import gen_vocab_reference  # noqa: E402

# For the tiny Llama-2-style tokenizer.json of gen_vocab_reference.py
# (SentencePiece-style BPE merged by rank, byte fallback, Prepend('▁')).
SENTENCEPIECE_TEXTS = [
    "the thing", "  the", "x\u65e5\u672c", "\u20ac", "\n", "q", "ing the<s>in", "the</s>", "\u00e9t\u00e9",
    "    ", "",
]

TEXTS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure they'll say it's fine, but we've seen what'd happen; you're right.",
    "I'M SURE THEY'LL SAY IT'S FINE",
    "  leading spaces and trailing spaces   ",
    "tabs\tand\t\ttabs",
    "line one\nline two\n\nline four\r\nwindows line\n",
    "\n\n\n",
    "   \n   \n\t \t",
    "Café, naïve façade, crème brûlée, Ångström, Straße, Ωμέγα, Привет мир",
    "日本語のテキストと中文文本，还有한국어 텍스트。",
    "emoji: 😀👍🏽 family 👨‍👩‍👧‍👦 flag 🇫🇷 heart ❤️",
    "digits 0 12 345 6789 1234567890 3.14159 -42 1,000,000 ٣٤٥ ²³",
    "Version 2.0.1 released on 2024-11-27 at 10:30:00",
    "def add(a, b):\n    return a + b  # sum\n\nif __name__ == '__main__':\n\tprint(add(1, 2))\n",
    "for (int i = 0; i < n; ++i) { x[i] *= 2; }  // C++\n",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nHello! How can I help?<|im_end|>",
    "<|endoftext|><|endoftext|>text<|im_end|>",
    "not special: <|im_start and im_end|> <|unknown|>",
    "URLs: https://example.com/path?q=1&r=two#frag, email a.b@c.de",
    "Mixed   multiple    spaces\u00a0non-breaking\u2003em-space\u3000ideographic",
    "punctuation!!! ??? ... --- *** ((())) [[]] {{}} \"quoted\" 'single'",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "",
    " ",
    "a",
    "\u0000\u0001 control \u007f chars",
    "combining e\u0301 vs \u00e9, zero\u200bwidth",
    "#include <vector>\n$var @user .method() _private ::std (int)x \"quoted\" 'tick",
    "HE'S THEY'RE WE'VE I'D SHE'LL It'S",
    "end of line.  \n\tnext  \r\n\r\n  \n",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="SmolLM2-135M-Instruct GGUF")
    parser.add_argument("--out", default=os.path.join(HERE, "..", "tests", "fixtures", "tokenizer",
                                                       "smollm_reference.json"))
    args = parser.parse_args()
    tokens, types, merges = fixtures.read_model_vocab(args.model)
    reference = {"generator": "scripts/make_tokenizer_reference.py",
                 "tokenizers_version": tokenizers.__version__,
                 "texts": TEXTS, "ids": {}, "pieces": {}}
    for variant in fixtures.VARIANTS:
        document = fixtures.hf_tokenizer_json(tokens, types, merges, variant)
        tokenizer = tokenizers.Tokenizer.from_str(json.dumps(document))
        ids = [tokenizer.encode(text, add_special_tokens=False).ids for text in TEXTS]
        for text, row in zip(TEXTS, ids):
            # qwen2 normalizes to NFC first, so it decodes to the NFC text.
            expected = unicodedata.normalize("NFC", text) if variant == "qwen2" else text
            assert tokenizer.decode(row, skip_special_tokens=False) == expected, (variant, text)
        reference["ids"][variant] = ids
        # The pre-tokenizer alone, on the raw text (no added-token split):
        # piece boundaries as UTF-8 byte offsets [begin, end).
        splits = []
        for text in TEXTS:
            byte_offset = [len(text[:i].encode("utf-8")) for i in range(len(text) + 1)]
            pieces = tokenizer.pre_tokenizer.pre_tokenize_str(text)
            splits.append([[byte_offset[b], byte_offset[e]] for _, (b, e) in pieces])
        reference["pieces"][variant] = splits
    document, _, _ = gen_vocab_reference.sentencepiece_tokenizer()
    tokenizer = tokenizers.Tokenizer.from_str(json.dumps(document))
    reference["hf_sentencepiece"] = {
        "texts": SENTENCEPIECE_TEXTS,
        "ids": [tokenizer.encode(text, add_special_tokens=False).ids for text in SENTENCEPIECE_TEXTS]}
    write_reference(args.out, reference)
    print(f"wrote {args.out}: {len(TEXTS)} texts x {len(fixtures.VARIANTS)} variants")


def write_reference(path: str, reference: dict) -> None:
    """One line of ASCII JSON (small diffs stay readable in git)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(reference, f, ensure_ascii=True, indent=None, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
