"""neuronlens: read a language model's neurons straight from its weights.

A binding over neuronlens' C++ library (the same code as the ``neuronlens``
command): every feed-forward neuron decoded through the model's final norm
and LM head (Davies, arXiv 2501.02688), a forward pass with hooks, and the
neuron atlas.

    import neuronlens as nl
    m = nl.load("SmolLM2-135M-Instruct.Q4_1.gguf")      # GGUF file or Hugging Face folder
    d = m.decode("up", 16, neurons=[4031], top_k=10)     # d.token_ids, d.probs: numpy
    s = m.session()
    logits, cache = s.run_with_cache(m.tokenize("The dog"), points=["mlp_act"])
    print(s.generate("Tell me about your day", chat=True, clamp={(16, 4031): 8.0}))
    nl.map(m, "atlas.db", layers=[16])
    nl.find("atlas.db", "dog")                           # a pandas DataFrame

Errors from the library (a bad file, layer, kind or argument) raise
``neuronlens.Error``, a ``ValueError`` carrying the library's message.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable, Iterable, Optional, Sequence, Union

from . import _neuronlens as _core
from ._neuronlens import Decoding, Error, Model, Session

__version__: str = _core.__version__

__all__ = [
    "Atlas",
    "Decoding",
    "Error",
    "Model",
    "Session",
    "compare",
    "find",
    "load",
    "record",
    "map",
    "__version__",
]

PathLike = Union[str, "os.PathLike[str]"]
Progress = Union[bool, Callable[[int, int], None]]
KINDS = ("up", "gate", "down")


def load(path: PathLike) -> Model:
    """Loads a model: a GGUF file (any of the quantisations the CLI reads) or a
    Hugging Face folder (config.json, safetensors, tokenizer.json).

    The weights are memory-mapped, not copied. Raises neuronlens.Error with the
    library's message for a missing or malformed file or an unsupported
    architecture.
    """
    return Model(os.fspath(path))


class Atlas:
    """A neuron atlas (the SQLite file ``neuronlens map`` or ``nl.map`` writes),
    opened read-only.

    ``settings`` is what the map recorded (model, sha256, sizes, norm, top_k);
    ``neurons()`` and ``top_tokens()`` return pandas DataFrames.
    """

    def __init__(self, path: PathLike):
        """Opens the atlas at `path`; raises neuronlens.Error if it is not one."""
        self._atlas = _core._Atlas(os.fspath(path))

    @property
    def path(self) -> str:
        """The atlas file."""
        return self._atlas.path

    @property
    def settings(self) -> dict:
        """The model and decode settings the atlas was made with."""
        return self._atlas.settings

    def layers_done(self) -> list[tuple[str, int]]:
        """The (kind, layer) pairs the atlas holds."""
        return self._atlas.layers_done()

    def token_text(self, token_id: int) -> str:
        """The display text of a token of the model's vocabulary."""
        return self._atlas.token_text(token_id)

    def neurons(self, kind: Optional[str] = None, layer: Optional[int] = None):
        """Every mapped neuron (of one kind and/or layer), one row each: kind,
        layer, neuron, logsumexp, entropy (nats), top1_token, top1_text,
        top1_prob. A pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self._atlas.neuron_table(kind, layer))

    def top_tokens(self, layer: int, kind: str, neuron: int):
        """One neuron's stored top tokens, best first: rank, token, text,
        logit, prob (what ``neuronlens show ATLAS layer:kind:neuron``
        prints). The neuron's logsumexp and entropy are in ``.attrs``."""
        import pandas as pd

        table = self._atlas.top_token_table(layer, kind, neuron)
        frame = pd.DataFrame({k: table[k] for k in ("rank", "token", "text", "logit", "prob")})
        frame.attrs.update(layer=layer, kind=kind, neuron=neuron, logsumexp=table["logsumexp"],
                           entropy=table["entropy"])
        return frame

    @property
    def record_info(self) -> Optional[dict]:
        """The activation record the atlas holds (``record``): corpus files,
        seq_len, chunks done, tokens recorded, contexts, window,
        density_threshold; None without one."""
        return _core._record_info(self._atlas)

    def evidence(self, layer: int, neuron: int, contexts: Optional[int] = None) -> Optional[dict]:
        """A neuron's recorded evidence (``record``; the same for every kind):
        {"stats": {mean, std, max_abs, density}, "positive": [...],
        "negative": [...]}, each context {activation, chunk, offset, tokens:
        [{id, text, activation, fired}]}, strongest first; ``contexts`` caps
        the contexts per sign (None: all). None when the atlas has no record."""
        return _core._evidence(self._atlas, layer, neuron, -1 if contexts is None else contexts)

    def agreement(self, kind: str = "down"):
        """Per layer, how often the token after a neuron's top positive
        contexts is in its decode's top-k (``rate``) against ``chance``, the
        corpus frequency of those tokens; needs a record and ``kind`` mapped.
        A pandas DataFrame: layer, neurons, rate, chance, above_chance."""
        import pandas as pd

        return pd.DataFrame(_core._agreement(self._atlas, kind))

    def __repr__(self) -> str:
        s = self.settings
        return (f"<neuronlens.Atlas {self.path!r}: {s['model_name']!r}, "
                f"{len(self.layers_done())} (kind, layer) mapped, top {s['top_k']}>")


