"""Realism metrics: they must call real cells real and tell shifted or fake cells apart."""

import anndata as ad
import numpy as np
import pytest

from biovae.errors import BiovaeError
from biovae.evaluate.generation import (
    METRICS, augmentation_check, classifier_auc, diagonal_gaussian_baseline, downsample_label,
    evaluate_generation, gene_correlation_similarity, mmd_pca, pearson, realism_metrics,
    split_cells,
)

KEY = "bulk_labels"


@pytest.fixture(scope="module")
def pbmc():
    sc = pytest.importorskip("scanpy")
    data = sc.datasets.pbmc68k_reduced()
    # log-normalised expression (the .raw), as the generator would see it
    return ad.AnnData(X=data.raw.X.toarray(), obs=data.obs[[KEY]].copy(),
                      var=data.raw.var[[]].copy())


@pytest.fixture(scope="module")
def split(pbmc):
    return split_cells(pbmc, 0.2, KEY, seed=0)


def test_split_is_stratified_disjoint_and_seeded(pbmc, split):
    train, test = split
    assert train.n_obs + test.n_obs == 700 and not set(train.obs_names) & set(test.obs_names)
    counts = test.obs[KEY].value_counts()
    assert counts["Dendritic"] == 48 and counts["CD34+"] == 3  # round(0.2 * 240), round(0.2 * 13)
    again = split_cells(pbmc, 0.2, KEY, seed=0)[1]
    assert list(again.obs_names) == list(test.obs_names)
    assert list(split_cells(pbmc, 0.2, KEY, seed=1)[1].obs_names) != list(test.obs_names)


def _real_pair(split):
    train, test = split
    return test.X, train.X[np.random.default_rng(0).choice(train.n_obs, test.n_obs, replace=False)]


def test_held_out_real_cells_look_real(split):
    R, G = _real_pair(split)
    auc, sd = classifier_auc(R, G, seed=0, n_trees=50)
    assert 0.35 < auc < 0.62 and sd < 0.15
    assert abs(mmd_pca(R, G)) < 0.003


def test_shifted_copy_is_caught(split):
    R, G = _real_pair(split)
    auc, _ = classifier_auc(R, G + 0.5 * (G > 0), seed=0, n_trees=50)  # detected genes +0.5
    assert auc > 0.95
    assert mmd_pca(R, G + 0.5) > 0.04 > 10 * abs(mmd_pca(R, G))


