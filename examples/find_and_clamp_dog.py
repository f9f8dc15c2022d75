"""Find the dog neuron and make the model talk about dogs.

The paper's experiment (Davies, arXiv 2501.02688) in a dozen lines: rank
every neuron by how strongly its decoded distribution stands for " dog",
take the best up-projection neuron, and generate with it clamped.

    python examples/find_and_clamp_dog.py [MODEL] [--layers 10-20] [--value 20]
"""

import argparse

import numpy as np

import neuronlens as nl

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("model", nargs="?", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
parser.add_argument("--layers", default=None, help="first-last layers to search, e.g. 10-20 (default: all)")
parser.add_argument("--value", type=float, default=20.0, help="activation the neuron is clamped to")
parser.add_argument("--tokens", type=int, default=40)
args = parser.parse_args()

m = nl.load(args.model)
layers = None
if args.layers:
    first, last = (int(x) for x in args.layers.split("-"))
    layers = range(first, last + 1)

hits = nl.find(m, "dog", layers=layers, kinds=("up",))
print(hits[["kind", "layer", "neuron", "prob", "top_tokens"]].head(5).to_string(index=False))
layer, neuron = int(hits["layer"][0]), int(hits["neuron"][0])

prompt = "Tell me about your day."
s = m.session()
print(f"\nwithout a clamp:\n  {s.generate(prompt, chat=True, max_tokens=args.tokens)}")
clamped = s.generate(prompt, chat=True, max_tokens=args.tokens, clamp={(layer, neuron): args.value})
print(f"\nwith neuron {layer}:{neuron} clamped to {args.value}:\n  {clamped}")

# How much more likely " dog" is as the next token with the clamp, from the
# logits of the same prompt.
tokens = m.tokenize(prompt, chat=True)
dog = m.tokenize(" dog")[-1]


def clamp(acts, _layer, _position):
    acts[:, neuron] = args.value


plain = s.forward(tokens, last_only=True)[0]
steered = s.run_with_hooks(tokens, {("mlp_act", layer): clamp}, last_only=True)[0]


def softmax(logits):
    e = np.exp(logits.astype(np.float64) - logits.max())
    return e / e.sum()


print(f"\np(' dog' next): {softmax(plain)[dog]:.2e} -> {softmax(steered)[dog]:.2e}")
