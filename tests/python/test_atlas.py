"""map, Atlas, find and compare, against the CLI's atlases and JSON."""

import signal

import numpy as np
import pytest

import neuronlens as nl
from conftest import LAYER


@pytest.fixture(scope="module")
def py_atlas(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("py") / "py.db"
    seen = []
    done = nl.map(model, path, layers=[LAYER], progress=lambda d, t: seen.append((d, t)))
    assert done["vectors_total"] == 3 * model.d_ffn and done["vectors_done"] == done["vectors_total"]
    assert seen[-1] == (3 * model.d_ffn, 3 * model.d_ffn) and all(a <= b for (a, _), (b, _) in zip(seen, seen[1:]))
    return path


def test_map_writes_the_atlas_the_cli_writes(py_atlas, cli_atlas, model):
    ours, theirs = nl.Atlas(py_atlas), nl.Atlas(cli_atlas)
    assert ours.settings == {**theirs.settings, "model_path": ours.settings["model_path"]}
    assert sorted(ours.layers_done()) == sorted(theirs.layers_done()) == [(k, LAYER) for k in ("down", "gate", "up")]
    a, b = ours.neurons(), theirs.neurons()
    assert len(a) == 3 * model.d_ffn
    assert a["top1_token"].tolist() == b["top1_token"].tolist()
    np.testing.assert_allclose(a["logsumexp"], b["logsumexp"], rtol=1e-12)


def test_a_bf16_map_keeps_the_exact_top_k_within_its_recorded_bound(model, tmp_path):
    # The bf16 method, emulated here so that it runs on any CPU (the same
    # sums as vdpbf16ps): same top-k ids and logits as the float32 atlas, and
    # every neuron's logsumexp within the two atlases' recorded bounds.
    path = tmp_path / "bf16.db"
    nl.map(model, path, kinds=["up"], layers=[LAYER], progress=False, backend="cpu-portable8-bf16emu")
    nl.map(model, tmp_path / "exact.db", kinds=["up"], layers=[LAYER], progress=False, precision="exact")
    bf16, exact = nl.Atlas(path), nl.Atlas(tmp_path / "exact.db")
    assert bf16.settings["precision"] == "bf16" and "bf16 operands" in bf16.settings["precision_bound"]
    assert exact.settings["precision"] == "exact"
    assert 0 < exact.settings["max_logsumexp_error"] < bf16.settings["max_logsumexp_error"]
    a, b = bf16.neurons(kind="up"), exact.neurons(kind="up")
    assert a["top1_token"].tolist() == b["top1_token"].tolist()
    gap = np.abs(a["logsumexp"].to_numpy() - b["logsumexp"].to_numpy())
    assert gap.max() <= bf16.settings["max_logsumexp_error"] + exact.settings["max_logsumexp_error"]
    for neuron in (0, 7, 500):
        ta, tb = bf16.top_tokens(LAYER, "up", neuron), exact.top_tokens(LAYER, "up", neuron)
        assert ta["token"].tolist() == tb["token"].tolist()
        np.testing.assert_array_equal(ta["logit"], tb["logit"])
    with pytest.raises(nl.Error, match="unknown decode backend"):
        nl.map(model, tmp_path / "x.db", layers=[LAYER], progress=False, backend="cpu-blas")
    with pytest.raises(nl.Error, match="unknown precision"):
        nl.map(model, tmp_path / "y.db", layers=[LAYER], progress=False, precision="fp8")


def test_a_second_map_resumes_and_does_nothing(model, py_atlas):
    done = nl.map(model, py_atlas, layers=[LAYER], progress=False)
    assert done == {"vectors_done": 0, "vectors_total": 0, "layers_skipped": 3}


def test_neurons_and_top_tokens_equal_show(cli_atlas, run_cli):
    atlas = nl.Atlas(cli_atlas)
    shown = run_cli("show", cli_atlas, f"{LAYER}:down:42", "--json")[0]
    top = atlas.top_tokens(LAYER, "down", 42)
    assert top["token"].tolist() == [t["id"] for t in shown["top_tokens"]]
    assert top["text"].tolist() == [t["text"] for t in shown["top_tokens"]]
    np.testing.assert_allclose(top["prob"], [t["prob"] for t in shown["top_tokens"]], rtol=1e-12)
    assert top["rank"].tolist() == list(range(1, len(top) + 1))
    assert top.attrs["entropy"] == pytest.approx(shown["entropy"], rel=1e-12)
    row = atlas.neurons(kind="down", layer=LAYER).set_index("neuron").loc[42]
    assert row["top1_token"] == shown["top_tokens"][0]["id"] and row["top1_text"] == shown["top_tokens"][0]["text"]
    assert row["top1_prob"] == pytest.approx(shown["top_tokens"][0]["prob"], rel=1e-12)
    assert list(atlas.neurons(kind="up").columns) == ["kind", "layer", "neuron", "logsumexp", "entropy", "top1_token",
                                                      "top1_text", "top1_prob"]


def _cli_hits(found):
    return [(n["kind"], n["layer"], n["neuron"]) for n in found["neurons"]]


def _hits(frame):
    return list(zip(frame["kind"], frame["layer"], frame["neuron"]))


@pytest.mark.parametrize("by", ["prob", "rank"])
def test_find_in_an_atlas_equals_the_cli(cli_atlas, run_cli, by):
    # One layer: find over the others would decode them from the weights.
    cli = run_cli("find", cli_atlas, "dog", "--by", by, "-n", 10, "--layers", LAYER, "--json")[0]
    frame = nl.find(str(cli_atlas), "dog", top=10, by=by, layers=[LAYER])
    assert _hits(frame) == _cli_hits(cli) and frame.attrs["exact"] is True
    np.testing.assert_allclose(frame["prob"], [n["prob"] for n in cli["neurons"]], rtol=1e-9)
    assert frame["rank"].tolist() == [n["rank"] for n in cli["neurons"]]
    assert frame.attrs["token_ids"] == [t["id"] for t in cli["tokens"]]


def test_find_in_a_model_equals_the_cli(model, model_path, run_cli):
    cli = run_cli("find", model_path, "California", "--layers", LAYER, "--kinds", "up,down", "--json")[0]
    frame = nl.find(model, "California", layers=[LAYER], kinds=("up", "down"), progress=False)
    assert _hits(frame) == _cli_hits(cli)
    np.testing.assert_allclose(frame["logit"], [n["logit"] for n in cli["neurons"]], rtol=1e-9)
    assert frame["top_tokens"][0] == [t["text"] for t in cli["neurons"][0]["top_tokens"]]


def test_find_without_the_weights_ranks_within_the_atlas(cli_atlas, run_cli, tmp_path):
    import shutil
    import sqlite3

    copy = tmp_path / "moved.db"
    shutil.copy(cli_atlas, copy)
    with sqlite3.connect(copy) as db:  # the recorded model path no longer exists
        db.execute("UPDATE meta SET value = '/nowhere/model.gguf' WHERE key = 'model_path'")
    cli = run_cli("find", copy, "dog", "--layers", LAYER, "--json")[0]
    frame = nl.find(copy, "dog", layers=[LAYER])
    assert frame.attrs["exact"] is False and frame.attrs["note"] == cli["note"] != ""
    assert _hits(frame) == _cli_hits(cli)


def test_compare_equals_the_cli(cli_atlas, cli_atlas_unnormed, run_cli):
    cli = run_cli("compare", cli_atlas, cli_atlas_unnormed, "--json")
    frame = nl.compare(cli_atlas, cli_atlas_unnormed)
    assert list(zip(frame["kind"], frame["layer"])) == [(l["kind"], l["layer"]) for l in cli["layers"]]
    np.testing.assert_allclose(frame["top1_same"], [l["top1_same"] for l in cli["layers"]], rtol=1e-12)
    np.testing.assert_allclose(frame["mean_overlap"], [l["mean_topk_overlap"] for l in cli["layers"]], rtol=1e-12)
    changed = frame.attrs["most_changed"]
    assert list(zip(changed["kind"], changed["layer"], changed["neuron"])) == [
        (n["kind"], n["layer"], n["neuron"]) for n in cli["most_changed"]]
    assert frame.attrs["kinds"]["neurons"].tolist() == [k["neurons"] for k in cli["kinds"]]


def test_ctrl_c_stops_a_map_that_then_resumes(model, tmp_path):
    path = tmp_path / "interrupted.db"
    calls = []

    def interrupt_after_the_first_layer(done, total):
        calls.append(done)
        if done > model.d_ffn:  # the second layer has begun: the first is written
            signal.raise_signal(signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        nl.map(model, path, kinds=("up", "down"), layers=[LAYER], progress=interrupt_after_the_first_layer)
    assert nl.Atlas(path).layers_done() == [("up", LAYER)]
    done = nl.map(model, path, kinds=("up", "down"), layers=[LAYER], progress=False)
    assert done["layers_skipped"] == 1 and done["vectors_done"] == model.d_ffn
    assert sorted(nl.Atlas(path).layers_done()) == [("down", LAYER), ("up", LAYER)]


@pytest.mark.parametrize("call, message", [
    (lambda m, p: nl.map(m, p, kinds=("sideways",)), "unknown neuron kind 'sideways'"),
    (lambda m, p: nl.map(m, p, layers=[30]), "layer 30 is out of range"),
    (lambda m, p: nl.map(m, p, top_k=0), "top_k must be 1 to 1000"),
    (lambda m, p: nl.find(m, "zzqqxxj-not-a-token", layers=[0], progress=False), "zzqqxxj-not-a-token"),
    (lambda m, p: nl.find(m, "dog", by="vibes", layers=[0]), "vibes"),
    (lambda m, p: nl.Atlas(p), "atlas.db"),
])
def test_bad_arguments_raise_error(model, tmp_path, call, message):
    with pytest.raises(nl.Error) as caught:
        call(model, tmp_path / "atlas.db")
    assert message in str(caught.value)


def test_top_tokens_of_an_unmapped_layer_raise_error(cli_atlas):
    with pytest.raises(nl.Error, match="is not mapped in this atlas"):
        nl.Atlas(cli_atlas).top_tokens(LAYER + 1, "up", 0)
    with pytest.raises(nl.Error, match="neuron 99999 is out of range"):
        nl.Atlas(cli_atlas).top_tokens(LAYER, "up", 99999)


def test_map_takes_head_circuits_as_the_cli_does(model, model_path, tmp_path, run_cli):
    path = tmp_path / "heads.db"
    done = nl.map(model, path, kinds=["ov", "qk"], layers=[LAYER], head_rank=2, progress=False, precision="exact")
    assert done["vectors_total"] == 2 * model.n_heads * 2 * 2 == done["vectors_done"]
    cli_path = tmp_path / "cli_heads.db"
    run_cli("map", model_path, "-o", cli_path, "--kinds", "ov,qk", "--layers", LAYER, "--head-rank", 2,
            "--precision", "exact", "--examples", "", as_json=False)
    ours = run_cli("show", path, f"{LAYER}:ov:3", f"{LAYER}:qk:1", "--json")
    theirs = run_cli("show", cli_path, f"{LAYER}:ov:3", f"{LAYER}:qk:1", "--json")
    assert ours == theirs and len(ours[0]["directions"]) == 2
    with pytest.raises(nl.Error, match="head rank 999 is outside"):
        nl.map(model, tmp_path / "z.db", kinds=["ov"], layers=[LAYER], head_rank=999, progress=False)
