"""Binning stage 1: sequence features, cached in the work folder so that --resume skips them.

Reads mode:   composition (canonical k-mer frequencies) | coverage (k-mer count histograms).
Contigs mode: composition | abundance (VAMB's normalisation of the abundance TSV).
Each block is then standardised per column (zero-variance columns stay 0, never divide by 0).

The cache (work/features/: raw arrays, ids.txt and meta.json, written last) records the input
file's size and modification time and the feature settings; it is reused, memory-mapped, only
when all of them match, else recomputed. Read features are spooled to disk chunk by chunk
(features.spool), so no per-read Python object is kept and nothing is held twice.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from typing import ClassVar
from pathlib import Path

import numpy as np

from biovae.bin.settings import BinSettings
from biovae.engine import state
from biovae.errors import BiovaeError
from biovae.features.spool import read_ids

CACHE = "features"
# Reads per chunk of the two feature passes, in bases. A chunk is held several times over (the
# parsed records, their packed copy, the composition rows), on top of the 512 MiB k-mer table:
# sim30k's features stage peaked at 1,280 MiB with io.fastx's 128 Mb chunks and at 881 MiB with
# 16 Mb ones, in 80 s and 76 s (docs/binning.md, memory).
CHUNK_BASES = 1 << 24


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


_ARRAYS = ("lengths", "composition", "second", "valid")


def _load_cache(work: Path, stamp: str) -> Features | None:
    folder = work / CACHE
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("stamp") != stamp:
            return None
        arrays = {}
        for name in _ARRAYS:
            m = meta["arrays"][name]
            shape = tuple(m["shape"])
            if shape[0] == 0:
                arrays[name] = np.zeros(shape, m["dtype"])
                continue
            arr = np.memmap(folder / m["file"], dtype=m["dtype"], mode="r", shape=shape)
            arrays[name] = arr
        ids = read_ids(folder / "ids.txt")
        if len(ids) != len(arrays["lengths"]):
            return None
        return Features(ids, block2=str(meta["block2"]), **arrays)
    except (OSError, KeyError, ValueError, TypeError):
        return None  # a missing or damaged cache is recomputed, not trusted


def _save_cache(folder: Path, work: Path, stamp: str, f: Features) -> Features:
    """Complete the features folder (arrays spooled there by the reads path stay where they
    are; others are written), add meta.json last, and move it into place as work/features.
    Returns `f` (its memory maps stay valid: the folder is renamed, not copied)."""
    meta = {"stamp": stamp, "block2": f.block2, "arrays": {}}
    for name in _ARRAYS:
        arr = getattr(f, name)
        spooled = getattr(arr, "filename", None)
        if spooled and Path(spooled).parent.resolve() == folder.resolve():
            file = Path(spooled).name
        else:
            file = f"{name}.raw"
            np.ascontiguousarray(arr).tofile(folder / file)
        meta["arrays"][name] = {"file": file, "dtype": np.dtype(arr.dtype).str, "shape": list(arr.shape)}
    if not (folder / "ids.txt").exists():
        (folder / "ids.txt").write_text("".join(f"{i}\n" for i in f.ids), encoding="utf-8")
    (folder / "meta.json").write_text(json.dumps(meta))
    final = work / CACHE
    if final.exists():
        shutil.rmtree(final)
    os.replace(folder, final)
    return f


def compute(path: Path, settings: BinSettings, work: Path, abundance: Path | None = None) -> tuple[Features, bool]:
    """Features of every record of `path` (cached in work/features). Returns (features, reused_cache)."""
    stamp = _stamp(path, abundance, settings)
    cached = _load_cache(work, stamp)
    if cached is not None:
        return cached, True
    folder = work / (CACHE + ".partial")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    try:
        if abundance is not None:
            f = _contig_features(path, abundance, settings)
        else:
            f = _read_features(path, settings, folder)
    except BaseException:  # bad input or interrupted: leave no trace of this attempt
        shutil.rmtree(folder, ignore_errors=True)
        if not any(work.iterdir()):
            work.rmdir()
        raise
    return _save_cache(folder, work, stamp, f), False


def _read_features(path: Path, s: BinSettings, folder: Path) -> Features:
    from biovae.features.coverage import file_features

    rf = file_features(path, k=s.k, cov_k=s.cov_k, bins=s.cov_bins, width=s.cov_width,
                       threads=max(1, s.threads or os.cpu_count() or 1), folder=folder, chunk_bases=CHUNK_BASES,
                       scale=s.cov_scale)
    valid = (rf.lengths >= s.min_length) & (rf.comp_kmers > 0) & (rf.cov_kmers > 0)
    return Features(rf.ids, rf.lengths, rf.composition, rf.coverage, "coverage", valid)


def _contig_features(path: Path, abundance: Path, s: BinSettings) -> Features:
    from biovae.features.kmers import composition
    from biovae.features.scaling import vamb_abundance
    from biovae.io.abundance import read_abundance
    from biovae.io.fastx import read_fastx

    seqs = read_fastx(path)
    comp = composition(seqs.seqs, k=s.k, threads=max(1, s.threads or 1))
    table = read_abundance(abundance, seqs.ids, contig_lengths=seqs.lengths)
    ab = vamb_abundance(table.matrix, table.samples)
    second = np.hstack([ab.relative, ab.log_total]).astype(np.float32)
    lengths = seqs.lengths
    valid = (lengths >= s.min_length) & (comp.n_kmers > 0)
    return Features(np.asarray(seqs.ids, dtype=str), lengths, comp.freqs, second, "abundance", valid)


@dataclass
class FeatureScaling(state.Record):
    """The per-column mean and scale of the features the binning model was trained on."""

    namespace: ClassVar[str] = "feature"
    mean: np.ndarray
    scale: np.ndarray

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "scale": self.scale}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "FeatureScaling":
        return cls(arrays["mean"], arrays["scale"])


def standardise(f: Features) -> tuple[np.ndarray, FeatureScaling]:
    """(n_valid, c + b) standardised matrix of the valid rows, and the per-column mean/scale
    (saved with the model: state.put(vae.state, scaling))."""
    from biovae.features.scaling import standardize

    if not f.valid.any():
        raise BiovaeError("no sequence is long enough to bin", "lower --min-length or give longer sequences")
    st = standardize(np.hstack([f.composition[f.valid], f.second[f.valid]]))
    return st.values, FeatureScaling(st.mean, st.scale)
