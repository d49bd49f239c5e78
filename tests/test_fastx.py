"""FASTA/FASTQ reading on real genome windows (tests/data/genomes), and every bad-input case of
issue 3."""

from __future__ import annotations

import bz2
import gzip
from pathlib import Path

import numpy as np
import pytest

from biovae.errors import BiovaeError
from biovae.io.fastx import detect_format, iter_chunks, read_fastx

GENOMES = Path(__file__).resolve().parent / "data" / "genomes"
VIBRIO = GENOMES / "vibrio_cholerae_O395.fna.gz"  # a window of each chromosome: a multi-record file
HPYLORI = GENOMES / "helicobacter_pylori_G27.fna.gz"


def _plain_parse(path: Path) -> tuple[list[str], list[bytes]]:
    """Independent reference: the whole file in memory, split by hand."""
    ids, seqs = [], []
    for line in gzip.decompress(path.read_bytes()).splitlines():
        if line.startswith(b">"):
            ids.append(line[1:].split()[0].decode())
            seqs.append([])
        elif line.strip():
            seqs[-1].append(line.strip())
    return ids, [b"".join(s) for s in seqs]


def _reads(n: int = 300, seed: int = 0) -> list[tuple[str, bytes]]:
    genome = read_fastx(HPYLORI).seqs[0]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        length = int(rng.integers(200, 3000))
        start = int(rng.integers(0, len(genome) - length))
        out.append((f"read_{i}", genome[start : start + length]))
    return out


def _write_fastq(path: Path, records, gz: bool = False) -> Path:
    text = b"".join(b"@%s extra words\n%s\n+\n%s\n" % (rid.encode(), s, b"I" * len(s)) for rid, s in records)
    path.write_bytes(gzip.compress(text) if gz else text)
    return path


def test_gzip_fasta_matches_a_plain_parse_of_the_real_genome():
    ids, seqs = _plain_parse(VIBRIO)
    got = read_fastx(VIBRIO)
    assert got.ids == ids and len(ids) == 2
    assert got.seqs == seqs
    assert got.lengths.tolist() == [len(s) for s in seqs]
    assert detect_format(VIBRIO) == ("fasta", True)


def test_format_comes_from_content_not_the_file_name(tmp_path):
    records = _reads(50)
    fq = _write_fastq(tmp_path / "reads.fasta", records)  # FASTQ content, FASTA name
    gz = _write_fastq(tmp_path / "reads.txt", records, gz=True)
    assert detect_format(fq) == ("fastq", False)
    assert detect_format(gz) == ("fastq", True)
    for path in (fq, gz):
        got = read_fastx(path)
        assert got.ids == [r[0] for r in records]
        assert got.seqs == [r[1] for r in records]


def test_chunks_stream_in_order_and_respect_both_limits(tmp_path):
    records = _reads(300)
    path = _write_fastq(tmp_path / "r.fq.gz", records, gz=True)
    chunks = list(iter_chunks(path, chunk_records=64, chunk_bases=40_000))
    assert len(chunks) > 5
    firsts = np.cumsum([0] + [len(c) for c in chunks[:-1]])
    assert [c.first for c in chunks] == firsts.tolist()
    for c in chunks:
        assert len(c) <= 64
        # a chunk closes at the first record that reaches the base limit
        assert c.lengths[:-1].sum() < 40_000
    assert [i for c in chunks for i in c.ids] == [r[0] for r in records]
    assert [s for c in chunks for s in c.seqs] == [r[1] for r in records]


def test_errors_surface_lazily_after_earlier_chunks(tmp_path):
    records = _reads(100)
    path = _write_fastq(tmp_path / "r.fq", records + [records[0]])  # duplicate id at the end
    chunks = iter_chunks(path, chunk_records=10)
    assert len(next(chunks)) == 10  # streamed: the first chunk arrives before the bad record
    with pytest.raises(BiovaeError, match="duplicate record id 'read_0'"):
        list(chunks)


