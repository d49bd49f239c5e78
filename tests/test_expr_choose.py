"""likelihood="auto": the likelihood chosen on a validation part of the training cells (issue 20,
item 2). Small generated data; seconds each."""

import json

import numpy as np
import pytest

import biovae.expr as ex
from biovae.cli import main
from biovae.engine.data import split_indices
from biovae.expr import choose
from tests.test_expr_kinds import _counts

QUICK = dict(epochs=4, patience=5, progress=False, seed=0)


def test_forest_auc_tells_different_cells_apart_and_not_alike_ones():
    rng = np.random.default_rng(0)
    a = rng.poisson(5.0, size=(60, 20)).astype(float)
    same = rng.poisson(5.0, size=(60, 20)).astype(float)
    other = rng.poisson(np.r_[np.full(10, 1.0), np.full(10, 12.0)], size=(60, 20)).astype(float)
    assert choose.realism_auc(a, same, "counts", 0) < 0.7
    assert choose.realism_auc(a, other, "counts", 0) > 0.95


def test_auto_fits_each_candidate_and_keeps_the_one_with_the_lowest_validation_loss():
    a = _counts(n=240, genes=15)
    model = ex.fit(a, labels="type", **QUICK)
    record = model.choice
    assert model.vae.train_config.validation_split == pytest.approx(0.1)
    assert record["validation_cells"] == len(split_indices(240, 0.1, 0)[1]) == 24
    names = [c["likelihood"] for c in record["candidates"]]
    assert names == [lik for lik, _ in choose.CANDIDATES["counts"]]
    losses = [c["validation_loss"] for c in record["candidates"]]
    assert record["chosen"] == names[int(np.argmin(losses))] == model.pre.likelihood
    # QUICK's 4 epochs are fewer than a probe's: each probe is the candidate's whole fit
    assert min(losses) == pytest.approx(model.vae.history[-1]["val_loss"], abs=1e-3)
    assert all(0.0 <= c["validation_rf_auc"] <= 1.0 for c in record["candidates"])
    again = ex.fit(a, labels="type", **QUICK)  # same seed, same choice and scores
    assert again.choice == record
    # an explicit likelihood is fitted alone
    plain = ex.fit(a, labels="type", likelihood="hurdle_cell", **QUICK)
    assert plain.choice is None and plain.pre.likelihood == "hurdle_cell"


def test_only_the_winner_is_trained_past_the_probe_and_it_equals_its_plain_fit(monkeypatch):
    """Each candidate is probed for PROBE_EPOCHS epochs; the winner goes on from its probe to the
    weights and history of a plain fit of it, the other stays at its probe."""
    monkeypatch.setattr(choose, "PROBE_EPOCHS", 3)
    a = _counts(n=240, genes=15)
    opts = dict(QUICK, epochs=9, patience=20)
    model = ex.fit(a, labels="type", **opts)
    record = model.choice
    assert record["probe_epochs"] == 3
    assert model.vae.train_config.checkpoint_dir is None  # the probes' temporary folder is not kept
    epochs = {c["likelihood"]: c["epochs"] for c in record["candidates"]}
    assert epochs[record["chosen"]] == 9 and sorted(epochs.values()) == [3, 9]
    plain = ex.fit(a, labels="type", likelihood=record["chosen"], **opts)
    assert [h["val_loss"] for h in plain.vae.history] == [h["val_loss"] for h in model.vae.history]
    for (k, v), w in zip(plain.vae.module.state_dict().items(), model.vae.module.state_dict().values()):
        assert np.array_equal(v.numpy(), w.numpy()), k
    for c in record["candidates"]:  # the loss each was chosen on: its own epoch 3
        fit = ex.fit(a, labels="type", likelihood=c["likelihood"], **opts)
        assert c["validation_loss"] == pytest.approx(fit.vae.history[2]["val_loss"], abs=1e-3)


def test_scores_read_only_the_validation_cells(monkeypatch):
    """The forest sees the validation part of the training cells and nothing else."""
    a = _counts(n=240, genes=15)
    seen = []
    real_auc = choose.realism_auc
    monkeypatch.setattr(choose, "realism_auc", lambda real, *args, **kw: seen.append(real.copy()) or real_auc(real, *args, **kw))
    ex.fit(a, **QUICK)
    val = split_indices(240, 0.1, 0)[1]
    assert len(seen) == 2 and all(np.array_equal(s, np.asarray(a.X[val], float)) for s in seen)


def test_too_few_validation_cells_fit_the_first_candidate_and_say_so():
    model = ex.fit(_counts(n=90), **QUICK)
    assert model.pre.likelihood == choose.CANDIDATES["counts"][0][0]
    assert model.choice["candidates"] == [] and "validation cells" in model.choice["note"]


def test_summary_and_summary_line_give_the_choice(tmp_path, capsys):
    path = tmp_path / "d.h5ad"
    _counts(n=240, genes=15).write_h5ad(path)
    assert main(["fit", str(path), "-o", str(tmp_path / "m"), "--epochs", "3", "--quiet"]) == 0
    summary = json.loads((tmp_path / "m" / "summary.json").read_text())
    choice = summary["likelihood_choice"]
    assert summary["likelihood"] == choice["chosen"] and len(choice["candidates"]) == 2
    out = capsys.readouterr().out
    assert "chosen by the loss of 24 validation cells: hurdle " in out
    assert ex.ExpressionModel.load(tmp_path / "m").choice == choice
