"""Split contaminated bins and merge fragments, guided by single-copy marker genes.

Both moves are kept only when they raise the bins' marker score, completeness - 5 x contamination
(in %, biovae.bin.markers.bin_marker_table), summed over the bins involved (a bin below zero counts
as zero: a bin that mixes genomes is worth nothing, its parts may be):

- split: a bin with contamination >= SPLIT_AT is cut in two, and each part is tried again while it
  stays contaminated. Candidate cuts: 2-means on the latent means of its sequences weighted by
  length, started from the two sequences that carry each duplicated marker, plus two seeded
  random starts (weighted and unweighted); the best scoring cut is kept when it scores higher than
  the whole. Measured on the development contig sets, seeds 1-5 (docs/binning.md): the round-3
  cut (one unweighted k-means) split a 106-contig partial genome in halves at one seed of five
  and left six long contaminant contigs in place. Weighting by length fixes that seed (the long
  contigs, whose latent means are the reliable ones, pull the centres); the marker starts
  changed nothing on those sets but are what makes the cut the same at seeds 1-3 in
  tests/test_markers.py (a weighted random start alone cuts wrongly at one of the three).
  (Cutting in up to four at once was tried: it cut a draft's own duplicated markers off into
  bins of their own.)
- merge: a bin and its nearest bin (distance between latent medians) are joined when their
  markers complement each other: each holds >= MIN_MARKERS markers, and they share at most a
  tenth (at least one) of the |A| x |B| / total markers two bins of unrelated genomes would
  share by chance, an expectation that must be >= 3. The joined bin must score higher than the
  better of the two.

A marker test alone cannot tell two fragments of one genome from two fragments of two
genomes with complementary markers; the latent neighbour rule and the overlap expectation are
what guard against that (measured on the development contig set, docs/binning.md).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SPLIT_AT = 10.0  # % contamination
MIN_MARKERS = 5
PENALTY = 5.0
SHARED_SHARE = 0.1  # a merge allows this share of the chance overlap (at least one marker) in common
MAX_STARTS = 40  # marker-seeded 2-means starts tried per split


def _counts(labels: np.ndarray, hits: pd.DataFrame, markers: list[str]) -> dict[int, np.ndarray]:
    """Bin -> copies of each marker (in `markers` order)."""
    col = {m: j for j, m in enumerate(markers)}
    out = {int(b): np.zeros(len(markers), dtype=np.int64) for b in np.unique(labels[labels >= 0])}
    for seq, marker in zip(hits["sequence"].to_numpy(), hits["marker"].to_numpy()):
        b = int(labels[seq])
        if b >= 0:
            out[b][col[marker]] += 1
    return out


def score(copies: np.ndarray, total: int) -> float:
    """completeness - 5 x contamination, in %, floored at 0."""
    found = int((copies > 0).sum())
    extra = int(np.clip(copies - 1, 0, None).sum())
    return max(0.0, 100.0 * (found - PENALTY * extra) / total)


def refine(labels: np.ndarray, rows: np.ndarray, mean: np.ndarray, hits: pd.DataFrame, total: int,
           seed: int = 1, lengths: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
    """(new labels, one line per change). `labels` has one entry per sequence (-1 unbinned), `rows`
    the sequences that have a latent mean (mean[k] belongs to sequence rows[k]), `lengths` the
    sequences' lengths (k-means weights; None: all equal)."""
    labels = labels.copy()
    weights = np.ones(len(labels)) if lengths is None else np.asarray(lengths, dtype=np.float64)
    if not len(hits) or not (labels >= 0).any():
        return labels, []
    markers = sorted(hits["marker"].unique())
    where = np.full(len(labels), -1, dtype=np.int64)
    where[rows] = np.arange(len(rows))
    changes: list[str] = []
    queue = sorted(_counts(labels, hits, markers))
    while queue:  # bisect while contaminated: two genomes in one bin become two bins, three need two cuts
        b = queue.pop(0)
        copies = _counts(labels, hits, markers).get(b)
        if copies is None or 100.0 * np.clip(copies - 1, 0, None).sum() / total < SPLIT_AT:
            continue
        members = np.flatnonzero((labels == b) & (where >= 0))
        if len(members) < 4:
            continue
        best, gain = None, score(copies, total)
        for part in _bisections(mean[where[members]], members, hits, weights[members], seed):
            trial = labels.copy()
            trial[members] = np.where(part == 0, b, labels.max() + 1)
            parts = _counts(trial, hits, markers)
            value = sum(score(parts.get(k, 0 * copies), total) for k in (b, labels.max() + 1))
            if value > gain:
                best, gain = trial, value
        if best is not None:
            changes.append(f"split bin {b} ({score(copies, total):.0f} -> {gain:.0f})")
            new = labels.max() + 1
            labels = best
            queue += [b, new]
    counts = _counts(labels, hits, markers)
    centres = {b: np.median(mean[where[(labels == b) & (where >= 0)]], axis=0)
               for b in counts if ((labels == b) & (where >= 0)).any()}
    merged: set[int] = set()
    for a in sorted(centres):
        if a in merged or len(centres) < 2:
            continue
        others = [(np.linalg.norm(centres[a] - c), o) for o, c in centres.items() if o != a and o not in merged]
        if not others:
            continue
        _, o = min(others)
        ca, co = counts[a] > 0, counts[o] > 0
        expected = ca.sum() * co.sum() / total
        if min(ca.sum(), co.sum()) < MIN_MARKERS or expected < 3 or (ca & co).sum() > max(1, SHARED_SHARE * expected):
            continue
        joined = counts[a] + counts[o]
        if score(joined, total) > max(score(counts[a], total), score(counts[o], total)):
            keep, gone = min(a, o), max(a, o)
            labels[labels == gone] = keep
            counts[keep], counts[gone] = joined, np.zeros_like(joined)
            merged.add(gone)
            changes.append(f"merged bin {gone} into bin {keep} ({(ca & co).sum()} shared markers, "
                           f"{expected:.1f} expected by chance)")
    return _renumber(labels), changes


def _bisections(x: np.ndarray, members: np.ndarray, hits: pd.DataFrame, weights: np.ndarray, seed: int):
    """Candidate cuts of one bin in two (arrays of 0 / 1 per member): length-weighted 2-means started
    from the latent means of the two sequences that carry each duplicated marker (the two copies
    should end up apart), then seeded random starts. The caller keeps the best scoring cut."""
    from sklearn.cluster import KMeans

    inside = hits[hits["sequence"].isin(members)]
    pos = {int(m): k for k, m in enumerate(members)}
    starts = []
    for _, group in inside.groupby("marker", sort=True):
        seqs = sorted({pos[int(v)] for v in group["sequence"]})
        if len(seqs) == 2 and not np.allclose(x[seqs[0]], x[seqs[1]]):
            starts.append(x[seqs])
    seen = set()
    runs = [KMeans(2, init=start, n_init=1).fit(x, sample_weight=weights) for start in starts[:MAX_STARTS]]
    runs += [KMeans(2, n_init=4, random_state=seed).fit(x, sample_weight=w) for w in (weights, None)]
    for km in runs:
        part = km.labels_ if km.labels_[0] == 0 else 1 - km.labels_
        key = part.tobytes()
        if key not in seen and 0 < part.sum() < len(part):
            seen.add(key)
            yield part


def _renumber(labels: np.ndarray) -> np.ndarray:
    """Labels 0..K-1 in order of first appearance of the old numbers' sort order; -1 kept."""
    out = labels.copy()
    for new, old in enumerate(np.unique(labels[labels >= 0])):
        out[labels == old] = new
    return out
