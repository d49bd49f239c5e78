"""Cut the committed test fixtures in tests/data/ from the shared real data.

Run by hand only, from the repository root, with ../shared beside the clone:

    python benchmarks/make_test_fixtures.py       # reads ../shared/data, writes tests/data/

It lives here, with the other scripts that read ../shared; the tests read only what it wrote. The output is deterministic: running it again gives byte-identical files. Sources and
licences are in tests/data/README.md.
"""

from __future__ import annotations

import gzip
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "tests" / "data"  # where the fixtures go
SHARED = ROOT.parent / "shared" / "data"

# file: [(record index in the source, first base (0-based), length)], one output record each.
# Windows lie away from the ends of each sequence except S. aureus, whose tests use its first bases.
WINDOWS = {
    # two records (chromosome I and II): the multi-record FASTA of test_fastx and test_abundance
    "vibrio_cholerae_O395.fna.gz": [(0, 1_000_000, 40_000), (1, 300_000, 40_000)],
    # k-mer composition windows (test_kmers); GC 65.6%
    "mycobacterium_tuberculosis_H37Rv.fna.gz": [(0, 2_000_000, 60_000)],
    # coverage histograms use the first 20 kb (test_coverage); GC 32.8%
    "staphylococcus_aureus_USA300.fna.gz": [(0, 0, 30_000)],
    # the three genomes of the contig-binning test (test_bin_workflow): GC 53.5%, 50.8%, 38.9%;
    # H. pylori also gives the FASTQ reads of test_fastx
    "corynebacterium_diphtheriae_NCTC11397.fna.gz": [(0, 1_000_000, 360_000)],
    "escherichia_coli_MG1655.fna.gz": [(0, 1_000_000, 360_000)],
    "helicobacter_pylori_G27.fna.gz": [(0, 500_000, 360_000)],
}


def read_fasta(path: Path) -> tuple[list[str], list[str], int]:
    """Headers, sequences and the line width of a gzip FASTA."""
    headers, seqs, width = [], [], 0
    with gzip.open(path, "rt") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if line.startswith(">"):
                headers.append(line[1:])
                seqs.append([])
            else:
                width = width or len(line)
                seqs[-1].append(line)
    return headers, ["".join(s) for s in seqs], width


def window_header(header: str, start: int, end: int) -> str:
    """The source record's accession and description, with the window's 1-based coordinates in
    the id: 'gi|227011820|gb|CP001235.1| Vibrio cholerae O395 chromosome I, complete sequence' ->
    'CP001235.1:1000001-1040000 Vibrio cholerae O395 chromosome I, bases 1000001-1040000'."""
    first, _, desc = header.partition(" ")
    accession = [p for p in first.split("|") if p][-1]
    desc = re.sub(r",? complete (sequence|genome)$", "", desc)
    where = f"bases {start + 1}-{end}"
    return f"{accession}:{start + 1}-{end} " + (f"{desc}, {where}" if desc else where)


def write_gzip_fasta(path: Path, records: list[tuple[str, str]], width: int) -> None:
    lines = []
    for header, seq in records:
        lines.append(f">{header}")
        lines += [seq[i : i + width] for i in range(0, len(seq), width)]
    text = ("\n".join(lines) + "\n").encode()
    # mtime=0 and no file name in the gzip header: the same bytes on every run
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as fh:
        fh.write(text)


def genomes() -> None:
    out = HERE / "genomes"
    out.mkdir(exist_ok=True)
    for name, windows in WINDOWS.items():
        headers, seqs, width = read_fasta(SHARED / "genomes" / name)
        records = []
        for rec, start, length in windows:
            assert start + length <= len(seqs[rec]), (name, rec)
            records.append((window_header(headers[rec], start, start + length), seqs[rec][start : start + length]))
        write_gzip_fasta(out / name, records, width)
        print(f"{name}: {[(h.split()[0], len(s)) for h, s in records]}")


def expression() -> None:
    """The lung h5ad is small (185 cells x 218 genes, 164 kB): copied unchanged."""
    out = HERE / "expression"
    out.mkdir(exist_ok=True)
    shutil.copyfile(SHARED / "expression" / "lung_development.h5ad", out / "lung_development.h5ad")


def images() -> None:
    """The whole 512 x 512 nuclei image and its mask, pixels unchanged, stored with lossless zlib
    compression (1 MB -> 0.25 MB; tifffile reads it without extra codecs)."""
    import tifffile

    out = HERE / "images"
    out.mkdir(exist_ok=True)
    for name in ("img2d.tif", "mask2d.tif"):
        pixels = tifffile.imread(SHARED / "images" / name)
        tifffile.imwrite(out / name, pixels, compression="zlib", predictor=name == "img2d.tif",
                         datetime=False, software=None, metadata=None)
        assert (tifffile.imread(out / name) == pixels).all()


def main() -> int:
    if not SHARED.is_dir():
        print(f"shared data not found at {SHARED}", file=sys.stderr)
        return 1
    genomes()
    expression()
    images()
    total = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file())
    print(f"tests/data: {total / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
