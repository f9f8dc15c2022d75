"""`neuronlens edit`'s GGUF copy, read back by an independent reader (gguf-py;
a CTest, run with the fixture generators' Python): the copy has the source's
tensors, shapes and metadata; every tensor not edited has the source's bytes;
an ablated neuron's up row reads as zeros and a scaled one as the source row
times the factor (exact in F32); a tars edit's row has the source row's norm
and points away from the one it replaced; with the default model (Q4_1), a
scaled row is within half a quantisation step of the source row times the
factor, the step derived here from the block's range.

usage: test_edit_gguf.py --cli build/neuronlens --model tiny_llama.gguf [--default-model M.gguf]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import gguf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish  # noqa: E402



def tensors(path):
    return {t.name: t for t in gguf.GGUFReader(path).tensors}


def values(t):
    return gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64)


def metadata(path):
    reader = gguf.GGUFReader(path)
    return {name: [bytes(p) for p in f.parts] for name, f in reader.fields.items()}


def edit(cli, model, out, *args):
    run = subprocess.run([cli, "edit", model, "-o", out, "--json", *args], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"neuronlens edit failed ({run.returncode}): {run.stderr}")
    return json.loads(run.stdout)


def check_copy(src, out, edited_names):
    a, b = tensors(src), tensors(out)
    check(list(a) == list(b), "the copy has the source's tensors, in order")
    for name, t in a.items():
        u = b[name]
        check(list(t.shape) == list(u.shape), f"{name}: same shape")
        if name not in edited_names:
            check(t.tensor_type == u.tensor_type and bytes(t.data) == bytes(u.data), f"{name}: byte-identical")
    ma, mb = metadata(src), metadata(out)
    check(all(mb.get(k) == v for k, v in ma.items() if k != "neuronlens.edit" and not k.startswith("GGUF.")),
          "every source key written as it was")
    check("neuronlens.edit" in mb, "the edit is recorded in neuronlens.edit")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cli", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--default-model")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "edited.gguf")
        report = edit(args.cli, args.model, out, "--ablate", "1:7", "--scale", "0:11=2.5", "--remove", "the",
                      "--kinds", "gate", "--max-edits", "2")
        edited = {t["name"] for t in report["tensors"]}
        check(edited >= {"blk.0.ffn_up.weight", "blk.1.ffn_up.weight"}, f"the report names the edited tensors: {sorted(edited)}")
        check_copy(args.model, out, edited)
        a, b = tensors(args.model), tensors(out)
        up0, up1 = values(b["blk.0.ffn_up.weight"]), values(b["blk.1.ffn_up.weight"])
        check(np.all(up1[7] == 0), "ablated neuron 1:7: its up row reads as zeros")
        check(np.array_equal(up0[11], np.float32(2.5) * values(a["blk.0.ffn_up.weight"])[11].astype(np.float32)),
              "scaled neuron 0:11: its up row is the source row times 2.5, exactly (F32)")
        others = [r for r in range(up1.shape[0]) if r != 7]
        check(np.array_equal(up1[others], values(a["blk.1.ffn_up.weight"])[others]), "the other rows of blk.1.ffn_up are unchanged")
        for target in report["targets"]:
            name = f"blk.{target['layer']}.ffn_gate.weight"
            before, after = values(a[name])[target["neuron"]], values(b[name])[target["neuron"]]
            check(abs(np.linalg.norm(after) - np.linalg.norm(before)) < 1e-5 * np.linalg.norm(before),
                  f"tars gate {target['layer']}:{target['neuron']}: the new row keeps the old row's norm")
            cos = before @ after / (np.linalg.norm(before) * np.linalg.norm(after))
            check(abs(cos + target["cosine"]) < 1e-5, f"tars gate {target['layer']}:{target['neuron']}: cos(old, new) = -{target['cosine']:.4f}")

        if args.default_model and not os.path.exists(args.default_model):
            check(not os.environ.get("NEURONLENS_REQUIRE_MODEL"), f"default model present at {args.default_model}")
        elif args.default_model:
            out = os.path.join(tmp, "default.gguf")
            report = edit(args.cli, args.default_model, out, "--scale", "20:100=2")
            check_copy(args.default_model, out, {t["name"] for t in report["tensors"]})
            a, b = tensors(args.default_model), tensors(out)
            name = "blk.20.ffn_up.weight"
            want, got = 2.0 * values(a[name])[100], values(b[name])[100]
            blocks = want.reshape(-1, 32)
            step = (blocks.max(axis=1) - blocks.min(axis=1)) / 15.0  # Q4_1's step; finer types do better
            err = np.abs(got - want).reshape(-1, 32)
            check(bool(np.all(err <= 0.51 * step[:, None] + 1e-7)),
                  f"default model ({a[name].tensor_type.name}): scaled row within half a step of 2x the source row "
                  f"(worst {float((err / (step[:, None] + 1e-30)).max()):.3f} steps)")
    finish()


if __name__ == "__main__":
    main()
