"""A binning that leaves most sequences unbinned says so on its summary line and in report.html,
with the likely cause and an option to try (issue 17 item 4); HDBSCAN finding nothing is never
a silent 0 bins."""

import json

import numpy as np

from biovae.cli import main

FAST = ["--epochs", "3", "--quiet", "--threads", "1", "--seed", "1", "--plot", "none"]


def _random_reads(path, n, length, n_share, seed):
    rng = np.random.default_rng(seed)
    with open(path, "w") as fh:
        for i in range(n):
            seq = np.array(list("ACGT"))[rng.integers(0, 4, length)]
            blocks = np.array_split(np.arange(length), 10)  # N in runs, as in gapped assemblies
            for b in rng.choice(10, int(round(10 * n_share)), replace=False):
                seq[blocks[b]] = "N"
            fh.write(f">r{i}\n{''.join(seq)}\n")
    return path


def test_reads_that_are_60_percent_n_are_never_a_silent_empty_result(tmp_path, capsys):
    reads = _random_reads(tmp_path / "n60.fa", 60, 3000, 0.6, seed=1)
    out = tmp_path / "out"
    assert main(["bin", str(reads), "-o", str(out), *FAST]) == 0
    line = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    report = (out / "report.html").read_text()
    assert summary["bins"] <= 1 and summary["warning"], summary  # random sequences hold no genome signal
    assert f"WARNING: {summary['warning']}" in line and "try --" in line, line
    assert summary["warning"] in report


def test_mostly_short_reads_warn_with_cause_and_option(tmp_path, capsys):
    reads = tmp_path / "short.fa"
    _random_reads(reads, 40, 400, 0.0, seed=2)
    with open(reads, "a") as fh:
        fh.write(_random_reads(tmp_path / "long.fa", 30, 3000, 0.0, seed=3).read_text().replace(">r", ">long"))
    out = tmp_path / "out"
    assert main(["bin", str(reads), "-o", str(out), *FAST]) == 0
    line = capsys.readouterr().out
    assert "WARNING: only" in line and "shorter than --min-length 1000" in line and "try --min-length" in line, line
    summary = json.loads((out / "summary.json").read_text())
    assert summary["warning"] and summary["warning"] in (out / "report.html").read_text()
