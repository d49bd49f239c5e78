"""Contig abundance from BAM, MetaBAT2 depth, CoverM, strobealign --aemb and VAMB files, detected
from the content; each bad input is one BiovaeError naming the file (BAMs made here with pysam)."""

import gzip

import numpy as np
import pysam
import pytest

from biovae.errors import BiovaeError
from biovae.io.abundance import read_abundance
from biovae.io.depth import detect_format

IDS = ["c1", "c2", "c3"]
LENGTHS = [1000, 2000, 500]


def _bam(path, refs=IDS, lengths=LENGTHS, reads=((0, 0, 100), (0, 500, 100), (1, 10, 200)), sort=True, index=True):
    header = {"HD": {"VN": "1.6", "SO": "coordinate" if sort else "unsorted"},
              "SQ": [{"SN": r, "LN": n} for r, n in zip(refs, lengths)]}
    raw = path.with_suffix(".raw.bam") if sort else path
    with pysam.AlignmentFile(str(raw), "wb", header=header) as out:
        for k, (ref, pos, n) in enumerate(reads):
            a = pysam.AlignedSegment(out.header)
            a.query_name, a.query_sequence = f"r{k}", "A" * n
            a.reference_id, a.reference_start, a.cigartuples, a.mapping_quality = ref, pos, [(0, n)], 60
            a.query_qualities = pysam.qualitystring_to_array("I" * n)
            out.write(a)
    if sort:
        pysam.sort("-o", str(path), str(raw))
        if index:
            pysam.index(str(path))
    return path


def test_bam_gives_mean_depth_per_contig(tmp_path):
    path = _bam(tmp_path / "s1.bam")
    assert detect_format(path) == "bam"
    ab = read_abundance(path, IDS, contig_lengths=LENGTHS)
    assert ab.samples == ["s1.bam"]
    assert np.allclose(ab.matrix[:, 0], [200 / 1000, 200 / 2000, 0.0])


def test_text_formats_are_detected_and_aligned(tmp_path):
    files = {
        "metabat": "contigName\tcontigLen\ttotalAvgDepth\ta.bam\ta.bam-var\tb.bam\tb.bam-var\n"
                   "c2\t2000\t3\t2\t0.1\t4\t0.2\nc1\t1000\t1\t1\t0.1\t1\t0.1\nc3\t500\t5\t5\t1\t5\t1\n",
        "coverm": "Contig\ta Mean\tb Mean\nc1\t1\t1\nc2\t2\t4\nc3\t5\t5\n",
        "aemb": "c3\t5\nc1\t1\nc2\t2\n",
        "vamb": "contigname\ta\tb\nc1\t1\t1\nc2\t2\t4\nc3\t5\t5\n",
    }
    for fmt, text in files.items():
        path = tmp_path / f"{fmt}.txt"
        path.write_bytes(gzip.compress(text.encode()) if fmt == "coverm" else text.encode())
        assert detect_format(path) == fmt
        ab = read_abundance(path, IDS)
        assert ab.matrix[:, 0].tolist() == [1, 2, 5], fmt
        if fmt in ("metabat", "coverm", "vamb"):
            assert ab.matrix[:, 1].tolist() == [1, 4, 5] and len(ab.samples) == 2, fmt


BAD_CASES = [
    ("unsorted", "not sorted by coordinate"),
    ("unindexed", "has no index"),
    ("other_refs", "does not match the FASTA: FASTA contig 'c3' is not a BAM reference"),
    ("other_lengths", "reference 'c2' has length 2500"),
    ("empty", "holds no mapped read"),
    ("depth_names", "contig 'k1' is not in the FASTA"),
    ("unknown", "unknown format"),
]


def _bad_input(tmp_path, case):
    path = tmp_path / "x.bam"
    if case == "unsorted":
        _bam(path, sort=False)
    elif case == "unindexed":
        _bam(path, index=False)
    elif case == "other_refs":
        _bam(path, refs=["c1", "c2", "k3"])
    elif case == "other_lengths":
        _bam(path, lengths=[1000, 2500, 500])
    elif case == "empty":
        _bam(path, reads=())
    elif case == "depth_names":
        path = tmp_path / "d.txt"
        path.write_text("contigName\tcontigLen\ttotalAvgDepth\ta.bam\ta.bam-var\nk1\t10\t1\t1\t0\n")
    else:
        path = tmp_path / "u.txt"
        path.write_text("hello world\n")
    return path


@pytest.mark.parametrize("case, message", BAD_CASES)
def test_bad_abundance_input_is_one_clear_error(tmp_path, case, message):
    path = _bad_input(tmp_path, case)
    with pytest.raises(BiovaeError, match=message) as info:
        read_abundance(path, IDS, contig_lengths=LENGTHS)
    assert str(path.name) in str(info.value)


@pytest.mark.parametrize("case, message", BAD_CASES)
def test_bin_with_bad_abundance_exits_2_and_writes_nothing(tmp_path, capsys, case, message):
    from biovae.cli import main

    rng = np.random.default_rng(0)
    fasta = tmp_path / "contigs.fa"
    fasta.write_text("".join(f">{c}\n{''.join(rng.choice(list('ACGT'), n))}\n" for c, n in zip(IDS, LENGTHS)))
    bad = _bad_input(tmp_path, case)
    before = sorted(p.name for p in tmp_path.iterdir())
    out = tmp_path / "out"
    assert main(["bin", str(fasta), "--abundance", str(bad), "-o", str(out), "--quiet", "--min-length", "100"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("biovae bin: error:") and message in err and "\n" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
