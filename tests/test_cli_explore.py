"""`biovae interpolate | anomaly | traversal` on pbmc68k_reduced, and their one-line errors."""

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import biovae.expr as ex
from browser import check_report
from biovae.cli import main
from biovae.engine.vae import VAE
from biovae.pl.traverse import traversal, traversal_values
from biovae.tl import SCORES


@pytest.fixture(scope="module")
def files(pbmc, tmp_path_factory):
    root = tmp_path_factory.mktemp("explore")
    raw = pbmc.raw.to_adata()
    raw.obs = pbmc.obs[["bulk_labels"]].copy()
    model = ex.fit(raw, likelihood="normal", latent_dim=4, epochs=5, progress=False, seed=0)
    model.save(root / "model")
    raw.write_h5ad(root / "cells.h5ad")
    engine = VAE(64, latent_dim=3, hidden=(16,), seed=0)
    engine.metadata = {"kind": "images", "shape": [8, 8]}
    engine.save(root / "engine")
    return root


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_interpolate_writes_the_path_and_a_summary(files, tmp_path, capsys):
    out = tmp_path / "path.h5ad"
    code, text, _ = _run(capsys, "interpolate", files / "model", "--from", "CD14+ Monocyte", "--to", "CD19+ B",
                         "--data", files / "cells.h5ad", "--labels", "bulk_labels", "--steps", 6, "-o", out)
    assert code == 0 and text.strip().splitlines()[-1].startswith("biovae interpolate: 6 points")
    path = ad.read_h5ad(out)
    assert path.shape == (6, 765) and np.allclose(path.obs["position"], np.linspace(0, 1, 6))
    summary = json.loads((tmp_path / "path.h5ad.summary.json").read_text())
    assert summary["start"] == "label 'CD14+ Monocyte'" and summary["steps"] == 6
    check_report(tmp_path / "path.h5ad.report.html", tmp_path, images=0, text=["biovae interpolate", "path position"])


