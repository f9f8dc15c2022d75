"""The generate benchmark's workload, shared by bench/run_generate_bench.py and
bench/transformers_generate_baseline.py (and mirrored in generate_bench.cpp):
its command-line options and its prompt."""
import os


def add_workload_arguments(ap, repeats=3):
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--gen-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=repeats, help="timed runs (after one warm-up)")
    ap.add_argument("--clamp", default="29:808=36", help="LAYER:NEURON=VALUE")


def prompt_ids(vocab_size, n):
    """Token ids 1 + (7919 t mod (V-1)): the content does not change the speed."""
    return [1 + (7919 * t) % (vocab_size - 1) for t in range(n)]
