"""`biovae bin` end to end on real sequences: SimLoRD reads of the bundled demo (four real genomes)
and contigs cut from the genome windows in tests/data. Asserts binning quality, that no read is
lost or renamed, determinism, small inputs, and that every kind of bad input is one clear message,
exit 2 and no output."""

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from browser import assert_report_shows_plots, needs_browser
from biovae.cli import main
from biovae.engine.vae import VAE

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
# 360 kb of each of three genomes of GC 53.5%, 50.8% and 38.9% (tests/data/README.md)
CONTIG_GENOMES = [Path(__file__).resolve().parent / "data" / "genomes" / f"{name}.fna.gz" for name in (
    "corynebacterium_diphtheriae_NCTC11397", "escherichia_coli_MG1655", "helicobacter_pylori_G27")]
FAST = ["--epochs", "25", "--quiet", "--threads", "1", "--seed", "3"]


def _demo_records(n: int) -> list[tuple[str, str]]:
    """The first n reads of the demo set, as (id, sequence)."""
    out, name, seq = [], None, []
    with gzip.open(DEMO / "reads.fa.gz", "rt") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if line.startswith(">"):
                if name is not None:
                    out.append((name, "".join(seq)))
                    if len(out) == n:
                        return out
                name, seq = line[1:].split()[0], []
            else:
                seq.append(line)
    out.append((name, "".join(seq)))
    return out[:n]


def _fasta(path: Path, records) -> Path:
    path.write_text("".join(f">{i}\n{s}\n" for i, s in records))
    return path


@pytest.fixture(scope="module")
def reads600(tmp_path_factory) -> Path:
    return _fasta(tmp_path_factory.mktemp("reads") / "reads600.fa", _demo_records(600))


