"""Binning metrics: against CAMI AMBER's own output and against hand-computed values."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score

from biovae.errors import BiovaeError
from biovae.evaluate.binning import binning_metrics, evaluate_files

# Twelve sequences of three genomes: two unbinned, one genome split over two bins, bin2 with
# an equal number of reads of two genomes (mapped by bp, as AMBER does), and gC's two bins
# tied on bp (AMBER takes the first seen).
SMALL = [  # sequence, genome, length, bin (None = unbinned)
    ("s1", "gA", 1000, "bin1"), ("s2", "gA", 2000, "bin1"), ("s3", "gA", 500, "bin2"),
    ("s4", "gB", 3000, "bin2"), ("s5", "gB", 1500, "bin2"), ("s6", "gA", 800, "bin2"),
    ("s7", "gC", 1200, "bin3"), ("s8", "gC", 700, None), ("s9", "gB", 400, "bin1"),
    ("s10", "gC", 900, "bin4"), ("s11", "gC", 300, "bin4"), ("s12", "gB", 600, None),
]

# cami-amber 2.0.8 (PyPI), run on SMALL written as CAMI files:
#   amber.py -g gold.binning -l mytool bins.binning -o out
# figures copied from out/results.tsv (row Tool=mytool); AMBER's field names as keys.
AMBER_RESULTS = {
    "accuracy_bp": 0.7674418604651163, "accuracy_seq": 0.5833333333333334,
    "adjusted_rand_index_bp": 0.5410931250698963, "adjusted_rand_index_seq": 0.16,
    "f1_score_bp": 0.7490842650125593, "f1_score_seq": 0.5459770114942529,
    "f1_score_per_bp": 0.7534444298648473, "f1_score_per_seq": 0.5223880597014926,
    "percentage_of_assigned_bps": 0.8992248062015504, "percentage_of_assigned_seqs": 0.8333333333333334,
    "precision_avg_bp": 0.914553752535497, "precision_avg_seq": 0.7916666666666666,
    "precision_weighted_bp": 0.853448275862069, "precision_weighted_seq": 0.7,
    "rand_index_bp": 0.7890721851764867, "rand_index_seq": 0.6888888888888889,
    "recall_avg_bp": 0.6343176703266726, "recall_avg_seq": 0.4166666666666667,
    "recall_weighted_bp": 0.6744186046511628, "recall_weighted_seq": 0.4166666666666667,
}
# ... and from out/genome/mytool/metrics_per_bin.tsv: bin -> (genome, purity bp,
# completeness bp, purity seq, completeness seq)
AMBER_PER_BIN = {
    "bin1": ("gA", 0.8823529411764706, 0.6976744186046512, 0.6666666666666666, 0.5),
    "bin2": ("gB", 0.7758620689655172, 0.8181818181818182, 0.5, 0.5),
    "bin3": ("gC", 1.0, 0.3870967741935484, 1.0, 0.25),
    "bin4": ("gC", 1.0, 0.3870967741935484, 1.0, 0.5),
}
OURS = {  # our key -> AMBER's, per unit (seq / bp)
    "accuracy": "accuracy", "ari": "adjusted_rand_index", "f1_avg": "f1_score",
    "f1_sample": "f1_score_per", "fraction_binned": "percentage_of_assigned",
    "precision_avg": "precision_avg", "precision_sample": "precision_weighted",
    "rand_index": "rand_index", "recall_avg": "recall_avg", "recall_sample": "recall_weighted",
}


def _amber_key(ours: str, unit: str) -> str:
    base = OURS[ours]
    if base == "percentage_of_assigned":
        return base + ("_bps" if unit == "bp" else "_seqs")
    if base == "f1_score_per":
        return base + "_" + unit
    return f"{base}_{unit}"


def _write_small(tmp_path):
    bins = tmp_path / "bins.tsv"
    truth = tmp_path / "truth.tsv"
    bins.write_text("sequence_id\tbin\n" + "".join(f"{s}\t{b or 'unbinned'}\n" for s, _, _, b in SMALL))
    truth.write_text("sequence_id\tgenome\tlength\n" + "".join(f"{s}\t{g}\t{n}\n" for s, g, n, _ in SMALL))
    return bins, truth


def test_small_table_matches_amber(tmp_path, capsys):
    bins, truth = _write_small(tmp_path)
    result = evaluate_files(bins, truth, out_dir=tmp_path / "eval")
    assert capsys.readouterr().out == ""
    for unit, section in (("seq", "by_sequence"), ("bp", "by_bp")):
        for ours in OURS:
            assert result[section][ours] == pytest.approx(AMBER_RESULTS[_amber_key(ours, unit)], abs=1e-12), (section, ours)
    per_bin = {row["bin"]: row for row in result["per_bin"]}
    for name, (genome, p_bp, r_bp, p_seq, r_seq) in AMBER_PER_BIN.items():
        row = per_bin[name]
        assert row["genome"] == genome
        assert (row["precision_bp"], row["recall_bp"], row["precision_seq"], row["recall_seq"]) == pytest.approx(
            (p_bp, r_bp, p_seq, r_seq), abs=1e-12)
    assert (result["sequences"], result["sequences_binned"], result["bins"], result["genomes"]) == (12, 10, 4, 3)

    saved = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert saved["by_bp"] == pytest.approx(result["by_bp"])
    table = (tmp_path / "eval" / "per_bin.tsv").read_text().splitlines()
    assert table[0].split("\t") == ["bin", "genome", "sequences", "tp_sequences", "precision_seq",
                                    "recall_seq", "bp", "tp_bp", "precision_bp", "recall_bp"]
    assert table[1].split("\t")[:4] == ["bin1", "gA", "3", "2"]


def test_cami_inputs_give_the_same_figures(tmp_path):
    bins, truth = _write_small(tmp_path)
    gold = tmp_path / "gold.binning"
    pred = tmp_path / "bins.binning"
    gold.write_text("@Version:0.9.1\n@SampleID:small\n\n@@SEQUENCEID\tBINID\tLENGTH\n"
                    + "".join(f"{s}\t{g}\t{n}\n" for s, g, n, _ in SMALL))
    pred.write_text("@Version:0.9.1\n@SampleID:small\n\n@@SEQUENCEID\tBINID\n"
                    + "".join(f"{s}\t{b}\n" for s, _, _, b in SMALL if b))
    tsv = evaluate_files(bins, truth)
    cami = evaluate_files(pred, gold)
    assert cami["by_bp"] == tsv["by_bp"] and cami["by_sequence"] == tsv["by_sequence"]
    assert cami["missing_from_bins"] == 2 and tsv["missing_from_bins"] == 0


def test_tiny_table_by_hand():
    # a1 a2 -> b1 (all A); a3 (A, 150 bp) + x1 (B, 300 bp) -> b2, mapped to B by bp; x2 unbinned.
    result = binning_metrics(["b1", "b1", "b2", "b2", "unbinned"], ["A", "A", "A", "B", "B"],
                             [100, 100, 150, 300, 100])
    seq, bp = result["by_sequence"], result["by_bp"]
    assert seq["precision_avg"] == pytest.approx((1 + 1 / 2) / 2)
    assert bp["precision_avg"] == pytest.approx((1 + 300 / 450) / 2)
    assert seq["recall_avg"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert bp["recall_avg"] == pytest.approx((200 / 350 + 300 / 400) / 2)
    assert seq["precision_sample"] == pytest.approx(3 / 4)
    assert bp["precision_sample"] == pytest.approx(500 / 650)
    assert seq["recall_sample"] == pytest.approx(3 / 5)
    assert bp["recall_sample"] == pytest.approx(500 / 750)
    assert seq["f1_sample"] == pytest.approx(2 * (3 / 4) * (3 / 5) / (3 / 4 + 3 / 5))
    assert seq["accuracy"] == pytest.approx(3 / 5)
    assert seq["fraction_binned"] == pytest.approx(4 / 5) and bp["fraction_binned"] == pytest.approx(650 / 750)
    # pairs among the 4 binned: 6; same bin 2, same genome 3, both 1.
    assert seq["rand_index"] == pytest.approx((6 - 2 - 3 + 2 * 1) / 6)
    assert seq["ari"] == pytest.approx(0.0)
    genomes = {row["genome"]: row for row in result["per_genome"]}
    assert genomes["A"]["best_bin"] == "b1" and genomes["B"]["best_bin"] == "b2"
    assert genomes["B"]["recall_bp"] == pytest.approx(0.75)


def test_perfect_binning_and_integer_labels():
    result = binning_metrics(np.array([3, 3, 7, 7, 7]), ["x", "x", "y", "y", "y"], None)
    assert result["by_bp"] is None
    for key in ("precision_avg", "recall_avg", "f1_avg", "precision_sample", "recall_sample",
                "accuracy", "rand_index", "ari", "fraction_binned"):
        assert result["by_sequence"][key] == pytest.approx(1.0), key
    assert [row["bins_mapped"] for row in result["per_genome"]] == [1, 1]


def test_everything_unbinned_gives_zero_recall_and_no_precision():
    result = binning_metrics([-1, -1, -1], ["x", "y", "y"], [10, 20, 30])
    assert result["bins"] == 0
    assert result["by_bp"]["recall_avg"] == 0.0 and result["by_bp"]["precision_avg"] is None
    assert result["by_sequence"]["ari"] is None and result["per_bin"] == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-1, 3), st.integers(0, 3)), min_size=2, max_size=40))
def test_sequence_ari_equals_sklearn_on_binned(pairs):
    pred = np.array([p for p, _ in pairs])
    true = np.array([t for _, t in pairs])
    result = binning_metrics(pred, [f"g{t}" for t in true])
    keep = pred >= 0
    if keep.sum() >= 2:
        expected = adjusted_rand_score(true[keep], pred[keep])
        assert result["by_sequence"]["ari"] == pytest.approx(expected, abs=1e-9)
    assert result["by_sequence"]["fraction_binned"] == pytest.approx(keep.mean())


def test_unknown_ids_are_a_clear_error(tmp_path):
    bins, truth = _write_small(tmp_path)
    bins.write_text(bins.read_text() + "stranger\tbin1\n")
    with pytest.raises(BiovaeError, match=r"1 sequence ids are not in the truth table, the first is 'stranger'"):
        evaluate_files(bins, truth)


def test_out_dir_that_is_a_file(tmp_path):
    bins, truth = _write_small(tmp_path)
    with pytest.raises(BiovaeError, match="exists and is a file"):
        evaluate_files(bins, truth, out_dir=bins)
