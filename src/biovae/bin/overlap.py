"""Bins of one genome joined again by the k-mers their reads share (reads mode).

The latent space can cut one small, deeply covered genome into two bins: on the development set
confirm_b, a 30 kb phage at about 1,000x came out as one bin per sequencing technology (its
PacBio and ONT-like reads differ a little in composition and in their coverage histograms), and a
45 kb phage as two bins of two regions of its genome (composition changes along a genome; with
thousands of reads per region the two regions form two dense clusters). Both pairs hold the same
genome sequence, which composition and coverage features do not see but shared k-mers do.

Sketch: every read's canonical 21-mers are hashed and the 1/`scale` of them with the lowest hash
values kept (FracMinHash, as sourmash and Mash screen do), with the read's row; at most
`max_reads` reads of each bin (a seeded sample) are sketched, which bounds the cost. An
occurrence of a k-mer in a read of bin A is *confirmed* by a set of reads when one of them holds
it too; a k-mer with a sequencing error is seldom confirmed, a k-mer of the genome is, the more
so the deeper the coverage. self(A) is the share of A's occurrences confirmed by A's other reads;
conf(A, B) the share confirmed by B's reads. Two bins share a genome when

    share = min(conf(A, B) / self(A), conf(B, A) / self(B), 1) >= `threshold`,

that is, when B's reads confirm A's k-mers about as well as A's own reads do, and the other way
round. Weighting by occurrences lets a genome's k-mers, seen in dozens of reads, outweigh its
reads' error k-mers, seen in one or two. The smaller of the two ratios keeps a phage apart from a
host that carries it as a prophage (the host confirms the phage's k-mers, the phage a tiny part
of the host's). Bins with self < `min_self` (low coverage: too few k-mers confirmed to judge)
take no part. Pairs are joined in order of decreasing share, each bin at most once per round,
until no pair passes.

k-mers with fewer than 4 G/C or fewer than 4 A/T bases (poly-A, (AT)n and similar runs) are not
sampled: they are shared by unrelated AT-rich genomes.

Measured on the development sets (bins of the round-3 code on confirm_b, dev_hifi, dev_hifi_a,
confirm30k, sim30k, real_mix, data/demo; docs/binning.md): pieces of one genome shared 0.06-0.90
(confirm_b's phages 0.898 by technology and 0.428 by region; M. leprae at 14x, split into its
HiFi-like reads and the rest, 0.461 with self 0.094), pieces of two genomes at most 0.038 where
both have self >= 0.08 (reads of one genome inside the other's bin). Two Plasmodium species at
about 1x shared 0.48 before the low-complexity filter, 0.14 after it, with self 0.024: hence the
self floor. At k = 15 two low-GC mycoplasmas shared many k-mers by chance, hence k = 21.

Hand-written (numba), not sourmash (not measured against it): the reads are packed by biovae's own
k-mer code (features.kmers.pack) and the kernel is the coverage table's rolling 2-bit walk plus a
hash and a G/C count; sourmash would add a dependency for one loop. Measured: 134 Mb of confirm_b's
reads in 2.5 s on one loaded core; the whole step 5-13 s on the development sets (docs/binning.md).
"""

from __future__ import annotations

import numba
import numpy as np

K = 21
SCALE = 64  # keep 1/64 of the k-mers: about 140 per 9 kb read
THRESHOLD = 0.1  # chosen on the development sets (docs/binning.md): 2.6x the highest share of two genomes
MIN_SELF = 0.08  # a bin whose own reads confirm fewer of its k-mers (low coverage) is not judged
MAX_READS = 1000
LOW_GC = 4


