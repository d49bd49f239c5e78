"""Bins of one genome joined again by the k-mers their reads share (reads mode).

The latent space can cut one small, deeply covered genome into two bins: on the development set
confirm_b, a 30 kb phage at about 1,000x came out as one bin per sequencing technology (its
PacBio and ONT-like reads differ a little in composition and in their coverage histograms), and a
45 kb phage as two bins of two regions of its genome (composition changes along a genome; with
thousands of reads per region the two regions form two dense clusters). Both pairs hold the same
genome sequence, which composition and coverage features do not see but shared k-mers do.

Sketch: every read's canonical 15-mers are hashed and the 1/`scale` of them with the lowest hash
values kept (FracMinHash, as sourmash and Mash screen do), with the read's row. A bin's *solid*
k-mers are the sampled ones that occur in at least two of its reads (a k-mer with a sequencing
error is seldom repeated, except in a genome at very high coverage, and then it is that genome's).
Two bins share a genome when each holds a large part of the other's solid k-mers:
share = min(|A & B| / |A|, |A & B| / |B|) >= `threshold`, or share >= `near` while their reads'
coverage histograms agree (centroids of the standardised coverage block within `coverage_gap`:
two regions of one genome share only the k-mers of reads that span both, but have the same
coverage). The smaller of the two shares keeps a phage apart from a host genome that carries it
as a prophage (nearly all of the phage's k-mers are in the host, a tiny part of the host's are
in the phage). Pairs are joined in order of decreasing share, each bin at most once per round,
until no pair passes. At most `max_reads` reads of each bin (a seeded sample) are sketched: the
step is for small genomes at high coverage, and it bounds the cost.

Measured on the development sets (k = 21, 1/64 of the k-mers, 1,000 reads per bin; round-3 bins,
docs/binning.md): one genome in two bins shared 0.354 (30 kb phage, split by technology) and
0.096 (45 kb phage, two regions; coverage centroids 0.20 apart); two different genomes shared at
most 0.061 (two Plasmodium species, AT-rich repeats), else <= 0.031, and their coverage centroids
lay >= 1.2 apart. At k = 15 two low-GC mycoplasmas shared 0.127 (chance matches of AT-rich
k-mers), hence k = 21.

Hand-written (numba), not sourmash: the reads are already parsed and packed by biovae's own
k-mer code (features.kmers.pack), and the kernel is the same rolling 2-bit walk as the coverage
table's; sourmash would add a dependency for one loop.
"""

from __future__ import annotations

import numba
import numpy as np

K = 21
SCALE = 64  # keep 1/64 of the k-mers: about 140 per 9 kb read
THRESHOLD = 0.2  # share alone (chosen on the development sets, docs/binning.md)
NEAR = 0.08  # share with coverage centroids within COVERAGE_GAP
COVERAGE_GAP = 0.6
MAX_READS = 1000
SOLID_SHARE = 8
MIN_SOLID = 50  # a bin with fewer solid sampled k-mers gives no evidence either way


