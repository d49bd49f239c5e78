"""Contig abundance in the formats binners' users have, detected from the content.

| format | how it is recognised | what is read |
|---|---|---|
| BAM (sorted, indexed) | BGZF whose first block starts `BAM\\1` | mean depth per contig (one sample) |
| MetaBAT2 depth | header `contigName<TAB>contigLen<TAB>totalAvgDepth...` | each `<sample>` column, not `-var` |
| CoverM contig | header `Contig<TAB><sample> <method>...` | every column after `Contig` |
| strobealign --aemb | no header; `contig<TAB>number` on every line | the number (one sample) |
| VAMB TSV | header `contigname<TAB>sample...` | biovae.io.abundance |

BAM depth: with pysam, per contig, the reference bases covered by primary alignments (not
secondary, supplementary, duplicate, QC-failed or unmapped) divided by the contig length: the
mean depth as `samtools coverage` and VAMB's pycoverm (without identity filtering) give it. The
BAM must be coordinate-sorted and indexed, its references the FASTA's records (names and
lengths), and it must hold at least one mapped read.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

from biovae.errors import BiovaeError, require

FORMATS = ("bam", "metabat", "coverm", "aemb", "vamb")


def detect_format(path: Path) -> str:
    """One of FORMATS, from the first bytes and the first line of `path`."""
    with open(path, "rb") as fh:
        head = fh.read(65536)
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as fh:
                inner = fh.read(4)
        except (OSError, EOFError, zlib.error):
            inner = b""
        if inner == b"BAM\x01":
            return "bam"
        try:
            with gzip.open(path, "rb") as fh:
                head = fh.read(65536)
        except (OSError, EOFError, zlib.error) as exc:
            raise BiovaeError(f"abundance file {path} is truncated or corrupt gzip ({exc})",
                              "compress it again (gzip) or give it uncompressed") from None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    first = text.split("\n", 1)[0].rstrip("\r").split("\t")
    if first[0] == "contigname":
        return "vamb"
    if first[:3] == ["contigName", "contigLen", "totalAvgDepth"]:
        return "metabat"
    if first[0] == "Contig" and len(first) >= 2:
        return "coverm"
    if len(first) == 2 and _is_number(first[1]):
        return "aemb"
    raise BiovaeError(
        f"abundance file {path}: unknown format (first line {text.split(chr(10), 1)[0][:60]!r})",
        "give a sorted, indexed BAM, a MetaBAT2 jgi depth file, a CoverM contig TSV, a strobealign "
        "--aemb file or a VAMB abundance TSV (header 'contigname<TAB>sample...')")


def read_depth(path: Path, fmt: str, contig_ids: Sequence[str], contig_lengths=None) -> tuple[np.ndarray, list[str]]:
    """(matrix float32 (n_contigs, n_samples) in contig_ids order, sample names) for a non-VAMB format."""
    if fmt == "bam":
        return _bam_depth(path, contig_ids, contig_lengths)
    header, rows = _table(path)
    if fmt == "metabat":
        keep = [j for j, h in enumerate(header) if j >= 3 and not h.endswith("-var")]
        require(keep, f"{path}: MetaBAT2 depth header has no sample column",
                "give the file jgi_summarize_bam_contig_depths wrote")
        samples = [header[j] for j in keep]
    elif fmt == "coverm":
        keep, samples = list(range(1, len(header))), header[1:]
    else:  # aemb: no header, contig<TAB>abundance
        keep, samples = [1], [path.name]
    return _align(path, rows, keep, contig_ids), samples


def _table(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(header fields, or [] when the first line is data; (line number, fields) of each data row)."""
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    opener = gzip.open(path, "rt", encoding="utf-8") if gz else open(path, encoding="utf-8")
    with opener as fh:
        lines = [(n, line.rstrip("\r\n").split("\t")) for n, line in enumerate(fh, 1) if line.strip()]
    require(lines, f"abundance file {path} has no rows", "give a non-empty depth table")
    first = lines[0][1]
    if len(first) >= 2 and not _is_number(first[1]):
        return first, lines[1:]
    return [], lines


def _align(path: Path, rows, keep: list[int], contig_ids: Sequence[str]) -> np.ndarray:
    position = {c: i for i, c in enumerate(contig_ids)}
    out = np.full((len(contig_ids), len(keep)), np.nan, dtype=np.float32)
    for line, fields in rows:
        name = fields[0]
        i = position.get(name)
        if i is None:
            raise BiovaeError(f"{path}, line {line}: contig {name!r} is not in the FASTA",
                              "the depth file must be made from the same assembly")
        require(len(fields) > max(keep), f"{path}, line {line}: {len(fields)} columns, expected {max(keep) + 1}",
                "every row needs the contig name and its depths")
        try:
            values = [float(fields[j]) for j in keep]
        except ValueError:
            raise BiovaeError(f"{path}, line {line} (contig {name!r}): a depth is not a number",
                              "depths are non-negative numbers") from None
        require(all(np.isfinite(v) and v >= 0 for v in values),
                f"{path}, line {line} (contig {name!r}): depths must be finite and non-negative")
        out[i] = values
    missing = np.flatnonzero(np.isnan(out[:, 0]))
    if len(missing):
        raise BiovaeError(f"{path}: contig {contig_ids[missing[0]]!r} of the FASTA has no depth "
                          f"({len(missing)} of {len(contig_ids)} missing)",
                          "the depth file must be made from the same assembly, with every contig")
    return out


def _bam_depth(path: Path, contig_ids: Sequence[str], contig_lengths) -> tuple[np.ndarray, list[str]]:
    import pysam

    try:
        bam = pysam.AlignmentFile(str(path), "rb")
    except (ValueError, OSError) as exc:
        raise BiovaeError(f"BAM {path} cannot be read ({exc})", "give a valid BAM file") from None
    with bam:
        order = (bam.header.to_dict().get("HD") or {}).get("SO")
        require(order == "coordinate", f"BAM {path} is not sorted by coordinate (@HD SO:{order})",
                f"sort and index it: samtools sort -o sorted.bam {path.name} && samtools index sorted.bam")
        require(bam.has_index(), f"BAM {path} has no index (.bai or .csi beside it)",
                f"index it: samtools index {path.name}")
        refs = dict(zip(bam.references, bam.lengths))
        extra = [r for r in refs if r not in set(contig_ids)]
        missing = [c for c in contig_ids if c not in refs]
        if extra or missing:
            what = f"FASTA contig {missing[0]!r} is not a BAM reference" if missing else \
                f"BAM reference {extra[0]!r} is not in the FASTA"
            raise BiovaeError(f"BAM {path} does not match the FASTA: {what} "
                              f"({len(missing)} FASTA contigs missing, {len(extra)} extra references)",
                              "map the reads to the same contigs that you bin")
        if contig_lengths is not None:
            for c, n in zip(contig_ids, contig_lengths):
                require(refs[c] == int(n), f"BAM {path}: reference {c!r} has length {refs[c]}, the FASTA record {n}",
                        "map the reads to the same contigs that you bin")
        require(bam.mapped > 0, f"BAM {path} holds no mapped read", "check that the mapping worked")
        depth = np.zeros((len(contig_ids), 1), dtype=np.float32)
        for i, c in enumerate(contig_ids):
            covered = 0
            for r in bam.fetch(c):
                if r.is_unmapped or r.is_secondary or r.is_supplementary or r.is_duplicate or r.is_qcfail:
                    continue
                covered += r.reference_length or 0
            depth[i, 0] = covered / max(1, refs[c])
    return depth, [path.name]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
