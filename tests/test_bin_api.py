"""biovae.bin as a Python API: settings and run, returning bins, latent and per-bin quality."""

import gzip
from pathlib import Path

import numpy as np

import biovae.bin

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"


def test_run_returns_bins_latent_and_quality(tmp_path):
    reads = tmp_path / "reads.fa"
    with gzip.open(DEMO / "reads.fa.gz", "rt") as src:
        lines = src.read().splitlines()[:600]  # the first 300 reads (two lines each)
    reads.write_text("\n".join(lines) + "\n")
    s = biovae.bin.BinSettings(epochs=5, plot="none", seed=2, progress=False, threads=1)
    result = biovae.bin.run(reads, tmp_path / "out", settings=s, truth=DEMO / "truth.tsv")
    assert isinstance(result, biovae.bin.BinningResult)
    assert len(result.bins) == 300 and list(result.bins.columns) == ["sequence_id", "bin"]
    assert result.latent.shape == (len(result.latent_ids), s.latent_dim) and np.isfinite(result.latent).all()
    named = sorted(b for b in result.bins["bin"].unique() if b != "unbinned")
    assert sorted(result.quality.index) == named and result.summary["bins"] == len(named)
    assert (result.quality["sequences"] > 0).all() and "precision_seq" in result.quality
    assert (tmp_path / "out" / "clusters.tsv").exists()