def map(model: Union[Model, PathLike], atlas: PathLike, kinds: Sequence[str] = KINDS,
        layers: Optional[Iterable[int]] = None, top_k: int = 20, norm: str = "final",
        read_norm: str = "none", progress: Progress = True, precision: str = "auto",
        backend: str = "", head_rank: int = 4) -> dict:
    """Decodes every neuron of the chosen kinds and layers (default: all) into
    the atlas at ``atlas``, as ``neuronlens map`` does, skipping what the atlas
    already holds. Returns {vectors_done, vectors_total, layers_skipped}.

    ``kinds`` may also name attention heads' circuits, "ov" and "qk": each
    head's top ``head_rank`` singular directions, both sides decoded, in the
    atlas's head tables (docs/atlas.md; read them with ``neuronlens show`` or
    SQL).

    ``precision``: "exact" (float32 bulk products), "bf16" (needs AVX512_BF16)
    or "auto" (bf16 where the CPU has it). Either way the top-k ids are those
    of the exact computation; ``Atlas.settings`` records the precision and
    the largest bounds on logsumexp and entropy (docs/precision.md).
    ``backend`` forces one decode backend by name (e.g. "cpu-avx2-bf16emu").

    ``progress``: True shows a bar on a terminal (nothing when stderr is not
    one), False nothing, or a function ``fn(done, total)``. Ctrl-C stops the
    map between two layers' writes: the atlas keeps what was finished, and the
    same call resumes it.
    """
    m = model if isinstance(model, Model) else load(model)
    return _core._map(m, os.fspath(atlas), list(kinds), _layer_list(layers), top_k, norm, read_norm,
                      precision, backend, head_rank, _progress_callback(progress, "mapping", "vectors"))


def record(model: Union[Model, PathLike], corpus: Union[PathLike, Sequence[PathLike]], atlas: PathLike,
           seq_len: int = 256, max_tokens: int = 0, contexts: int = 20, window: int = 16,
           density_threshold: float = 0.1, progress: Progress = True) -> dict:
    """Runs the model over a text corpus (plain text files, or .jsonl with a
    "text" field) and keeps every FFN neuron's top ``contexts`` activations of
    each sign, with ``window`` tokens either side, and its statistics, in the
    atlas at ``atlas`` (created if absent), as ``neuronlens record`` does;
    resumes an interrupted record. Read it back with ``Atlas.evidence``.
    Returns {chunks_done, chunks_total, tokens_done, chunks_skipped}."""
    m = model if isinstance(model, Model) else load(model)
    files = [os.fspath(corpus)] if isinstance(corpus, (str, os.PathLike)) else [os.fspath(c) for c in corpus]
    return _core._record(m, os.fspath(atlas), files, seq_len, max_tokens, contexts, window, density_threshold,
                         _progress_callback(progress, "recording", "chunks"))