def sketch_file(path, rows_wanted: np.ndarray, *, k: int = K, scale: int = SCALE, threads: int = 1,
                chunk_bases: int = 1 << 24) -> tuple[np.ndarray, np.ndarray]:
    """(rows, hashes) of the sampled canonical k-mers of the records of `path` whose index (in file
    order) is marked in the boolean array `rows_wanted`; rows int64, hashes uint64. Reads go in
    chunks of `chunk_bases` (16 Mb, as the features stage: with 128 Mb chunks this step raised
    sim30k's peak RSS from 923 to 1,023 MiB)."""
    from biovae.features.kmers import BASE_CODE, pack, run_rows
    from biovae.io.fastx import iter_chunks

    limit = np.uint64((1 << 64) // int(scale) - 1)
    out_rows, out_hashes = [], []
    first = 0
    for chunk in iter_chunks(path, chunk_bases=chunk_bases, unique_ids=False):
        n = len(chunk.seqs)
        want = rows_wanted[first:first + n]
        if want.any():
            seqs = [s for s, w in zip(chunk.seqs, want) if w]
            data, offsets = pack(seqs)
            parts = {}

            def work(lo, hi):
                parts[lo] = _sample(data, offsets[lo:hi + 1], int(k), BASE_CODE, limit)
                parts[lo][0][:] += lo
            run_rows(work, offsets, threads)
            rows = np.concatenate([parts[lo][0] for lo in sorted(parts)])
            out_rows.append(np.flatnonzero(want)[rows] + first)
            out_hashes.append(np.concatenate([parts[lo][1] for lo in sorted(parts)]))
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


def bin_kmers(rows: np.ndarray, hashes: np.ndarray, labels: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per bin (label >= 0 of each row): its sampled hashes, sorted, and in how many of its reads
    each occurs (rows, hashes: distinct_per_read's)."""
    lab = labels[rows]
    return {int(b): np.unique(hashes[lab == b], return_counts=True) for b in np.unique(lab[lab >= 0])}


def confirmed(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray] | None = None) -> float:
    """The share of bin a's k-mer occurrences that another read confirms: a read of bin b (b given),
    or another read of a itself (b None)."""
    vals, counts = a
    if b is None:
        return float(counts[counts >= 2].sum() / max(1, counts.sum()))
    return float(counts[np.isin(vals, b[0], assume_unique=True)].sum() / max(1, counts.sum()))


def shared_pairs(kmers: dict, *, threshold: float = THRESHOLD, min_self: float = MIN_SELF
                 ) -> list[tuple[float, int, int]]:
    """(share, a, b) for every pair of bins that share a genome (module docstring), highest share first."""
    self_share = {b: confirmed(v) for b, v in kmers.items()}
    ids = [b for b in kmers if self_share[b] >= min_self]
    pairs = []
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            share = min(1.0, confirmed(kmers[a], kmers[b]) / self_share[a],
                        confirmed(kmers[b], kmers[a]) / self_share[b])
            if share >= threshold:
                pairs.append((share, a, b))
    return sorted(pairs, reverse=True)


def join_shared(path, labels: np.ndarray, rows_valid: np.ndarray, *, max_reads: int = MAX_READS,
                scale: int = SCALE, threads: int = 1, seed: int = 0, **rule) -> tuple[np.ndarray, dict]:
    """Labels (file order, -1 unbinned) with bins that share a genome joined; the stats of the step.

    rows_valid: boolean, the records the labels may be >= 0 for (reads long enough to bin).
    rule: threshold, min_self of shared_pairs."""
    labels = labels.copy()
    rng = np.random.default_rng(seed)
    want = np.zeros(len(labels), dtype=bool)
    for b in np.unique(labels[rows_valid & (labels >= 0)]):
        idx = np.flatnonzero(labels == b)
        want[idx if len(idx) <= max_reads else rng.choice(idx, max_reads, replace=False)] = True
    rows, hashes = distinct_per_read(*sketch_file(path, want, scale=scale, threads=threads))
    stats = {"sampled_kmers": int(len(hashes)), "joined": []}
    while True:
        pairs = shared_pairs(bin_kmers(rows, hashes, labels), **rule)
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
    """Sampled canonical k-mers of each row; k-mers with fewer than LOW_GC G/C bases or fewer than
    LOW_GC A/T bases (poly-A, (AT)n and other low-complexity runs) are skipped."""
    mask = (1 << (2 * k)) - 1
    top = 2 * (k - 1)
    cap = max(16, (offsets[-1] - offsets[0]) // 32)
    rows = np.empty(cap, dtype=np.int64)
    hashes = np.empty(cap, dtype=np.uint64)
    n = 0
    for row in range(len(offsets) - 1):
        fwd = 0
        rev = 0
        gc = 0
        start = offsets[row]
        last_bad = start - 1
        for pos in range(start, offsets[row + 1]):
            c = np.int64(base_code[data[pos]])
            if c > 3:
                last_bad = pos
                c = 0
            gc += 1 if (c == 1 or c == 2) else 0
            if pos - start >= k:
                old = np.int64(base_code[data[pos - k]])
                gc -= 1 if (old == 1 or old == 2) else 0
            fwd = ((fwd << 2) | c) & mask
            rev = (rev >> 2) | ((3 - c) << top)
            if pos - last_bad >= k and LOW_GC <= gc <= k - LOW_GC:
                h = _mix(np.uint64(min(fwd, rev)))
                if h <= limit:
                    if n == len(rows):
                        rows = np.concatenate((rows, np.empty(len(rows), dtype=np.int64)))
                        hashes = np.concatenate((hashes, np.empty(len(hashes), dtype=np.uint64)))
                    rows[n] = row
                    hashes[n] = h
                    n += 1
    return rows[:n], hashes[:n]
