#!/usr/bin/env python3
"""Writes tests/fixtures/tokenizer/real_vocab_reference.json: how Hugging Face
`tokenizers` encodes an extra text set (Unicode, digits, whitespace runs,
code, emoji, special tokens) with the real vocabularies that
scripts/fetch-vocabs.sh puts into models/vocabs/ (llama.cpp's vocab-only
GGUF files: Llama 3, Qwen2, Llama 2, GPT-2, StarCoder).

Each GGUF's vocabulary is rebuilt as the tokenizer.json its model ships:

  llama-bpe  Meta Llama 3: Split(Llama 3 regex) + ByteLevel(use_regex=false),
             BPE with ignore_merges, no normalizer
  qwen2      Qwen2: NFC normalizer, Split(Qwen2 regex) + ByteLevel
  gpt-2      GPT-2: ByteLevel with its own regex
  starcoder  StarCoder: Digits(individual_digits) + ByteLevel
  llama-spm  Llama 2 (legacy LlamaTokenizerFast): Prepend('▁') + Replace(' ',
             '▁') normalizer, no pre-tokenizer, BPE with merges made from the
             SentencePiece scores as transformers' SpmConverter makes them,
             byte_fallback, fuse_unk

Before writing anything, each rebuilt tokenizer must reproduce llama.cpp's
.gguf.out references (ids from each model's real tokenizer.json) for every
text of the .gguf.inp file; otherwise the script stops. Control tokens are
added tokens marked special, so HF matches them in the text (the C++ side:
encode(text, parse_special=true)). "decoded" is HF's decode of those ids
(skip_special_tokens=False).

Not run by the test suite (it needs `tokenizers`); rerun by hand after
changing the text set and commit the output:
  scripts/fetch-vocabs.sh
  python3 -m venv /tmp/tokref && /tmp/tokref/bin/pip install tokenizers==0.23.3 gguf==0.19.0 numpy
  /tmp/tokref/bin/python scripts/make_real_vocab_reference.py
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import gguf
import tokenizers

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "fixtures"))
import gen_tokenizer_fixtures as fixtures  # noqa: E402
from make_tokenizer_reference import write_reference  # noqa: E402

SP_SPACE = "\u2581"
UNKNOWN, CONTROL, USER_DEFINED = 2, 3, 4

VOCABS = ["llama-bpe", "qwen2", "llama-spm", "gpt-2", "starcoder"]

# Special tokens written literally, per vocabulary.
SPECIAL_TEXTS = {
    "llama-bpe": ["<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>",
                  "a<|eot_id|>b <|reserved_special_token_5|> <|not_special|>"],
    "qwen2": ["<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>",
              "<|endoftext|>x <|im_end|> y<|fim_prefix|>z"],
    "llama-spm": ["<s>[INST] Hi there [/INST] Hello</s>", "a<s>b </s> c<unk>d", "  <s>  x"],
    "gpt-2": ["<|endoftext|>text<|endoftext|> more"],
    "starcoder": ["<fim_prefix>def f():<fim_suffix>\n<fim_middle>return 1<|endoftext|>"],
}

TEXTS = [
    # Unicode
    "Café, naïve façade, crème brûlée, Ångström, Straße, Ωμέγα, Привет мир",
    "日本語のテキストと中文文本，还有한국어 텍스트。",
    "עברית ועربية: مرحبا بالعالم, שלום עולם",
    "हिन्दी देवनागरी, ไทย ภาษา, ქართული, Ελληνικά, Tiếng Việt có dấu",
    "combining e\u0301 vs \u00e9, A\u030a vs \u00c5, \u1100\u1161 vs \uac00, zero\u200bwidth, soft\u00adhyphen",
    "math: ∑ᵢ xᵢ² ≤ ∞, ∀x∈ℝ, ½ ¾ ⅞, µ vs μ, ﬁ ligature, Ｆｕｌｌｗｉｄｔｈ",
    "\u0000\u0001 control \u007f chars \u0085 next-line \u2028 line-sep",
    # digits
    "digits 0 12 345 6789 1234567890 3.14159 -42 +7 1,000,000 1e-10 0x1F 0b1010",
    "٣٤٥ ١٢٣٤ ०१२३ ²³ ¹⁰ １２３４５ ⅫⅣ 𝟙𝟚𝟛",
    "phone +1 (555) 123-4567, date 2024-11-27T10:30:00Z, v2.0.1-rc3, 99.9%",
    "12345678901234567890123456789012345678901234567890",
    # whitespace runs
    "  leading spaces and trailing spaces   ",
    "tabs\tand\t\ttabs\t\t\t",
    "line one\nline two\n\nline four\r\nwindows line\r\n\r\n",
    "   \n   \n\t \t  \n\n\n\n     x",
    "Mixed   multiple    spaces\u00a0non-breaking\u2003em-space\u3000ideographic\u00a0\u00a0 x",
    " " * 17 + "a" + "\n" * 9 + "b" + "\t" * 5,
    "end of line.  \n\tnext  \r\n\r\n  \n",
    # code
    "def add(a, b):\n    return a + b  # sum\n\nif __name__ == '__main__':\n\tprint(add(1, 2))\n",
    "for (int i = 0; i < n; ++i) { x[i] *= 2; }  // C++\n#include <vector>\nstd::vector<int> v{1,2,3};\n",
    "{\"key\": [1, 2.5, null, true], \"nested\": {\"a\": \"b\\n\"}}",
    "SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%smith%';",
    "fn main() -> Result<(), Box<dyn Error>> { let x: &'static str = \"hi\"; Ok(()) }",
    "<div class=\"a\">&nbsp;&lt;tag&gt;</div>\n<!-- comment -->",
    "regex: ^(?:[a-z0-9!#$%&'*+/=?^_`{|}~-]+)@\\w+\\.com$  path C:\\Users\\me\\file.txt",
    "URLs: https://example.com/path?q=1&r=two#frag, email a.b@c.de",
    "    if x:\n        y = [i**2 for i in range(10)]\n    else:\n        pass\n",
    # emoji
    "emoji: 😀👍🏽 family 👨‍👩‍👧‍👦 flag 🇫🇷🇯🇵 heart ❤️ keycap 1️⃣ rainbow 🏳️‍🌈",
    "🦙🦙🦙 llama.cpp 🤗 transformers 🚀🚀 ✅✔️☑️",
    # apostrophes and case
    "I'm sure they'll say it's fine, but we've seen what'd happen; you're right.",
    "HE'S THEY'RE WE'VE I'D SHE'LL It'S DON'T can't ’curly’ quotes",
    "punctuation!!! ??? ... --- *** ((())) [[]] {{}} \"quoted\" 'single' «guillemets» „low”",
    # edge cases
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "a",
    "\u2581leading lower one eighth block \u2581\u2581 inside",
    "x" + "\u00e9" * 30 + " Ω" * 10,
]


def read_vocab(path: str) -> dict:
    reader = gguf.GGUFReader(path)

    def field(key: str):
        return reader.fields.get(key)

    def strings(key: str) -> list[str]:
        f = field(key)
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data] if f else []

    def numbers(key: str) -> list:
        f = field(key)
        return [f.parts[i][0].item() for i in f.data] if f else []

    model = bytes(field("tokenizer.ggml.model").parts[-1]).decode()
    pre_field = field("tokenizer.ggml.pre")
    return {"model": model, "pre": bytes(pre_field.parts[-1]).decode() if pre_field else "default",
            "tokens": strings("tokenizer.ggml.tokens"), "types": numbers("tokenizer.ggml.token_type"),
            "merges": strings("tokenizer.ggml.merges"), "scores": numbers("tokenizer.ggml.scores")}


def added_tokens(vocab: dict) -> list[dict]:
    return [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True}
            for i, (t, kind) in enumerate(zip(vocab["tokens"], vocab["types"])) if kind in (UNKNOWN, CONTROL, USER_DEFINED)]


def byte_level_document(vocab: dict, name: str) -> dict:
    if name in ("llama-bpe", "qwen2"):
        pre = fixtures.hf_pre_tokenizer(name)
    elif name == "starcoder":
        pre = fixtures.hf_pre_tokenizer("smollm")  # the same Digits + ByteLevel
    else:
        pre = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": added_tokens(vocab),
        "normalizer": {"type": "NFC"} if name == "qwen2" else None,
        "pre_tokenizer": pre,
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": name == "llama-bpe",
                  "vocab": {t: i for i, t in enumerate(vocab["tokens"])}, "merges": vocab["merges"]},
    }


def sentencepiece_merges(pieces: dict[str, int], scores: list[float]) -> list[list[str]]:
    # transformers' generate_merges (convert_slow_tokenizer.py): every split of
    # a piece into two pieces, ordered by the piece's score (highest first),
    # then by the ids of the two halves; the sort is stable.
    merges = []
    for piece, piece_id in pieces.items():
        local = []
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in pieces and right in pieces:
                local.append((left, right, scores[piece_id]))
        local.sort(key=lambda m: (pieces[m[0]], pieces[m[1]]))
        merges.extend(local)
    merges.sort(key=lambda m: m[2], reverse=True)
    return [[left, right] for left, right, _ in merges]


def sentencepiece_document(vocab: dict) -> dict:
    pieces = {t: i for i, t in enumerate(vocab["tokens"])}
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": added_tokens(vocab),
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": SP_SPACE},
            {"type": "Replace", "pattern": {"String": " "}, "content": SP_SPACE}]},
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": SP_SPACE}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": pieces, "merges": sentencepiece_merges(pieces, vocab["scores"])},
    }


def read_llama_cpp_cases(gguf_path: str) -> list[tuple[str, list[int]]]:
    with open(gguf_path + ".inp", encoding="utf-8", newline="") as f:
        texts = f.read().split("\n__ggml_vocab_test__\n")[:-1]
    with open(gguf_path + ".out", encoding="utf-8") as f:
        ids = [[int(x) for x in line.split()] for line in f.read().split("\n")[:-1]]
    assert len(texts) == len(ids), gguf_path
    return list(zip(texts, ids))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocabs", default=os.path.join(HERE, "..", "models", "vocabs"))
    parser.add_argument("--out", default=os.path.join(HERE, "..", "tests", "fixtures", "tokenizer",
                                                       "real_vocab_reference.json"))
    args = parser.parse_args()
    reference = {"generator": "scripts/make_real_vocab_reference.py",
                 "tokenizers_version": tokenizers.__version__, "vocabs": {}}
    for name in VOCABS:
        path = os.path.join(args.vocabs, f"ggml-vocab-{name}.gguf")
        vocab = read_vocab(path)
        document = sentencepiece_document(vocab) if vocab["model"] == "llama" else byte_level_document(vocab, name)
        tokenizer = tokenizers.Tokenizer.from_str(json.dumps(document))
        cases = read_llama_cpp_cases(path)
        for text, expected in cases:
            got = tokenizer.encode(text, add_special_tokens=False).ids
            if got != expected:
                sys.exit(f"{name}: rebuilt tokenizer disagrees with {path}.out on {text!r}:\n"
                         f"  got      {got}\n  expected {expected}")
        texts = TEXTS + SPECIAL_TEXTS[name]
        ids = [tokenizer.encode(text, add_special_tokens=False).ids for text in texts]
        decoded = [tokenizer.decode(row, skip_special_tokens=False) for row in ids]
        reference["vocabs"][name] = {"texts": texts, "ids": ids, "decoded": decoded}
        print(f"{name}: rebuilt tokenizer matches {len(cases)} llama.cpp references; "
              f"{len(texts)} texts, {sum(map(len, ids))} tokens")
    write_reference(args.out, reference)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
