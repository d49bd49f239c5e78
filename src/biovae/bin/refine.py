"""Clusters that adapt to the data: a fallback when HDBSCAN finds nothing, then splitting and
merging of clusters by one test of whether two groups of points are really two.

The test (`two_modes`): project the points of both groups on the direction that separates them
best (Fisher's discriminant, from the groups' own means and pooled covariance), estimate the
density of that projection with a Gaussian kernel (Silverman's bandwidth, from the data), and
call the groups two when the density at the lowest point between the two group medians is below
`valley` times the lower of the two densities at the medians. The ratio is scale-free: it does
not depend on how spread the latent space is, how many points there are, or how long the reads.

- Split (`split_clusters`): each cluster with at least 2 * min_size points is cut in two by a
  two-component Gaussian mixture on its own whitened latent coordinates (PCA of the cluster's points, each axis scaled to
  unit variance: the cluster's "own latent", so that a small second genome inside a large cluster
  is not hidden by the large one's spread). Measured: k-means cuts such a cluster through the
  middle of the large genome (3,000 + 250 points, tests/test_refine.py), the mixture does not. The cut is kept when both halves hold at least
  min_size points and `two_modes` says two; the halves are tried again (at most `depth` times).
- Merge (`merge_clusters`): each cluster is tested with its nearest neighbour (distance between
  medians); pairs that `two_modes` calls one are merged, until no pair merges. This joins the
  pieces that HDBSCAN's leaf selection cuts one genome into (a rare plasmid in four bins).
- Labels from the input features (`feature_labels`): HDBSCAN clusters only the dense cores of the
  latent space (37 % of sim30k's reads); the rest were labelled by a vote of their nearest cores
  in the latent. A linear discriminant (LDA) fitted on the cores' own input features (k-mer
  composition and coverage, standardised) labels them better: on sim30k 98.5 % of those reads
  got their genome's bin against 95.3 % by the latent vote, as the VAE's 8 dimensions keep less
  of what tells two genomes apart than the 152 input columns do (measured on the development
  set only, docs/binning.md). One refit on all labelled points (self-training) follows.
- Fallback (`gmm_fallback`): when HDBSCAN calls every point noise, a Gaussian mixture with the
  number of components chosen by BIC (1 .. max_k) labels the points; the merge step then joins
  components that fit one genome's non-Gaussian shape.

Measured on the development set only (benchmarks/binning_sets.py, docs/binning.md).
"""

from __future__ import annotations

import numpy as np

VALLEY = 0.5  # two groups are two when the density between them falls below half the lower peak
_MAX_POINTS = 4000  # points per group used by the test (a seeded sample; the test is 1-D)
REFIT = 1  # self-training rounds of feature_labels (sim30k F1/ARI 0.9856/0.9847 without, see docs)
LDA_POINTS = 100_000  # rows per discriminant fit (152 float64 columns: 120 MB)


def two_modes(a: np.ndarray, b: np.ndarray, *, valley: float = VALLEY, seed: int = 0) -> bool:
    """True when points a (n, d) and b (m, d) form two modes rather than one."""
    na, nb = len(a), len(b)
    a = _sample_rows(np.asarray(a, dtype=np.float64), seed)
    b = _sample_rows(np.asarray(b, dtype=np.float64), seed + 1)
    if len(a) < 3 or len(b) < 3:
        return False
    cov = (np.cov(a, rowvar=False) * (len(a) - 1) + np.cov(b, rowvar=False) * (len(b) - 1)) / (len(a) + len(b) - 2)
    cov = np.atleast_2d(cov) + 1e-6 * np.eye(a.shape[1])
    w = np.linalg.solve(cov, b.mean(0) - a.mean(0))
    if not np.all(np.isfinite(w)) or not np.any(w):
        return False
    pa, pb = a @ w, b @ w
    both = np.concatenate([pa, pb])
    ma, mb = np.median(pa), np.median(pb)
    if ma == mb:
        return False
    # Weighted so that each group counts as its size in the union (the samples may be thinned).
    weights = np.concatenate([np.full(len(pa), na / len(pa)), np.full(len(pb), nb / len(pb))])
    weights /= weights.sum()
    sd = np.sqrt(np.cov(both, aweights=weights))
    h = 1.06 * sd * len(both) ** -0.2  # Silverman's rule
    grid = np.linspace(min(ma, mb), max(ma, mb), 64)
    dens = (weights[None, :] * np.exp(-0.5 * ((grid[:, None] - both[None, :]) / h) ** 2)).sum(1)
    return bool(dens.min() < valley * min(dens[0], dens[-1]))