def test_multiline_fasta_crlf_lower_case_and_iupac(tmp_path):
    path = tmp_path / "x.fa"
    path.write_bytes(b"\n>s1 desc\r\nacgtN\r\nRYkm \r\n>s2\nACGT\nAC\n\n>s3\nu\n")
    got = read_fastx(path)
    assert got.ids == ["s1", "s2", "s3"]
    assert got.seqs == [b"acgtNRYkm", b"ACGTAC", b"u"]


def test_multiline_fastq_and_quality_starting_with_at(tmp_path):
    path = tmp_path / "x.fq"
    path.write_bytes(b"@a\nACG\nTTA\n+a\n@@@\nIII\n@b\nGG\n+\n@I\n")
    got = read_fastx(path)
    assert got.ids == ["a", "b"] and got.seqs == [b"ACGTTA", b"GG"]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty"),
        (b"\n\n  \n", "is empty"),
        (b"hello world\n", "is not FASTA or FASTQ"),
        (b"@r1\nACGT\n+\nIII\n", r"'r1' \(line 1\) has 4 bases but 3 quality values"),
        (b"@r1\nACGT\n+\nIIIII\n", "has 4 bases but 5 quality values"),
        (b"@r1\nACGT\n+\nIIII\n@r2\nAC\n", "'r2' .* ends without a '\\+' line"),
        (b">a\nACGT\n>b\n>c\nAC\n", r"record 'b' \(line 3\) has an empty sequence"),
        (b">a\nACGT\n>a\nAC\n", "duplicate record id 'a'"),
        (b">a\nACGT\n>b x\nAC*T\n", r"record 'b' \(line 3\) holds '\*'"),
        (b">a\nACGT\n>  \nAC\n", "header at line 3 has no id"),
        (b"@a\nACGT\n+\nIIII\nACGT\n", "line 5 should start a FASTQ record"),
    ],
)
def test_bad_input_names_the_record(tmp_path, content, message):
    path = tmp_path / "bad.fa"
    path.write_bytes(content)
    with pytest.raises(BiovaeError, match=message) as info:
        read_fastx(path)
    assert str(path) in str(info.value)


def test_missing_file_and_other_compressions(tmp_path):
    with pytest.raises(BiovaeError, match="does not exist"):
        read_fastx(tmp_path / "nope.fa")
    path = tmp_path / "x.fa.bz2"
    path.write_bytes(bz2.compress(b">a\nACGT\n"))
    with pytest.raises(BiovaeError, match="bzip2"):
        read_fastx(path)


def test_truncated_and_corrupt_gzip(tmp_path):
    data = HPYLORI.read_bytes()
    cut = tmp_path / "cut.fa.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(BiovaeError, match="truncated or corrupt"):
        read_fastx(cut)
    bad = bytearray(data)
    bad[len(bad) // 2 : len(bad) // 2 + 64] = bytes(64)
    corrupt = tmp_path / "corrupt.fa.gz"
    corrupt.write_bytes(bytes(bad))
    with pytest.raises(BiovaeError, match="truncated or corrupt"):
        read_fastx(corrupt)


def test_concatenated_gzip_members(tmp_path):
    path = tmp_path / "two.fq.gz"
    path.write_bytes(gzip.compress(b"@a\nACGT\n+\nIIII\n") + gzip.compress(b"@b\nGG\n+\nII\n"))
    assert read_fastx(path).ids == ["a", "b"]


def test_a_repeat_many_batches_later_is_found_in_bounded_memory(tmp_path):
    from biovae.io.fastx import UniqueIds

    seen = UniqueIds(tmp_path / "x.fa", batch=100)
    for i in range(1_000):
        seen.add(f"read_{i}", 2 * i + 1)
    assert seen.done.nbytes <= 8 * 1_000 and len(seen.current) == 0
    seen.add("read_7", 2_001)  # a repeat from the first batch, met in the eleventh
    with pytest.raises(BiovaeError, match=r"duplicate record id 'read_7' \(again at line 2001\)"):
        seen.flush()