def test_anomaly_writes_one_row_per_cell(files, tmp_path, capsys):
    out = tmp_path / "scores.tsv"
    code, text, _ = _run(capsys, "anomaly", files / "model", files / "cells.h5ad", "-o", out)
    assert code == 0 and "700 cells scored" in text
    table = pd.read_csv(out, sep="\t", index_col=0)
    assert table.shape == (700, len(SCORES)) and list(table.columns) == list(SCORES)
    assert json.loads((tmp_path / "scores.tsv.summary.json").read_text())["cells"] == 700
    check_report(tmp_path / "scores.tsv.report.html", tmp_path, images=1, text=["biovae anomaly", "Highest-scoring"])
    backed = tmp_path / "backed.tsv"
    code, text, _ = _run(capsys, "anomaly", files / "model", files / "cells.h5ad", "-o", backed, "--backed",
                         "--reference", files / "cells.h5ad")
    assert code == 0 and "700 cells scored" in text
    same = pd.read_csv(backed, sep="\t", index_col=0)
    assert list(same.index) == list(table.index)
    assert np.allclose(same.drop(columns=["mahalanobis", "latent_knn"]), table.drop(columns=["mahalanobis", "latent_knn"]),
                       rtol=1e-4, atol=1e-5, equal_nan=True)
    assert json.loads((tmp_path / "scores.tsv.summary.json").read_text())["ranked_by"] == "latent_knn"
    scaled = tmp_path / "scaled.tsv"  # with the training cells in memory: the default knn_resid ranks
    code, text, _ = _run(capsys, "anomaly", files / "model", files / "cells.h5ad", "-o", scaled,
                         "--reference", files / "cells.h5ad")
    assert code == 0 and np.isfinite(pd.read_csv(scaled, sep="\t", index_col=0)["knn_resid"]).all()
    assert json.loads((tmp_path / "scaled.tsv.summary.json").read_text())["ranked_by"] == "knn_resid"
    twice = tmp_path / "ensemble.tsv"  # several model folders: scores averaged (here the same model twice)
    code, text, _ = _run(capsys, "anomaly", files / "model", files / "model", files / "cells.h5ad", "-o", twice)
    assert code == 0 and np.allclose(pd.read_csv(twice, sep="\t", index_col=0), table, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_traversal_of_expression_and_image_models(files, tmp_path, capsys):
    code, _, _ = _run(capsys, "traversal", files / "model", "--dims", 0, 1, "-o", tmp_path / "t.png")
    assert code == 0 and (tmp_path / "t.png").stat().st_size > 1000
    check_report(tmp_path / "t.png.report.html", tmp_path, images=1, text=["biovae traversal"])
    code, _, _ = _run(capsys, "traversal", files / "engine", "--steps", 5, "-o", tmp_path / "img.png")
    assert code == 0 and (tmp_path / "img.png").stat().st_size > 1000
    values, offsets, dims = traversal_values(VAE.load(files / "engine"), dims=[2], span=2, steps=5)
    assert values.shape == (1, 5, 64) and np.allclose(offsets, np.linspace(-2, 2, 5)) and dims == [2]
    assert len(traversal(ex.load(files / "model"), dims=[0, 1, 2], n_genes=5).axes) >= 3


@pytest.mark.parametrize("argv, message", [
    (["interpolate", "{model}", "--from", "CD19+ B", "--to", "CD19+ B", "--data", "{cells}", "--labels",
      "bulk_labels", "-o", "{tmp}/p.h5ad"], "start and end are the same"),
    (["interpolate", "{model}", "--from", "CD19+ B", "--to", "Alien", "--data", "{cells}", "--labels",
      "bulk_labels", "-o", "{tmp}/p.h5ad"], "unknown end 'Alien'"),
    (["interpolate", "{engine}", "--from", "a", "--to", "b", "-o", "{tmp}/p.h5ad"], "model of kind 'images'"),
    (["anomaly", "{engine}", "{cells}", "-o", "{tmp}/s.tsv"], "model of kind 'images'"),
    (["anomaly", "{model}", "{cells}", "-o", "{tmp}/s.txt"], "cannot tell the table format"),
    (["anomaly", "{model}", "{tmp}/missing.h5ad", "-o", "{tmp}/s.tsv"], "does not exist"),
    (["traversal", "{model}", "--dims", "7", "-o", "{tmp}/t.png"], "latent dimensions must lie in 0..3"),
])
def test_bad_input_exits_2_with_one_line(files, tmp_path, capsys, argv, message):
    subst = {"model": files / "model", "engine": files / "engine", "cells": files / "cells.h5ad", "tmp": tmp_path}
    code, _, err = _run(capsys, *[a.format(**subst) for a in argv])
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_fit_on_flagged_genes_then_score_all_genes(pbmc, files, tmp_path, capsys):
    """The anomaly recipe on the CLI: fit on .raw's highly variable genes (flags read from .var),
    then score cells that carry all 765 genes; a gene selection that names nothing fails cleanly."""
    data = tmp_path / "pbmc.h5ad"
    pbmc.write_h5ad(data)
    model = tmp_path / "hvg"
    code, text, _ = _run(capsys, "fit", data, "--layer", "raw", "--genes", "highly_variable", "--likelihood", "normal",
                         "--latent-dim", 8, "--dropout", 0, "--epochs", 3, "--quiet", "-o", model)
    flagged = int(pbmc.var["highly_variable"].sum())
    assert code == 0 and f"700 cells x {flagged} genes" in text
    assert len(ex.load(model).genes) == flagged
    code, text, _ = _run(capsys, "anomaly", model, files / "cells.h5ad", "-o", tmp_path / "s.tsv")
    assert code == 0 and pd.read_csv(tmp_path / "s.tsv", sep="\t", index_col=0).shape == (700, len(SCORES))
    code, _, err = _run(capsys, "fit", data, "--layer", "raw", "--genes", "no_such_flag", "-o", tmp_path / "bad")
    assert code == 2 and "no var column 'no_such_flag'" in err and not (tmp_path / "bad").exists()


@pytest.fixture(scope="module")
def course_files(tmp_path_factory):
    from test_tl_intermediate import FAST, time_course

    root = tmp_path_factory.mktemp("course")
    course = time_course()
    course.write_h5ad(root / "course.h5ad")
    ex.fit(course[course.obs["time"] != "day 2"].copy(), seed=0, **{**FAST, "epochs": 5}).save(root / "model")
    return root


def test_interpolate_cells_writes_generated_cells_of_the_held_out_point(course_files, tmp_path, capsys):
    out = tmp_path / "day2.h5ad"
    code, text, _ = _run(capsys, "interpolate", course_files / "model", "--cells", "--data",
                         course_files / "course.h5ad", "--labels", "time", "--hold-out", "day 2", "--n", 25,
                         "--seed", 3, "--method", "sample", "-o", out)
    assert code == 0 and text.strip().splitlines()[-1].startswith("biovae interpolate: 25 cells of day 2")
    cells = ad.read_h5ad(out)
    assert cells.shape == (25, 30) and set(cells.obs["time"]) == {"day 2"}
    summary = json.loads((tmp_path / "day2.h5ad.summary.json").read_text())
    assert summary["before"] == "day 1" and summary["after"] == "day 3" and summary["cells"] == 25
    assert summary["method"] == "sample"


def test_interpolate_cells_nearest_writes_real_neighbour_cells(course_files, tmp_path, capsys):
    out = tmp_path / "near.h5ad"
    code, _, _ = _run(capsys, "interpolate", course_files / "model", "--cells", "--data", course_files / "course.h5ad",
                      "--labels", "time", "--hold-out", "day 2", "--n", 10, "--method", "nearest", "-o", out)
    cells = ad.read_h5ad(out)
    course = ad.read_h5ad(course_files / "course.h5ad")
    assert code == 0 and cells.obs["source_cell"].is_unique
    assert np.array_equal(cells.X, np.asarray(course[cells.obs["source_cell"].to_numpy()].X))


@pytest.mark.parametrize("extra, message", [
    (["--hold-out", "day 0"], "no neighbour on both sides"),
    (["--hold-out", "day 2", "--n", "0"], "n must be"),
    (["--hold-out", "day 2", "--n", "-1"], "n must be"),
    ([], "--cells needs"),
])
def test_interpolate_cells_bad_input_is_one_line_and_exit_2(course_files, tmp_path, capsys, extra, message):
    out = tmp_path / "cells.h5ad"
    code, _, err = _run(capsys, "interpolate", course_files / "model", "--cells", "--data",
                        course_files / "course.h5ad", "--labels", "time", *extra, "-o", out)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and not out.exists()


def test_interpolate_cells_refuses_a_model_of_other_genes(course_files, files, tmp_path, capsys):
    out = tmp_path / "cells.h5ad"
    code, _, err = _run(capsys, "interpolate", files / "model", "--cells", "--data", course_files / "course.h5ad",
                        "--labels", "time", "--hold-out", "day 2", "-o", out)
    assert code == 2 and "different genes" in err and not out.exists()


def test_anomaly_with_calibration_cells_adds_p_values(files, tmp_path, capsys):
    from biovae.tl.anomaly_calibration import DEFAULT_SCORE
    from biovae.cli.explore import RANK_BY

    assert RANK_BY == DEFAULT_SCORE
    cells = ad.read_h5ad(files / "cells.h5ad")
    cells[:100].write_h5ad(tmp_path / "cal.h5ad")
    out = tmp_path / "called.tsv"
    code, _, _ = _run(capsys, "anomaly", files / "model", files / "cells.h5ad", "--calibration", tmp_path / "cal.h5ad",
                      "-o", out)
    table = pd.read_csv(out, sep="\t", index_col=0)
    assert code == 0 and {"p_value", "novel"} <= set(table.columns)
    assert table["p_value"].between(0, 1).all() and (table["novel"] == (table["p_value"] < 0.05)).all()
    assert table.loc[cells.obs_names[:100], "p_value"].min() < 2 / 101  # smoothed: each counts itself, in part
    summary = json.loads((tmp_path / "called.tsv.summary.json").read_text())
    assert summary["calibration_cells"] == 100 and summary["novel_cells"] == int(table["novel"].sum())
    code, _, err = _run(capsys, "anomaly", files / "model", files / "cells.h5ad", "--calibration",
                        tmp_path / "cal.h5ad", "--alpha", 2, "-o", tmp_path / "bad.tsv")
    assert code == 2 and "--alpha" in err and not (tmp_path / "bad.tsv").exists()
