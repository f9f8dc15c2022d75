"""Model: sizes, the tokenizer, neuron vectors and their decode, against the
CLI and against gguf-py with a float64 NumPy decode."""

import time

import numpy as np
import pytest

import neuronlens as nl
from conftest import LAYER
from reference import GgufReference


@pytest.fixture(scope="module")
def gguf_ref(model_path):
    return GgufReference(model_path)


def test_sizes_are_those_info_reports(model, model_path, run_cli):
    info = run_cli("info", model_path, "--json")
    assert model.architecture == info["architecture"]
    assert (model.n_layers, model.d_model, model.d_ffn) == (info["layers"], info["hidden_size"], info["ffn_size"])
    assert (model.n_heads, model.n_kv_heads, model.head_dim) == (info["heads"], info["kv_heads"], info["head_dim"])
    assert model.vocab_size == info["vocab_size"]
    assert model.context_length == info["context_length"]


def test_tokenize_gives_the_tokens_the_cli_runs(model, model_path, run_cli):
    prompt = "The dog chased the ball across the garden."
    lens = run_cli("lens", model_path, "-p", prompt, "--top", 1, "--json")
    ids = model.tokenize(prompt)
    assert [model.token_text(i) for i in ids] == [p["token"] for p in lens["positions"]]
    assert model.detokenize(ids) == prompt
    chat = model.tokenize(prompt, chat=True)
    assert len(chat) > len(ids) and model.detokenize(chat).count(prompt) == 1


@pytest.mark.parametrize("kind", ["up", "gate", "down"])
def test_vectors_equal_gguf_py_dequantisation(model, gguf_ref, kind):
    vectors = model.vectors(kind, LAYER)
    assert vectors.shape == (model.d_ffn, model.d_model) and vectors.dtype == np.float32
    np.testing.assert_array_equal(vectors, gguf_ref.neuron_vectors(kind, LAYER))


@pytest.mark.parametrize("kind", ["up", "down"])
def test_decode_equals_a_float64_numpy_decode(model, gguf_ref, kind):
    neurons = [0, 5, 777, model.d_ffn - 1]
    d = model.decode(kind, LAYER, neurons=neurons, top_k=10, precision="exact")
    ids, probs, lse = gguf_ref.decode(gguf_ref.neuron_vectors(kind, LAYER)[neurons], 10)
    assert d.token_ids.shape == (4, 10) and d.token_ids.dtype == np.int32
    np.testing.assert_array_equal(d.token_ids, ids)
    np.testing.assert_allclose(d.probs, probs, atol=1e-6)
    np.testing.assert_allclose(d.logsumexp, lse, atol=1e-5)
    np.testing.assert_array_equal(d.neurons, neurons)
    np.testing.assert_allclose(np.exp(d.logits - d.logsumexp[:, None]), d.probs, rtol=1e-12)
    assert d.token_texts[0][0] == model.token_text(int(ids[0, 0]))


def test_decode_precisions(model, gguf_ref):
    """bf16 where the CPU has the units: the exact ids and logits, logsumexp
    within its bound; elsewhere a clear error. auto is one of the two."""
    neurons = [3, 808]
    ids, _, lse = gguf_ref.decode(gguf_ref.neuron_vectors("up", LAYER)[neurons], 10)
    try:
        b = model.decode("up", LAYER, neurons=neurons, top_k=10, precision="bf16")
    except nl.Error as e:
        assert "bf16 dot-product units" in str(e) and e.kind == "bad_input"
        automatic = model.decode("up", LAYER, neurons=neurons, top_k=10)
        np.testing.assert_allclose(automatic.logsumexp, lse, atol=1e-5)
    else:
        np.testing.assert_array_equal(b.token_ids, ids)
        np.testing.assert_allclose(b.logsumexp, lse, atol=0.05)  # the default model's bf16 bounds reach 0.8
    with pytest.raises(nl.Error, match="expected auto, exact or bf16"):
        model.decode("up", LAYER, neurons=neurons, precision="fp16")


