"""Session: forward, run_with_cache, run_with_hooks and generate, against the
CLI's probe and generate, and against identities the block must satisfy."""

import numpy as np
import pytest

import neuronlens as nl
from conftest import LAYER
from reference import GgufReference

PROMPT = "The dog chased the ball"
NEURON = 7


def softmax(logits):
    z = logits.astype(np.float64)
    z = np.exp(z - z.max())
    return z / z.sum()


@pytest.fixture(scope="module")
def session(model):
    return model.session()


@pytest.fixture(scope="module")
def probe(model_path, run_cli):
    return run_cli("probe", model_path, "-p", PROMPT, "--tokens", " is", "--ablate", f"{LAYER}:{NEURON}",
                   "--show-neuron", f"{LAYER}:{NEURON}", "--json")


def test_forward_equals_probes_distribution(model, session, probe):
    logits = session.forward(model.tokenize(PROMPT))
    assert logits.shape == (probe["prompt_tokens"], model.vocab_size) and logits.dtype == np.float32
    p = softmax(logits[-1])
    for top in probe["top_without"]:
        assert p[top["id"]] == pytest.approx(top["p"], abs=1e-7)
    assert np.argsort(-p, kind="stable")[:10].tolist() == [t["id"] for t in probe["top_without"]]


def test_a_hook_zeroing_a_neuron_equals_ablate(model, session, probe):
    def zero(acts, layer, position):
        assert layer == LAYER and position == 0
        acts[:, NEURON] = 0

    logits = session.run_with_hooks(model.tokenize(PROMPT), {("mlp_act", LAYER): zero})
    p = softmax(logits[-1])
    for top in probe["top_with"]:
        assert p[top["id"]] == pytest.approx(top["p"], abs=1e-7)
    assert p[probe["tokens"][0]["id"]] == pytest.approx(probe["tokens"][0]["p_with"], abs=1e-7)
    # The hook is gone afterwards.
    after = softmax(session.forward(model.tokenize(PROMPT))[-1])
    assert after[probe["tokens"][0]["id"]] == pytest.approx(probe["tokens"][0]["p_without"], abs=1e-7)


def test_a_returned_array_replaces_the_activations(model, session):
    tokens = model.tokenize(PROMPT)
    zeroed = session.run_with_hooks(tokens, {("mlp_act", LAYER): lambda a, l, p: np.zeros_like(a)})
    in_place = session.run_with_hooks(tokens, {("mlp_act", LAYER): lambda a, l, p: a.fill(0)})
    np.testing.assert_array_equal(zeroed, in_place)
    assert np.abs(zeroed - session.forward(tokens)).max() > 1e-3


def test_cache_holds_what_probe_records(model, session, probe):
    _, cache = session.run_with_cache(model.tokenize(PROMPT), points=[("mlp_act", LAYER)])
    acts = cache[("mlp_act", LAYER)]
    assert acts.shape == (probe["prompt_tokens"], model.d_ffn)
    recorded = [a["activation"] for a in probe["neurons"][0]["activations"]]
    np.testing.assert_allclose(acts[:, NEURON], recorded, rtol=1e-6, atol=1e-7)