def split_clusters(x: np.ndarray, labels: np.ndarray, min_size, *, depth: int = 3,
                   valley: float = VALLEY, seed: int = 0) -> tuple[np.ndarray, int]:
    """Labels with mixed clusters cut in two (recursively); returns (labels, number of splits).

    min_size: the smallest part, in points, or a function of the cluster's size giving it (the
    size rule applied to the cluster's own points, as when it is clustered again alone)."""
    from sklearn.mixture import GaussianMixture

    labels = labels.copy()
    splits = 0
    todo = [(c, 0) for c in range(int(labels.max()) + 1)]
    while todo:
        c, level = todo.pop()
        idx = np.flatnonzero(labels == c)
        smallest = min_size(len(idx)) if callable(min_size) else int(min_size)
        if level >= depth or len(idx) < 2 * smallest:
            continue
        own = _whiten(x[idx])
        gm = GaussianMixture(2, covariance_type="full", random_state=seed, reg_covar=1e-4)
        halves = gm.fit(_sample_rows(own, seed)).predict(own)
        n1 = int(halves.sum())
        if min(n1, len(idx) - n1) < smallest:
            continue
        if not two_modes(own[halves == 0], own[halves == 1], valley=valley, seed=seed):
            continue
        new = int(labels.max()) + 1
        labels[idx[halves == 1]] = new
        splits += 1
        todo += [(c, level + 1), (new, level + 1)]
    return labels, splits


def merge_clusters(x: np.ndarray, labels: np.ndarray, *, valley: float = VALLEY,
                   seed: int = 0) -> tuple[np.ndarray, int]:
    """Labels with neighbouring clusters that form one mode merged; returns (labels, merges)."""
    labels = labels.copy()
    merges = 0
    tested: set[tuple[int, int]] = set()
    while True:
        ids = [c for c in np.unique(labels) if c >= 0]
        if len(ids) < 2:
            return labels, merges
        centres = np.array([np.median(x[labels == c], axis=0) for c in ids])
        dist = np.linalg.norm(centres[:, None] - centres[None], axis=2)
        np.fill_diagonal(dist, np.inf)
        pairs = sorted({tuple(sorted((ids[i], ids[int(np.argmin(dist[i]))]))) for i in range(len(ids))},
                       key=lambda p: dist[ids.index(p[0]), ids.index(p[1])])
        merged = False
        for a, b in pairs:
            if (a, b) in tested:
                continue
            tested.add((a, b))
            if not two_modes(x[labels == a], x[labels == b], valley=valley, seed=seed):
                labels[labels == b] = a
                merges += 1
                merged = True
                tested = {p for p in tested if a not in p and b not in p}
                break
        if not merged:
            return labels, merges


def feature_labels(features: np.ndarray, labelled: np.ndarray, labels: np.ndarray, todo: np.ndarray, *,
                   refit: int | None = None, cap: int = LDA_POINTS, seed: int = 0) -> np.ndarray:
    """Labels (len(todo),) of the rows `todo` of `features` (n, f) by a linear discriminant fitted on
    the rows `labelled` with `labels` (>= 0), then refitted `refit` times on all of them (at most
    `cap` rows per fit, a seeded sample)."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    if len(todo) == 0 or len(np.unique(labels)) < 2:
        return np.full(len(todo), labels[0] if len(labels) else -1, dtype=np.int64)
    rng = np.random.default_rng(seed)
    rows, known = np.asarray(labelled), np.asarray(labels)
    out = None
    for _ in range(1 + (REFIT if refit is None else int(refit))):
        pick = np.sort(rng.choice(len(rows), cap, replace=False)) if len(rows) > cap else slice(None)
        lda = LinearDiscriminantAnalysis().fit(np.asarray(features[rows[pick]], dtype=np.float64), known[pick])
        out = np.concatenate([lda.predict(np.asarray(features[todo[i:i + 65536]], dtype=np.float64))
                              for i in range(0, len(todo), 65536)]).astype(np.int64)
        rows, known = np.concatenate([labelled, todo]), np.concatenate([labels, out])
    return out


def gmm_fallback(x: np.ndarray, *, max_k: int = 20, seed: int = 0) -> tuple[np.ndarray, int]:
    """Labels of a Gaussian mixture whose number of components (1..max_k) minimises BIC."""
    from sklearn.mixture import GaussianMixture

    fit = _sample_rows(x, seed, 10_000)
    best, best_bic = None, np.inf
    for k in range(1, max(1, min(int(max_k), len(fit) // 20)) + 1):
        gm = GaussianMixture(k, covariance_type="full", random_state=seed, reg_covar=1e-4).fit(fit)
        bic = gm.bic(fit)
        if bic < best_bic:
            best, best_bic = gm, bic
        elif k >= (best.n_components + 3):  # BIC has risen for three components in a row
            break
    return best.predict(x).astype(np.int64), int(best.n_components)


def _whiten(x: np.ndarray) -> np.ndarray:
    centred = x - x.mean(0)
    _, s, vt = np.linalg.svd(centred[_sample_index(len(x), 0)], full_matrices=False)
    scale = s / np.sqrt(max(1, min(len(x), _MAX_POINTS) - 1))
    keep = scale > 1e-9 * max(scale.max(), 1e-30)
    return (centred @ vt[keep].T) / scale[keep]


def _sample_index(n: int, seed: int, cap: int = _MAX_POINTS) -> np.ndarray:
    if n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, cap, replace=False))


def _sample_rows(x: np.ndarray, seed: int, cap: int = _MAX_POINTS) -> np.ndarray:
    return x[_sample_index(len(x), seed, cap)]