@pytest.fixture(scope="module")
def binned(reads600, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bin") / "out"
    assert main(["bin", str(reads600), "-o", str(out), "--truth", str(DEMO / "truth.tsv"), "--write-fasta",
                 "--fasta-gzip", "--sample-id", "demo", *FAST]) == 0
    return out


def test_reads_are_binned_by_genome_and_keep_their_names(reads600, binned):
    ids = [i for i, _ in _demo_records(600)]
    table = pd.read_csv(binned / "bins.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert list(table["sequence_id"]) == ids  # every read, once, in input order, names unchanged
    truth = pd.read_csv(DEMO / "truth.tsv", sep="\t", dtype=str).set_index("sequence_id")["genome"]
    binned_rows = table[table["bin"] != "unbinned"]
    assert len(binned_rows) >= 0.85 * len(table)
    ari = adjusted_rand_score(truth[binned_rows["sequence_id"]], binned_rows["bin"])
    assert ari >= 0.85, ari
    summary = json.loads((binned / "summary.json").read_text())
    assert summary["sequences"] == 600 and summary["binned"] + summary["unbinned"] == 600
    assert summary["evaluation"]["by_sequence"]["ari"] == pytest.approx(ari)
    assert {"features", "train", "cluster"} <= set(summary["stage_seconds"])
    for name in ("bins.binning", "latent_umap.png", "model"):
        assert (binned / name).exists(), name
    assert not binned.with_name("out.partial").exists()
    z = np.load(binned / "latent.npz")
    assert list(z["ids"]) == ids[: len(z["ids"])] or set(z["ids"]) <= set(ids)
    assert np.isfinite(z["mean"]).all() and np.isfinite(z["logvar"]).all()
    model = VAE.load(binned / "model")
    assert model.metadata["kind"] == "binning"


def test_outputs_other_tools_read(binned):
    assert (binned / "bins.binning").read_text().splitlines()[1] == "@SampleID:demo"
    clusters = pd.read_csv(binned / "clusters.tsv", sep="\t", dtype=str)
    table = pd.read_csv(binned / "bins.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert list(clusters.columns) == ["clustername", "contigname"]
    assert len(clusters) == (table["bin"] != "unbinned").sum()
    fna = sorted(p.name for p in (binned / "bins").iterdir() if not p.name.startswith("."))
    assert fna == sorted(f"{b}.fna.gz" for b in clusters["clustername"].unique())
    with gzip.open(binned / "bins" / fna[0], "rt") as fh:
        assert fh.read(1) == ">"


def test_same_seed_same_bins(reads600, binned, tmp_path):
    again = tmp_path / "again"
    assert main(["bin", str(reads600), "-o", str(again), *FAST]) == 0
    assert (again / "bins.tsv").read_bytes() == (binned / "bins.tsv").read_bytes()


def test_evaluate_command_matches_the_bin_summary(binned, tmp_path):
    assert main(["evaluate", str(binned / "bins.tsv"), "--truth", str(DEMO / "truth.tsv"),
                 "-o", str(tmp_path / "ev")]) == 0
    ev = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    summary = json.loads((binned / "summary.json").read_text())
    assert ev["by_sequence"]["f1_sample"] == pytest.approx(summary["evaluation"]["by_sequence"]["f1_sample"])
    page = (tmp_path / "ev" / "evaluation.json.report.html").read_text()
    assert "Per bin" in page and f"{ev['by_sequence']['ari']:.4g}" in page


@needs_browser
def test_report_shows_the_latent_plot_training_curves_and_bins(binned, tmp_path):
    summary = json.loads((binned / "summary.json").read_text())
    assert "report.html" in summary["outputs"]
    assert_report_shows_plots(binned / "report.html", tmp_path, images=2,
                              text=["biovae bin", "Training", "Bins", "bin_0", f"{summary['sequences']:,} sequences"])


def test_a_few_hundred_reads_train_and_zero_coverage_columns_lose_nothing(tmp_path):
    # LRBinner never trains below 1,024 reads (fixed batch, drop_last) and divides by zero on
    # all-zero coverage columns. 300 reads at < 1x coverage leave most histogram bins empty.
    records = _demo_records(300)
    reads = _fasta(tmp_path / "small.fa", records)
    out = tmp_path / "small"
    assert main(["bin", str(reads), "-o", str(out), "--batch-size", "512", *FAST]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs_trained"] >= 5
    assert np.isfinite(summary["final_val_loss"])
    z = np.load(out / "latent.npz")
    assert len(z["ids"]) == 300 and np.isfinite(z["mean"]).all()
    table = pd.read_csv(out / "bins.tsv", sep="\t", dtype=str)
    assert list(table["sequence_id"]) == [i for i, _ in records]


def _genome(path: Path) -> str:
    with gzip.open(path, "rt") if path.suffix == ".gz" else open(path) as fh:
        return "".join(line.strip() for line in fh if not line.startswith(">"))


def _tiles(seq: str, n: int, rng) -> list[str]:
    """n non-overlapping pieces of 3-8 kb at random places along seq, in order."""
    lengths = rng.integers(3000, 8000, size=n)
    spare = len(seq) - int(lengths.sum())
    assert spare >= 0
    gaps = np.diff(np.sort(rng.integers(0, spare + 1, size=n + 1)))  # n gaps summing to at most spare
    starts = np.cumsum(np.concatenate([[0], lengths[:-1]])) + np.cumsum(gaps)
    return [seq[a:a + b] for a, b in zip(starts.tolist(), lengths.tolist())]


def test_contigs_with_abundance(tmp_path):
    # 60 contigs from each of three genome windows. A working binner scores ARI ~0.97 here; with
    # the composition rows out of order it scores ~0 (tests/data/README.md).
    rng = np.random.default_rng(5)
    records, genome_of, depth = [], {}, {}
    for g, path in enumerate(CONTIG_GENOMES):
        depth[g] = rng.uniform(2, 40, size=3)  # per-sample depth of this genome
        for c, piece in enumerate(_tiles(_genome(path), 60, rng)):  # no two contigs share a base
            name = f"g{g}_contig{c}"
            records.append((name, piece))
            genome_of[name] = g
    records.append(("tiny_contig", records[0][1][:500]))  # shorter than --min-length
    order = rng.permutation(len(records))
    records = [records[i] for i in order]
    fasta = _fasta(tmp_path / "contigs.fa", records)
    rows = ["contigname\ts1\ts2\ts3"]
    for name, _ in records:
        d = depth[genome_of.get(name, 0)] * rng.lognormal(0, 0.15, size=3)
        rows.append(name + "\t" + "\t".join(f"{v:.3f}" for v in d))
    (tmp_path / "ab.tsv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "contig_bins"
    assert main(["bin", str(fasta), "--abundance", str(tmp_path / "ab.tsv"), "-o", str(out), *FAST]) == 0
    table = pd.read_csv(out / "bins.tsv", sep="\t", dtype=str)
    assert list(table["sequence_id"]) == [n for n, _ in records]
    assert table.set_index("sequence_id").loc["tiny_contig", "bin"] == "unbinned"
    b = table[(table["bin"] != "unbinned")]
    assert len(b) >= 0.9 * 180
    assert adjusted_rand_score([genome_of[n] for n in b["sequence_id"]], b["bin"]) >= 0.9


def _fastq(path: Path, records, qual_delta=0) -> Path:
    path.write_text("".join(f"@{i}\n{s}\n+\n{'I' * (len(s) + qual_delta)}\n" for i, s in records))
    return path


def _cases(tmp: Path) -> list[tuple[list[str], str]]:
    recs = _demo_records(3)
    good = _fasta(tmp / "good.fa", recs)
    (tmp / "empty.fa").write_text("")
    (tmp / "notfasta.txt").write_text("this is not a sequence file\n")
    whole = gzip.compress(good.read_bytes())
    (tmp / "trunc.fa.gz").write_bytes(whole[: len(whole) // 2])
    _fastq(tmp / "qual.fq", recs, qual_delta=-1)
    (tmp / "emptyseq.fa").write_text(f">a\n{recs[0][1]}\n>b\n\n>c\n{recs[1][1]}\n")
    (tmp / "short.fa").write_text(">a\nACGT\n>b\nACG\n")
    (tmp / "dup.fa").write_text(f">a\n{recs[0][1]}\n>a\n{recs[1][1]}\n")
    names = [i for i, _ in recs]
    (tmp / "hdr.tsv").write_text("name\ts1\n" + "".join(f"{n}\t1\n" for n in names))
    (tmp / "missing.tsv").write_text("contigname\ts1\n" + "".join(f"{n}\t1\n" for n in names[:2]))
    (tmp / "text.tsv").write_text("contigname\ts1\n" + "".join(f"{n}\tlots\n" for n in names))
    (tmp / "neg.tsv").write_text("contigname\ts1\n" + "".join(f"{n}\t-1\n" for n in names))
    (tmp / "afile").write_text("x")
    return [
        ([str(tmp / "nowhere.fa")], "nowhere.fa"),
        ([str(tmp / "empty.fa")], "empty.fa"),
        ([str(tmp / "notfasta.txt")], "notfasta.txt"),
        ([str(tmp / "trunc.fa.gz")], "trunc.fa.gz"),
        ([str(tmp / "qual.fq")], "qual"),
        ([str(tmp / "emptyseq.fa")], "'b'"),
        ([str(tmp / "short.fa")], "short"),
        ([str(tmp / "dup.fa")], "'a'"),
        ([str(good), "--abundance", str(tmp / "hdr.tsv")], "contigname"),
        ([str(good), "--abundance", str(tmp / "missing.tsv")], names[2]),
        ([str(good), "--abundance", str(tmp / "text.tsv")], "lots"),
        ([str(good), "--abundance", str(tmp / "neg.tsv")], "negative"),
    ]


def test_bad_input_is_one_clear_message_and_writes_nothing(tmp_path, capsys):
    for argv, words in _cases(tmp_path):
        out = tmp_path / "never"
        assert main(["bin", *argv, "-o", str(out), *FAST]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("biovae bin: error:") and "Traceback" not in err, err
        assert words.lower() in err.lower(), (argv, err)
        assert not out.exists() and not out.with_name("never.partial").exists(), argv
    good = tmp_path / "good.fa"
    assert main(["bin", str(good), "-o", str(tmp_path / "afile"), *FAST]) == 2
    assert "is a file" in capsys.readouterr().err
    assert (tmp_path / "afile").read_text() == "x"


def test_a_second_run_into_the_same_out_refuses(reads600, tmp_path, capsys):
    from biovae.io.atomic import output_lock

    out = tmp_path / "busy"
    with output_lock(out):  # another run holds OUT
        assert main(["bin", str(reads600), "-o", str(out), *FAST]) == 2
    err = capsys.readouterr().err
    assert "lock" in err and "Traceback" not in err, err
    assert not out.exists()