def test_correlation_metrics_by_hand():
    R = np.array([[1.0, 0, 0], [1, 0, 0], [1, 4, 6], [1, 4, 6]])  # gene means 1, 2, 3
    assert pearson([1, 2, 3], [3, 5, 7]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(pearson([1, 1, 1], [1, 2, 3]))
    # zero fractions of R per gene: 0, 0.5, 0.5; of G: 0.75, 0.25, 0.25 -> correlation -1
    G = np.array([[0.0, 1, 1], [0, 1, 1], [0, 1, 1], [2, 0, 0]])
    m = realism_metrics(R, G, n_trees=5, folds=2)
    assert m["zero_frac_corr"] == pytest.approx(-1.0)
    assert m["mean_corr"] == pytest.approx(pearson([1, 2, 3], [0.5, 0.75, 0.75]))
    assert m["ks_library_size"] == pytest.approx(0.5)  # totals 1,1,11,11 vs 2,2,2,2
    assert m["ks_detected_genes"] == pytest.approx(0.5)  # detected 1,1,3,3 vs 2,2,2,1


def test_gene_correlation_similarity_by_hand():
    rng = np.random.default_rng(0)
    a = rng.normal(size=200)
    noise = 1e-3 * rng.normal(size=(200, 3))
    R = np.c_[3 * a, 2 * a, -a] + noise        # gene-gene correlations (1, -1, -1)
    G = np.c_[3 * a, -2 * a, a] + noise        # (-1, 1, -1): Pearson of the two is -0.5
    assert gene_correlation_similarity(R, G) == pytest.approx(-0.5, abs=1e-3)
    # a positive affine change of each gene keeps every correlation
    assert gene_correlation_similarity(R, 5 * R + 2) == pytest.approx(1.0)


def test_evaluate_generation_per_label_and_composition(split):
    train, test = split
    keep = ["CD14+ Monocyte", "CD19+ B", "CD34+"]
    gen = train[train.obs[KEY].isin(keep)].copy()
    gen.obs["label"] = gen.obs[KEY].astype(str)
    del gen.obs[KEY]
    gen = gen[:, ::-1].copy()  # gene order does not matter
    out = evaluate_generation(test, gen, label_key=KEY, seed=0, n_trees=20)
    assert set(out["per_label"]) == {"CD14+ Monocyte", "CD19+ B"}
    assert "CD34+" in out["skipped_labels"]  # 3 held-out cells < min_cells
    assert "Dendritic" in out["skipped_labels"]  # no generated cells
    for metrics in [out["overall"], *out["per_label"].values()]:
        assert set(METRICS) <= set(metrics)
    # composition matched: per label min(real, generated) cells on each side
    assert out["overall"]["n_real"] == out["overall"]["n_generated"] == 26 + 19 + 3
    assert out["overall"]["rf_auc"] < 0.75 and out["per_label_worst"]["mean_corr"] > 0.9
    with pytest.raises(BiovaeError, match="generated cells lacks 5 of the 765"):
        evaluate_generation(test, gen[:, 5:], label_key=KEY, n_trees=5)


def test_diagonal_gaussian_baseline(split):
    train, test = split
    fake = diagonal_gaussian_baseline(train, 100, KEY, seed=3)
    assert fake.shape == (1000, 765) and (fake.X >= 0).all()
    assert (fake.obs["label"] == fake.obs[KEY]).all() and fake.obs["generated"].all()
    assert np.array_equal(fake.X, diagonal_gaussian_baseline(train, 100, KEY, seed=3).X)
    mono = train[train.obs[KEY] == "CD14+ Monocyte"].X
    many = diagonal_gaussian_baseline(train, {"CD14+ Monocyte": 4000}, KEY, seed=0).X
    # the unclipped mean is the label's mean; clipping at 0 only raises it
    assert pearson(many.mean(0), mono.mean(0)) > 0.99
    assert (many.mean(0) >= mono.mean(0) - 0.1).all()
    # it matches means but not the zeros of real cells, and the classifier sees that
    auc, _ = classifier_auc(test.X, fake.X[:142], n_trees=30)
    assert auc > 0.9
    with pytest.raises(BiovaeError, match="'T cell' is not in the training labels"):
        diagonal_gaussian_baseline(train, {"T cell": 5}, KEY)


def test_augmentation_check_with_an_oracle_generator(split):
    train, test = split
    target = "CD14+ Monocyte"
    small = downsample_label(train, KEY, target, 0.02, seed=0)
    assert (small.obs[KEY] == target).sum() == 2 and small.n_obs == train.n_obs - 101
    # the "generator" returns exactly the real cells that downsampling removed
    dropped = train[~train.obs_names.isin(small.obs_names)].copy()
    out = augmentation_check(train, test, dropped, KEY, target, 0.02, seed=0)
    assert out["n_target_kept"] == 2 and out["n_generated_added"] == 101
    assert out["f1_target_change"] == pytest.approx(out["f1_target_augmented"] - out["f1_target_real_only"])
    assert out["f1_target_augmented"] > out["f1_target_real_only"] + 0.1
    assert out["f1_target_augmented"] == pytest.approx(out["f1_target_full"], abs=0.03)
    with pytest.raises(BiovaeError, match="no generated cell is labelled 'CD14\\+ Monocyte'"):
        augmentation_check(train, test, dropped[:0], KEY, target, 0.02)
