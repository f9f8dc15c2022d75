#!/usr/bin/env python3
"""Does llama.cpp load a `neuronlens edit` output, and does it see the same
removal? Writes an edited GGUF with `neuronlens edit --remove CONCEPT --json`,
then runs the source and the edited file through llama.cpp (its Python
binding over a libllama built from the llama-cpp-python 0.3.36 sdist) on the
same token ids, and prints the concept's probability after each prompt as
neuronlens and as llama.cpp compute it, before and after the edit.

Exit status 0 only when llama.cpp loads the edited file, its mean
p(concept) moves the same way as neuronlens's and by at least half as much
(an edit may raise the concept instead of removing it), and on the
edited file every probability is within --tolerance of neuronlens's. The
two runtimes disagree a little on the unedited file too (llama.cpp
quantises activations to 8 bits, see scripts/make_llamacpp_reference.py);
that disagreement is printed beside, as the scale of the tolerance.

Not part of the test suite (llama.cpp is not in the build); run by hand:
  cmake -S llama_cpp_python-0.3.36/vendor/llama.cpp -B /tmp/llamabuild -DCMAKE_BUILD_TYPE=Release \\
      -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DBUILD_SHARED_LIBS=ON -G Ninja
  cmake --build /tmp/llamabuild --target llama -j2
  /tmp/llvenv/bin/pip install numpy diskcache jinja2 typing-extensions
  /tmp/llvenv/bin/python scripts/check_edit_llamacpp.py MODEL \\
      --llama-lib /tmp/llamabuild/bin --llama-python llama_cpp_python-0.3.36
The token ids come from `neuronlens tokenize --ids`, so a difference in
tokenisation cannot hide in the comparison.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

from experiment_edit import DOG_PROMPTS, add_concept_arguments, run_edit


def neuronlens_ids(cli, model, text, chat):
    cmd = [cli, "tokenize", model, "-p", text, "--ids"] + (["--chat"] if chat else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [int(t) for t in out.split()]


def llama_concept_probs(Llama, path, prompts_ids, concept_ids, threads):
    """p(concept) = sum of softmax(last logits)[concept ids], float64, per prompt."""
    llm = Llama(model_path=path, n_ctx=512, n_threads=threads, n_threads_batch=threads, n_batch=512,
                logits_all=True, verbose=False, flash_attn=False,
                type_k=0, type_v=0)  # GGML_TYPE_F32: neuronlens's KV cache is float32
    probs = []
    for ids in prompts_ids:
        llm.reset()
        llm.eval(ids)
        logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float64)
        p = np.exp(logits - logits.max())
        p /= p.sum()
        probs.append(float(p[concept_ids].sum()))
    del llm
    return probs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_concept_arguments(parser)
    parser.add_argument("--method", default="tars")
    parser.add_argument("--kinds", default="up")
    parser.add_argument("--max-edits", type=int, default=1)
    parser.add_argument("--chat", action="store_true", help="wrap the prompts in the chat template")
    parser.add_argument("--tolerance", type=float, default=0.1, help="largest |p_neuronlens - p_llama.cpp| allowed")
    parser.add_argument("--llama-lib", required=True, help="folder with libllama.so and libggml*.so")
    parser.add_argument("--llama-python", required=True, help="the llama-cpp-python source folder (holds llama_cpp/)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep", help="also write the edited GGUF here")
    args = parser.parse_args()

    os.environ["LLAMA_CPP_LIB_PATH"] = args.llama_lib
    sys.path.insert(0, args.llama_python)
    import llama_cpp  # noqa: E402 (needs the two lines above)

    # Weight repacking off, as in make_llamacpp_reference.py: with it a row's
    # logits depend on the batch it is evaluated in. Llama() has no argument
    # for it, so the default-params function it calls is wrapped.
    default_params = llama_cpp.llama_cpp.llama_model_default_params

    def params_without_repacking():
        params = default_params()
        params.use_extra_bufts = False
        return params

    llama_cpp.llama_cpp.llama_model_default_params = params_without_repacking
    Llama = llama_cpp.Llama

    prompts = args.prompt or DOG_PROMPTS
    with tempfile.TemporaryDirectory() as tmp:
        edited = args.keep or os.path.join(tmp, "edited.gguf")
        r = run_edit(args.cli, args.model, edited, args.concept, args.method, args.kinds, args.max_edits, prompts,
                     ["--chat"] if args.chat else [])
        concept_ids = r["concept"]["ids"]
        ids = [neuronlens_ids(args.cli, args.model, p, args.chat) for p in prompts]
        before = llama_concept_probs(Llama, args.model, ids, concept_ids, args.threads)
        after = llama_concept_probs(Llama, edited, ids, concept_ids, args.threads)

    edits = ", ".join(f"{e['kind']} {e['layer']}:{e['neuron']}" for e in r["edits"])
    tensors = ", ".join(f"{t['name']} {t['from']}->{t['to']}" for t in r["tensors"])
    print(f"model {args.model}\nedit: {args.method} {edits}; tensors {tensors}")
    print(f"concept '{args.concept}': {len(concept_ids)} token ids\n")
    print("| prompt | neuronlens before | llama.cpp before | neuronlens after | llama.cpp after |")
    print("|---|---|---|---|---|")
    for p, row, b, a in zip(prompts, r["prompts"], before, after):
        print(f"| {p} | {row['before']:.4f} | {b:.4f} | {row['after']:.4f} | {a:.4f} |")
    nl_b = float(np.mean([x["before"] for x in r["prompts"]]))
    nl_a = float(np.mean([x["after"] for x in r["prompts"]]))
    ll_b, ll_a = float(np.mean(before)), float(np.mean(after))
    print(f"| mean | {nl_b:.4f} | {ll_b:.4f} | {nl_a:.4f} | {ll_a:.4f} |")
    # The source model's disagreement is the two runtimes' own noise; the
    # edited file should not disagree by more than the tolerance either.
    noise = max(abs(x["before"] - b) for x, b in zip(r["prompts"], before))
    edited_gap = max(abs(x["after"] - a) for x, a in zip(r["prompts"], after))
    print(f"\nlargest |neuronlens - llama.cpp|: source {noise:.4f}, edited {edited_gap:.4f} "
          f"(tolerance {args.tolerance})")
    failures = []
    # The same change in both: the same sign and at least half the size
    # (an edit can raise the concept too; that is measured, not assumed).
    if not (ll_a - ll_b) * (nl_a - nl_b) > 0 or abs(ll_a - ll_b) < 0.5 * abs(nl_a - nl_b):
        failures.append(f"llama.cpp's mean p(concept) moved by {ll_a - ll_b:+.4f}, "
                        f"neuronlens's by {nl_a - nl_b:+.4f}")
    if edited_gap > args.tolerance:
        failures.append(f"on the edited file neuronlens and llama.cpp differ by {edited_gap:.4f} > {args.tolerance}")
    if failures:
        sys.exit("FAILED: " + "; ".join(failures))
    print(f"ok: llama.cpp loads the edited file and sees the same change of p(concept) "
          f"({ll_b:.4f} -> {ll_a:.4f}; neuronlens {nl_b:.4f} -> {nl_a:.4f})")


if __name__ == "__main__":
    main()
