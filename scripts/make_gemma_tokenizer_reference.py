#!/usr/bin/env python3
"""Writes tests/fixtures/tokenizer/gemma3_reference.json: how llama.cpp
tokenizes a text set with Gemma 3's vocabulary (the 262,144-token
SentencePiece vocabulary of models/gemma-3-270m-q4_k_m.gguf, fetched by
scripts/fetch-multipart-model.sh gemma3-270m-q4_k_m), for
tests/unit/test_tokenizer_gemma.cpp.

The texts are those of the real-vocabulary test (the .inp texts of
scripts/fetch-vocabs.sh, read from models/vocabs/, and TEXTS of
scripts/make_real_vocab_reference.py, read from that file's source) and
Gemma-specific ones: chat turns (<start_of_turn>, <end_of_turn>), literal
control tokens, runs of spaces, newlines and tabs (Gemma's vocabulary has
user-defined tokens for runs of up to 31 of each), HTML tags (user-defined
too), emoji, CJK and characters with no token (byte fallback), digits.

For each text it records
  ids_special  llama.cpp tokenize(text, add_bos=False, special=True): control
               tokens written in the text are parsed as such
  ids_plain    the same with special=False: control tokens are plain text,
               user-defined tokens (whitespace runs, tags) still match
  decoded      llama.cpp detokenize(ids_special, special=True): the text
               itself, except that a literal '\u2581' comes back as a space
               (as in SentencePiece); the script stops on any other difference
The file also carries the vocabulary's facts the test checks (size, BOS,
EOS, add_space_prefix, add_bos).

Not a fixture generator (needs llama-cpp-python, which the build does not
have); run by hand and commit the output:
  python3 -m venv /tmp/llvenv
  CMAKE_ARGS="-DGGML_NATIVE=ON -DLLAMA_CURL=OFF" /tmp/llvenv/bin/pip install \\
      llama_cpp_python-0.3.36.tar.gz numpy   # the sdist, see bench/README.md
  scripts/fetch-multipart-model.sh gemma3-270m-q4_k_m
  /tmp/llvenv/bin/python scripts/make_gemma_tokenizer_reference.py
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import sys

import llama_cpp

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")

GEMMA_TEXTS = [
    # chat turns, as the chat template renders them
    "<start_of_turn>user\nHello!<end_of_turn>\n<start_of_turn>model\n",
    "<bos><start_of_turn>user\nYou are terse.\n\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n"
    "4<end_of_turn>\n<start_of_turn>user\nAnd 3+3?<end_of_turn>\n<start_of_turn>model\n",
    "<end_of_turn><end_of_turn>x<start_of_turn> model",
    "<start_of_turn <end_of_turn >start_of_turn> <start_of_turnX>",
    # literal control and user-defined tokens
    "<bos><eos><pad><unk><mask>",
    "<unused0> <unused12><unused123>text<unused6241>",
    "[multimodal]<start_of_image>image<end_of_image>",
    "a<bos>b <eos> c",
    # whitespace runs: user-defined tokens of 2..31 spaces, 1..31 newlines, 1..31 tabs
    " ",
    "  ",
    "a b  c   d    e     f",
    " " * 31 + "x" + " " * 32 + "y" + " " * 70,
    "\n",
    "\n\n\n",
    "x" + "\n" * 31 + "y" + "\n" * 40,
    "\t",
    "\t\tindented\n\t\t\tdeeper\n" + "\t" * 35 + "end",
    "a \t b\t \t\tc \n d\n \n  \n   ",
    "  \n\n  leading and trailing  \n\n  ",
    "line\r\nwindows\r\n\r\n  \r\n",
    "    def f(x):\n        return x\n\n\n    # done\n",
    # HTML-ish tags (many are user-defined tokens)
    "<table><thead><tr><th>a</th></tr></thead><tbody><tr><td>1</td><td>2</td></tr></tbody></table>",
    "<h1>Title</h1>\n<h2>Sub</h2>\n<p>Para <b>bold</b> <i>it</i></p><br/><hr>",
    "<div class=\"x\"><span>inside</span></div><ul><li>one</li><li>two</li></ul>",
    "<td><td></td></td><tr >< td>",
    # emoji, CJK, byte fallback
    "😀🤖🦙 🇩🇪 👩🏽‍💻",
    "中文字符测试，日本語のテキスト、한국어",
    "rare: 𓀀 𐌰 ꙮ \ue000 \U0010fffd \U0001fae8",
    "\u0000\u0001\u0002\u007f",
    "\u2581 literal lower one eighth block \u2581\u2581x",
    # digits (Gemma splits numbers into single digits)
    "1234567890 3.14159265358979 -0.001 1e10",
    "2024-12-31 23:59:59, 1,000,000, 0xDEADBEEF, ١٢٣ १२३ １２３",
    "",
]


def real_vocab_texts() -> list[str]:
    """TEXTS of make_real_vocab_reference.py, read from its source (that
    script needs `tokenizers` and `gguf`, which this venv lacks)."""
    path = os.path.join(HERE, "make_real_vocab_reference.py")
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "TEXTS" for t in node.targets):
            # Literals joined by + and *: evaluated with no names in scope.
            return eval(compile(ast.Expression(node.value), path, "eval"), {"__builtins__": {}})
    sys.exit(f"{path}: no TEXTS assignment")


def inp_texts(vocabs: str) -> list[str]:
    path = os.path.join(vocabs, "ggml-vocab-llama-spm.gguf.inp")  # every .inp file has the same texts
    with open(path, encoding="utf-8", newline="") as f:
        return f.read().split("\n__ggml_vocab_test__\n")[:-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "gemma-3-270m-q4_k_m.gguf"))
    parser.add_argument("--vocabs", default=os.path.join(ROOT, "models", "vocabs"))
    parser.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "tokenizer",
                                                       "gemma3_reference.json"))
    args = parser.parse_args()

    llm = llama_cpp.Llama(model_path=args.model, vocab_only=True, verbose=False)
    texts = []
    for text in inp_texts(args.vocabs) + real_vocab_texts() + GEMMA_TEXTS:
        if text not in texts:
            texts.append(text)

    cases = []
    for text in texts:
        data = text.encode("utf-8")
        ids_special = llm.tokenize(data, add_bos=False, special=True)
        ids_plain = llm.tokenize(data, add_bos=False, special=False)
        decoded = llm.detokenize(ids_special, special=True).decode("utf-8")
        if decoded != text.replace("\u2581", " "):
            sys.exit(f"llama.cpp does not round-trip {text!r}: got {decoded!r}")
        cases.append({"text": text, "ids_special": ids_special, "ids_plain": ids_plain, "decoded": decoded})

    vocab = llm._model.vocab
    header = {
        "generator": "scripts/make_gemma_tokenizer_reference.py",
        "llama_cpp_python": llama_cpp.__version__,
        "model": os.path.basename(args.model),
        "n_vocab": llm.n_vocab(),
        "bos": llm.token_bos(),
        "eos": llm.token_eos(),
        "add_bos": bool(llama_cpp.llama_vocab_get_add_bos(vocab)),
    }
    # One case per line, ASCII only, so a change shows as a readable diff.
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(json.dumps(header, ensure_ascii=True)[:-1] + ',"cases":[\n')
        f.write(",\n".join(json.dumps(c, ensure_ascii=True, separators=(",", ":")) for c in cases))
        f.write("\n]}\n")
    print(f"wrote {args.out}: {len(cases)} texts, "
          f"{sum(len(c['ids_special']) for c in cases)} tokens with special parsing")


if __name__ == "__main__":
    main()
