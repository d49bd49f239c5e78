"""Single-copy marker genes in sequences: genes called by pyrodigal, proteins searched with pyhmmer.

The marker set is a public HMM file of bacterial single-copy genes; biovae ships none (it is
16 MB) and looks, in order, at: the path given (`--markers FILE`), the BIOVAE_MARKER_HMM
environment variable, then the `marker.hmm` that an installed MetaCoAG (`pip install metacoag`,
metacoag/metacoag_utils/auxiliary/) or SemiBin (SemiBin/) ships. Both packages ship the same
file: MaxBin2's set of 107 bacterial single-copy genes as 111 Pfam / TIGRFAM profiles, each with
its trusted cut-off (TC line). Four genes come as two profiles each, one per form of the enzyme
(TIGR00388/TIGR00389 glyS, TIGR00408/TIGR00409 proS, TIGR00471/TIGR00472 pheT, TIGR02386/TIGR02387
rpoC); a hit of either counts as that one gene, so 111 profiles give 107 markers.

Genes: pyrodigal in metagenomic mode (pre-trained models, no training on the input), on each
sequence of at least `min_length` bp. A protein counts as a marker when its best domain passes
the profile's trusted cut-off and its alignment spans at least 40 % of the profile (a gene cut
at a contig end is not counted); a protein with several passing profiles counts for the best
scoring one only.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from biovae.errors import BiovaeError

ENV = "BIOVAE_MARKER_HMM"
PACKAGED = (("metacoag", "metacoag_utils/auxiliary/marker.hmm"), ("SemiBin", "marker.hmm"))
SAME_GENE = {"TIGR00388": "TIGR00389", "TIGR00408": "TIGR00409", "TIGR00471": "TIGR00472",
             "TIGR02386": "TIGR02387"}
MIN_PROFILE_SPAN = 0.4
HOW_TO_GET = ("give --markers FILE (an HMMER3 file of single-copy marker profiles with trusted cut-offs), "
              f"set {ENV}, or install a package that ships one: pip install metacoag")


def available() -> bool:
    """True when pyrodigal and pyhmmer can be imported."""
    return all(importlib.util.find_spec(m) is not None for m in ("pyrodigal", "pyhmmer"))


def find_marker_hmm(path: str | os.PathLike | None = None) -> tuple[Path | None, str]:
    """(marker HMM file or None, where it came from or why none was found)."""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise BiovaeError(f"marker HMM file {p} does not exist", HOW_TO_GET)
        return p, f"given: {p}"
    if os.environ.get(ENV):
        p = Path(os.environ[ENV])
        if not p.is_file():
            raise BiovaeError(f"{ENV}={p}: no such file", f"unset {ENV} or point it at an HMMER3 file")
        return p, f"{ENV}: {p}"
    for package, inner in PACKAGED:
        spec = importlib.util.find_spec(package)
        for root in (spec.submodule_search_locations or []) if spec else []:
            p = Path(root) / inner
            if p.is_file():
                return p, f"marker.hmm of the installed {package} package ({p})"
    return None, "no marker HMM set found; " + HOW_TO_GET


def load_profiles(path: Path) -> list:
    """The HMM profiles of `path` (HMMER3 text or pressed); one message when it is not an HMM file."""
    import pyhmmer

    try:
        with pyhmmer.plan7.HMMFile(str(path)) as fh:
            hmms = list(fh)
    except (ValueError, OSError, EOFError) as exc:
        raise BiovaeError(f"marker HMM file {path} cannot be read ({exc})", HOW_TO_GET) from None
    if not hmms:
        raise BiovaeError(f"marker HMM file {path} holds no profile", HOW_TO_GET)
    return hmms


def marker_name(hmm) -> str:
    name = hmm.name.decode() if isinstance(hmm.name, bytes) else str(hmm.name)
    return SAME_GENE.get(name, name)


def marker_hits(seqs: Sequence[bytes], hmms: list, *, min_length: int = 1000, threads: int = 1) -> pd.DataFrame:
    """One row per marker gene found: `sequence` (index into seqs) and `marker` (profile name, the
    two-form genes joined; see the module docstring)."""
    import pyhmmer
    import pyrodigal

    finder = pyrodigal.GeneFinder(meta=True)
    alphabet = pyhmmer.easel.Alphabet.amino()
    todo = [i for i, seq in enumerate(seqs) if len(seq) >= max(min_length, 100)]
    if threads > 1:  # pyrodigal releases the GIL while it searches a sequence
        from multiprocessing.pool import ThreadPool

        with ThreadPool(threads) as pool:
            genes = pool.map(finder.find_genes, [seqs[i] for i in todo])
    else:
        genes = [finder.find_genes(seqs[i]) for i in todo]
    proteins = [pyhmmer.easel.TextSequence(name=f"{i}_{j}".encode(), sequence=gene.translate()).digitize(alphabet)
                for i, found in zip(todo, genes) for j, gene in enumerate(found)]
    best: dict[str, tuple[float, str]] = {}
    if proteins:
        block = pyhmmer.easel.DigitalSequenceBlock(alphabet, proteins)
        for hits in pyhmmer.hmmsearch(hmms, block, cpus=max(1, threads), bit_cutoffs="trusted"):
            length = hits.query.M
            marker = marker_name(hits.query)
            for hit in hits.included:
                dom = hit.best_domain
                span = (dom.alignment.hmm_to - dom.alignment.hmm_from + 1) / length
                if span < MIN_PROFILE_SPAN:
                    continue
                name = hit.name.decode() if isinstance(hit.name, bytes) else str(hit.name)
                if name not in best or hit.score > best[name][0]:
                    best[name] = (hit.score, marker)
    rows = [(int(name.split("_")[0]), marker) for name, (_, marker) in best.items()]
    return pd.DataFrame(rows, columns=["sequence", "marker"]).sort_values(["sequence", "marker"], ignore_index=True)


def n_markers(hmms: list) -> int:
    """How many marker genes the profiles stand for (two-form genes once)."""
    return len({marker_name(h) for h in hmms})


def bin_marker_table(labels: np.ndarray, hits: pd.DataFrame, total: int) -> pd.DataFrame:
    """Per bin (label >= 0): markers found, extra copies, completeness and contamination in %.

    completeness = distinct markers in the bin / `total`; contamination = copies beyond the first
    of each marker / `total` (CheckM's two estimates over one flat marker set, without its
    lineage-specific, co-located marker sets).
    """
    bins = np.unique(labels[labels >= 0])
    rows = []
    by_bin = hits.assign(bin=labels[hits["sequence"].to_numpy()]) if len(hits) else hits.assign(bin=[])
    for b in bins:
        counts = by_bin.loc[by_bin["bin"] == b, "marker"].value_counts()
        found, extra = int(len(counts)), int((counts - 1).sum())
        rows.append({"label": int(b), "markers": found, "extra_copies": extra,
                     "completeness": round(100.0 * found / total, 1), "contamination": round(100.0 * extra / total, 1)})
    return pd.DataFrame(rows, columns=["label", "markers", "extra_copies", "completeness", "contamination"])
