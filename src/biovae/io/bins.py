"""Binning outputs and the tables they are judged against.

Writes (all atomic: a reader sees the whole file or none):
  bins.tsv       header `sequence_id<TAB>bin`, then every input id exactly once in input order;
                 unbinned sequences carry the bin name `unbinned`.
  bins.binning   CAMI/AMBER binning format (`@Version:0.9.1`, `@SampleID:...`,
                 `@@SEQUENCEID<TAB>BINID[<TAB>LENGTH]`); unbinned sequences are left out, which
                 is how AMBER marks a sequence as unassigned.
  clusters.tsv   VAMB's layout: header `clustername<TAB>contigname`, one row per binned sequence.
  bins/          one FASTA file per bin, `<bin>.fna` (or `.fna.gz`): the names CheckM2's and
                 GTDB-Tk's default extension (`fna`) finds.
Reads:
  truth tables   `sequence_id<TAB>genome[<TAB>length]` (header optional) or a CAMI gold standard.
  bins tables    bins.tsv as written here, or a CAMI binning file.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from biovae.errors import BiovaeError, require
from biovae.io.atomic import atomic_dir, atomic_file

UNBINNED = "unbinned"
CAMI_VERSION = "0.9.1"
_HEADER_WORDS = {"sequence_id", "sequenceid", "seq_id", "seqid", "read_id", "read", "contig",
                 "contig_id", "contigname", "id", "name", "@@sequenceid"}


def bin_names(labels) -> list[str]:
    """Bin names for integer labels (n,): `bin_<k>` zero-padded to a common width, `unbinned` for -1.

    String labels are returned unchanged (as str), so callers may pass names through.
    """
    arr = np.asarray(labels)
    if arr.dtype.kind in "iu":
        top = int(arr.max()) if arr.size else 0
        width = len(str(max(top, 0)))
        return [UNBINNED if v < 0 else f"bin_{v:0{width}d}" for v in arr.tolist()]
    return [str(v) for v in arr.tolist()]


def write_bins_tsv(path, ids: Sequence[str], labels) -> None:
    """Write bins.tsv: header `sequence_id<TAB>bin`, one row per id in the given order.

    ids: n sequence names as in the input; labels: n integer labels (-1 = unbinned) or bin names.
    """
    names = _checked(ids, labels)
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("sequence_id\tbin\n")
        fh.writelines(f"{i}\t{b}\n" for i, b in zip(ids, names))


def write_vamb_clusters(path, ids: Sequence[str], labels) -> None:
    """Write clusters.tsv as VAMB does: `clustername<TAB>contigname`, binned sequences only,
    grouped by bin (bins in name order, sequences in input order)."""
    names = _checked(ids, labels)
    order = sorted((b, j) for j, b in enumerate(names) if b != UNBINNED)
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("clustername\tcontigname\n")
        fh.writelines(f"{b}\t{ids[j]}\n" for b, j in order)


def write_cami_binning(path, ids: Sequence[str], labels, sample_id: str = "biovae",
                       lengths=None) -> None:
    """Write a CAMI/AMBER binning file; unbinned sequences are left out (AMBER: unassigned).

    lengths: optional n sequence lengths in bp, written as the LENGTH column (AMBER needs it
    in a gold standard, not in a prediction).
    """
    names = _checked(ids, labels)
    require(sample_id and not any(c in sample_id for c in "\t\n\r"),
            f"CAMI sample id {sample_id!r} must be non-empty, without tabs or line breaks")
    if lengths is not None:
        lengths = np.asarray(lengths)
        require(lengths.shape == (len(names),),
                f"{len(lengths)} lengths given for {len(names)} sequences")
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(f"@Version:{CAMI_VERSION}\n@SampleID:{sample_id}\n\n")
        fh.write("@@SEQUENCEID\tBINID" + ("\tLENGTH\n" if lengths is not None else "\n"))
        for j, (i, b) in enumerate(zip(ids, names)):
            if b == UNBINNED:
                continue
            fh.write(f"{i}\t{b}\t{int(lengths[j])}\n" if lengths is not None else f"{i}\t{b}\n")


def write_bin_fasta(out_dir, ids: Sequence[str], sequences: Sequence[str], labels,
                    include_unbinned: bool = False, width: int = 80, compress: bool = False) -> dict[str, int]:
    """Write one FASTA file per bin, `<out_dir>/<bin>.fna` (`.fna.gz` with compress), replacing
    out_dir as a whole.

    ids, sequences, labels: n names, n sequences (str or bytes) and n labels (-1 = unbinned,
    or names). Within a file, records keep the input order; lines wrap at `width` letters
    (0 = no wrapping). Returns {bin name: number of records}.
    """
    names = _checked(ids, labels)
    require(len(sequences) == len(names),
            f"{len(sequences)} sequences given for {len(names)} sequence ids")
    require(width >= 0, f"FASTA line width must be >= 0, got {width}")
    groups: dict[str, list[int]] = {}
    for j, b in enumerate(names):
        if b != UNBINNED or include_unbinned:
            groups.setdefault(b, []).append(j)
    for b in groups:
        require(b not in (".", "..") and "/" not in b and os.sep not in b,
                f"bin name {b!r} cannot be a file name", "rename the bins")
    with atomic_dir(out_dir) as tmp:
        for b, rows in groups.items():
            path = Path(tmp) / (f"{b}.fna.gz" if compress else f"{b}.fna")
            opened = gzip.open(path, "wt", encoding="ascii", newline="\n", compresslevel=6) if compress else \
                open(path, "w", encoding="ascii", newline="\n")
            with opened as fh:
                for j in rows:
                    seq = sequences[j]
                    seq = seq.decode("ascii") if isinstance(seq, (bytes, bytearray)) else str(seq)
                    fh.write(f">{ids[j]}\n")
                    if width:
                        fh.writelines(seq[s:s + width] + "\n" for s in range(0, len(seq), width))
                    else:
                        fh.write(seq + "\n")
    return {b: len(rows) for b, rows in groups.items()}


def read_truth(path) -> pd.DataFrame:
    """Read the true genome of each sequence.

    Accepts `sequence_id<TAB>genome[<TAB>length]` (a first line is taken as a header when its
    first field is a column name such as sequence_id/read_id/contig, or its length field is
    not a number) or a CAMI gold standard (`@@SEQUENCEID<TAB>BINID[<TAB>LENGTH]`; TAXID and
    other columns are ignored). Returns a DataFrame with columns sequence_id (str), genome
    (str) and, when the file gives lengths, length (int64, bp), in file order.
    """
    rows, cami_cols, path = _read_rows(path)
    if cami_cols is not None:
        table = _cami_table(rows, cami_cols, path, need_bin=True)
        table = table.rename(columns={"BINID": "genome"})
    else:
        first = rows[0][1]
        width = len(first)
        require(width >= 2, f"{path}, line {rows[0][0]}: expected "
                f"sequence_id<TAB>genome[<TAB>length], found one column",
                "separate the columns with tabs")
        if first[0].lower() in _HEADER_WORDS or (width >= 3 and not _is_int(first[2])):
            rows = _after_header(rows, path)
        table = _columns(rows, path, ["sequence_id", "genome", "length"][:min(width, 3)])
    if "length" in table:
        table["length"] = _lengths(table["length"], table["_line"], path)
    _no_duplicates(table, path)
    return table.drop(columns="_line").reset_index(drop=True)


def read_bins(path) -> pd.DataFrame:
    """Read bins.tsv (`sequence_id<TAB>bin`, header optional) or a CAMI binning file.

    Returns a DataFrame with columns sequence_id and bin (both str), in file order; a
    sequence marked `unbinned` keeps that name. In a CAMI file unbinned sequences are
    simply absent.
    """
    rows, cami_cols, path = _read_rows(path)
    if cami_cols is not None:
        table = _cami_table(rows, cami_cols, path, need_bin=True).rename(columns={"BINID": "bin"})
        table = table[["sequence_id", "bin", "_line"]]
    else:
        if rows[0][1][0].lower() in _HEADER_WORDS:
            rows = _after_header(rows, path)
        table = _columns(rows, path, ["sequence_id", "bin"])
    _no_duplicates(table, path)
    return table.drop(columns="_line").reset_index(drop=True)


# --- helpers -------------------------------------------------------------------------------


def _checked(ids, labels) -> list[str]:
    names = bin_names(labels)
    require(len(ids) == len(names), f"{len(ids)} sequence ids but {len(names)} bin labels")
    seen: set[str] = set()
    for i in ids:
        i = str(i)
        require(i != "" and not any(c in i for c in "\t\n\r"),
                f"sequence id {i!r} is empty or holds a tab or line break",
                "rename the sequence in the input")
        require(i not in seen, f"duplicate sequence id {i!r}", "give every sequence a unique name")
        seen.add(i)
    for b in set(names):
        require(b != "" and not any(c in b for c in "\t\n\r"),
                f"bin name {b!r} is empty or holds a tab or line break")
    return names


def _read_rows(path):
    """(rows, cami_columns or None, path): rows are (line number, fields) of the data lines."""
    path = Path(path)
    require(path.is_file(), f"{path}: file not found" if not path.exists() else f"{path} is not a file")
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        text = raw.decode("utf-8")
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise BiovaeError(f"{path}: cannot read ({exc})") from None
    except UnicodeDecodeError:
        raise BiovaeError(f"{path}: not a text file (not UTF-8)", "give a tab-separated table") from None
    rows, cami_cols = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.rstrip("\r")
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("@@"):
            cami_cols = [c.strip().upper() for c in line[2:].split("\t")]
            continue
        if line.startswith("@"):
            continue  # CAMI metadata such as @Version or @SampleID
        rows.append((number, line.split("\t")))
    require(rows, f"{path}: no data rows", "the table is empty")
    return rows, cami_cols, path


def _after_header(rows, path):
    require(len(rows) > 1, f"{path}: no data rows below the header", "the table is empty")
    return rows[1:]


def _columns(rows, path, names) -> pd.DataFrame:
    for number, fields in rows:
        if len(fields) < len(names) or any(not f.strip() for f in fields[:len(names)]):
            raise BiovaeError(f"{path}, line {number}: expected {len(names)} tab-separated "
                              f"columns ({', '.join(names)}), found {len(fields)}: "
                              f"{chr(9).join(fields)[:80]!r}", "fix that line")
    data = {name: [f[k].strip() for _, f in rows] for k, name in enumerate(names)}
    data["_line"] = [n for n, _ in rows]
    return pd.DataFrame(data)


def _cami_table(rows, cols, path, need_bin) -> pd.DataFrame:
    for want in ("SEQUENCEID", "BINID") if need_bin else ("SEQUENCEID",):
        require(want in cols, f"{path}: CAMI header @@{chr(9).join(cols)} has no {want} column",
                "the header line must read @@SEQUENCEID<TAB>BINID[<TAB>LENGTH]")
    length_col = "LENGTH" if "LENGTH" in cols else ("_LENGTH" if "_LENGTH" in cols else None)
    keep = ["SEQUENCEID", "BINID"] + ([length_col] if length_col else [])
    table = _columns([(n, [f[cols.index(c)] if cols.index(c) < len(f) else "" for c in keep])
                      for n, f in rows], path, keep)
    table = table.rename(columns={"SEQUENCEID": "sequence_id"})
    if length_col:
        table = table.rename(columns={length_col: "length"})
    return table


def _is_int(text: str) -> bool:
    return text.strip().isdigit()


def _lengths(values: pd.Series, lines: pd.Series, path) -> pd.Series:
    for v, n in zip(values, lines):
        if not _is_int(v):
            raise BiovaeError(f"{path}, line {n}: length {v!r} is not a whole number of bases",
                              "the length column must hold non-negative integers")
    return values.astype("int64")


def _no_duplicates(table: pd.DataFrame, path) -> None:
    dup = table["sequence_id"].duplicated(keep="first")
    if dup.any():
        first = table.loc[dup.idxmax()]
        raise BiovaeError(f"{path}, line {first['_line']}: sequence id {first['sequence_id']!r} "
                          f"appears more than once", "list every sequence exactly once")
