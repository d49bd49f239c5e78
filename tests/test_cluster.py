"""HDBSCAN on a sample + nearest-reference assignment (biovae.bin.cluster)."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from biovae.bin.cluster import cluster_latent, default_min_cluster_size, default_min_samples
from biovae.errors import BiovaeError


def _blobs(n_per, d=8, spread=0.35, seed=0, sep=4.0):
    """Touching Gaussian blobs of uneven sizes, like genomes in a binning latent."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(n_per), d)) * sep
    x = np.vstack([c + spread * rng.normal(size=(n, d)) for c, n in zip(centres, n_per)])
    y = np.repeat(np.arange(len(n_per)), n_per)
    return x.astype(np.float32), y


def test_uneven_blobs_are_found_and_leftovers_assigned():
    x, y = _blobs([3000, 1500, 800, 300, 120])
    labels, stats = cluster_latent(x, seed=1)
    assert stats["n_clusters"] == 5
    binned = labels >= 0
    assert binned.mean() > 0.97
    assert adjusted_rand_score(y[binned], labels[binned]) > 0.99
    # renumbered by decreasing size
    sizes = np.bincount(labels[binned])
    assert list(sizes) == sorted(sizes, reverse=True)


def test_fit_on_a_sample_gives_the_same_partition_as_on_all_points():
    x, y = _blobs([6000, 3000, 1000], seed=2)
    full, _ = cluster_latent(x, seed=1)
    sampled, stats = cluster_latent(x, fit_sample=2000, seed=1)
    assert stats["n_fit"] == 2000
    both = (full >= 0) & (sampled >= 0)
    assert both.mean() > 0.97
    assert adjusted_rand_score(full[both], sampled[both]) > 0.99


def test_far_outliers_stay_unbinned():
    x, _ = _blobs([800, 800], seed=3)
    far = np.full((5, x.shape[1]), 100.0, dtype=np.float32) + np.arange(5)[:, None]
    labels, _ = cluster_latent(np.vstack([x, far]), seed=1)
    assert (labels[-5:] == -1).all()


def test_one_genome_is_one_bin_and_tiny_inputs_stay_unbinned():
    x, _ = _blobs([500], seed=4)
    labels, stats = cluster_latent(x, seed=1, selection="eom")
    assert stats["n_clusters"] == 1 and (labels >= 0).mean() > 0.75
    labels, stats = cluster_latent(x[:5], seed=1)
    assert (labels == -1).all() and "too few" in stats["note"]


def test_same_seed_same_labels():
    x, _ = _blobs([1000, 700, 300], seed=5)
    a, _ = cluster_latent(x, fit_sample=1500, seed=7)
    b, _ = cluster_latent(x, fit_sample=1500, seed=7)
    assert np.array_equal(a, b)


def test_defaults_grow_with_the_data():
    assert default_min_cluster_size(100) == 10
    assert default_min_cluster_size(10_000) == 100
    assert default_min_samples(100) == 10 and default_min_samples(10) == 5 and default_min_samples(10_000) == 25


@pytest.mark.parametrize("bad", [np.zeros((0, 3)), np.array([[np.nan, 1.0]] * 20), np.zeros(10)])
def test_bad_latent_is_a_clear_error(bad):
    with pytest.raises(BiovaeError):
        cluster_latent(bad)
