"""Marker-gene bin quality (biovae.bin.markers / quality) on a synthetic genome and HMMs built here:
three random proteins, each made a profile with pyhmmer's builder, back-translated into genes
inside random DNA; pyrodigal must call them and pyhmmer find them."""

import numpy as np
import pytest

pytest.importorskip("pyhmmer")
pytest.importorskip("pyrodigal")

from biovae.bin import markers, quality  # noqa: E402
from biovae.errors import BiovaeError  # noqa: E402

AMINO = "ACDEFGHIKLMNPQRSTVWY"
CODONS = {"A": ["GCT", "GCC", "GCA", "GCG"], "C": ["TGT", "TGC"], "D": ["GAT", "GAC"], "E": ["GAA", "GAG"],
          "F": ["TTT", "TTC"], "G": ["GGT", "GGC", "GGA", "GGG"], "H": ["CAT", "CAC"], "I": ["ATT", "ATC", "ATA"],
          "K": ["AAA", "AAG"], "L": ["CTT", "CTC", "CTG", "TTA", "TTG"], "M": ["ATG"], "N": ["AAT", "AAC"],
          "P": ["CCT", "CCC", "CCA", "CCG"], "Q": ["CAA", "CAG"], "R": ["CGT", "CGC", "AGA", "CGG"],
          "S": ["TCT", "TCC", "AGC", "TCG"], "T": ["ACT", "ACC", "ACA", "ACG"], "V": ["GTT", "GTC", "GTA", "GTG"],
          "W": ["TGG"], "Y": ["TAT", "TAC"]}


def _proteins(rng, n=3, length=250):
    return ["M" + "".join(rng.choice(list(AMINO), length - 1)) for _ in range(n)]


def _gene(rng, protein):
    return "".join(rng.choice(CODONS[a]) for a in protein) + "TAA"


def _background(rng, n):
    return "".join(rng.choice(list("ACGT"), n))


def _hmm_file(tmp_path, proteins):
    import pyhmmer

    alphabet = pyhmmer.easel.Alphabet.amino()
    builder, background = pyhmmer.plan7.Builder(alphabet), pyhmmer.plan7.Background(alphabet)
    path = tmp_path / "markers.hmm"
    with open(path, "wb") as fh:
        for k, protein in enumerate(proteins):
            seq = pyhmmer.easel.TextSequence(name=f"M{k}".encode(), sequence=protein).digitize(alphabet)
            hmm, _, _ = builder.build(seq, background)
            hmm.name = f"MK{k:03d}"
            hmm.cutoffs.trusted = (40.0, 40.0)
            hmm.write(fh)
    return path


def _contig(rng, genes):
    parts = [_background(rng, 600)]
    for g in genes:
        parts += [g, _background(rng, 400)]
    return "".join(parts).encode()


def test_markers_are_found_and_bins_scored(tmp_path):
    rng = np.random.default_rng(3)
    proteins = _proteins(rng)
    hmms = markers.load_profiles(_hmm_file(tmp_path, proteins))
    assert markers.n_markers(hmms) == 3
    genes = [_gene(rng, p) for p in proteins]
    seqs = [_contig(rng, genes[:2]), _contig(rng, genes[2:]),  # bin 0: all three markers once
            _contig(rng, genes[:1]), _contig(rng, genes[:1]),  # bin 1: marker 0 twice
            _background(rng, 3000).encode()]                    # bin 1: no marker
    hits = markers.marker_hits(seqs, hmms, min_length=500)
    assert sorted(map(tuple, hits.to_numpy().tolist())) == [(0, "MK000"), (0, "MK001"), (1, "MK002"),
                                                            (2, "MK000"), (3, "MK000")]
    table = markers.bin_marker_table(np.array([0, 0, 1, 1, 1]), hits, 3).set_index("label")
    assert table.loc[0, ["markers", "completeness", "contamination"]].tolist() == [3, 100.0, 0.0]
    assert table.loc[1, ["markers", "extra_copies", "completeness", "contamination"]].tolist() == [1, 1, 33.3, 33.3]


