"""Read coverage without alignment (LRBinner's idea), in bounded memory.

Pass 1 counts every canonical k-mer (default k = 15) over the whole read set. Pass 2 gives
each read a histogram of its k-mers' global counts: bin b holds the k-mers whose count c has
min(c // width, bins - 1) == b (defaults: 16 bins of width 16, so the last bin takes every
count >= 240). Rows are divided by the read's number of valid k-mers, so they sum to 1. This is
exactly what kmertools' `cov` prints (for scale "linear") (checked against its binary on real reads: canonical
counts, same binning, same normalisation); a read with no valid k-mer gets a zero row and
n_kmers == 0 instead of NaN. With scale "log" the bins widen geometrically instead (`bin_edges`:
for 16 bins they start at counts 1, 2, 3, 4, 5, 6, 7, 10, 13, 18, 25, 35, 49, 67, 93, 128): at the
low coverage of long reads with 5-15 % errors most 15-mers are seen 1-8 times, which one linear
bin of width 16 cannot tell apart (docs/binning.md).

Memory bound. LRBinner keeps a dense uint32 table over all 4^15 forward k-mers: 4 GiB. Here the
table is indexed by canonical k-mer only and its counters saturate at the smallest unsigned
type that holds (bins - 1) * width (uint8 for the defaults). Saturation loses nothing: any
count at or above (bins - 1) * width lands in the last bin anyway. For odd k each canonical
k-mer gets a dense slot (of a k-mer and its reverse complement exactly one has A or C as its
middle base; that one is stored, with its middle base's high bit dropped), so the table holds
4^k / 2 counters: 512 MiB at k = 15 with uint8, independent of the number of reads. Even k uses
min(forward, reverse) over 4^k slots (twice the space). Peak memory of `file_features` is that
table, plus one chunk of reads (iter_chunks' chunk_bases, 128 Mb by default, one byte per
base), plus the outputs (4 * (n_composition_columns + bins) bytes per read: 0.6 GB for 10^6
reads at k = 4), so about 1.3 GiB at 10^6 reads with the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

import numba
import numpy as np

from biovae.errors import BiovaeError
from biovae.features.kmers import BASE_CODE, composition_packed, pack, run_rows
from biovae.io.fastx import DEFAULT_CHUNK_BASES, iter_chunks

COV_K_RANGE = (5, 15)


class Coverage(NamedTuple):
    """hist: float32 (n, bins), rows sum to 1 (0 where n_kmers == 0).
    n_kmers: int64 (n,), valid k-mers per read."""

    hist: np.ndarray
    n_kmers: np.ndarray


class KmerTable:
    """Saturating counts of canonical k-mers over a read set (pass 1 of the coverage).

    k: k-mer size (5..15). cap: counts stop growing at this value; choose it >=
    (bins - 1) * width of the histogram you will ask for (`for_histogram` does).
    The table is table_bytes(k, cap) bytes.
    """

    def __init__(self, k: int = 15, cap: int = 255):
        if not (isinstance(k, (int, np.integer)) and COV_K_RANGE[0] <= k <= COV_K_RANGE[1]):
            raise BiovaeError(f"coverage k must be an integer from {COV_K_RANGE[0]} to {COV_K_RANGE[1]}, got {k!r}", "the default 15 suits long reads")
        if cap < 1:
            raise BiovaeError(f"coverage count cap must be at least 1, got {cap}")
        self.k = int(k)
        self.cap = int(cap)
        self.table = np.zeros(_n_slots(self.k), dtype=_count_dtype(self.cap))
        self.n_reads = 0

    @classmethod
    def for_histogram(cls, k: int = 15, bins: int = 16, width: int = 16, scale: str = "linear") -> "KmerTable":
        """A table whose cap is just enough for a `bins` x `width` histogram (255 for scale "log")."""
        return cls(k, int(bin_edges(bins, width, scale)[-1]))

    @property
    def nbytes(self) -> int:
        """Memory held by the table, in bytes."""
        return self.table.nbytes

    def add(self, data: np.ndarray, offsets: np.ndarray) -> None:
        """Count the k-mers of a packed chunk (see kmers.pack). Single-threaded: concurrent
        increments of one counter would be lost."""
        if len(offsets) > 1:
            dummy = np.zeros((0, 1), dtype=np.int64)
            _scan(data, offsets, self.k, BASE_CODE, self.table, self.table.dtype.type(self.cap), np.zeros(1, np.int64), dummy, 0)
        self.n_reads += len(offsets) - 1

    def add_seqs(self, seqs: Sequence[bytes]) -> None:
        """Count the k-mers of a list of sequences (ASCII bytes)."""
        self.add(*pack(seqs))

    def histograms(self, data: np.ndarray, offsets: np.ndarray, bins: int = 16, width: int = 16, threads: int = 1,
                   scale: str = "linear") -> Coverage:
        """Pass 2 on a packed chunk: the count histogram of each read, float32 (n, bins)."""
        edges = bin_edges(bins, width, scale)
        if self.cap < edges[-1]:
            raise BiovaeError(f"the k-mer table saturates at {self.cap}, too low for {bins} {scale} bins of width {width}", "build it with KmerTable.for_histogram(k, bins, width, scale)")
        n = len(offsets) - 1
        counts = np.zeros((n, bins), dtype=np.int64)
        cap = self.table.dtype.type(self.cap)
        lut = np.clip(np.searchsorted(edges, np.arange(self.cap + 1), side="right") - 1, 0, bins - 1).astype(np.int64)
        run_rows(lambda lo, hi: _scan(data, offsets[lo : hi + 1], self.k, BASE_CODE, self.table, cap, lut, counts[lo:hi], 1), offsets, threads)
        n_kmers = counts.sum(axis=1)
        hist = np.zeros((n, bins), dtype=np.float32)
        seen = n_kmers > 0
        hist[seen] = counts[seen] / n_kmers[seen, None]
        return Coverage(hist, n_kmers)


def table_bytes(k: int, cap: int = 255) -> int:
    """Bytes of the k-mer table for k and a saturation cap (the coverage memory bound)."""
    return _n_slots(k) * np.dtype(_count_dtype(cap)).itemsize


def coverage(seqs: Sequence[bytes], k: int = 15, bins: int = 16, width: int = 16, threads: int = 1,
             scale: str = "linear") -> Coverage:
    """Coverage histograms of an in-memory read set (both passes over `seqs`).

    seqs: n reads as ASCII bytes. Returns Coverage(hist float32 (n, bins), n_kmers (n,)).
    """
    table = KmerTable.for_histogram(k, bins, width, scale)
    data, offsets = pack(seqs)
    table.add(data, offsets)
    return table.histograms(data, offsets, bins, width, threads, scale)


@dataclass
class ReadFeatures:
    """Features of every record of one file, rows in file order.

    ids: (n,) str record ids; lengths: int64 (n,) bases; composition: float32 (n, n_canonical(k));
    comp_kmers: int64 (n,) valid composition k-mers; coverage: float32 (n, bins);
    cov_kmers: int64 (n,) valid coverage k-mers; table_bytes: memory of the k-mer table.
    The arrays are read-only memory maps of files in the folder given to file_features.
    """

    ids: np.ndarray
    lengths: np.ndarray
    composition: np.ndarray
    comp_kmers: np.ndarray
    coverage: np.ndarray
    cov_kmers: np.ndarray
    table_bytes: int


def file_features(
    path: str | Path,
    k: int = 4,
    cov_k: int = 15,
    bins: int = 16,
    width: int = 16,
    threads: int = 1,
    scale: str = "linear",
    chunk_bases: int = DEFAULT_CHUNK_BASES,
    folder: str | Path | None = None,
) -> ReadFeatures:
    """Composition and coverage of every read of a FASTA/FASTQ file, in two streaming passes.

    Pass 1 reads chunks, computes composition and fills the k-mer table; pass 2 re-reads the
    file for the histograms. Each chunk's rows go straight to files in `folder` (a temporary
    folder when None, removed once mapped), so memory holds one chunk, the k-mer table and the
    pages of the result that are being read: nothing per read. Raises BiovaeError for bad
    input (see io.fastx) and when no read has a valid coverage k-mer (all reads shorter than cov_k).
    """
    import shutil
    import tempfile

    from biovae.features.kmers import n_canonical
    from biovae.features.spool import IdSpool, Spool

    own = folder is None
    folder = Path(tempfile.mkdtemp(prefix="biovae-features-") if own else folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        table = KmerTable.for_histogram(cov_k, bins, width, scale)
        ids, lengths = IdSpool(folder / "ids.txt"), Spool(folder / "lengths.i64", np.int64)
        comps, comp_n = Spool(folder / "composition.f32", np.float32, n_canonical(k)), Spool(folder / "comp_kmers.i64", np.int64)
        for chunk in iter_chunks(path, chunk_bases=chunk_bases):
            data, offsets = pack(chunk.seqs)
            comp = composition_packed(data, offsets, k, threads)
            table.add(data, offsets)
            ids.append(chunk.ids)
            lengths.append(np.diff(offsets))
            comps.append(comp.freqs)
            comp_n.append(comp.n_kmers)
        hists, cov_n = Spool(folder / "coverage.f32", np.float32, bins), Spool(folder / "cov_kmers.i64", np.int64)
        for chunk in iter_chunks(path, chunk_bases=chunk_bases, unique_ids=False):
            cov = table.histograms(*pack(chunk.seqs), bins, width, threads, scale)
            hists.append(cov.hist)
            cov_n.append(cov.n_kmers)
        cov_kmers = cov_n.finish()
        if not cov_kmers.any():
            raise BiovaeError(f"{path}: no read has a valid {cov_k}-mer (all reads are shorter than {cov_k} bases or full of N)", "lower the coverage k or give longer reads")
        return ReadFeatures(ids.finish(), lengths.finish(), comps.finish(), comp_n.finish(), hists.finish(),
                            cov_kmers, table.nbytes)
    finally:
        if own:  # the maps stay valid after their files are unlinked
            shutil.rmtree(folder, ignore_errors=True)


def bin_edges(bins: int = 16, width: int = 16, scale: str = "linear") -> np.ndarray:
    """Lowest count of each histogram bin (bins,) and, last, the count from which the last bin
    takes everything (the table's cap). "linear": 0, width, 2 width, ...; "log": 1, then geometric
    steps (at least one count wide) up to 128, the last bin taking counts >= its edge."""
    if bins < 1 or width < 1:
        raise BiovaeError(f"coverage histogram needs at least 1 bin of width >= 1, got {bins} bins of width {width}")
    if scale == "linear":
        edges = np.arange(bins) * width
        return np.append(edges, max(1, (bins - 1) * width))
    if scale != "log":
        raise BiovaeError(f"unknown coverage scale {scale!r}", "use linear or log")
    if bins > 128:
        raise BiovaeError(f"at most 128 log-scale coverage bins, got {bins}")
    edges = [1]
    for b in range(1, bins):
        edges.append(max(edges[-1] + 1, int(round(2 ** (b * 7 / max(1, bins - 1))))))
    return np.array(edges + [max(edges[-1], 255)], dtype=np.int64)


def _n_slots(k: int) -> int:
    return 1 << (2 * k - 1) if k % 2 else 1 << (2 * k)


def _count_dtype(cap: int):
    for dtype in (np.uint8, np.uint16, np.uint32):
        if cap <= np.iinfo(dtype).max:
            return dtype
    raise BiovaeError(f"coverage count cap {cap} is too large", "use fewer or narrower histogram bins")


# The kernels compute table slots for a batch of k-mers first and touch the table afterwards:
# the table (512 MiB) misses every cache, and a loop of independent loads lets the CPU keep many
# misses in flight, where interleaving them with the rolling-hash arithmetic did not (measured
# 2.5x faster on 20 Mb of E. coli reads at k = 15; radix-partitioning the batch by table region
# gained nothing more).
_BATCH = 4096


@numba.njit(cache=True, nogil=True)
def _add_batch(slots, nb, table, cap):
    for j in range(nb):
        i = slots[j]
        v = table[i]
        if v < cap:
            table[i] = v + 1


@numba.njit(cache=True, nogil=True)
def _hist_batch(slots, rows, nb, table, lut, counts):
    for j in range(nb):
        counts[rows[j], lut[table[slots[j]]]] += 1


@numba.njit(cache=True, nogil=True)
def _scan(data, offsets, k, base_code, table, cap, lut, counts, mode):
    """Walk every valid k-mer; mode 0 counts it into `table`, mode 1 adds its count's bin to
    counts[row]. Slots of odd k are dense over canonical k-mers (see module docstring)."""
    mask = (1 << (2 * k)) - 1
    top = 2 * (k - 1)
    hs = 2 * (k // 2)
    low = (1 << hs) - 1
    odd = k % 2 == 1
    slots = np.empty(_BATCH, dtype=np.int64)
    rows = np.empty(_BATCH, dtype=np.int64)
    nb = 0
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
                if odd:
                    x = fwd if ((fwd >> hs) & 3) < 2 else rev
                    slots[nb] = ((x >> (hs + 2)) << (hs + 1)) | (((x >> hs) & 1) << hs) | (x & low)
                else:
                    slots[nb] = min(fwd, rev)
                rows[nb] = row
                nb += 1
                if nb == _BATCH:
                    if mode == 0:
                        _add_batch(slots, nb, table, cap)
                    else:
                        _hist_batch(slots, rows, nb, table, lut, counts)
                    nb = 0
    if mode == 0:
        _add_batch(slots, nb, table, cap)
    else:
        _hist_batch(slots, rows, nb, table, lut, counts)
