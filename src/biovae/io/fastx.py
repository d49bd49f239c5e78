"""Read FASTA and FASTQ files, plain or gzip, validated, in bounded memory.

The format is detected from the content (gzip magic bytes, then the first character '>' or
'@'), never from the file name. Records come out in chunks so that 10^6 long reads never sit in
memory as one list; `read_fastx` is the convenience that gathers one file into a single chunk.

Why not pyfastx or needletail: pyfastx 2.3 silently accepts empty sequences, duplicate ids and
'*' in sequences, returns the partial last record of a truncated gzip without complaint and
yields nothing at all for a FASTQ whose quality is shorter than its sequence; needletail is not
installed here. This reader checks every one of those cases and names the file and record.

Every user-fixable problem raises BiovaeError naming the file and the record (id and line):
missing or empty file, not FASTA/FASTQ, truncated or corrupt gzip, FASTQ quality length differing
from sequence length, a record with an empty sequence or no id, duplicate ids, and characters that
are not IUPAC nucleotide codes. Lower case is accepted; IUPAC ambiguity codes such as N are kept
in the sequence (the feature code never counts them as bases).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from biovae.errors import BiovaeError

# IUPAC nucleotide codes (with U for RNA), both cases; anything else in a sequence is an error.
IUPAC = b"ACGTUNRYKMSWBDHVacgtunrykmswbdhv"

DEFAULT_CHUNK_RECORDS = 50_000
DEFAULT_CHUNK_BASES = 1 << 27  # 128 Mb of sequence per chunk bounds a chunk near 130 MB of RAM

_GZIP_MAGIC = b"\x1f\x8b"
_OTHER_COMPRESSION = {b"BZh": "bzip2", b"\xfd7zXZ": "xz", b"\x28\xb5\x2f\xfd": "zstd"}


@dataclass
class SeqChunk:
    """A run of consecutive records of one file.

    ids: record ids (first word of each header, exactly as written), length n.
    seqs: sequences as ASCII bytes, as written (case kept, line breaks removed), length n.
    first: 0-based index in the file of the first record of this chunk.
    """

    ids: list[str] = field(default_factory=list)
    seqs: list[bytes] = field(default_factory=list)
    first: int = 0

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> np.ndarray:
        """Sequence lengths in bases, int64 array of shape (n,)."""
        return np.fromiter((len(s) for s in self.seqs), dtype=np.int64, count=len(self.seqs))


def detect_format(path: str | Path) -> tuple[str, bool]:
    """Return (format, gzipped) for a sequence file; format is "fasta" or "fastq".

    Raises BiovaeError if the file is missing, empty, compressed with something other than
    gzip, or does not start (after blank lines) with '>' or '@'.
    """
    path = _check_path(path)
    first = _first_content_line(path)
    return ("fasta" if first[:1] == b">" else "fastq"), _is_gzip(path)


def iter_chunks(
    path: str | Path,
    chunk_records: int = DEFAULT_CHUNK_RECORDS,
    chunk_bases: int = DEFAULT_CHUNK_BASES,
    unique_ids: bool = True,
) -> Iterator[SeqChunk]:
    """Yield the records of a FASTA/FASTQ file (plain or gzip) as SeqChunks, in file order.

    A chunk closes when it holds `chunk_records` records or `chunk_bases` bases, whichever
    comes first, so memory stays bounded whatever the read lengths. With `unique_ids` a
    repeated id anywhere in the file is an error (UniqueIds: the only state kept across chunks,
    8 bytes per record). Errors are raised when the bad record is met,
    so a caller may already have consumed earlier chunks.
    """
    path = _check_path(path)
    if chunk_records < 1 or chunk_bases < 1:
        raise BiovaeError("chunk_records and chunk_bases must be at least 1")
    seen = UniqueIds(path) if unique_ids else None
    chunk = SeqChunk(first=0)
    n_bases = 0
    for rid, seq in _records(path, seen):
        chunk.ids.append(rid)
        chunk.seqs.append(seq)
        n_bases += len(seq)
        if len(chunk.ids) >= chunk_records or n_bases >= chunk_bases:
            yield chunk
            chunk = SeqChunk(first=chunk.first + len(chunk.ids))
            n_bases = 0
    if chunk.ids:
        yield chunk


def read_fastx(path: str | Path, unique_ids: bool = True) -> SeqChunk:
    """Read every record of a FASTA/FASTQ file into one SeqChunk (see iter_chunks)."""
    out = SeqChunk(first=0)
    for chunk in iter_chunks(path, chunk_records=1 << 62, chunk_bases=1 << 62, unique_ids=unique_ids):
        out.ids.extend(chunk.ids)
        out.seqs.extend(chunk.seqs)
    return out


# --- internals ---------------------------------------------------------------------------

_BLOCK = 1 << 22  # 4 MiB of compressed or plain input per read() call
_WHITESPACE = b" \t\r\n"


def _check_path(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise BiovaeError(f"input file {path} does not exist", "check the path")
    if path.is_dir():
        raise BiovaeError(f"input {path} is a folder, expected a FASTA/FASTQ file")
    if path.stat().st_size == 0:
        raise BiovaeError(f"input file {path} is empty", "give a FASTA or FASTQ file with at least one record")
    return path


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == _GZIP_MAGIC


def _blocks(path: Path) -> Iterator[bytes]:
    """Yield the decompressed content of `path` in blocks of a few MiB.

    zlib is driven directly rather than through gzip.open because line-by-line reads through
    GzipFile cost twice the time of decompression itself (measured: 2.5 s against 1.2 s for a
    200 MB FASTQ). Multi-member gzip (bgzip, concatenated files) is followed member by member;
    a member without its end marker raises EOFError.
    """
    with open(path, "rb") as fh:
        magic = fh.read(6)
        fh.seek(0)
        if magic[:2] != _GZIP_MAGIC:
            for prefix, name in _OTHER_COMPRESSION.items():
                if magic.startswith(prefix):
                    raise BiovaeError(f"{path} is compressed with {name}; only plain or gzip input is read", "recompress it with gzip")
            while block := fh.read(_BLOCK):
                yield block
            return
        dec = zlib.decompressobj(31)
        fed = False  # whether the current member has received any input
        while raw := fh.read(_BLOCK):
            while raw:
                if not fed and not raw.strip(b"\0"):
                    raw = b""  # zero padding after the last member is tolerated, as gzip(1) does
                    break
                fed = True
                out = dec.decompress(raw)
                if out:
                    yield out
                if dec.eof:
                    raw = dec.unused_data
                    dec, fed = zlib.decompressobj(31), False
                else:
                    raw = b""
        if fed:
            raise EOFError("compressed file ended before the end-of-stream marker was reached")


def _first_content_line(path: Path) -> bytes:
    try:
        for block in _blocks(path):
            text = block.lstrip()
            if text:
                line = text.split(b"\n", 1)[0]
                if line[:1] in (b">", b"@"):
                    return line
                shown = line[:20].decode("ascii", errors="replace").rstrip()
                raise BiovaeError(f"{path} is not FASTA or FASTQ: the content starts with {shown!r}", "a FASTA record starts with '>', a FASTQ record with '@'")
    except (EOFError, zlib.error) as exc:
        raise _gzip_error(path, "the first record", exc) from None
    raise BiovaeError(f"input file {path} is empty (only blank lines)", "give a FASTA or FASTQ file with at least one record")


def _gzip_error(path: Path, where: str, exc: Exception) -> BiovaeError:
    return BiovaeError(f"{path}: gzip data is truncated or corrupt (failed while reading {where}: {exc})", "re-download or re-compress the file")


def _records(path: Path, seen: "UniqueIds | None") -> Iterator[tuple[str, bytes]]:
    fmt = "fasta" if _first_content_line(path)[:1] == b">" else "fastq"
    parser = _fasta if fmt == "fasta" else _fastq
    where = _Where()
    try:
        for rid, seq, line_no in parser(_blocks(path), path, where):
            if seen is not None:
                seen.add(rid, line_no)
            yield rid, seq
        if seen is not None:
            seen.flush()
    except (EOFError, zlib.error) as exc:
        raise _gzip_error(path, f"line {where.line} (after record {where.last_id!r})", exc) from None


class UniqueIds:
    """Duplicate-id check in bounded memory: 8 bytes per record seen.

    The ids of the current batch (at most `batch`) are kept as a dict; ids of earlier batches
    only as a sorted array of their 64-bit hashes, so a million reads cost 8 MB rather than a
    set of a million strings (~100 MB). A repeat inside the batch is reported at once; one of an
    earlier batch when the batch is flushed (a hash collision of two different ids, about
    n^2 / 2^65 - 3e-8 at 10^6 reads - would be reported as a repeat).
    """

    def __init__(self, path: Path, batch: int = 65_536):
        self.path, self.batch = path, batch
        self.current: dict[str, int] = {}
        self.done = np.zeros(0, dtype=np.int64)

    def add(self, rid: str, line_no: int) -> None:
        if rid in self.current:
            self._duplicate(rid, line_no)
        self.current[rid] = line_no
        if len(self.current) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if not self.current:
            return
        hashes = np.fromiter((hash(r) for r in self.current), dtype=np.int64, count=len(self.current))
        if self.done.size:
            pos = np.minimum(np.searchsorted(self.done, hashes), self.done.size - 1)
            hit = np.flatnonzero(self.done[pos] == hashes)
            if hit.size:
                rid = list(self.current)[hit[0]]
                self._duplicate(rid, self.current[rid])
        self.done = np.sort(np.concatenate([self.done, hashes]), kind="stable")
        self.current = {}

    def _duplicate(self, rid: str, line_no: int):
        raise BiovaeError(f"{self.path}: duplicate record id {rid!r} (again at line {line_no})",
                          "every record needs a unique id (first word of the header)")


class _Where:
    """Parser position, kept outside the generator so errors from the decompressor can name it."""

    def __init__(self):
        self.line = 0
        self.last_id: str | None = None


def _parse_id(header: bytes, path: Path, line_no: int) -> str:
    words = header[1:].split(None, 1)
    if not words:
        raise BiovaeError(f"{path}: record header at line {line_no} has no id", "put the id right after '>' or '@'")
    try:
        return words[0].decode("utf-8")
    except UnicodeDecodeError:
        raise BiovaeError(f"{path}: record id at line {line_no} is not valid UTF-8 text") from None


def _clean_seq(seq: bytes, rid: str, path: Path, line_no: int) -> bytes:
    """Return `seq` without whitespace after checking it is non-empty IUPAC text."""
    bad = seq.translate(None, IUPAC)
    if bad and not bad.strip(_WHITESPACE):
        # Only stray whitespace (CR line ends, trailing blanks): take it out. Done only on
        # this rare path because the deletion costs as much as the check itself.
        seq = seq.translate(None, _WHITESPACE)
        bad = b""
    if not seq:
        raise BiovaeError(f"{path}: record {rid!r} (line {line_no}) has an empty sequence", "remove the record or give it a sequence")
    if bad:
        bad = bad.translate(None, _WHITESPACE)
        char = chr(bad[0])
        raise BiovaeError(f"{path}: record {rid!r} (line {line_no}) holds {char!r}, which is not a nucleotide (IUPAC) code", "sequences may hold A, C, G, T, U and IUPAC ambiguity codes such as N")
    return seq


def _fasta(blocks: Iterator[bytes], path: Path, where: _Where) -> Iterator[tuple[str, bytes, int]]:
    # Whole records are cut out of each block at "\n>" and their line breaks deleted with
    # bytes.translate, so the per-line cost of multi-line FASTA stays in C.
    pending: list[bytes] = []  # text of the record(s) not yet known to be complete
    line_no = 1
    started = False
    for block in blocks:
        if not started:
            stripped = block.lstrip()
            line_no += block[: len(block) - len(stripped)].count(b"\n")
            block = stripped
            if not block:
                continue
            started = True
        cut = block.rfind(b"\n>")
        if cut < 0:
            pending.append(block)
            continue
        text = b"".join(pending) + block[:cut]
        pending = [block[cut + 1 :]]
        yield from _fasta_pieces(text, path, line_no, where)
        line_no = where.line
    text = b"".join(pending)
    if text.strip():
        yield from _fasta_pieces(text, path, line_no, where)


def _fasta_pieces(text: bytes, path: Path, line_no: int, where: _Where) -> Iterator[tuple[str, bytes, int]]:
    """Parse complete records in `text` (starting with '>'); line_no is that of its first line."""
    # Drop only the leading '>' of the first record: an id may itself start with '>' (">>x" is "x"
    # with lstrip, but its first word is ">x").
    for piece in text[1:].split(b"\n>"):
        where.line = line_no
        header, _, body = piece.partition(b"\n")
        rid = _parse_id(b">" + header, path, line_no)
        where.last_id = rid
        seq = _clean_seq(body.replace(b"\n", b""), rid, path, line_no)
        yield rid, seq, line_no
        line_no += piece.count(b"\n") + 1
    where.line = line_no  # the line after the last record: where the next text starts


def _lines(blocks: Iterator[bytes]) -> Iterator[bytes]:
    tail = b""
    for block in blocks:
        lines = (tail + block).split(b"\n")
        tail = lines.pop()
        yield from lines
    if tail:
        yield tail


def _fastq(blocks: Iterator[bytes], path: Path, where: _Where) -> Iterator[tuple[str, bytes, int]]:
    # Multi-line FASTQ is allowed: sequence lines run up to the '+' line, quality lines are
    # read until they reach the sequence length (a quality line may itself start with '@'),
    # over no more lines than the sequence took.
    lines = _lines(blocks)
    line_no = 0
    for line in lines:
        line_no += 1
        if not line.strip():
            continue
        if line[:1] != b"@":
            shown = line[:20].decode("ascii", errors="replace").rstrip()
            raise BiovaeError(f"{path}: line {line_no} should start a FASTQ record with '@' but starts with {shown!r}", "check the file is complete, 4-line FASTQ")
        rid = _parse_id(line, path, line_no)
        where.last_id, where.line = rid, line_no
        head_line = line_no
        parts: list[bytes] = []
        for line in lines:
            line_no += 1
            if line[:1] == b"+":
                break
            parts.append(line)
        else:
            raise BiovaeError(f"{path}: FASTQ record {rid!r} (line {head_line}) ends without a '+' line and quality", "the file looks truncated")
        seq = _clean_seq(parts[0] if len(parts) == 1 else b"".join(parts), rid, path, head_line)
        # The quality is wrapped like the sequence: at most as many lines. Without that bound a
        # short quality line would swallow the lines of the next record(s) until the lengths add
        # up (a quality line may start with '@'), silently merging records.
        qlen, first_qlen, q_lines = 0, None, 0
        while qlen < len(seq) and q_lines < max(len(parts), 1):
            q_lines += 1
            qline = next(lines, None)
            if qline is None:
                break
            line_no += 1
            qlen += len(qline.rstrip(_WHITESPACE))
            first_qlen = qlen if first_qlen is None else first_qlen
        where.line = line_no
        if qlen != len(seq):
            # An overshoot means the short quality line swallowed the next header: report
            # the line the user will look at, not the sum.
            shown = first_qlen if qlen > len(seq) and first_qlen is not None else qlen
            raise BiovaeError(f"{path}: FASTQ record {rid!r} (line {head_line}) has {len(seq)} bases but {shown} quality values", "quality and sequence lines must have the same length")
        yield rid, seq, head_line
