"""record, Atlas.evidence, Atlas.record_info and Atlas.agreement against the
CLI's record of the same corpus and its `show --json`."""

import pytest

import neuronlens as nl
from conftest import ROOT

CORPUS = ROOT / "data" / "corpus" / "sentences.txt"
OPTIONS = dict(seq_len=64, max_tokens=600, contexts=5, window=3)


@pytest.fixture(scope="module")
def recorded(model, run_cli, tmp_path_factory):
    folder = tmp_path_factory.mktemp("record")
    py_path, cli_path = folder / "py.db", folder / "cli.db"
    seen = []
    done = nl.record(model, CORPUS, py_path, progress=lambda d, t: seen.append((d, t)), **OPTIONS)
    assert done["chunks_done"] == done["chunks_total"] == seen[-1][0] and done["chunks_skipped"] == 0
    run_cli("record", model.path, "--corpus", CORPUS, "-o", cli_path, "--seq-len", 64, "--max-tokens", 600,
            "--contexts", 5, "--window", 3, as_json=False)
    return py_path, cli_path


def test_the_record_equals_the_clis(recorded, run_cli):
    py_path, cli_path = recorded
    ours, theirs = nl.Atlas(py_path), nl.Atlas(cli_path)
    info = ours.record_info
    assert info == theirs.record_info
    assert info["files"][0]["name"] == "sentences.txt" and info["contexts"] == 5 and info["complete"]
    for layer, neuron in ((29, 808), (0, 0), (15, 1000)):
        e = ours.evidence(layer, neuron)
        assert e == theirs.evidence(layer, neuron)
        shown = run_cli("show", "--json", cli_path, f"{layer}:gate:{neuron}", "--contexts", 5)[0]["evidence"]
        assert e["stats"] == pytest.approx(shown["stats"], rel=1e-12)
        for sign in ("positive", "negative"):
            assert [(c["chunk"], c["offset"]) for c in e[sign]] == [(c["chunk"], c["offset"]) for c in shown[sign]]
            assert [[t["text"] for t in c["tokens"]] for c in e[sign]] == \
                [[t["text"] for t in c["tokens"]] for c in shown[sign]]
            assert all(sum(t["fired"] for t in c["tokens"]) == 1 for c in e[sign])
    assert len(ours.evidence(29, 808, contexts=2)["positive"]) == 2


def test_a_second_record_resumes_and_does_nothing(model, recorded):
    done = nl.record(model, [CORPUS], recorded[0], progress=False, **OPTIONS)
    assert done["tokens_done"] == 0 and done["chunks_skipped"] == done["chunks_total"]


def test_bad_input_raises_error(model, recorded, tmp_path):
    with pytest.raises(nl.Error, match="another corpus or other options") as e:
        nl.record(model, CORPUS, recorded[0], progress=False, **{**OPTIONS, "contexts": 6})
    assert e.value.kind == "bad_input"
    with pytest.raises(nl.Error, match="no such file"):
        nl.record(model, tmp_path / "missing.txt", tmp_path / "a.db", progress=False)
    # The agreement needs the down kind mapped beside the record.
    with pytest.raises(nl.Error, match="no layer of kind down"):
        nl.Atlas(recorded[0]).agreement()
    assert nl.Atlas(recorded[0]).evidence(0, 0) is not None


def test_agreement_once_down_is_mapped(model, recorded):
    nl.map(model, recorded[0], kinds=["down"], layers=[28, 29], progress=False)
    table = nl.Atlas(recorded[0]).agreement()
    assert table["layer"].tolist() == [28, 29]
    assert ((table["rate"] >= 0) & (table["rate"] <= 1) & (table["chance"] >= 0)).all()
