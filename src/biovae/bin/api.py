"""biovae.bin.run: the Python face of `biovae bin` (see biovae.bin)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from biovae.bin.settings import BinSettings


@dataclass
class BinningResult:
    """What a binning run returns: the tables and arrays behind the files it wrote."""

    bins: pd.DataFrame
    latent: np.ndarray
    latent_ids: np.ndarray
    quality: pd.DataFrame
    summary: dict
    out: Path


def run(sequences, out, *, abundance=None, truth=None, settings: BinSettings | None = None,
        write_fasta: bool = False, fasta_gzip: bool = False, sample_id: str | None = None,
        resume: bool = False, force: bool = False) -> BinningResult:
    """Bin `sequences` into OUT and return a BinningResult (see the module docstring).

    Per-bin quality without a truth: `sequences`, `bases`, `spread` (median distance of the bin's
    latent means to the bin's median) and `separation` (distance from the bin's median to the
    nearest other bin's median, in the same units); when marker genes were searched (contigs, or
    settings.quality "on"; biovae.bin.quality) `completeness` and `contamination` in %, `markers`
    and `extra_copies`; with `truth`, also AMBER's per-bin precision and recall by sequence.
    """
    from biovae.bin.pipeline import run as run_pipeline
    from biovae.io.bins import read_bins

    out = Path(out)
    summary = run_pipeline(sequences, out, abundance=abundance, truth=truth, settings=settings,
                           write_fasta=write_fasta, resume=resume, force=force, fasta_gzip=fasta_gzip,
                           sample_id=sample_id)
    bins = read_bins(out / "bins.tsv")
    with np.load(out / "latent.npz", allow_pickle=False) as z:
        ids, mean = z["ids"], z["mean"]
    quality = bin_quality(bins, ids, mean, summary)
    per_bin = (summary.get("marker_quality") or {}).get("per_bin")
    if per_bin:
        quality = quality.join(pd.DataFrame(per_bin).T[["completeness", "contamination", "markers", "extra_copies"]])
    if truth is not None:
        from biovae.evaluate.binning import evaluate_tables
        from biovae.io.bins import read_truth

        per_bin = pd.DataFrame(evaluate_tables(bins, read_truth(truth))["per_bin"]).set_index("bin")
        quality = quality.join(per_bin[["genome", "precision_seq", "recall_seq"]])
    return BinningResult(bins=bins, latent=mean, latent_ids=ids, quality=quality, summary=summary, out=out)


def bin_quality(bins: pd.DataFrame, ids, mean: np.ndarray, summary: dict) -> pd.DataFrame:
    """Per-bin table: sequences, bases, latent spread and separation (see `run`)."""
    lookup = dict(zip(bins["sequence_id"], bins["bin"]))
    labels = np.array([lookup.get(i, "unbinned") for i in ids], dtype=object)
    names = sorted(summary["bin_sizes"])
    centres = {b: np.median(mean[labels == b], axis=0) for b in names if (labels == b).any()}
    rows = []
    for b in names:
        size = summary["bin_sizes"][b]
        row = {"bin": b, "sequences": size["sequences"], "bases": size["bases"], "spread": None, "separation": None}
        if b in centres:
            row["spread"] = float(np.median(np.linalg.norm(mean[labels == b] - centres[b], axis=1)))
            others = [np.linalg.norm(centres[b] - c) for o, c in centres.items() if o != b]
            row["separation"] = float(min(others)) if others else None
        rows.append(row)
    return pd.DataFrame(rows, columns=["bin", "sequences", "bases", "spread", "separation"]).set_index("bin")


__all__ = ["BinSettings", "BinningResult", "run", "bin_quality"]
