"""Plots of real vs generated cells: what they draw, and that they save."""

import anndata as ad
import numpy as np
import pytest
from matplotlib.figure import Figure
from sklearn.decomposition import PCA

from biovae.errors import BiovaeError
from biovae.pl.augmented import augmented
from biovae.pl.heatmap import heatmap

KEY = "bulk_labels"


@pytest.fixture(scope="module")
def cells():
    sc = pytest.importorskip("scanpy")
    data = sc.datasets.pbmc68k_reduced()
    full = ad.AnnData(X=data.raw.X.toarray(), obs=data.obs[[KEY]].copy(), var=data.raw.var[[]].copy())
    real, other = full[::2].copy(), full[1::2].copy()
    generated = other.copy()
    generated.obs["label"] = generated.obs[KEY].astype(str)
    del generated.obs[KEY]
    return real, generated


def _points(ax):
    return np.vstack([c.get_offsets() for c in ax.collections])


def test_augmented_pca_draws_real_and_generated_cells(cells, tmp_path):
    real, generated = cells
    fig = augmented(real, generated, "PCA", label_key=KEY, save=tmp_path / "aug.png")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    by_source, by_label = fig.axes
    assert len(_points(by_source)) == len(_points(by_label)) == 700
    # PCA panel: real cells at their coordinates on a PCA fitted on the real cells alone
    expected = PCA(n_components=50, random_state=0).fit(real.X).transform(real.X)[:, :2]
    drawn = _points(by_source)
    for point in expected[:20]:
        assert np.min(np.abs(drawn - point).sum(1)) < 1e-3 * (1 + np.abs(point).sum())
    names = {t.get_text() for t in by_label.get_legend().get_texts()}
    assert {"CD14+ Monocyte", "Dendritic", "real", "generated"} <= names
    assert (tmp_path / "aug.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["aug.png"]


def test_augmented_without_labels_and_tsne(cells, tmp_path):
    real, generated = cells
    fig = augmented(real[:60], generated[:60], "tsne", seed=3, save=tmp_path / "aug.pdf")
    assert len(fig.axes) == 1 and np.isfinite(_points(fig.axes[0])).all()
    assert (tmp_path / "aug.pdf").read_bytes()[:4] == b"%PDF"


def test_augmented_errors(cells, tmp_path):
    real, generated = cells
    with pytest.raises(BiovaeError, match="unknown embedding method 'mds'"):
        augmented(real, generated, "mds")
    with pytest.raises(BiovaeError, match="image format"):
        augmented(real, generated, save=tmp_path / "aug.jpeg2")
    with pytest.raises(BiovaeError, match="generated cells lacks"):
        augmented(real, generated[:, :700])


@pytest.mark.slow
def test_augmented_umap(cells):
    real, generated = cells
    fig = augmented(real, generated, "umap", label_key=KEY)
    assert np.isfinite(_points(fig.axes[0])).all()


def test_heatmap_shows_label_means_of_top_genes(cells, tmp_path):
    real, generated = cells
    fig = heatmap(real, generated, label_key=KEY, n_genes=20, save=tmp_path / "heat.pdf")
    left, right = fig.axes[0], fig.axes[1]
    shown = left.images[0].get_array()
    labels = [t.get_text() for t in left.get_yticklabels()]
    genes = [t.get_text() for t in left.get_xticklabels()]
    assert shown.shape == (10, 20) and labels == sorted(set(real.obs[KEY]))
    top = set(real.var_names[np.argsort(-real.X.var(0))[:20]])
    assert set(genes) == top
    dend = real[real.obs[KEY] == "Dendritic"]
    row = labels.index("Dendritic")
    np.testing.assert_allclose(shown[row], dend[:, genes].X.mean(0), rtol=1e-5)
    gen_dend = generated[generated.obs["label"] == "Dendritic"]
    np.testing.assert_allclose(right.images[0].get_array()[row], gen_dend[:, genes].X.mean(0), rtol=1e-5)
    assert (tmp_path / "heat.pdf").read_bytes()[:4] == b"%PDF"


def test_heatmap_without_labels(cells):
    real, generated = cells
    fig = heatmap(real, generated[:40], n_genes=10, max_rows=30)
    assert fig.axes[0].images[0].get_array().shape == (30, 10)
    assert fig.axes[1].images[0].get_array().shape == (30, 10)


def test_cli_plot_aug_and_evaluate_generation_write_their_reports(cells, tmp_path, capsys):
    from browser import check_report
    from biovae.cli import main

    real, generated = cells
    real.write_h5ad(tmp_path / "real.h5ad")
    generated.write_h5ad(tmp_path / "gen.h5ad")
    png = tmp_path / "aug.png"
    assert main(["plot-aug", str(tmp_path / "real.h5ad"), str(tmp_path / "gen.h5ad"), "--labels", KEY,
                 "-o", str(png)]) == 0
    check_report(tmp_path / "aug.png.report.html", tmp_path, images=1, text=["biovae plot-aug", "350 real"])
    metrics = tmp_path / "m.json"
    assert main(["evaluate-generation", str(tmp_path / "real.h5ad"), str(tmp_path / "gen.h5ad"), "--labels", KEY,
                 "-o", str(metrics)]) == 0
    # real cells against other real cells: the page shows the metrics and one row per label
    check_report(tmp_path / "m.json.report.html", tmp_path, images=0,
                 text=["biovae evaluate-generation", "RF-AUC", "Per label", "CD14+ Monocyte"])
    assert capsys.readouterr().out.count("biovae ") >= 2
