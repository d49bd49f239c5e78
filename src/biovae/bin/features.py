"""Binning stage 1: sequence features, cached in the work folder so that --resume skips them.

Reads mode:   composition (canonical k-mer frequencies) | coverage (k-mer count histograms).
Contigs mode: composition | abundance (VAMB's normalisation of the abundance TSV).
Each block is then standardised per column (zero-variance columns stay 0, never divide by 0).

The cache (features.npz) records the input file's size and modification time and the feature
settings; it is reused only when all of them match, else recomputed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biovae.bin.settings import BinSettings
from biovae.errors import BiovaeError
from biovae.io.atomic import atomic_file

CACHE = "features.npz"


@dataclass
class Features:
    """ids (n,), lengths (n,) in bases, composition (n, c) and second block (n, b) float32,
    block2: its name ("coverage" or "abundance"), valid: (n,) bool, rows usable for binning."""

    ids: np.ndarray
    lengths: np.ndarray
    composition: np.ndarray
    second: np.ndarray
    block2: str
    valid: np.ndarray


def _stamp(path: Path, abundance: Path | None, settings: BinSettings) -> str:
    st = path.stat()
    key = {"file": str(path.resolve()), "size": st.st_size, "mtime": st.st_mtime_ns, **settings.feature_key()}
    if abundance is not None:
        ast = abundance.stat()
        key.update(abundance=str(abundance.resolve()), asize=ast.st_size, amtime=ast.st_mtime_ns)
    return json.dumps(key, sort_keys=True)


def _load_cache(work: Path, stamp: str) -> Features | None:
    path = work / CACHE
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["stamp"]) != stamp:
                return None
            return Features(z["ids"], z["lengths"], z["composition"], z["second"], str(z["block2"]), z["valid"])
    except (OSError, KeyError, ValueError):
        return None  # a damaged cache is recomputed, not trusted


def _save_cache(work: Path, stamp: str, f: Features) -> None:
    work.mkdir(parents=True, exist_ok=True)
    with atomic_file(work / CACHE) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, stamp=np.array(stamp), ids=f.ids, lengths=f.lengths, composition=f.composition,
                     second=f.second, block2=np.array(f.block2), valid=f.valid)


def compute(path: Path, settings: BinSettings, work: Path, abundance: Path | None = None) -> tuple[Features, bool]:
    """Features of every record of `path` (cached). Returns (features, reused_cache)."""
    stamp = _stamp(path, abundance, settings)
    cached = _load_cache(work, stamp)
    if cached is not None:
        return cached, True
    f = _contig_features(path, abundance, settings) if abundance is not None else _read_features(path, settings)
    _save_cache(work, stamp, f)
    return f, False


def _read_features(path: Path, s: BinSettings) -> Features:
    from biovae.features.coverage import file_features

    rf = file_features(path, k=s.k, cov_k=s.cov_k, bins=s.cov_bins, width=s.cov_width,
                       threads=max(1, s.threads or os.cpu_count() or 1))
    valid = (rf.lengths >= s.min_length) & (rf.comp_kmers > 0) & (rf.cov_kmers > 0)
    return Features(np.asarray(rf.ids, dtype=str), rf.lengths, rf.composition, rf.coverage, "coverage", valid)


def _contig_features(path: Path, abundance: Path, s: BinSettings) -> Features:
    from biovae.features.kmers import composition
    from biovae.features.scaling import vamb_abundance
    from biovae.io.abundance import read_abundance
    from biovae.io.fastx import read_fastx

    seqs = read_fastx(path)
    comp = composition(seqs.seqs, k=s.k, threads=max(1, s.threads or 1))
    table = read_abundance(abundance, seqs.ids)
    ab = vamb_abundance(table.matrix, table.samples)
    second = np.hstack([ab.relative, ab.log_total]).astype(np.float32)
    lengths = seqs.lengths
    valid = (lengths >= s.min_length) & (comp.n_kmers > 0)
    return Features(np.asarray(seqs.ids, dtype=str), lengths, comp.freqs, second, "abundance", valid)


def standardise(f: Features) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(n_valid, c + b) standardised matrix of the valid rows, and the per-column mean/scale."""
    from biovae.features.scaling import standardize

    if not f.valid.any():
        raise BiovaeError("no sequence is long enough to bin", "lower --min-length or give longer sequences")
    st = standardize(np.hstack([f.composition[f.valid], f.second[f.valid]]))
    return st.values, {"feature.mean": st.mean, "feature.scale": st.scale}
