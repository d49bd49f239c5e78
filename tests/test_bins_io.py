"""bins.tsv, CAMI binning, per-bin FASTA and the truth/bins readers."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from biovae.errors import BiovaeError
from biovae.io.bins import (
    bin_names,
    read_bins,
    read_truth,
    write_bin_fasta,
    write_vamb_clusters,
    write_bins_tsv,
    write_cami_binning,
)

IDS = ["read/1", "read 2", "r3", "r4", "r5"]
LABELS = np.array([1, -1, 0, 1, -1])


def test_bins_tsv_keeps_every_id_once_in_input_order(tmp_path):
    path = tmp_path / "out" / "bins.tsv"
    write_bins_tsv(path, IDS, LABELS)
    lines = path.read_text().splitlines()
    assert lines[0] == "sequence_id\tbin"
    assert [line.split("\t")[0] for line in lines[1:]] == IDS
    assert [line.split("\t")[1] for line in lines[1:]] == ["bin_1", "unbinned", "bin_0", "bin_1", "unbinned"]
    back = read_bins(path)
    assert back["sequence_id"].tolist() == IDS
    assert back["bin"].tolist() == bin_names(LABELS)
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp left


def test_bin_names_pad_to_a_common_width():
    assert bin_names([0, 10, -1, 3]) == ["bin_00", "bin_10", "unbinned", "bin_03"]
    assert bin_names(["x", "unbinned"]) == ["x", "unbinned"]


@pytest.mark.parametrize(
    "ids, labels, words",
    [
        (["a", "b", "a"], [0, 0, 1], "duplicate sequence id 'a'"),
        (["a", "b"], [0], "2 sequence ids but 1 bin labels"),
        (["a\tb", "c"], [0, 1], "holds a tab"),
    ],
)
def test_bins_tsv_rejects_bad_ids_and_writes_nothing(tmp_path, ids, labels, words):
    path = tmp_path / "bins.tsv"
    with pytest.raises(BiovaeError, match=words):
        write_bins_tsv(path, ids, labels)
    assert not path.exists()


def test_bins_tsv_onto_a_folder_is_a_clear_error(tmp_path):
    with pytest.raises(BiovaeError, match="is a folder"):
        write_bins_tsv(tmp_path, IDS, LABELS)


def test_cami_binning_format_leaves_unbinned_out(tmp_path):
    path = tmp_path / "bins.binning"
    write_cami_binning(path, IDS, LABELS, sample_id="S1", lengths=[10, 20, 30, 40, 50])
    assert path.read_text().splitlines() == [
        "@Version:0.9.1",
        "@SampleID:S1",
        "",
        "@@SEQUENCEID\tBINID\tLENGTH",
        "read/1\tbin_1\t10",
        "r3\tbin_0\t30",
        "r4\tbin_1\t40",
    ]
    back = read_bins(path)
    assert back["sequence_id"].tolist() == ["read/1", "r3", "r4"]
    truth = read_truth(path)  # the same file serves as a gold standard
    assert truth["genome"].tolist() == ["bin_1", "bin_0", "bin_1"]
    assert truth["length"].tolist() == [10, 30, 40]


def test_cami_binning_without_lengths(tmp_path):
    path = tmp_path / "b.binning"
    write_cami_binning(path, ["x", "y"], ["g1", "unbinned"])
    assert path.read_text().splitlines()[3:] == ["@@SEQUENCEID\tBINID", "x\tg1"]


def test_fasta_per_bin(tmp_path):
    seqs = ["ACGTACGTAC", "GG", "TTTT", b"CCCCC", "AAA"]
    out = tmp_path / "bins"
    counts = write_bin_fasta(out, IDS, seqs, LABELS, width=4)
    assert counts == {"bin_1": 2, "bin_0": 1}
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["bin_0.fna", "bin_1.fna"]
    assert (out / "bin_1.fna").read_text() == ">read/1\nACGT\nACGT\nAC\n>r4\nCCCC\nC\n"
    assert (out / "bin_0.fna").read_text() == ">r3\nTTTT\n"
    counts = write_bin_fasta(out, IDS, seqs, LABELS, include_unbinned=True, width=0)
    assert counts["unbinned"] == 2
    assert (out / "unbinned.fna").read_text() == ">read 2\nGG\n>r5\nAAA\n"


def test_gzipped_fasta_per_bin_and_vamb_clusters(tmp_path):
    out = tmp_path / "bins"
    write_bin_fasta(out, IDS, ["ACGTACGTAC", "GG", "TTTT", "CCCCC", "AAA"], LABELS, compress=True)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["bin_0.fna.gz", "bin_1.fna.gz"]
    assert gzip.open(out / "bin_0.fna.gz", "rt").read() == ">r3\nTTTT\n"
    write_vamb_clusters(tmp_path / "clusters.tsv", IDS, bin_names(LABELS))
    assert (tmp_path / "clusters.tsv").read_text().splitlines() == [
        "clustername\tcontigname", "bin_0\tr3", "bin_1\tread/1", "bin_1\tr4"]


def test_fasta_failure_leaves_the_old_folder(tmp_path):
    out = tmp_path / "bins"
    write_bin_fasta(out, ["a"], ["ACGT"], [0])
    with pytest.raises(UnicodeDecodeError):
        write_bin_fasta(out, ["a", "b"], ["ACGT", b"\xff\xfe"], [0, 0])
    assert [p.name for p in out.iterdir() if not p.name.startswith(".")] == ["bin_0.fna"]
    assert (out / "bin_0.fna").read_text() == ">a\nACGT\n"
    assert [p.name for p in tmp_path.iterdir()] == ["bins"]


def test_truth_two_columns_without_header(tmp_path):
    path = tmp_path / "truth.tsv"
    path.write_text("r1\tecoli\nr2\tbsub\n\n")
    truth = read_truth(path)
    assert truth.columns.tolist() == ["sequence_id", "genome"]
    assert truth["genome"].tolist() == ["ecoli", "bsub"]


def test_truth_three_columns_with_header_gzip(tmp_path):
    path = tmp_path / "truth.tsv.gz"
    path.write_bytes(gzip.compress(b"read_id\tgenome\tlength\nr1\tecoli\t1500\nr2\tbsub\t900\n"))
    truth = read_truth(path)
    assert truth["sequence_id"].tolist() == ["r1", "r2"]
    assert truth["length"].tolist() == [1500, 900]
    assert truth["length"].dtype == np.int64


def test_truth_cami_gold_standard_with_taxid(tmp_path):
    path = tmp_path / "gold.binning"
    path.write_text("#comment\n@Version:0.9.1\n@SampleID:s\n@@SEQUENCEID\tTAXID\tBINID\tLENGTH\n"
                    "c1\t562\tecoli\t5000\nc2\t1423\tbsub\t700\n")
    truth = read_truth(path)
    assert truth.to_dict("list") == {"sequence_id": ["c1", "c2"], "genome": ["ecoli", "bsub"],
                                     "length": [5000, 700]}


@pytest.mark.parametrize(
    "text, words",
    [
        ("r1\tecoli\nr2\n", r"line 2: expected 2 tab-separated columns"),
        ("r1 ecoli\n", "found one column"),
        ("r1\tecoli\nr1\tbsub\n", r"line 2: sequence id 'r1' appears more than once"),
        ("sequence_id\tgenome\tlength\nr1\tecoli\t-5\n", r"line 2: length '-5' is not a whole number"),
        ("@@SEQUENCEID\tLENGTH\nr1\t5\n", "has no BINID column"),
        ("\n\n", "no data rows"),
        ("sequence_id\tgenome\n", "no data rows"),
    ],
)
def test_truth_errors_name_the_line(tmp_path, text, words):
    path = tmp_path / "truth.tsv"
    path.write_text(text)
    with pytest.raises(BiovaeError, match=words) as err:
        read_truth(path)
    assert "truth.tsv" in str(err.value)


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(BiovaeError, match="file not found"):
        read_truth(tmp_path / "nope.tsv")
    with pytest.raises(BiovaeError, match="is not a file"):
        read_bins(tmp_path)
    bad = tmp_path / "bad.tsv"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(BiovaeError, match="not a text file"):
        read_bins(bad)


def test_bins_reader_errors(tmp_path):
    path = tmp_path / "bins.tsv"
    path.write_text("sequence_id\tbin\nr1\tbin_0\nr2\t\n")
    with pytest.raises(BiovaeError, match=r"line 3: expected 2 tab-separated columns"):
        read_bins(path)
    path.write_text("r1\tbin_0\nr1\tbin_1\n")
    with pytest.raises(BiovaeError, match="'r1' appears more than once"):
        read_bins(path)
