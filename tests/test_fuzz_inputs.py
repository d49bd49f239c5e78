"""Property-based tests (hypothesis) over the input readers: FASTA/FASTQ, abundance TSV, expression.

Two properties per reader:
- a random valid input (plain or gzip, LF or CRLF, wrapped or not) parses to exactly the records
  that were written;
- a random corruption (byte flips, insertions, deletions, truncation, truncated gzip, bad quality
  lengths, empty sequences, duplicate ids, non-numeric or negative abundances, wrong headers)
  either still parses or raises BiovaeError with a message - never any other exception type.

A damaged .h5ad is read in a forked child (fuzzing.isolated): a child killed by a signal inside
libhdf5 is a native crash, counted as "expression_corrupt: native crash" and reported as a warning;
a child that gives no answer within fuzzing.HANG_SECONDS is a hang, and fails the test (naming a
folder that keeps the input).

Every case tried is counted per property; the totals go to benchmarks/out/fuzz_counts.json (and
to stdout with `pytest -s`). The default run is derandomized (fixed examples, no database) and
takes well under a minute; `-m slow` runs each property with SLOW_FACTOR times more examples.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
from fuzzing import (SLOW_FACTOR, isolated, judge_isolated, maybe_gzip, mutated, refused, refused_or_parsed,  # noqa: F401
                     run, write_counts, write_file)  # write_counts: the autouse fixture recording the counts
from hypothesis import strategies as st

from biovae.io.abundance import read_abundance
from biovae.io.expression import read_expression
from biovae.io.fastx import iter_chunks, read_fastx

IUPAC = "ACGTUNRYKMSWBDHVacgtunrykmswbdhv"
QUAL = "".join(chr(c) for c in range(33, 127))
# ids: printable text without whitespace or control characters (the first word of a header)
ID_TEXT = st.text(st.characters(blacklist_categories=("Z", "C")), min_size=1, max_size=10) | st.builds(
    "".join, st.lists(st.sampled_from([">", "@", "+", "a", "é", "1", "|", ";"]), min_size=1, max_size=4))
NAME_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\t\r\n"), min_size=1, max_size=8)


# -- FASTA / FASTQ --------------------------------------------------------------------------
@st.composite
def fastx_files(draw, fastq: bool):
    """A valid FASTA or FASTQ file as bytes, with the ids and sequences it holds."""
    ids = draw(st.lists(ID_TEXT, min_size=1, max_size=6, unique=True))
    seqs = [draw(st.text(IUPAC, min_size=1, max_size=150)).encode() for _ in ids]
    eol = draw(st.sampled_from([b"\n", b"\r\n"]))
    width = draw(st.sampled_from([0, 0, 1, 7, 60]))  # 0: one line per sequence

    def wrap(s: bytes) -> list[bytes]:
        return [s] if not width else [s[a : a + width] for a in range(0, len(s), width)]

    lines: list[bytes] = []
    for rid, seq in zip(ids, seqs):
        desc = draw(st.sampled_from([b"", b" len=3 x", b"\tdesc"]))
        lines.append((b"@" if fastq else b">") + rid.encode() + desc)
        lines += wrap(seq)
        if fastq:
            qual = draw(st.text(QUAL, min_size=len(seq), max_size=len(seq))).encode()
            lines.append(draw(st.sampled_from([b"+", b"+" + rid.encode()])))
            lines += wrap(qual)
        if draw(st.booleans()) and draw(st.booleans()):
            lines.append(b"")  # a blank line between records
    text = eol.join(lines) + (eol if draw(st.booleans()) else b"")
    return text, ids, seqs


def _fastx_case(fastq: bool):
    return st.tuples(fastx_files(fastq), st.booleans(), st.integers(0, 400), st.integers(1, 4))


def prop_fastx_valid(case):
    (text, ids, seqs), gz, split, chunk = case
    with tempfile.TemporaryDirectory() as tmp:
        path = write_file(Path(tmp), "reads", maybe_gzip(text, gz, split))
        got = read_fastx(path)
        assert got.ids == ids
        assert got.seqs == seqs
        assert got.lengths.tolist() == [len(s) for s in seqs]
        chunks = list(iter_chunks(path, chunk_records=chunk))
        assert [c.first for c in chunks] == list(range(0, len(ids), chunk))
        assert sum((c.ids for c in chunks), []) == ids


@st.composite
def fastx_corrupt(draw):
    fastq = draw(st.booleans())
    text, ids, seqs = draw(fastx_files(fastq))
    gz = draw(st.booleans())
    raw = maybe_gzip(text, gz)
    return draw(st.one_of(mutated(raw), mutated(text).map(lambda t: maybe_gzip(t, gz))))


def prop_fastx_corrupt(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = write_file(Path(tmp), "reads", data)
        got = refused_or_parsed(lambda: read_fastx(path))
        if got is not None:
            assert len(got.ids) == len(got.seqs) >= 1 and all(got.seqs)
            assert len(set(got.ids)) == len(got.ids)


@st.composite
def fastx_broken(draw):
    """A valid file with one specific defect that must be refused, and the expected message."""
    fastq = draw(st.booleans())
    ids = draw(st.lists(ID_TEXT, min_size=1, max_size=5, unique=True))
    seqs = [draw(st.text("ACGTN", min_size=1, max_size=60)) for _ in ids]
    quals = ["I" * len(s) for s in seqs]
    k = draw(st.integers(0, len(ids) - 1))
    kinds = ["empty", "duplicate", "badchar", "truncgz", "bzip2", "noid"] + (["qual", "cut"] if fastq else [])
    kind = draw(st.sampled_from(kinds))
    match = {"empty": "empty sequence", "duplicate": "duplicate record id", "badchar": "not a nucleotide",
             "truncgz": "truncated or corrupt", "bzip2": "bzip2", "noid": "no id", "qual": "quality values|should start",
             "cut": "FASTQ record|UTF-8|no id"}[kind]
    if kind == "empty":
        seqs[k], quals[k] = "", ""
    elif kind == "duplicate":
        ids.append(ids[k]), seqs.append(seqs[k]), quals.append(quals[k])
    elif kind == "badchar":
        s = seqs[k]
        i = draw(st.integers(0, len(s)))
        seqs[k] = s[:i] + draw(st.sampled_from("XZ*-.0é?")) + s[i:]
        quals[k] = "I" * len(seqs[k])
    elif kind == "noid":
        ids[k] = ""
    elif kind == "qual":
        quals[k] = "I" * draw(st.integers(0, len(seqs[k]) - 1)) if draw(st.booleans()) else quals[k] + "II"
    mark = "@" if fastq else ">"
    recs = [f"{mark}{i}\n{s}\n" + (f"+\n{q}\n" if fastq else "") for i, s, q in zip(ids, seqs, quals)]
    text = "".join(recs).encode()
    if kind == "cut":  # cut inside the last record, before the end of its quality line
        start = len("".join(recs[:-1]).encode())
        text = text[: draw(st.integers(start + 1, len(text) - 3))]
    if kind == "truncgz":
        data = gzip.compress(text, mtime=0)
        data = data[: draw(st.integers(0, len(data) - 1))]
        match = "truncated or corrupt|is empty|not FASTA"  # 0 or 1 byte left is no gzip at all
    elif kind == "bzip2":
        data = bz2.compress(text)
    else:
        data = maybe_gzip(text, draw(st.booleans()))
    return data, match


def prop_fastx_broken(case):
    data, match = case
    with tempfile.TemporaryDirectory() as tmp:
        path = write_file(Path(tmp), "reads", data)
        refused(lambda: read_fastx(path), match)


# -- abundance TSV --------------------------------------------------------------------------
@st.composite
def abundance_files(draw):
    """A valid VAMB abundance TSV as bytes, with the contig order asked for and the matrix."""
    contigs = draw(st.lists(ID_TEXT, min_size=1, max_size=6, unique=True))
    samples = draw(st.lists(NAME_TEXT, min_size=1, max_size=4, unique=True))
    values = draw(st.lists(st.lists(st.floats(0, 1e6), min_size=len(samples), max_size=len(samples)),
                           min_size=len(contigs), max_size=len(contigs)))
    fmt = draw(st.sampled_from(["{!r}", "{:.3f}", "{:g}", "{:e}"]))
    texts = [[fmt.format(v) for v in row] for row in values]
    extra = draw(st.lists(ID_TEXT.filter(lambda c: c not in contigs), max_size=2, unique=True))
    rows = [[c, *t] for c, t in zip(contigs, texts)] + [[c] + ["1"] * len(samples) for c in extra]
    order = draw(st.permutations(range(len(rows))))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    lines = ["\t".join(["contigname", *samples])] + ["\t".join(rows[i]) for i in order]
    text = (eol.join(lines) + eol * draw(st.integers(0, 2))).encode()
    expected = np.array([[float(t) for t in row] for row in texts], dtype=np.float32)
    return text, contigs, samples, expected, bool(extra)


def prop_abundance_valid(case):
    (text, contigs, samples, expected, extra), gz = case
    with tempfile.TemporaryDirectory() as tmp:
        path = write_file(Path(tmp), "abundance.tsv", maybe_gzip(text, gz))
        got = read_abundance(path, contigs, extra_rows="ignore")
        assert got.samples == samples
        np.testing.assert_array_equal(got.matrix, expected)
        if extra:
            refused(lambda: read_abundance(path, contigs), "not in the FASTA")


@st.composite
def abundance_broken(draw):
    text, contigs, samples, _, _ = draw(abundance_files())
    lines = text.decode().replace("\r\n", "\n").rstrip("\n").split("\n")
    lines = lines[:1] + [ln for ln in lines[1:] if ln.split("\t")[0] in contigs]  # drop the extra rows
    r = draw(st.integers(1, len(lines) - 1))
    cells = lines[r].split("\t")
    kind = draw(st.sampled_from(["value", "negative", "header", "dupsample", "columns", "duprow", "missing", "truncgz"]))
    match = "not a (finite non-negative )?number"
    if kind == "value":
        j = draw(st.integers(1, len(cells) - 1))
        cells[j] = draw(st.sampled_from(["", "abc", "1,5", "nan", "inf", "-inf", "1e999", "0x10", "--1", "1.2.3"]))
    elif kind == "negative":
        cells[draw(st.integers(1, len(cells) - 1))] = f"-{draw(st.floats(1e-9, 1e9))!r}"
    elif kind == "header":
        lines[0] = draw(st.sampled_from(["contig", "", "name\tsample", "contigname,s1,s2", "#contigname\ts"]))
        match = "header"
    elif kind == "dupsample":
        lines[0] += "\t" + lines[0].split("\t")[1]
        match = "appears twice"
    elif kind == "columns":
        cells = cells[:-1] if draw(st.booleans()) else cells + ["1"]
        match = "columns"
    elif kind == "duprow":
        lines.append(lines[r])
        match = "two rows"
    elif kind == "missing":
        del lines[r]
        cells, match = None, "has no row"
    if cells is not None and kind not in ("header", "dupsample", "duprow"):
        lines[r] = "\t".join(cells)
    data = ("\n".join(lines) + "\n").encode()
    if kind == "truncgz":
        data = gzip.compress(data, mtime=0)
        data, match = data[: draw(st.integers(2, len(data) - 1))], "truncated or corrupt"
    return data, contigs, match


def prop_abundance_broken(case):
    data, contigs, match = case
    with tempfile.TemporaryDirectory() as tmp:
        path = write_file(Path(tmp), "abundance.tsv", data)
        refused(lambda: read_abundance(path, contigs), match)


@st.composite
def abundance_corrupt(draw):
    text, contigs, *_ = draw(abundance_files())
    gz = draw(st.booleans())
    return draw(st.one_of(mutated(maybe_gzip(text, gz)), mutated(text).map(lambda t: maybe_gzip(t, gz)))), contigs


def prop_abundance_corrupt(case):
    data, contigs = case
    with tempfile.TemporaryDirectory() as tmp:
        path = write_file(Path(tmp), "abundance.tsv", data)
        got = refused_or_parsed(lambda: read_abundance(path, contigs, extra_rows="ignore"))
        if got is not None:
            assert got.matrix.shape == (len(contigs), len(got.samples))
            assert np.isfinite(got.matrix).all() and (got.matrix >= 0).all()


# -- expression -------------------------------------------------------------------------------
FORMATS = st.sampled_from(["csv", "tsv", "tsv-t", "10x", "h5ad"])
NAME = st.from_regex(r"[A-Za-z][A-Za-z0-9_.\-]{0,7}", fullmatch=True) | st.sampled_from(
    ["NA", "null", "None", "nan", "N/A", "#N/A", "n/a", "0x1", "1e", "A,B", 'q"t'])  # not missing values
NUMBERED = st.from_regex(r"0[0-9]{1,3}", fullmatch=True)  # names keep their leading zeros


@st.composite
def expression_data(draw):
    """Cells x genes counts with unique cell and gene names, and the format to write them in.
    Names that look like numbers are drawn for the index column only (a header of numbers is
    refused on purpose)."""
    fmt = draw(FORMATS)
    cells = draw(st.lists(NAME | NUMBERED if fmt != "tsv-t" else NAME, min_size=1, max_size=6, unique=True))
    genes = draw(st.lists(NAME | NUMBERED if fmt == "tsv-t" else NAME, min_size=1, max_size=5, unique=True))
    X = np.array(draw(st.lists(st.lists(st.sampled_from([0.0, 0.0, 1.0, 2.5, 7.0, 1e3]), min_size=len(genes),
                                        max_size=len(genes)), min_size=len(cells), max_size=len(cells))))
    return X.astype(np.float32), cells, genes, fmt


def _expression_files(tmp: Path, X, cells, genes, fmt: str, gz: bool) -> Path:
    """Write (X, cells, genes) in `fmt` (csv, tsv, tsv-genes-in-rows, 10x, h5ad); return the path."""
    if fmt == "h5ad":
        import anndata as ad
        import pandas as pd

        path = tmp / "x.h5ad"
        ad.AnnData(X=X, obs=pd.DataFrame(index=cells), var=pd.DataFrame(index=genes)).write_h5ad(path)
        return path
    if fmt == "10x":
        folder = tmp / "tenx"
        folder.mkdir()
        z = ".gz" if gz else ""
        scipy.io.mmwrite(str(tmp / "m.mtx"), sp.coo_matrix(X.T))
        (folder / f"matrix.mtx{z}").write_bytes(maybe_gzip((tmp / "m.mtx").read_bytes(), gz))
        (folder / f"barcodes.tsv{z}").write_bytes(maybe_gzip("".join(f"{c}\n" for c in cells).encode(), gz))
        (folder / f"features.tsv{z}").write_bytes(
            maybe_gzip("".join(f"ID{j}\t{g}\tGene Expression\n" for j, g in enumerate(genes)).encode(), gz))
        return folder
    sep = "," if fmt == "csv" else "\t"
    rows, cols, M = (genes, cells, X.T) if fmt == "tsv-t" else (cells, genes, X)
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=sep, lineterminator="\n")  # quotes names holding , or "
    writer.writerows([["cell", *cols]] + [[r, *(repr(float(v)) for v in M[i])] for i, r in enumerate(rows)])
    name = "x.csv" if fmt == "csv" else "x.tsv"
    return write_file(tmp, name + (".gz" if gz else ""), maybe_gzip(buf.getvalue().encode(), gz))


def prop_expression_valid(case):
    (X, cells, genes, fmt), gz = case
    with tempfile.TemporaryDirectory() as tmp:
        path = _expression_files(Path(tmp), X, cells, genes, fmt, gz)
        got = read_expression(path, genes_in_rows=fmt == "tsv-t")
        assert list(got.obs_names) == cells and list(got.var_names) == genes
        dense = got.X.toarray() if sp.issparse(got.X) else np.asarray(got.X)
        np.testing.assert_array_equal(dense, X)


@st.composite
def expression_corrupt(draw):
    """A valid expression input with one of its files corrupted; returns (files, path to read)."""
    X, cells, genes, fmt = draw(expression_data())
    gz = draw(st.booleans())
    tmp = Path(tempfile.mkdtemp())
    try:
        path = _expression_files(tmp, X, cells, genes, fmt, gz)
        target = path if path.is_file() else draw(st.sampled_from(sorted(path.iterdir())))
        raw = target.read_bytes()
        if gz and target.suffix == ".gz" and draw(st.booleans()):
            new = maybe_gzip(draw(mutated(gzip.decompress(raw))), True)
        elif fmt == "h5ad":  # HDF5 damage: truncation or overwritten bytes in the data region
            new = raw[: draw(st.integers(0, len(raw) - 1))] if draw(st.booleans()) else draw(mutated(raw))
        else:
            new = draw(mutated(raw))
        files = {p.relative_to(tmp).as_posix(): p.read_bytes() for p in tmp.rglob("*") if p.is_file()}
        files[target.relative_to(tmp).as_posix()] = new
        return files, path.relative_to(tmp).as_posix(), fmt
    finally:
        shutil.rmtree(tmp)


def prop_expression_corrupt(case):
    files, rel, fmt = case
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            (Path(tmp) / name).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / name).write_bytes(data)
        path = Path(tmp) / rel
        if fmt == "h5ad":  # libhdf5 may crash on a damaged file: counted and reported; a hang fails
            judge_isolated("expression_corrupt", isolated(lambda: read_expression(path)), keep=Path(tmp))
            return
        got = refused_or_parsed(lambda: read_expression(path, genes_in_rows=fmt == "tsv-t"))
        if got is not None:
            assert got.n_obs >= 1 and got.n_vars >= 1


# -- the runs ---------------------------------------------------------------------------------
CASES = {  # name: (strategy, property, examples in the default run)
    "fasta_valid": (_fastx_case(False), prop_fastx_valid, 300),
    "fastq_valid": (_fastx_case(True), prop_fastx_valid, 300),
    "fastx_corrupt": (fastx_corrupt(), prop_fastx_corrupt, 800),
    "fastx_broken": (fastx_broken(), prop_fastx_broken, 500),
    "abundance_valid": (st.tuples(abundance_files(), st.booleans()), prop_abundance_valid, 300),
    "abundance_broken": (abundance_broken(), prop_abundance_broken, 500),
    "abundance_corrupt": (abundance_corrupt(), prop_abundance_corrupt, 500),
    "expression_valid": (st.tuples(expression_data(), st.booleans()), prop_expression_valid, 200),
    "expression_corrupt": (expression_corrupt(), prop_expression_corrupt, 400),
}


@pytest.mark.parametrize("name", list(CASES))
def test_fuzz(name):
    run(name, CASES[name][0], CASES[name][1], CASES[name][2])


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_fuzz_long(name):
    run(name, CASES[name][0], CASES[name][1], CASES[name][2] * SLOW_FACTOR, "+slow")
