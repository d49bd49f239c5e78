"""Read-coverage histograms against a brute-force computation on real reads."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from biovae.errors import BiovaeError
from biovae.features.coverage import KmerTable, coverage, file_features, table_bytes
from biovae.features.scaling import apply_standardize, standardize
from biovae.io.fastx import read_fastx

GENOME = Path(__file__).resolve().parent / "data" / "genomes" / "staphylococcus_aureus_USA300.fna.gz"  # first 30 kb
_COMP = str.maketrans("ACGT", "TGCA")


def _brute(reads: list[bytes], k: int, bins: int, width: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Reference: global canonical counts in a dict, then each read's histogram of them."""
    texts = [r.decode().upper() for r in reads]

    def kmers(s):
        for i in range(len(s) - k + 1):
            km = s[i : i + k]
            if set(km) <= set("ACGT"):
                yield min(km, km.translate(_COMP)[::-1])

    counts = Counter(km for s in texts for km in kmers(s))
    hist = np.zeros((len(reads), bins))
    for row, s in enumerate(texts):
        for km in kmers(s):
            hist[row, min(counts[km] // width, bins - 1)] += 1
    n = hist.sum(axis=1)
    return np.divide(hist, n[:, None], out=np.zeros_like(hist), where=n[:, None] > 0), n, max(counts.values())


def _reads(n: int, region: int, seed: int, max_len: int = 1500) -> list[bytes]:
    """Reads from both strands of the first `region` bases of S. aureus: deep enough coverage
    that k-mer counts spread over many histogram bins."""
    genome = read_fastx(GENOME).seqs[0][:region]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        length = int(rng.integers(100, max_len))
        start = int(rng.integers(0, region - length))
        read = genome[start : start + length]
        if rng.random() < 0.5:
            read = read.decode().translate(_COMP)[::-1].encode()
        out.append(read)
    return out


@pytest.fixture(scope="module")
def reads() -> list[bytes]:
    reads = _reads(150, 20_000, seed=3)
    reads[5] = reads[5][:40] + b"N" + reads[5][41:]  # a read with N
    reads[6] = reads[6].lower()
    reads[7] = b"ACGTNACGT"  # no valid k-mer
    return reads


@pytest.mark.parametrize("k, bins, width", [(7, 8, 5), (8, 16, 2), (9, 16, 16), (9, 4, 1)])
def test_histogram_equals_brute_force(reads, k, bins, width):
    got = coverage(reads, k=k, bins=bins, width=width)
    ref, n, _ = _brute(reads, k, bins, width)
    np.testing.assert_array_equal(got.n_kmers, n)
    np.testing.assert_allclose(got.hist, ref, atol=1e-6)
    assert got.n_kmers[7] == 0 and not got.hist[7].any()
    # the reads are deep enough that the test would catch a wrong bin
    assert (ref[:, 1:] > 0).any(axis=0).sum() >= min(bins - 1, 3)


def test_k15_with_a_saturated_table_equals_brute_force():
    # 700 reads on 1 kb: k-mer counts pass 255, which a uint8 table must saturate, not wrap
    reads = _reads(700, 1_000, seed=5, max_len=700)
    got = coverage(reads, k=15, bins=16, width=16)
    ref, n, top = _brute(reads, 15, 16, 16)
    assert top > 255 and (ref[:, 15] > 0).any()
    np.testing.assert_array_equal(got.n_kmers, n)
    np.testing.assert_allclose(got.hist, ref, atol=1e-6)


def test_memory_bound_of_the_k15_table():
    assert table_bytes(15) == 512 * 2**20
    assert KmerTable.for_histogram(15, 16, 16).nbytes == 512 * 2**20
    assert KmerTable.for_histogram(15, 16, 32).table.dtype == np.uint16
    with pytest.raises(BiovaeError, match="coverage k must be an integer from 5 to 15"):
        KmerTable(16)


def test_table_built_for_fewer_bins_is_refused(reads):
    table = KmerTable.for_histogram(9, bins=4, width=4)
    table.add_seqs(reads)
    with pytest.raises(BiovaeError, match="saturates at 12"):
        table.histograms(*__import__("biovae.features.kmers", fromlist=["pack"]).pack(reads), bins=16, width=16)


def test_file_features_streams_two_passes_over_chunks(tmp_path, reads):
    path = tmp_path / "reads.fq"
    path.write_bytes(b"".join(b"@r%d\n%s\n+\n%s\n" % (i, r, b"#" * len(r)) for i, r in enumerate(reads)))
    got = file_features(path, k=4, cov_k=9, bins=16, width=16, chunk_bases=10_000, threads=2,
                        folder=tmp_path / "spool")
    ref = coverage(reads, k=9, bins=16, width=16)
    assert got.ids.tolist() == [f"r{i}" for i in range(len(reads))]
    assert isinstance(got.composition, np.memmap) and isinstance(got.coverage, np.memmap)  # on disk, not in RAM
    assert (tmp_path / "spool" / "composition.f32").stat().st_size == len(reads) * 136 * 4
    again = file_features(path, k=4, cov_k=9, bins=16, width=16, chunk_bases=10_000, threads=2)  # temporary folder
    np.testing.assert_array_equal(again.composition, got.composition)
    assert got.lengths.tolist() == [len(r) for r in reads]
    np.testing.assert_allclose(got.coverage, ref.hist, atol=1e-7)
    np.testing.assert_array_equal(got.cov_kmers, ref.n_kmers)
    assert got.composition.shape == (len(reads), 136) and got.comp_kmers[7] == 2


def test_all_reads_shorter_than_k_is_an_error(tmp_path):
    path = tmp_path / "short.fa"
    path.write_text(">a\nACGTACGT\n>b\nACGTNNACGTAC\n")
    with pytest.raises(BiovaeError, match="no read has a valid 15-mer"):
        file_features(path)


def test_zero_columns_scale_to_zero_not_nan(reads):
    # With 64 bins of width 64 no read reaches the upper bins: all-zero columns, the case that
    # made LRBinner divide by zero.
    hist = coverage(reads, k=9, bins=64, width=64).hist
    assert (hist == 0).all(axis=0).sum() > 10
    z = standardize(hist)
    assert np.isfinite(z.values).all()
    assert not z.values[:, (hist == 0).all(axis=0)].any()
    live = hist.std(axis=0) > 0
    np.testing.assert_allclose(z.values[:, live].std(axis=0), 1.0, atol=1e-4)
    np.testing.assert_allclose(apply_standardize(hist[:5], z.mean, z.scale), z.values[:5], atol=1e-6)


def test_agrees_with_the_kmertools_cov_binary(tmp_path, reads):
    binary = shutil.which("kmertools") or str(Path(sys.executable).with_name("kmertools"))
    if not Path(binary).exists():
        pytest.skip("kmertools binary not installed")
    sub = [r for r in reads[:60] if len(r) >= 7 and b"N" not in r.upper()]
    fasta = tmp_path / "r.fa"
    fasta.write_bytes(b"".join(b">r%d\n%s\n" % (i, r.upper()) for i, r in enumerate(sub)))
    subprocess.run([binary, "cov", "-i", str(fasta), "-o", str(tmp_path / "out"), "-k", "7", "-s", "5", "-c", "8", "-t", "1"], check=True, capture_output=True)
    theirs = np.loadtxt(tmp_path / "out" / "kmers.vectors", dtype=np.float32)
    np.testing.assert_allclose(coverage(sub, k=7, bins=8, width=5).hist, theirs, atol=2e-6)
