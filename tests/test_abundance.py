"""VAMB-format abundance TSV: alignment to the FASTA, every error case, VAMB's normalisation."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from biovae.errors import BiovaeError
from biovae.features.scaling import vamb_abundance
from biovae.io.abundance import read_abundance
from biovae.io.fastx import read_fastx

VIBRIO = Path(__file__).resolve().parent / "data" / "genomes" / "vibrio_cholerae_O395.fna.gz"  # 40 kb of each chromosome


@pytest.fixture(scope="module")
def chroms():
    return read_fastx(VIBRIO)


@pytest.fixture()
def contigs(tmp_path, chroms) -> tuple[Path, list[str]]:
    """Contigs cut from the two V. cholerae chromosomes, named as an assembler would."""
    rng = np.random.default_rng(11)
    records = []
    for c, seq in enumerate(chroms.seqs):
        for i in range(6):
            start = int(rng.integers(0, len(seq) - 5000))
            records.append((f"S1C{c}_{i} len=5000", seq[start : start + 5000]))
    path = tmp_path / "contigs.fna"
    path.write_bytes(b"".join(b">%s\n%s\n" % (name.encode(), s) for name, s in records))
    return path, read_fastx(path).ids


def _write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_rows_in_any_order_are_aligned_to_the_fasta(tmp_path, contigs):
    _, ids = contigs
    assert ids[0] == "S1C0_0"  # the id is the first word of the header
    values = {cid: (i * 1.5, 100.0 - i, 0.0) for i, cid in enumerate(ids)}
    order = np.random.default_rng(0).permutation(len(ids))
    rows = ["\t".join([ids[j], *map(str, values[ids[j]])]) for j in order]
    got = read_abundance(_write(tmp_path / "a.tsv", "contigname\ts1\ts2\ts3", rows), ids)
    assert got.samples == ["s1", "s2", "s3"]
    assert got.matrix.dtype == np.float32
    np.testing.assert_array_equal(got.matrix, np.array([values[c] for c in ids], dtype=np.float32))


def test_gzip_and_crlf_tables(tmp_path, contigs):
    _, ids = contigs
    text = "contigname\tA\r\n" + "".join(f"{c}\t{i}\r\n" for i, c in enumerate(ids))
    path = tmp_path / "a.tsv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    assert read_abundance(path, ids).matrix[:, 0].tolist() == list(range(len(ids)))


@pytest.mark.parametrize(
    "header, edit, message",
    [
        ("contig\ts1", None, "unknown format.*contigname<TAB>sample"),
        ("contigname s1 s2", None, "unknown format"),  # spaces, not tabs
        ("contigname", None, "names no sample column"),
        ("contigname\ts1\ts1", None, "sample name 's1' appears twice"),
        ("contigname\ts1\ts2", ("drop", 3), "contig 'S1C0_3' of the FASTA has no row .*1 of 12"),
        ("contigname\ts1\ts2", ("dup", 4), r"contig 'S1C0_4' has two rows \(lines 6 and 14\)"),
        ("contigname\ts1\ts2", ("set", 2, "abc"), r"line 4 \(contig 'S1C0_2'\), column 's2': 'abc' is not a number"),
        ("contigname\ts1\ts2", ("set", 5, "-0.5"), r"line 7 \(contig 'S1C0_5'\), column 's2': '-0.5' is not a finite non-negative"),
        ("contigname\ts1\ts2", ("set", 1, "nan"), "'nan' is not a finite non-negative"),
        ("contigname\ts1\ts2", ("cols", 2), r"line 4 \(contig 'S1C0_2'\) has 2 columns, the header has 3"),
        ("contigname\ts1\ts2", ("extra",), "line 14 names contig 'phage_1', which is not in the FASTA"),
    ],
)
def test_bad_tables_name_the_row_and_column(tmp_path, contigs, header, edit, message):
    _, ids = contigs
    n_samples = max(1, header.count("\t"))
    rows = [[c, *(["1.0"] * n_samples)] for c in ids]
    if edit:
        op, *args = edit
        if op == "drop":
            rows.pop(args[0])
        elif op == "dup":
            rows.append(list(rows[args[0]]))
        elif op == "set":
            rows[args[0]][2] = args[1]
        elif op == "cols":
            rows[args[0]] = rows[args[0]][:2]
        elif op == "extra":
            rows.append(["phage_1", "1", "2"])
    path = _write(tmp_path / "bad.tsv", header, ["\t".join(r) for r in rows])
    with pytest.raises(BiovaeError, match=message) as info:
        read_abundance(path, ids)
    assert str(path) in str(info.value)


def test_extra_rows_can_be_ignored_and_files_must_exist(tmp_path, contigs):
    _, ids = contigs
    rows = [f"{c}\t2" for c in ids] + ["short_contig\t9"]
    path = _write(tmp_path / "a.tsv", "contigname\tonly", rows)
    assert read_abundance(path, ids, extra_rows="ignore").matrix.shape == (12, 1)
    with pytest.raises(BiovaeError, match="does not exist"):
        read_abundance(tmp_path / "missing.tsv", ids)
    (tmp_path / "empty.tsv").write_text("")
    with pytest.raises(BiovaeError, match="is empty"):
        read_abundance(tmp_path / "empty.tsv", ids)


def test_vamb_normalisation_by_hand():
    raw = np.array([[1.0, 0.0], [3.0, 2.0], [0.0, 0.0], [4.0, 6.0]])
    got = vamb_abundance(raw, samples=["a", "b"])
    # per-sample scaling to 1e6: column sums 8 and 8 -> both scaled by 125,000
    totals = np.array([1.0, 5.0, 0.0, 10.0]) * 125_000
    np.testing.assert_allclose(got.relative, [[1, 0], [0.6, 0.4], [0.5, 0.5], [0.4, 0.6]], atol=1e-7)
    log_total = np.log(np.maximum(totals, 0.001))
    z = (log_total - log_total.mean()) / log_total.std()
    np.testing.assert_allclose(got.log_total[:, 0], z, rtol=1e-5)
    assert got.log_total.shape == (4, 1)


def test_vamb_normalisation_errors():
    with pytest.raises(BiovaeError, match="sample 'b' has zero abundance in every contig"):
        vamb_abundance(np.array([[1.0, 0.0], [2.0, 0.0]]), samples=["a", "b"])
    with pytest.raises(BiovaeError, match="negative"):
        vamb_abundance(np.array([[1.0, -1.0]]))
    # one sample: relative abundance is all ones, only the total carries information
    one = vamb_abundance(np.array([[1.0], [4.0], [4.0]]))
    assert (one.relative == 1).all() and one.log_total[0, 0] < one.log_total[1, 0]