def find(source: Union[Model, Atlas, PathLike], concept: str, top: int = 10, by: str = "prob",
         kinds: Sequence[str] = KINDS, layers: Optional[Iterable[int]] = None, exact: bool = False,
         show_top: int = 8, model: Optional[PathLike] = None, norm: str = "final", read_norm: str = "none",
         progress: Progress = True):
    """The neurons that most strongly stand for a concept ("dog"), ranked as
    ``neuronlens find`` ranks them: by ``by`` = "prob" (the probability the
    neuron's decode gives the concept's tokens), "logit" or "rank".

    ``source`` is an atlas (path or Atlas) or a model (path or Model). With
    the weights at hand (a model, or the atlas's own model file, or ``model``)
    the ranking is exact over every neuron; with an atlas alone it is within
    the stored top-k rows (``.attrs['exact']`` says which, ``.attrs['note']``
    why). A model is first mapped into memory (once per Model and settings).

    Returns a pandas DataFrame: kind, layer, neuron, prob, logit, rank,
    top_tokens, top_probs; the concept's tokens are in ``.attrs``.
    """
    import pandas as pd

    layer_list = _layer_list(layers)
    if isinstance(source, Model):
        result = _core._find_in_model(source, concept, list(kinds), layer_list, by, top, show_top, exact, norm,
                                      read_norm, _progress_callback(progress, "mapping", "vectors"))
    else:
        if not isinstance(source, Atlas) and not _is_sqlite(os.fspath(source)):
            return find(load(source), concept, top, by, kinds, layers, exact, show_top, None, norm, read_norm,
                        progress)
        atlas = source if isinstance(source, Atlas) else Atlas(source)
        result = _core._find_in_atlas(atlas._atlas, concept, list(kinds), layer_list, by, top, show_top, exact,
                                      os.fspath(model) if model is not None else "")
    frame = pd.DataFrame(result.pop("table"))
    frame.attrs.update(result)
    return frame


def compare(a: Union[Atlas, PathLike], b: Union[Atlas, PathLike], most_changed: int = 10):
    """Two atlases of the same shape (a base model and its fine-tune), neuron
    by neuron, as ``neuronlens compare`` does: a pandas DataFrame with one row
    per kind and layer mapped in both: kind, layer, neurons, top1_same (share
    of neurons with the same top-1 token), mean_overlap (mean top-k overlap).
    ``.attrs['kinds']`` has the totals per kind and ``.attrs['most_changed']``
    the neurons whose top-k changed most (DataFrames)."""
    import pandas as pd

    atlas_a = a if isinstance(a, Atlas) else Atlas(a)
    atlas_b = b if isinstance(b, Atlas) else Atlas(b)
    result = _core._compare(atlas_a._atlas, atlas_b._atlas, most_changed)
    frame = pd.DataFrame(result["layers"])
    frame.attrs["kinds"] = pd.DataFrame(result["kinds"])
    frame.attrs["most_changed"] = pd.DataFrame(result["most_changed"])
    return frame


def _layer_list(layers: Optional[Iterable[int]]) -> Optional[list[int]]:
    if layers is None:
        return None
    if isinstance(layers, int):
        return [layers]
    return [int(layer) for layer in layers]


def _is_sqlite(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except (IsADirectoryError, FileNotFoundError, PermissionError):
        return False


def _progress_callback(progress: Progress, label: str, unit: str) -> Optional[Callable[[int, int], None]]:
    if callable(progress):
        return progress
    if progress and sys.stderr.isatty():
        return _ProgressBar(label, unit)
    return None


class _ProgressBar:
    """A one-line bar with rate and ETA on stderr, redrawn at most 10 times a
    second; only made when stderr is a terminal."""

    def __init__(self, label: str, unit: str):
        self.label, self.unit = label, unit
        self.start = time.monotonic()
        self.last_draw = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.last_draw < 0.1:
            return
        self.last_draw = now
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        share = done / total if total else 1.0
        eta = (total - done) / rate if rate > 0 else 0.0
        width = 30
        filled = int(share * width)
        bar = "#" * filled + "-" * (width - filled)
        sys.stderr.write(f"\r{self.label} [{bar}] {share:6.1%} {done}/{total} {self.unit} "
                         f"{rate:,.0f}/s ETA {int(eta) // 60}:{int(eta) % 60:02d} ")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()