def test_cached_points_satisfy_the_block(model, model_path):
    # Float32 activations: the default rounds the Q4_1 products' inputs to 8
    # bits (as llama.cpp), so a product recomputed from a cached float input
    # would differ by that rounding, not by float32 order.
    session = model.session(weights="exact")
    tokens = model.tokenize(PROMPT)
    points = ["residual_in", "attn_out", "mlp_gate", "mlp_up", "mlp_act", "mlp_out", "residual_out", "final_norm"]
    logits, cache = session.run_with_cache(tokens, points=points)
    assert len(cache) == 7 * model.n_layers + 1
    g, u = cache[("mlp_gate", LAYER)], cache[("mlp_up", LAYER)]
    np.testing.assert_allclose(cache[("mlp_act", LAYER)], g / (1 + np.exp(-g)) * u, rtol=1e-5, atol=1e-6)
    x = cache[("residual_in", LAYER)] + cache[("attn_out", LAYER)] + cache[("mlp_out", LAYER)]
    np.testing.assert_allclose(cache[("residual_out", LAYER)], x, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(cache[("residual_out", LAYER)], cache[("residual_in", LAYER + 1)])
    w_u = GgufReference(model_path).lm_head().astype(np.float64)
    np.testing.assert_allclose(cache[("final_norm", model.n_layers)] @ w_u.T, logits, atol=2e-3)


def test_keep_cache_continues_the_sequence(model, session):
    tokens = model.tokenize(PROMPT)
    whole = session.forward(tokens)
    session.forward(tokens[:3])
    rest = session.forward(tokens[3:], keep_cache=True)
    assert session.position == len(tokens)
    np.testing.assert_allclose(rest, whole[3:], atol=1e-3)
    np.testing.assert_array_equal(session.forward(tokens, last_only=True), session.forward(tokens)[-1:])


def test_generate_with_a_clamp_equals_the_cli(model, session, model_path, run_cli):
    args = dict(max_tokens=24, chat=True, seed=1, temperature=0.7, clamp={(LAYER, NEURON): 12.0},
                ablate=[(LAYER, 8)])
    text = session.generate("Tell me about your day", **args)
    cli = run_cli("generate", model_path, "-p", "Tell me about your day", "--chat", "-n", 24, "--seed", 1,
                  "--temperature", 0.7, "--clamp", f"{LAYER}:{NEURON}=12", "--ablate", f"{LAYER}:8", as_json=False)
    assert text + "\n" == cli
    plain = session.generate("Tell me about your day", max_tokens=24, chat=True, seed=1, temperature=0.7)
    assert plain != text  # the clamp was applied for that call only ...
    assert plain + "\n" == run_cli("generate", model_path, "-p", "Tell me about your day", "--chat", "-n", 24,
                                   "--seed", 1, "--temperature", 0.7, as_json=False)  # ... and then removed


def test_generate_streams_and_stops(session):
    pieces = []
    text = session.generate("Tell me about dogs", max_tokens=20, on_token=lambda t: pieces.append(t) or len(pieces) < 3)
    assert len(pieces) == 3 and text == "".join(pieces)


def test_a_python_exception_in_a_hook_propagates(model, session):
    tokens = model.tokenize(PROMPT)
    before = session.forward(tokens)

    def broken(acts, layer, position):
        raise KeyError("from the hook")

    with pytest.raises(KeyError, match="from the hook"):
        session.run_with_hooks(tokens, {"mlp_act": broken})
    np.testing.assert_array_equal(session.forward(tokens), before)  # hook removed, session usable


@pytest.mark.parametrize("hooks, message", [
    ({("mlp_act", LAYER): lambda a, l, p: np.zeros((1, 1), np.float32)}, "returned an array of shape (1, 1)"),
    ({("mlp_act", LAYER): lambda a, l, p: "text"}, "expected None or a float array"),
    ({("mlp_act", 99): lambda a, l, p: None}, "layer 99 is out of range"),
    ({("mlp_sideways", 1): lambda a, l, p: None}, "unknown hook point 'mlp_sideways'"),
    ({("mlp_act", 1): 3}, "is not callable"),
])
def test_bad_hooks_raise_error(model, session, hooks, message):
    with pytest.raises(nl.Error) as caught:
        session.run_with_hooks(model.tokenize(PROMPT), hooks)
    assert message in str(caught.value)


@pytest.mark.parametrize("call, message", [
    (lambda s: s.forward([]), "no tokens given"),
    (lambda s: s.forward([10**6]), "outside the vocabulary"),
    (lambda s: s.generate("hi", clamp={(1, 10**6): 1.0}), "neuron 1000000 is out of range"),
    (lambda s: s.generate("hi", max_tokens=0), "max_tokens must be 1 to"),
    (lambda s: s.generate("hi", top_p=2.0), "top-p must be in (0, 1]"),
    (lambda s: s.run_with_cache([1], points=[("final_norm", 3)]), "final_norm comes after the last layer"),
])
def test_bad_session_arguments_raise_error(session, call, message):
    with pytest.raises(nl.Error) as caught:
        call(session)
    assert message in str(caught.value)


def test_bad_session_options_raise_error(model):
    with pytest.raises(nl.Error, match="weight format 'int3' is not one of"):
        model.session(weights="int3")


def test_attn_z_through_o_proj_is_attn_out(model, model_path):
    session = model.session(weights="exact")  # float32 activations, as above
    tokens = model.tokenize(PROMPT)
    _, cache = session.run_with_cache(tokens, points=[("attn_z", LAYER), ("attn_out", LAYER)])
    w_o = GgufReference(model_path).matrix(f"blk.{LAYER}.attn_output.weight").astype(np.float64)  # [d, heads * head_dim]
    z = cache[("attn_z", LAYER)]
    assert z.shape == (len(tokens), w_o.shape[1])
    np.testing.assert_allclose(z @ w_o.T, cache[("attn_out", LAYER)], rtol=1e-4, atol=1e-4)


def test_attention_pattern_is_causal_and_normalised(model, session):
    tokens = model.tokenize(PROMPT)
    session.forward(tokens[:2])
    _, cache = session.run_with_cache(tokens[2:], points=[("attn_pattern", LAYER)], keep_cache=True)
    pattern = cache[("attn_pattern", LAYER)]
    n = len(tokens)
    assert pattern.shape == (model.n_heads, n - 2, n) and pattern.dtype == np.float32
    np.testing.assert_allclose(pattern.sum(axis=-1), 1.0, atol=1e-5)
    for t in range(n - 2):
        assert (pattern[:, t, t + 3:] == 0).all()  # query at position t + 2 sees keys 0 .. t + 2
        assert (pattern[:, t, :t + 3] > 0).all()


def test_head_interventions_equal_the_cli_and_a_hook(model, session, model_path, run_cli):
    head_dim = model.d_model // model.n_heads
    probe = run_cli("probe", model_path, "-p", PROMPT, "--tokens", " is", "--ablate-head", f"{LAYER}:2", "--json")

    def zero_head_2(acts, layer, position):
        acts[:, 2 * head_dim:3 * head_dim] = 0

    p = softmax(session.run_with_hooks(model.tokenize(PROMPT), {("attn_z", LAYER): zero_head_2})[-1])
    assert p[probe["tokens"][0]["id"]] == pytest.approx(probe["tokens"][0]["p_with"], abs=1e-7)
    text = session.generate("Tell me about your day", max_tokens=16, chat=True, ablate_heads=[(LAYER, 2)],
                            scale_heads={(LAYER + 1, 0): 2.0})
    cli = run_cli("generate", model_path, "-p", "Tell me about your day", "--chat", "-n", 16, "--ablate-head",
                  f"{LAYER}:2", "--scale-head", f"{LAYER + 1}:0=2", as_json=False)
    assert text + "\n" == cli
    with pytest.raises(nl.Error, match="head 99 is out of range"):
        session.generate("hi", ablate_heads=[(LAYER, 99)])
