"""Input kinds, generated values on the data's own support, scverse habits (issue 20).
Small generated data only; each bad input gives one message, exit 2 and no output."""

import json

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest

import biovae.expr as ex
from biovae.cli import main
from biovae.errors import BiovaeError
from biovae.expr import kinds

QUICK = dict(epochs=4, patience=5, progress=False, seed=0)


def _counts(n=90, genes=12, seed=0):
    rng = np.random.default_rng(seed)
    lib = rng.lognormal(6, 0.4, size=(n, 1))
    p = rng.dirichlet(np.ones(genes) * 0.5)
    x = rng.poisson(lib * p).astype(np.float32)
    obs = pd.DataFrame({"type": pd.Categorical(np.where(np.arange(n) % 3, "A", "B"), categories=["B", "A"]),
                        "run": np.where(np.arange(n) % 2, "r1", "r2")}, index=[f"c{i}" for i in range(n)])
    a = ad.AnnData(X=x, obs=obs)
    a.var_names = [f"g{j}" for j in range(genes)]
    return a


def _write(tmp_path, a, name):
    path = tmp_path / name
    a.write_h5ad(path)
    return path


def test_kinds_are_detected_from_the_values():
    a = _counts().X
    fpkm = a / a.sum(1, keepdims=True) * 1e6 / 3.7
    assert kinds.detect([a]) == "counts"
    assert kinds.detect([fpkm]) == "full_length"
    assert kinds.detect([np.log1p(fpkm / 100)]) == "log_normalised"
    assert kinds.detect([np.log1p(a) - 1.0]) == "scaled"
    with pytest.raises(BiovaeError, match="unknown input kind"):
        kinds.resolve("tpm", "counts", "d", [])


def test_counts_come_back_as_whole_counts_within_the_training_range():
    a = _counts()
    model = ex.fit(a, labels="type", **QUICK)
    assert (model.pre.kind, model.pre.transform, model.pre.integer) == ("counts", "normalize_log1p", True)
    x = model.generate(200, seed=1).X
    assert np.array_equal(x, np.round(x))
    assert (x <= a.X.max(0)).all()
    # the user's word wins over the detection
    forced = ex.fit(a, input_kind="full_length", **QUICK)
    assert (forced.pre.kind, forced.pre.transform, forced.pre.integer) == ("full_length", "log1p", False)


def test_full_length_values_stay_under_each_genes_training_maximum():
    a = _counts()
    a.X = (a.X / a.X.sum(1, keepdims=True) * 1e5 * 1.37).astype(np.float32)
    model = ex.fit(a, **QUICK)
    assert (model.pre.kind, model.pre.transform) == ("full_length", "log1p")
    x = model.generate(300, seed=2).X
    assert (x <= a.X.max(0) + 1e-3).all() and not np.array_equal(x, np.round(x))


