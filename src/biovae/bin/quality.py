"""Per-bin completeness and contamination from single-copy marker genes (biovae.bin.markers).

Run for contigs always and for reads on request (`--quality on`): gene calling needs sequences
long enough to hold whole genes and nearly free of indels. On the SimLoRD reads of data/demo it
found 28 marker genes in 3,000 reads and took 90 s of a 144 s run (docs/binning.md), so on
noisy long reads the figures say little; bins are split / merged by markers in contigs mode only. Skipped, with a note in summary.json instead of figures, when pyrodigal or
pyhmmer is not installed or no marker set is found.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from biovae.bin import markers
from biovae.io.bins import bin_names

MODES = ("auto", "on", "off")
READS_NOTE = ("reads: genes of noisy long reads are broken by indels, so few markers are found (completeness "
              "reads low), and overlapping reads of one genome repeat a marker (contamination reads high); "
              "bins are not split or merged by markers in reads mode (docs/binning.md)")


def wanted(mode: str, contigs: bool) -> bool:
    """Whether a run estimates marker quality: always with `on`, never with `off`, for contigs with `auto`."""
    return mode == "on" or (mode == "auto" and contigs)


def estimate(path: Path, valid: np.ndarray, labels: np.ndarray, *, marker_file=None, min_length: int = 1000,
             threads: int = 1, mean: np.ndarray | None = None, refine: bool = False,
             seed: int = 1) -> tuple[np.ndarray, dict]:
    """(labels, marker quality) of the bins in `labels` (one label per record of `path`, -1 unbinned).

    With `refine` (and `mean`, the latent means of the `valid` records), bins are first split and
    merged where the markers say so (biovae.bin.marker_refine), and the labels returned are the new
    ones. The quality dict is {"marker_set", "markers", "genes_found", "changes", "per_bin": {bin:
    {markers, extra_copies, completeness, contamination}}}, or {"skipped": why} when it cannot run.
    """
    if not markers.available():
        return labels, {"skipped": "pyrodigal and pyhmmer are not installed (pip install pyrodigal pyhmmer)"}
    hmm_path, source = markers.find_marker_hmm(marker_file)
    if hmm_path is None:
        return labels, {"skipped": source}
    from biovae.io.fastx import read_fastx

    hmms = markers.load_profiles(hmm_path)
    seqs = read_fastx(path).seqs
    keep = np.flatnonzero(valid & (labels >= 0))
    hits = markers.marker_hits([seqs[i] for i in keep], hmms, min_length=min_length, threads=threads)
    hits["sequence"] = keep[hits["sequence"].to_numpy()] if len(hits) else hits["sequence"]
    total = markers.n_markers(hmms)
    changes: list[str] = []
    if refine and mean is not None:
        from biovae.bin.marker_refine import refine as refine_bins

        labels, changes = refine_bins(labels, np.flatnonzero(valid), mean, hits, total, seed=seed,
                                       lengths=np.array([len(s) for s in seqs]))
    table = markers.bin_marker_table(labels, hits, total)
    every = bin_names(np.arange(int(labels.max()) + 1)) if (labels >= 0).any() else []
    names = [every[b] for b in table["label"]]
    per_bin = {name: {k: row[k] for k in ("markers", "extra_copies", "completeness", "contamination")}
               for name, row in zip(names, table.to_dict("records"))}
    return labels, {"marker_set": source, "markers": total, "genes_found": int(len(hits)), "changes": changes,
                    "per_bin": per_bin}


def headline(quality: dict | None) -> str | None:
    """`N bins >= 90 % complete and < 5 % contaminated, M >= 50 % and < 10 %` (MIMAG's high and
    medium thresholds on these estimates), or None."""
    if not quality or "per_bin" not in quality:
        return None
    rows = quality["per_bin"].values()
    high = sum(r["completeness"] >= 90 and r["contamination"] < 5 for r in rows)
    medium = sum(r["completeness"] >= 50 and r["contamination"] < 10 for r in rows) - high
    return f"markers: {high} bins >= 90% complete and < 5% contaminated, {medium} more >= 50% and < 10%"
