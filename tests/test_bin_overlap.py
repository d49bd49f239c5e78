"""bin/overlap.py: bins whose reads share a genome's k-mers are joined; bins of different genomes,
and a phage beside the host that carries it, are not."""

import gzip

import numpy as np

from biovae.bin.overlap import bin_kmers, confirmed, distinct_per_read, join_shared, sketch_file

BASES = np.frombuffer(b"ACGT", dtype=np.uint8)


def _genome(n, seed):
    return np.random.default_rng(seed).choice(BASES, n)


def _reads(genome, n, seed, length=3000, error=0.04):
    """n reads of a circular genome, both strands, with substitutions at rate `error`."""
    rng = np.random.default_rng(seed)
    ring = np.concatenate([genome, genome[:length]])
    comp = bytes.maketrans(b"ACGT", b"TGCA")
    out = []
    for _ in range(n):
        start = rng.integers(len(genome))
        read = ring[start:start + length].copy()
        hit = rng.random(length) < error
        read[hit] = rng.choice(BASES, int(hit.sum()))
        seq = read.tobytes()
        out.append(seq.translate(comp)[::-1] if rng.random() < 0.5 else seq)
    return out


def _write(path, seqs):
    with gzip.open(path, "wt") as fh:
        for i, s in enumerate(seqs):
            fh.write(f">r{i}\n{s.decode()}\n")


def test_one_genome_in_two_bins_is_joined_and_another_genome_kept_apart(tmp_path):
    a, b = _genome(30_000, 1), _genome(30_000, 2)
    seqs = _reads(a, 400, 3) + _reads(b, 300, 4)
    _write(tmp_path / "r.fa.gz", seqs)
    labels = np.repeat([0, 1, 2], [200, 200, 300])  # genome a cut in two bins
    valid = np.ones(len(seqs), dtype=bool)
    new, stats = join_shared(tmp_path / "r.fa.gz", labels, valid, seed=1)
    assert len(stats["joined"]) == 1 and stats["joined"][0]["share"] > 0.5
    assert len(set(new[:400])) == 1 and new[0] != new[-1] and set(new[400:]) == {new[-1]}
    assert new[0] == 0  # renumbered by decreasing size: the joined bin (400 reads) first


def test_a_phage_is_not_joined_to_the_host_that_carries_it(tmp_path):
    phage = _genome(8_000, 5)
    host = np.concatenate([_genome(60_000, 6), phage, _genome(40_000, 7)])
    seqs = _reads(phage, 300, 8) + _reads(host, 600, 9)
    _write(tmp_path / "r.fa.gz", seqs)
    labels = np.repeat([1, 0], [300, 600])
    rows, hashes = distinct_per_read(*sketch_file(tmp_path / "r.fa.gz", np.ones(900, dtype=bool)))
    kmers = bin_kmers(rows, hashes, labels)
    # the host's reads confirm the phage's k-mers as well as the phage's own do ...
    assert confirmed(kmers[1], kmers[0]) > 0.8 * confirmed(kmers[1])
    new, stats = join_shared(tmp_path / "r.fa.gz", labels, np.ones(900, dtype=bool), seed=1)
    assert stats["joined"] == [] and np.array_equal(new, labels)  # ... but not the other way round


def test_unbinned_and_invalid_reads_stay_unbinned(tmp_path):
    a = _genome(20_000, 10)
    seqs = _reads(a, 300, 11)
    _write(tmp_path / "r.fa.gz", seqs)
    labels = np.repeat([0, 1, -1], [140, 140, 20])
    valid = np.ones(300, dtype=bool)
    valid[:5] = False
    labels[:5] = -1
    new, _ = join_shared(tmp_path / "r.fa.gz", labels, valid, seed=1)
    assert np.all(new[:5] == -1) and np.all(new[-20:] == -1) and len(set(new[5:280])) == 1


def test_the_sketch_is_the_same_on_one_or_two_threads(tmp_path):
    seqs = _reads(_genome(20_000, 12), 50, 13)
    _write(tmp_path / "r.fa.gz", seqs)
    want = np.arange(50) % 3 > 0
    one = sketch_file(tmp_path / "r.fa.gz", want, threads=1)
    two = sketch_file(tmp_path / "r.fa.gz", want, threads=2)
    assert len(one[0]) > 1000 and all(np.array_equal(a, b) for a, b in zip(one, two))
    assert set(one[0].tolist()) == set(np.flatnonzero(want).tolist())