def test_scaled_data_are_refused_naming_raw(tmp_path, capsys):
    a = _counts()
    a.raw = a.copy()
    a.X = (np.log1p(a.X) - np.log1p(a.X).mean(0)).astype(np.float32)
    path = _write(tmp_path, a, "scaled.h5ad")
    capsys.readouterr()
    assert main(["fit", str(path), "-o", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "negative" in err and ".raw" in err and "--layer raw" in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()
    assert main(["fit", str(path), "-o", str(tmp_path / "m"), "--layer", "raw", "--epochs", "2", "--quiet"]) == 0
    summary = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert (summary["input_kind"], summary["transform"]) == ("counts", "normalize_log1p")
    assert "counts (hurdle, normalize_log1p, calibrated)" in capsys.readouterr().out  # few cells: hurdle
    assert summary["calibrated"] is True


def test_batch_key_errors_and_generation_per_batch(tmp_path, capsys):
    a = _counts()
    path = _write(tmp_path, a, "d.h5ad")

    def fails(argv, message):
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
        assert not (tmp_path / "x").exists() and not (tmp_path / "g.h5ad").exists()

    fails(["fit", str(path), "-o", str(tmp_path / "x"), "--batch-key", "lane"], "batch column 'lane'")
    holes = a.copy()
    holes.obs["run"] = holes.obs["run"].astype(object)
    holes.obs.iloc[4, holes.obs.columns.get_loc("run")] = ""
    fails(["fit", str(_write(tmp_path, holes, "holes.h5ad")), "-o", str(tmp_path / "x"), "--batch-key", "run"],
          "empty or NaN")
    m = tmp_path / "m"
    assert main(["fit", str(path), "-o", str(m), "--labels", "type", "--batch-key", "run", "--epochs", "2",
                 "--quiet"]) == 0
    fails(["generate", str(m), "--batch", "r9", "-o", str(tmp_path / "g.h5ad")], "batch 'r9'")
    assert main(["generate", str(m), "--batch", "r1", "-n", "10", "-o", str(tmp_path / "g.h5ad")]) == 0
    gen = ad.read_h5ad(tmp_path / "g.h5ad")
    assert (gen.obs["run"] == "r1").all()
    # the label column keeps its name and categories, and scanpy colours come along
    assert list(gen.obs["type"].cat.categories) == ["B", "A"]
    model = ex.load(m)
    with pytest.raises(BiovaeError, match="batch 'r3'"):
        other = a.copy()
        other.obs["run"] = "r3"
        model.encode(other)


def test_label_colours_travel_to_generated_cells():
    a = _counts()
    a.uns["type_colors"] = ["#ff0000", "#0000ff"]
    gen = ex.fit(a, labels="type", **QUICK).generate(6, seed=0)
    assert list(gen.obs["type"].cat.categories) == ["B", "A"] and gen.uns["type_colors"] == ["#ff0000", "#0000ff"]


def test_encode_writes_the_latent_and_keeps_everything_else(tmp_path):
    a = _counts()
    a.obsm["X_umap"] = np.zeros((a.n_obs, 2), np.float32)
    a.uns["note"] = "kept"
    path = _write(tmp_path, a, "d.h5ad")
    assert main(["fit", str(path), "-o", str(tmp_path / "m"), "--labels", "type", "--epochs", "2", "--quiet"]) == 0
    assert main(["encode", str(tmp_path / "m"), str(path), "-o", str(tmp_path / "e.h5ad"), "--normalized"]) == 0
    e = ad.read_h5ad(tmp_path / "e.h5ad")
    assert e.obsm["X_biovae"].shape == (a.n_obs, 10) and "X_umap" in e.obsm and e.uns["note"] == "kept"
    assert np.array_equal(e.X, a.X) and list(e.obs["run"]) == list(a.obs["run"])
    norm = e.layers["biovae_normalized"]
    assert norm.shape == a.shape and (norm >= 0).all() and np.allclose(norm.sum(1), 1e4, rtol=0.5)


def test_loom_and_10x_h5_are_read_and_other_files_refused(tmp_path, capsys):
    from biovae.io.expression import read_expression

    a = _counts()
    a.write_loom(tmp_path / "d.loom")
    back = read_expression(tmp_path / "d.loom")
    assert back.shape == a.shape and np.array_equal(back.X.toarray(), a.X)
    h5 = tmp_path / "d.h5"  # Cell Ranger v3 layout: genes x cells CSC
    import scipy.sparse as sp

    m = sp.csc_matrix(a.X.T.astype(np.int32))
    with h5py.File(h5, "w") as f:
        g = f.create_group("matrix")
        g["data"], g["indices"], g["indptr"], g["shape"] = m.data, m.indices, m.indptr, np.array(m.shape)
        g["barcodes"] = np.array(a.obs_names, dtype="S")
        feat = g.create_group("features")
        feat["name"] = feat["id"] = np.array(a.var_names, dtype="S")
        feat["feature_type"] = np.array(["Gene Expression"] * a.n_vars, dtype="S")
        feat["genome"] = np.array(["x"] * a.n_vars, dtype="S")
    back = read_expression(h5)
    assert back.shape == a.shape and np.array_equal(back.X.toarray(), a.X)
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["values"] = np.arange(3)
    (tmp_path / "text.loom").write_text("not a loom file\n")
    for name in ("other.h5", "text.loom"):
        capsys.readouterr()
        assert main(["fit", str(tmp_path / name), "-o", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err
        assert name in err and "not a" in err and "Traceback" not in err, err
        assert not (tmp_path / "x").exists()