def test_decode_equals_show(model, cli_atlas, run_cli):
    shown = run_cli("show", cli_atlas, f"{LAYER}:gate:808", f"{LAYER}:gate:9", "--json")
    d = model.decode("gate", LAYER, neurons=[808, 9], top_k=20)
    for row, neuron in enumerate(shown):
        assert [t["id"] for t in neuron["top_tokens"]] == d.token_ids[row].tolist()
        np.testing.assert_allclose([t["prob"] for t in neuron["top_tokens"]], d.probs[row], atol=1e-6)
        assert neuron["entropy"] == pytest.approx(d.entropy[row], abs=1e-5)


def test_decode_of_the_whole_layer(model):
    d = model.decode("up", LAYER, top_k=3)
    assert len(d) == model.d_ffn and d.token_ids.shape == (model.d_ffn, 3)
    assert np.all(np.diff(d.probs, axis=1) <= 0)


def test_arrays_are_views_of_the_decoding(model):
    d = model.decode("up", LAYER, neurons=[1], top_k=4)
    probs = d.probs
    del d  # the array keeps its owner alive
    assert probs.shape == (1, 4) and not probs.flags.owndata and np.isfinite(probs).all()


@pytest.mark.parametrize("call, message", [
    (lambda m: m.decode("sideways", 1), "unknown neuron kind 'sideways'"),
    (lambda m: m.decode("up", 30), "layer 30 is out of range (the model has layers 0 to 29)"),
    (lambda m: m.decode("up", 1, neurons=[1536]), "neuron 1536 is out of range"),
    (lambda m: m.decode("up", 1, top_k=0), "top_k must be 1 to 1000"),
    (lambda m: m.decode("up", 1, norm="l2"), "l2"),
    (lambda m: m.vectors("up", -1), "layer -1 is out of range"),
    (lambda m: m.token_text(10**7), "10000000"),
])
def test_bad_arguments_raise_the_library_error(model, call, message):
    with pytest.raises(nl.Error, match=None) as caught:
        call(model)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert caught.value.kind == "bad_input"


def test_a_bad_file_raises_error(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 12)
    with pytest.raises(nl.Error, match="bad.gguf") as caught:
        nl.load(bad)
    assert caught.value.kind == "bad_file"
    with pytest.raises(nl.Error, match="no such file") as caught:
        nl.load(tmp_path / "missing.gguf")
    assert caught.value.kind == "bad_file"


def test_version_is_the_cli_s_and_the_package_s(run_cli):
    from importlib.metadata import version

    assert run_cli("--version", as_json=False).split() == ["neuronlens", nl.__version__]
    assert version("neuronlens") == nl.__version__


def test_the_gil_is_released_during_a_forward_pass(model):
    """A Python thread keeps running while another runs the model: with the
    GIL held it would stall for the whole call."""
    import threading

    def count_for(seconds):
        n, end = 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            n += 1
        return n

    alone = count_for(0.2) / 0.2  # iterations per second with nothing else running
    tokens = model.tokenize("The dog chased the ball across the garden. " * 12)
    session = model.session()
    worker = threading.Thread(target=lambda: [session.forward(tokens) for _ in range(3)])
    start = time.perf_counter()
    worker.start()
    n = 0
    while worker.is_alive():
        n += 1
    elapsed = time.perf_counter() - start
    worker.join()
    assert elapsed > 0.2, "the forward passes were too short to tell"
    assert n / elapsed > 0.05 * alone


def test_every_public_name_has_a_docstring():
    missing = []
    for name in nl.__all__:
        if name.startswith("__"):
            continue
        obj = getattr(nl, name)
        if not (obj.__doc__ or "").strip():
            missing.append(name)
        if isinstance(obj, type):
            for member, value in vars(obj).items():
                if not member.startswith("_") and not (getattr(value, "__doc__", "") or "").strip():
                    missing.append(f"{name}.{member}")
    assert missing == []
