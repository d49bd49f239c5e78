"""Read per-sample contig abundance: VAMB's TSV here; BAM, MetaBAT2 depth, CoverM and
strobealign --aemb files through biovae.io.depth (the format is detected from the content).

Format (vamb 5 `--abundance_tsv`): tab-separated text, plain or gzip. The header is
`contigname` followed by one column per sample (sample names are free text); then one row per
contig: its name exactly as the first word of the FASTA header, then one non-negative number
per sample (mean read depth). Rows may come in any order: the matrix is returned aligned to the
FASTA's contig order. Normalisation lives in biovae.features.scaling.vamb_abundance.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from biovae.errors import BiovaeError

HEADER_FIRST = "contigname"
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class Abundance(NamedTuple):
    """matrix: float32 (n_contigs, n_samples), rows in the order of the contig ids asked for.
    samples: the sample names from the header, length n_samples."""

    matrix: np.ndarray
    samples: list[str]


def read_abundance(path: str | Path, contig_ids: Sequence[str], extra_rows: str = "error",
                   contig_lengths=None) -> Abundance:
    """Read an abundance file and align it to `contig_ids` (the FASTA's record ids, in order).

    The format is detected from the content (biovae.io.depth.detect_format); what follows is
    about VAMB's TSV. contig_lengths (the FASTA's record lengths) lets a BAM's reference lengths
    be checked.

    extra_rows: what to do with TSV rows naming no contig of `contig_ids`: "error" (default;
    names the first such row) or "ignore" (for when the caller has already dropped contigs,
    e.g. below a minimum length).
    Raises BiovaeError naming the file and the line, column or contig for: a missing or empty
    file, a header not starting with `contigname` or without samples, a row with the wrong
    number of columns, a repeated contig or sample name, a value that is not a finite
    non-negative number, a contig of `contig_ids` missing from the table (the first one, in
    FASTA order) and, unless ignored, a row for an unknown contig.
    """
    if extra_rows not in ("error", "ignore"):
        raise BiovaeError(f"extra_rows must be 'error' or 'ignore', got {extra_rows!r}")
    path = Path(path)
    if not path.exists():
        raise BiovaeError(f"abundance file {path} does not exist", "check the --abundance path")
    if path.is_dir() or path.stat().st_size == 0:
        raise BiovaeError(f"abundance file {path} is empty or a folder", "give a TSV with header 'contigname<TAB>sample...'")
    position = {cid: i for i, cid in enumerate(contig_ids)}
    if len(position) != len(contig_ids):
        raise BiovaeError("contig ids given to read_abundance are not unique")
    from biovae.io.depth import detect_format, read_depth

    fmt = detect_format(path)
    if fmt != "vamb":
        matrix, samples = read_depth(path, fmt, list(contig_ids), contig_lengths)
        return Abundance(matrix, samples)
    try:
        return _parse(path, position, extra_rows)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise BiovaeError(f"{path}: gzip data is truncated or corrupt ({exc})", "re-compress the file") from None
    except UnicodeDecodeError as exc:
        raise BiovaeError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})", "give a tab-separated text file") from None


def _open_text(path: Path):
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt", encoding="utf-8", newline="") if gz else open(path, encoding="utf-8", newline="")


def _parse(path: Path, position: dict[str, int], extra_rows: str) -> Abundance:
    with _open_text(path) as fh:
        header_line = fh.readline().rstrip("\r\n")
        header = header_line.split("\t")
        if header[0] != HEADER_FIRST:
            raise BiovaeError(f"{path}: header must start with {HEADER_FIRST!r} then one column per sample, found {header_line[:60]!r}", "write the header as 'contigname<TAB>sample1<TAB>sample2...' (tab-separated)")
        samples = header[1:]
        if not samples:
            raise BiovaeError(f"{path}: header names no sample column after {HEADER_FIRST!r}", "add one column per sample")
        dup = _first_duplicate(samples)
        if dup is not None:
            raise BiovaeError(f"{path}: sample name {dup!r} appears twice in the header")
        n_cols = len(header)
        matrix = np.full((len(position), len(samples)), np.nan, dtype=np.float32)
        row_line = np.zeros(len(position), dtype=np.int64)  # line of each contig's row; 0 = not seen
        for line_no, line in enumerate(fh, 2):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            name = fields[0]
            if len(fields) != n_cols:
                raise BiovaeError(f"{path}: line {line_no} (contig {name!r}) has {len(fields)} columns, the header has {n_cols}", "every row needs the contig name and one value per sample")
            i = position.get(name)
            if i is None:
                if extra_rows == "error":
                    raise BiovaeError(f"{path}: line {line_no} names contig {name!r}, which is not in the FASTA", "the TSV must list exactly the FASTA's contigs, by the first word of each header")
                continue
            if row_line[i]:
                raise BiovaeError(f"{path}: contig {name!r} has two rows (lines {row_line[i]} and {line_no})", "keep one row per contig")
            row_line[i] = line_no
            matrix[i] = _values(fields[1:], samples, path, line_no, name)
    missing = np.flatnonzero(row_line == 0)
    if len(missing):
        names = list(position)
        raise BiovaeError(f"{path}: contig {names[missing[0]]!r} of the FASTA has no row in the abundance table ({len(missing)} of {len(names)} contigs missing)", "the TSV must have one row per FASTA record, named by the first word of its header")
    return Abundance(matrix, samples)


def _values(fields: list[str], samples: list[str], path: Path, line_no: int, name: str) -> list[float]:
    out = []
    for sample, text in zip(samples, fields):
        try:
            value = float(text)
        except ValueError:
            raise BiovaeError(f"{path}: line {line_no} (contig {name!r}), column {sample!r}: {text!r} is not a number", "abundances are non-negative numbers") from None
        if not math.isfinite(value) or value < 0:
            raise BiovaeError(f"{path}: line {line_no} (contig {name!r}), column {sample!r}: {text!r} is not a finite non-negative number", "abundances are non-negative numbers") from None
        if value > _FLOAT32_MAX:  # would become inf in the float32 matrix
            raise BiovaeError(f"{path}: line {line_no} (contig {name!r}), column {sample!r}: {text!r} is too large to be a read depth", "abundances are mean read depths, far below 1e38")
        out.append(value)
    return out


def _first_duplicate(names: list[str]) -> str | None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None
