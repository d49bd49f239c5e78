"""Canonical k-mer composition against a brute-force count on real genome windows."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from biovae.errors import BiovaeError
from biovae.features.kmers import composition, kmer_names, n_canonical
from biovae.io.fastx import read_fastx

GENOME = Path(__file__).resolve().parent / "data" / "genomes" / "mycobacterium_tuberculosis_H37Rv.fna.gz"  # 60 kb
_COMP = str.maketrans("ACGT", "TGCA")


def _rc(s: str) -> str:
    return s.translate(_COMP)[::-1]


def _brute(seq: str, k: int) -> tuple[np.ndarray, int]:
    """Reference: count min(kmer, revcomp) over windows with only ACGT, case-folded."""
    seq = seq.upper()
    counts = Counter()
    for i in range(len(seq) - k + 1):
        kmer = seq[i : i + k]
        if set(kmer) <= set("ACGT"):
            counts[min(kmer, _rc(kmer))] += 1
    names = kmer_names(k)
    vec = np.array([counts[n] for n in names], dtype=np.float64)
    total = int(vec.sum())
    return (vec / total if total else vec), total


@pytest.fixture(scope="module")
def windows() -> list[bytes]:
    genome = read_fastx(GENOME).seqs[0]
    rng = np.random.default_rng(7)
    out = []
    for _ in range(12):
        length = int(rng.integers(500, 4000))
        start = int(rng.integers(0, len(genome) - length))
        out.append(genome[start : start + length])
    return out


@pytest.mark.parametrize("k", [3, 4, 5, 6])
def test_equals_brute_force_count_on_real_windows(windows, k):
    got = composition(windows, k)
    assert got.freqs.dtype == np.float32 and got.freqs.shape == (len(windows), n_canonical(k))
    for row, seq in enumerate(windows):
        ref, total = _brute(seq.decode(), k)
        assert got.n_kmers[row] == total == len(seq) - k + 1
        np.testing.assert_allclose(got.freqs[row], ref, atol=1e-6)
    np.testing.assert_allclose(got.freqs.sum(axis=1), 1.0, atol=1e-5)


def test_column_counts_and_names():
    assert [n_canonical(k) for k in (3, 4, 5, 6)] == [32, 136, 512, 2080]
    names = kmer_names(4)
    assert names == sorted(names) and names[0] == "AAAA" and "TTTT" not in names
    assert all(n <= _rc(n) for n in names)


@pytest.mark.parametrize("k", [4, 5])
def test_reverse_complement_gives_the_same_vector(windows, k):
    rc = [_rc(s.decode()).encode() for s in windows]
    np.testing.assert_allclose(composition(rc, k).freqs, composition(windows, k).freqs, atol=1e-7)


def test_n_and_other_symbols_break_kmers(windows):
    seq = bytearray(windows[0][:600])
    for pos in (0, 50, 51, 300, 599):
        seq[pos] = ord("N")
    seq[200] = ord("R")  # IUPAC ambiguity code: not a base either
    got = composition([bytes(seq)], 4)
    ref, total = _brute(seq.decode(), 4)
    # 597 windows; lost: 1 at each end, 5 around 50-51, 4 around 300, 4 around 200
    assert got.n_kmers[0] == total == 597 - 15
    np.testing.assert_allclose(got.freqs[0], ref, atol=1e-6)


def test_lower_case_counts_as_upper(windows):
    lower = [s.lower() for s in windows[:3]]
    mixed = [bytes(c | 32 if i % 3 == 0 else c for i, c in enumerate(s)) for s in windows[:3]]
    ref = composition(windows[:3], 4).freqs
    np.testing.assert_array_equal(composition(lower, 4).freqs, ref)
    np.testing.assert_array_equal(composition(mixed, 4).freqs, ref)


def test_sequences_without_a_valid_kmer_are_zero_rows_not_nan(windows):
    got = composition([b"ACG", b"NNNNNNNNNN", b"ACGNACGNAC", windows[1]], 4)
    assert np.isfinite(got.freqs).all()
    assert got.n_kmers[:3].tolist() == [0, 0, 0] and got.n_kmers[3] > 0
    assert not got.freqs[:3].any()


def test_threads_give_identical_rows(windows):
    one = composition(windows, 5, threads=1)
    two = composition(windows, 5, threads=2)
    np.testing.assert_array_equal(one.freqs, two.freqs)
    np.testing.assert_array_equal(one.n_kmers, two.n_kmers)


def test_agrees_with_pykmertools(windows):
    pk = pytest.importorskip("pykmertools")
    for k in (3, 4, 6):
        oc = pk.OligoComputer(k)
        assert oc.get_header() == kmer_names(k)
        theirs = np.array(oc.vectorise_batch([s.decode() for s in windows]), dtype=np.float32)
        np.testing.assert_allclose(composition(windows, k).freqs, theirs, atol=1e-6)


@pytest.mark.parametrize("k", [2, 7, 4.0])
def test_bad_k_is_a_clear_error(k):
    with pytest.raises(BiovaeError, match="composition k must be an integer from 3 to 6"):
        composition([b"ACGTACGT"], k)