def test_a_gene_cut_short_is_not_counted(tmp_path):
    rng = np.random.default_rng(4)
    proteins = _proteins(rng, n=1)
    hmms = markers.load_profiles(_hmm_file(tmp_path, proteins))
    whole = _gene(rng, proteins[0])
    cut = whole[: 3 * 60]  # a fifth of the gene at a contig end, below the 40 % profile span
    hits = markers.marker_hits([_background(rng, 800).encode() + cut.encode()], hmms, min_length=100)
    assert hits.empty


def test_estimate_per_bin_and_skips_without_a_marker_set(tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    proteins = _proteins(rng, n=2)
    hmm = _hmm_file(tmp_path, proteins)
    genes = [_gene(rng, p) for p in proteins]
    fasta = tmp_path / "c.fa"
    fasta.write_bytes(b"".join(b">c%d\n%s\n" % (k, s) for k, s in enumerate(
        [_contig(rng, genes), _contig(rng, genes[:1]), _background(rng, 2000).encode()])))
    labels, valid = np.array([0, 1, -1]), np.ones(3, bool)
    _, q = quality.estimate(fasta, valid, labels, marker_file=hmm, min_length=500)
    assert q["markers"] == 2 and q["genes_found"] == 3
    assert q["per_bin"]["bin_0"]["completeness"] == 100.0 and q["per_bin"]["bin_1"]["completeness"] == 50.0
    assert "2 bins >= 50% and < 10%" not in quality.headline(q) and "1 bins >= 90%" in quality.headline(q)

    monkeypatch.delenv(markers.ENV, raising=False)
    monkeypatch.setattr(markers, "PACKAGED", ())
    _, skipped = quality.estimate(fasta, valid, labels)
    assert "no marker HMM set found" in skipped["skipped"] and "per_bin" not in skipped
    assert quality.headline(skipped) is None
    with pytest.raises(BiovaeError, match="does not exist"):
        markers.find_marker_hmm(tmp_path / "none.hmm")
    (tmp_path / "bad.hmm").write_text("not an hmm\n")
    with pytest.raises(BiovaeError, match="cannot be read"):
        markers.load_profiles(tmp_path / "bad.hmm")


def test_quality_modes():
    assert quality.wanted("auto", True) and not quality.wanted("auto", False)
    assert quality.wanted("on", False) and not quality.wanted("off", True)


def _hits(pairs):
    import pandas as pd

    return pd.DataFrame(pairs, columns=["sequence", "marker"])


def test_refine_splits_a_mixed_bin_and_merges_complementary_fragments():
    from biovae.bin.marker_refine import refine

    rng = np.random.default_rng(0)
    total = 20
    names = [f"m{j}" for j in range(total)]
    # genome A: sequences 0-19 around (0, 0), one marker each; genome B: 20-39 around (10, 0);
    # genome C: 40-59 around (0, 10), in two fragments (40-49, 50-59) with disjoint markers
    mean = np.concatenate([rng.normal(c, 0.3, (20, 2)) for c in ([0, 0], [10, 0], [0, 10])])
    hits = _hits([(i, names[i % 20]) for i in range(60)])
    labels = np.array([0] * 40 + [1] * 10 + [2] * 10)  # bin 0 mixes A and B
    new, changes = refine(labels, np.arange(60), mean, hits, total, seed=1)
    assert len(set(new[:20])) == 1 and len(set(new[20:40])) == 1 and new[0] != new[20]
    assert len(set(new[40:])) == 1 and new[40] not in (new[0], new[20])
    assert any(c.startswith("split bin 0") for c in changes) and any(c.startswith("merged") for c in changes)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_refine_cuts_off_a_few_long_contaminant_contigs_not_the_spread_genome(seed):
    """A bin of one genome spread along x (40 short contigs) and 6 long contigs of another genome
    carrying copies of its markers: an unweighted 2-means cuts the spread genome in halves; the
    length-weighted, marker-started cut separates the two genomes."""
    from biovae.bin.marker_refine import refine

    rng = np.random.default_rng(3)
    total = 20
    mean = np.concatenate([np.column_stack([np.linspace(-10, 10, 40), rng.normal(0, 0.2, 40)]),
                           rng.normal([0, 3], 0.2, (6, 2))])
    lengths = np.array([2000] * 40 + [60000] * 6)
    hits = _hits([(i, f"m{j}") for j, i in enumerate(rng.permutation(40)[:20])] + [(40 + j, f"m{j}") for j in range(6)])
    labels = np.zeros(46, dtype=np.int64)
    new, changes = refine(labels, np.arange(46), mean, hits, total, seed=seed, lengths=lengths)
    assert len(set(new[:40])) == 1 and len(set(new[40:])) == 1 and new[0] != new[40], changes
    assert len(changes) == 1 and changes[0].startswith("split bin 0")


def test_refine_leaves_clean_bins_and_overlapping_fragments_alone():
    from biovae.bin.marker_refine import refine

    rng = np.random.default_rng(1)
    total = 20
    mean = np.concatenate([rng.normal(c, 0.3, (20, 2)) for c in ([0, 0], [3, 0])])
    # two bins each holding the same 12 markers (two genomes): no merge; each clean: no split
    hits = _hits([(i, f"m{i % 12}") for i in range(12)] + [(20 + i, f"m{i % 12}") for i in range(12)])
    labels = np.array([0] * 20 + [1] * 20)
    new, changes = refine(labels, np.arange(40), mean, hits, total)
    assert changes == [] and (new == labels).all()


def test_contig_run_reports_marker_quality_per_bin(tmp_path):
    import biovae.bin

    rng = np.random.default_rng(6)
    proteins = _proteins(rng, n=3, length=150)
    hmm = _hmm_file(tmp_path, proteins)
    records, rows = [], ["contigname\ts1\ts2"]
    for g, (gc, depth) in enumerate([(0.35, (4.0, 20.0)), (0.65, (25.0, 3.0))]):
        p = [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]
        for c in range(30):
            seq = "".join(rng.choice(list("ACGT"), 2500, p=p))
            if c < 3:  # each genome holds the three markers once
                seq = seq[:800] + _gene(rng, proteins[c]) + seq[800:]
            records.append((f"g{g}_c{c}", seq))
            rows.append(f"g{g}_c{c}\t" + "\t".join(f"{d * rng.lognormal(0, 0.1):.3f}" for d in depth))
    fasta = tmp_path / "contigs.fa"
    fasta.write_text("".join(f">{n}\n{s}\n" for n, s in records))
    (tmp_path / "ab.tsv").write_text("\n".join(rows) + "\n")
    s = biovae.bin.BinSettings(epochs=5, plot="none", seed=2, progress=False, threads=1, markers=str(hmm))
    result = biovae.bin.run(fasta, tmp_path / "out", abundance=tmp_path / "ab.tsv", settings=s)
    q = result.summary["marker_quality"]
    assert q["markers"] == 3 and q["genes_found"] >= 5
    assert set(q["per_bin"]) == set(result.quality.index)
    assert {"completeness", "contamination"} <= set(result.quality.columns)
    assert result.quality["markers"].sum() >= 5
    assert "completeness" in (tmp_path / "out" / "report.html").read_text()


def test_a_missing_marker_file_is_refused_before_training(tmp_path, capsys):
    from biovae.cli import main

    fasta = tmp_path / "c.fa"
    fasta.write_text(">c1\nACGT\n")
    (tmp_path / "ab.tsv").write_text("contigname\ts1\nc1\t1\n")
    out = tmp_path / "out"
    assert main(["bin", str(fasta), "--abundance", str(tmp_path / "ab.tsv"), "-o", str(out), "--quiet",
                 "--markers", str(tmp_path / "none.hmm")]) == 2
    err = capsys.readouterr().err.strip()
    assert "marker HMM file" in err and "none.hmm" in err and "\n" not in err and not out.exists()
