"""bin/refine.py: the two-modes test, splitting mixed clusters, merging pieces of one, and the
Gaussian-mixture fallback when HDBSCAN finds nothing."""

import numpy as np
from sklearn.metrics import adjusted_rand_score

from biovae.bin.cluster import cluster_latent
from biovae.bin.refine import gmm_fallback, merge_clusters, split_clusters, two_modes


def _blob(n, centre, seed, d=8, scale=1.0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) * scale + np.asarray(centre, dtype=float)


def test_two_modes_tells_two_blobs_from_one_cut_in_half():
    a, b = _blob(2000, [0] * 8, 1), _blob(300, [6] + [0] * 7, 2)
    assert two_modes(a, b)
    one = _blob(3000, [0] * 8, 3)
    left = one[:, 0] < 0
    assert not two_modes(one[left], one[~left])


def test_a_small_genome_inside_a_big_cluster_is_split_off_and_pieces_are_merged():
    x = np.vstack([_blob(3000, [0] * 8, 4), _blob(250, [7] + [0] * 7, 5)])
    truth = np.repeat([0, 1], [3000, 250])
    labels, splits = split_clusters(x, np.zeros(len(x), dtype=np.int64), min_size=100)
    assert splits >= 1 and adjusted_rand_score(truth, labels) > 0.95
    pieces = np.where(x[:, 1] < 0, 0, 1)  # one blob cut in two by a plane through its middle
    merged, merges = merge_clusters(x[:3000], pieces[:3000])
    assert merges == 1 and len(np.unique(merged)) == 1


def test_gmm_fallback_and_never_empty_when_hdbscan_finds_nothing():
    x = np.vstack([_blob(400, [0] * 4, 6, d=4), _blob(400, [9] + [0] * 3, 7, d=4)])
    labels, k = gmm_fallback(x, seed=1)
    assert k >= 2 and adjusted_rand_score(np.repeat([0, 1], 400), labels) > 0.95
    # min_cluster_size above the data size: HDBSCAN cannot find a cluster, the fallback does
    labels, stats = cluster_latent(x, min_cluster_size=700, min_samples=5, seed=1)
    assert "fallback" in stats and (labels >= 0).mean() > 0.9 and stats["n_clusters"] >= 1