def sketch_file(path, rows_wanted: np.ndarray, *, k: int = K, scale: int = SCALE) -> tuple[np.ndarray, np.ndarray]:
    """(rows, hashes) of the sampled canonical k-mers of the records of `path` whose index (in file
    order) is marked in the boolean array `rows_wanted`; rows int64, hashes uint64."""
    from biovae.features.kmers import BASE_CODE, pack
    from biovae.io.fastx import iter_chunks

    limit = np.uint64((1 << 64) // int(scale) - 1)
    out_rows, out_hashes = [], []
    first = 0
    for chunk in iter_chunks(path, unique_ids=False):
        n = len(chunk.seqs)
        want = rows_wanted[first:first + n]
        if want.any():
            seqs = [s for s, w in zip(chunk.seqs, want) if w]
            data, offsets = pack(seqs)
            rows, hashes = _sample(data, offsets, int(k), BASE_CODE, limit)
            out_rows.append(np.flatnonzero(want)[rows] + first)
            out_hashes.append(hashes)
        first += n
    if not out_rows:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    return np.concatenate(out_rows), np.concatenate(out_hashes)


def distinct_per_read(rows: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, hashes) with each (read, k-mer) pair once: a k-mer repeated within one read is not
    evidence of two reads."""
    order = np.lexsort((hashes, rows))
    rows, hashes = rows[order], hashes[order]
    first = np.ones(len(hashes), dtype=bool)
    first[1:] = (hashes[1:] != hashes[:-1]) | (rows[1:] != rows[:-1])
    return rows[first], hashes[first]


def solid_sets(rows: np.ndarray, hashes: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    """Per bin (label >= 0 of each row), the sorted sampled hashes seen in at least
    max(2, L / SOLID_SHARE) of its reads, L the 99th percentile of those counts (rows, hashes:
    distinct_per_read's). In a genome at 100x, one k-mer with a given sequencing error recurs in
    two or three reads while the genome's own k-mers recur in dozens: a floor of 2 alone let such
    error k-mers outnumber the genome's 8 to 1 (tests/test_bin_overlap.py)."""
    lab = labels[rows]
    out = {}
    for b in np.unique(lab[lab >= 0]):
        vals, counts = np.unique(hashes[lab == b], return_counts=True)
        level = np.percentile(counts, 99) if len(counts) else 0
        out[int(b)] = vals[counts >= max(2.0, level / SOLID_SHARE)]
    return out


def shared_pairs(solid: dict[int, np.ndarray], gaps=None, *, threshold: float = THRESHOLD, near: float = NEAR,
                 coverage_gap: float = COVERAGE_GAP, min_solid: int = MIN_SOLID) -> list[tuple[float, int, int]]:
    """(share, a, b) for every pair of bins that share a genome (module docstring), highest share
    first. gaps: None or a function (a, b) -> distance of their coverage centroids."""
    ids = [b for b, v in solid.items() if len(v) >= min_solid]
    pairs = []
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            both = len(np.intersect1d(solid[a], solid[b], assume_unique=True))
            share = both / max(len(solid[a]), len(solid[b]))
            if share >= threshold or (share >= near and gaps is not None and gaps(a, b) <= coverage_gap):
                pairs.append((share, a, b))
    return sorted(pairs, reverse=True)


def join_shared(path, labels: np.ndarray, rows_valid: np.ndarray, coverage: np.ndarray | None = None, *,
                max_reads: int = MAX_READS, scale: int = SCALE, seed: int = 0, **rule) -> tuple[np.ndarray, dict]:
    """Labels (file order, -1 unbinned) with bins that share a genome joined; the stats of the step.

    rows_valid: boolean, the records the labels may be >= 0 for (reads long enough to bin).
    coverage: None or the standardised coverage features of the rows_valid records (in order).
    rule: threshold, near, coverage_gap, min_solid of shared_pairs."""
    labels = labels.copy()
    rng = np.random.default_rng(seed)
    want = np.zeros(len(labels), dtype=bool)
    for b in np.unique(labels[rows_valid & (labels >= 0)]):
        idx = np.flatnonzero(labels == b)
        want[idx if len(idx) <= max_reads else rng.choice(idx, max_reads, replace=False)] = True
    rows, hashes = distinct_per_read(*sketch_file(path, want, scale=scale))
    stats = {"sampled_kmers": int(len(hashes)), "joined": []}
    where = np.full(len(labels), -1, dtype=np.int64)
    where[rows_valid] = np.arange(int(rows_valid.sum()))

    def coverage_gap(a, b):
        ca = coverage[where[(labels == a) & rows_valid]].mean(0)
        cb = coverage[where[(labels == b) & rows_valid]].mean(0)
        return float(np.linalg.norm(ca - cb))
    while True:
        solid = solid_sets(rows, hashes, labels)
        pairs = shared_pairs(solid, None if coverage is None else coverage_gap, **rule)
        if not pairs:
            break
        used: set[int] = set()
        for share, a, b in pairs:
            if a in used or b in used:
                continue
            used.update((a, b))
            keep, gone = min(a, b), max(a, b)
            labels[labels == gone] = keep
            stats["joined"].append({"bins": [int(keep), int(gone)], "share": round(float(share), 3)})
    if stats["joined"]:  # renumber 0..K-1 by decreasing size, as the clustering does
        ids, counts = np.unique(labels[labels >= 0], return_counts=True)
        new = np.full(int(labels.max()) + 1, -1, dtype=np.int64)
        new[ids[np.argsort(-counts, kind="stable")]] = np.arange(len(ids))
        labels[labels >= 0] = new[labels[labels >= 0]]
    return labels, stats


@numba.njit(cache=True, nogil=True)
def _mix(x):
    """splitmix64's finaliser: a fast, well-spread 64-bit hash of a k-mer code."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@numba.njit(cache=True, nogil=True)
def _sample(data, offsets, k, base_code, limit):
    mask = (1 << (2 * k)) - 1
    top = 2 * (k - 1)
    cap = max(16, (offsets[-1] - offsets[0]) // 32)
    rows = np.empty(cap, dtype=np.int64)
    hashes = np.empty(cap, dtype=np.uint64)
    n = 0
    for row in range(len(offsets) - 1):
        fwd = 0
        rev = 0
        start = offsets[row]
        last_bad = start - 1
        for pos in range(start, offsets[row + 1]):
            c = np.int64(base_code[data[pos]])
            if c > 3:
                last_bad = pos
                c = 0
            fwd = ((fwd << 2) | c) & mask
            rev = (rev >> 2) | ((3 - c) << top)
            if pos - last_bad >= k:
                h = _mix(np.uint64(min(fwd, rev)))
                if h <= limit:
                    if n == len(rows):
                        rows = np.concatenate((rows, np.empty(len(rows), dtype=np.int64)))
                        hashes = np.concatenate((hashes, np.empty(len(hashes), dtype=np.uint64)))
                    rows[n] = row
                    hashes[n] = h
                    n += 1
    return rows[:n], hashes[:n]
