"""Independent references for the binding's tests: gguf-py's reading and
dequantisation of the model file, and the decode in float64 NumPy."""

import numpy as np


class GgufReference:
    """The model's tensors as gguf-py dequantises them, shapes outermost
    first (rows, columns) as the library describes them."""

    def __init__(self, path):
        import gguf

        self._gguf = gguf
        self.reader = gguf.GGUFReader(str(path))
        self.tensors = {t.name: t for t in self.reader.tensors}
        self.eps = float(self._field("llama.attention.layer_norm_rms_epsilon"))

    def _field(self, key):
        field = self.reader.fields[key]
        return field.parts[field.data[0]][0]

    def matrix(self, name) -> np.ndarray:
        """[rows, columns] float32 (a 1-D tensor: [n]). GGUF lists a shape
        innermost first."""
        t = self.tensors[name]
        values = np.asarray(self._gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
        return values.reshape([int(n) for n in reversed(t.shape)])

    def lm_head(self) -> np.ndarray:
        name = "output.weight" if "output.weight" in self.tensors else "token_embd.weight"
        return self.matrix(name)

    def neuron_vectors(self, kind, layer) -> np.ndarray:
        """[d_ffn, d_model]: up/gate rows, down columns as rows."""
        if kind == "down":
            return self.matrix(f"blk.{layer}.ffn_down.weight").T.copy()
        return self.matrix(f"blk.{layer}.ffn_{kind}.weight")

    def decode(self, vectors: np.ndarray, top_k: int):
        """The paper's decode in float64: p = softmax(W_U · (v / rms(v) * γ)).
        Returns (top ids [n, k], their probabilities [n, k], logsumexp [n])."""
        w_u = self.lm_head().astype(np.float64)
        gamma = self.matrix("output_norm.weight").astype(np.float64)
        v = vectors.astype(np.float64)
        normed = v / np.sqrt(np.mean(v * v, axis=1, keepdims=True) + self.eps) * gamma
        logits = normed @ w_u.T
        peak = logits.max(axis=1, keepdims=True)
        lse = (peak + np.log(np.exp(logits - peak).sum(axis=1, keepdims=True)))[:, 0]
        order = np.argsort(-logits, axis=1, kind="stable")[:, :top_k]
        probs = np.exp(np.take_along_axis(logits, order, axis=1) - lse[:, None])
        return order, probs, lse
