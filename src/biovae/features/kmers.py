"""Canonical k-mer composition of sequences (k = 3..6), as per-sequence frequencies.

A k-mer and its reverse complement are one feature (the canonical k-mer), because a read is
equally likely to come from either strand. Columns follow pykmertools' OligoComputer order: the
canonical k-mers are the lexicographically smaller of each pair (A < C < G < T), sorted, so
vectors are directly comparable with kmertools'. Column counts: k=3: 32, k=4: 136, k=5: 512,
k=6: 2080.

A k-mer holding N or any other non-ACGT symbol is skipped (the window restarts after it);
lower case counts as upper case. A sequence with no valid k-mer (shorter than k, or all N)
gets an all-zero row and n_kmers == 0 - never NaN - so callers can flag it.

Speed (benchmarks/features.py, 2-core box, one thread, reads cut from the shared genomes):
the numba kernel below is the default because it beats pykmertools' OligoComputer
.vectorise_batch on the same reads and agrees with it to float32 rounding; see the
benchmark's printed ratio and the module docstring of benchmarks/features.py for the figures.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import NamedTuple, Sequence

import numba
import numpy as np

from biovae.errors import BiovaeError

K_RANGE = (3, 6)

# Byte -> 2-bit code: A=0, C=1, G=2, T=3 (either case), everything else 4 (breaks the window).
BASE_CODE = np.full(256, 4, dtype=np.uint8)
for _i, _b in enumerate(b"ACGT"):
    BASE_CODE[_b] = _i
    BASE_CODE[_b + 32] = _i


class Composition(NamedTuple):
    """freqs: float32 (n, n_canonical(k)), rows sum to 1 (0 where n_kmers == 0).
    n_kmers: int64 (n,), how many valid k-mers each sequence had."""

    freqs: np.ndarray
    n_kmers: np.ndarray


def n_canonical(k: int) -> int:
    """Number of canonical k-mers: 4^k/2, plus half the 4^(k/2) palindromes when k is even."""
    return (4**k + (4 ** (k // 2) if k % 2 == 0 else 0)) // 2


@lru_cache(maxsize=None)
def canonical_index(k: int) -> np.ndarray:
    """int32 array of shape (4^k,): column of each forward k-mer code (2 bits per base,
    first base most significant) in the sorted list of canonical k-mers."""
    _check_k(k)
    codes = np.arange(4**k, dtype=np.int64)
    rc = reverse_complement_codes(codes, k)
    canon = np.minimum(codes, rc)
    # 2-bit codes sort like the strings (A<C<G<T), so sorted unique codes give kmertools' order
    uniq, index = np.unique(canon, return_inverse=True)
    assert len(uniq) == n_canonical(k)
    return index.astype(np.int32)


def kmer_names(k: int) -> list[str]:
    """The canonical k-mers as strings, in column order."""
    index = canonical_index(k)
    names = [""] * n_canonical(k)
    for code in range(4**k):
        col = index[code]
        if not names[col]:
            names[col] = "".join("ACGT"[(code >> (2 * (k - 1 - i))) & 3] for i in range(k))
    return names


def reverse_complement_codes(codes: np.ndarray, k: int) -> np.ndarray:
    """Reverse complement of 2-bit k-mer codes (int64 array, any shape)."""
    codes = np.asarray(codes, dtype=np.int64)
    rc = np.zeros_like(codes)
    for i in range(k):
        base = (codes >> (2 * i)) & 3
        rc |= (3 - base) << (2 * (k - 1 - i))
    return rc


def pack(seqs: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate sequences into one uint8 array and int64 offsets of shape (n+1,).

    Sequence i is data[offsets[i]:offsets[i+1]]; bytes are kept as written (the kernels map
    them through BASE_CODE), so no 2-bit copy of the chunk is made.
    """
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = np.frombuffer(b"".join(seqs), dtype=np.uint8)
    return data, offsets


def composition(seqs: Sequence[bytes], k: int = 4, threads: int = 1) -> Composition:
    """Canonical k-mer frequencies of each sequence.

    seqs: n sequences as ASCII bytes (any case; non-ACGT symbols break k-mers).
    k: k-mer size, 3..6. threads: worker threads (rows split by bases; same result for any
    count). Returns Composition(freqs float32 (n, n_canonical(k)), n_kmers int64 (n,)).
    Memory: a packed copy of the chunk (one byte per base) plus the float32 output.
    """
    _check_k(k)
    data, offsets = pack(seqs)
    return composition_packed(data, offsets, k, threads)


def composition_packed(data: np.ndarray, offsets: np.ndarray, k: int = 4, threads: int = 1) -> Composition:
    """composition() on a chunk already packed by pack()."""
    _check_k(k)
    n = len(offsets) - 1
    out = np.zeros((n, n_canonical(k)), dtype=np.float32)
    n_kmers = np.zeros(n, dtype=np.int64)
    index = canonical_index(k)
    run_rows(lambda lo, hi: _count_kernel(data, offsets[lo : hi + 1], k, index, BASE_CODE, out[lo:hi], n_kmers[lo:hi]), offsets, threads)
    return Composition(out, n_kmers)


def run_rows(work, offsets: np.ndarray, threads: int = 1) -> None:
    """Call work(lo, hi) over row ranges covering all rows, on `threads` threads.

    Ranges are cut at equal numbers of bases, not rows, so long reads do not pile up on one
    thread. The numba kernels release the GIL (nogil=True), so plain threads run in parallel.
    """
    n = len(offsets) - 1
    if n == 0:
        return
    threads = max(1, min(int(threads), n))
    if threads == 1:
        work(0, n)
        return
    targets = np.linspace(offsets[0], offsets[-1], threads + 1)[1:-1]
    cuts = np.unique(np.concatenate([[0], np.searchsorted(offsets[1:], targets) + 1, [n]]))
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for f in [pool.submit(work, lo, hi) for lo, hi in zip(cuts[:-1], cuts[1:])]:
            f.result()


def _check_k(k: int) -> None:
    if not (isinstance(k, (int, np.integer)) and K_RANGE[0] <= k <= K_RANGE[1]):
        raise BiovaeError(f"composition k must be an integer from {K_RANGE[0]} to {K_RANGE[1]}, got {k!r}", "use --k 3, 4, 5 or 6")


@numba.njit(cache=True, nogil=True)
def _count_kernel(data, offsets, k, index, base_code, out, n_kmers):
    # A forward rolling code plus a precomputed code->canonical column table avoids
    # tracking the reverse complement: both strands of a k-mer map to one column.
    # Validity is "k bases since the last non-ACGT symbol", kept branch-light because an
    # if/continue per base measured 1.7x slower.
    mask = (1 << (2 * k)) - 1
    counts = np.zeros(out.shape[1], dtype=np.int64)
    for row in range(len(offsets) - 1):
        counts[:] = 0
        code = 0
        start = offsets[row]
        last_bad = start - 1
        for pos in range(start, offsets[row + 1]):
            c = base_code[data[pos]]
            if c > 3:
                last_bad = pos
                c = 0
            code = ((code << 2) | c) & mask
            if pos - last_bad >= k:
                counts[index[code]] += 1
        total = counts.sum()
        n_kmers[row] = total
        if total > 0:
            inv = 1.0 / total
            for j in range(out.shape[1]):
                out[row, j] = counts[j] * inv
