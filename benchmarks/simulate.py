#!/usr/bin/env python3
"""Simulate a long-read metagenome with known truth from the shared genomes.

Two modes:

* ``simlord`` - PacBio-like reads made by SimLoRD (PyPI ``simlord``), one genome at a
  time, each run seeded through Python's ``random`` and ``numpy.random`` (SimLoRD has no
  seed option).  SimLoRD lives in its own virtual environment
  (``benchmarks/.peers/simlord``, see benchmarks/README.md); it makes roughly 100-140
  reads/s on one core.  ``--jobs N`` runs up to N genomes at once (default 1).
* ``cut`` - fast reads for the 10^5-10^6-read scale runs: fragments cut from the genomes
  at uniform random positions and strands, with log-normal lengths and a per-base error
  model (substitution / insertion / deletion, PacBio-CLR-like, 12 % in all by default).
  Pure numpy, one process.

Both modes:

* read counts per genome are ``total * abundance`` (abundance = share of READS, rounded by
  largest remainder so the counts add up exactly);
* reads of all genomes are interleaved in a seeded uniformly random order and renamed
  ``read_000001`` ... - the id never encodes the genome;
* outputs (in ``--out``): ``reads.fq.gz`` (or ``reads.fa.gz`` / uncompressed), ``truth.tsv``
  (``sequence_id<TAB>genome<TAB>length``, with that header line), ``gold.binning``
  (CAMI/AMBER gold standard with LENGTH column) and ``simulation.json`` (parameters,
  per-genome counts and coverage, length statistics, timings).  Every file is first written
  under a temporary name and renamed only when all of them are complete;
* everything random derives from ``--seed``: the same command gives byte-identical reads,
  truth and gold files, with any ``--jobs`` (only the timings in simulation.json differ).

Default abundances: a geometric spread with ratio 0.7 over the genomes in the order given
(``--genomes``, default order below), i.e. for all seven genomes
32.7 / 22.9 / 16.0 / 11.2 / 7.8 / 5.5 / 3.8 % of the reads.  The close-GC pair
S. aureus (2nd) and M. ruminantium (7th) thus sits at very different abundances.

Examples::

    python benchmarks/simulate.py --mode simlord -n 30000 --seed 1 -o benchmarks/data/sim30k
    python benchmarks/simulate.py --mode cut -n 100000 --seed 1 -o benchmarks/data/cut100k
    python benchmarks/simulate.py --mode simlord -n 3000 --seed 1 \
        --genomes coli,aureus,tuberculosis,ruminantium --length-mean 4500 --length-sd 2000 \
        --format fasta --gzip-level 9 --sample-id demo -o data/demo
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_GENOME_DIR = (HERE.parent.parent / "shared" / "data" / "genomes")
DEFAULT_SIMLORD_PYTHON = HERE / ".peers" / "simlord" / "bin" / "python"

# Default genome order (prefix of the file names in the genome directory); abundances are
# assigned in this order.
DEFAULT_ORDER = [
    "escherichia_coli",
    "staphylococcus_aureus",
    "mycobacterium_tuberculosis",
    "vibrio_cholerae",
    "corynebacterium_diphtheriae",
    "helicobacter_pylori",
    "methanobrevibacter_ruminantium",
]
DEFAULT_GEOMETRIC_RATIO = 0.7

# SimLoRD 1.0.4's default read-length distribution: scipy lognorm(s, loc, scale)
# (DEFAULT_LOGNORMAL_PARAMETERS in simlord.py).  Mean 8,210 bp, sd 3,696 bp.
SIMLORD_LOGNORM = (0.200110276521, -10075.4363813, 17922.611306)
SIMLORD_MIN_LENGTH = 50

# cut mode defaults: PacBio CLR-like, insertion-dominated, 12 % errors per template base.
CUT_SUB, CUT_INS, CUT_DEL = 0.01, 0.07, 0.04

# Run inside SimLoRD's own venv: seed both generators SimLoRD draws from, then run its CLI.
SIMLORD_WRAPPER = """\
import random, sys
import numpy as np
seed = int(sys.argv[1])
random.seed(seed)
np.random.seed(seed)
sys.argv = ["simlord"] + sys.argv[2:]
from simlord import simlord
simlord.main()
"""

ACGT = np.frombuffer(b"ACGT", dtype=np.uint8)
CODE = np.full(256, 4, dtype=np.uint8)  # 4 = not ACGT
for _i, _c in enumerate(b"ACGT"):
    CODE[_c] = _i
    CODE[ord(chr(_c).lower())] = _i


class SimError(Exception):
    pass


# --------------------------------------------------------------------------- genomes

def read_fasta(path: Path) -> list[tuple[str, bytes]]:
    """All records of a (gzip) FASTA file as (name, upper-case sequence)."""
    with open(path, "rb") as fh:
        opener = gzip.open if fh.read(2) == b"\x1f\x8b" else open
    records: list[tuple[str, bytes]] = []
    name, chunks = None, []
    with opener(path, "rb") as fh:
        for line in fh:
            line = line.strip()
            if line.startswith(b">"):
                if name is not None:
                    records.append((name, b"".join(chunks).upper()))
                name, chunks = line[1:].decode(errors="replace"), []
            elif line:
                chunks.append(line)
    if name is not None:
        records.append((name, b"".join(chunks).upper()))
    if not records or any(len(s) == 0 for _, s in records):
        raise SimError(f"{path}: no sequence")
    return records


def genome_files(genome_dir: Path) -> dict[str, Path]:
    files = sorted(p for p in genome_dir.iterdir()
                   if p.name.endswith((".fna.gz", ".fa.gz", ".fasta.gz", ".fna", ".fa", ".fasta")))
    if not files:
        raise SimError(f"no genome FASTA files in {genome_dir}")
    out = {}
    for p in files:
        stem = p.name
        for ext in (".gz", ".fna", ".fasta", ".fa"):
            stem = stem[: -len(ext)] if stem.endswith(ext) else stem
        out[stem] = p
    return out


def select_genomes(available: dict[str, Path], spec: str | None) -> list[str]:
    """Genome names (file stems) in the requested order.  Each key of ``spec`` (comma
    separated) must match exactly one file stem as a case-insensitive substring."""
    keys = DEFAULT_ORDER if spec is None else [k.strip() for k in spec.split(",") if k.strip()]
    chosen = []
    for key in keys:
        hits = [n for n in available if key.lower() in n.lower()]
        if len(hits) != 1:
            raise SimError(f"genome key {key!r} matches {len(hits)} of: {', '.join(available)}")
        if hits[0] in chosen:
            raise SimError(f"genome {hits[0]} chosen twice")
        chosen.append(hits[0])
    if spec is None:  # files not in the default order list go last
        chosen += [n for n in available if n not in chosen]
    return chosen


def parse_abundances(spec: str, k: int) -> np.ndarray:
    """``geometric[:RATIO]``, ``even``, or k comma-separated non-negative weights."""
    s = spec.strip().lower()
    if s == "even":
        w = np.ones(k)
    elif s.startswith("geometric"):
        ratio = float(s.split(":", 1)[1]) if ":" in s else DEFAULT_GEOMETRIC_RATIO
        if not 0 < ratio <= 1:
            raise SimError("geometric ratio must be in (0, 1]")
        w = ratio ** np.arange(k, dtype=float)
    else:
        try:
            w = np.array([float(x) for x in spec.split(",")])
        except ValueError:
            raise SimError(f"bad --abundances {spec!r}") from None
        if len(w) != k:
            raise SimError(f"--abundances has {len(w)} values for {k} genomes")
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise SimError("abundances must be non-negative with a positive sum")
    return w / w.sum()


def split_counts(total: int, shares: np.ndarray) -> np.ndarray:
    """Largest-remainder rounding of total * shares (exact sum, deterministic)."""
    raw = total * shares
    counts = np.floor(raw).astype(np.int64)
    rest = total - int(counts.sum())
    order = np.lexsort((np.arange(len(raw)), -(raw - counts)))
    counts[order[:rest]] += 1
    return counts


def genome_seed(seed: int, name: str) -> int:
    """Per-genome 32-bit seed: depends on the master seed and the genome's name only."""
    return int(np.random.SeedSequence([seed, zlib.crc32(name.encode())]).generate_state(1)[0])


def lognormal_params(mean: float, sd: float) -> tuple[float, float]:
    """(mu, sigma) of the log-normal with the given mean and sd."""
    sigma2 = math.log1p((sd / mean) ** 2)
    return math.log(mean) - sigma2 / 2, math.sqrt(sigma2)


# --------------------------------------------------------------------------- output

class ReadWriter:
    """Writes renamed reads to ``path`` (FASTA or FASTQ, gzip or plain) and keeps lengths."""

    def __init__(self, path: Path, fmt: str, gzip_level: int | None, n_total: int):
        self.fmt = fmt
        raw = open(path, "wb")
        self._raw = raw
        if gzip_level is not None:
            # mtime=0 and no file name in the header: byte-identical output for a seed.
            self._gz = gzip.GzipFile(filename="", mode="wb", compresslevel=gzip_level,
                                     fileobj=raw, mtime=0)
            self.fh = io.BufferedWriter(self._gz, buffer_size=1 << 20)
        else:
            self._gz = None
            self.fh = io.BufferedWriter(raw, buffer_size=1 << 20)
        self.width = max(6, len(str(n_total)))
        self.n = 0
        self.lengths = np.zeros(n_total, dtype=np.int64)

    def read_id(self, i: int) -> str:
        """Id of the i-th read written (0-based)."""
        return f"read_{i + 1:0{self.width}d}"

    def write(self, seq: bytes, qual: bytes | None = None):
        rid = self.read_id(self.n)
        self.lengths[self.n] = len(seq)
        self.n += 1
        if self.fmt == "fasta":
            self.fh.write(b">%s\n%s\n" % (rid.encode(), seq))
        else:
            self.fh.write(b"@%s\n%s\n+\n%s\n" % (rid.encode(), seq, qual))

    def close(self):
        self.fh.flush()
        if self._gz is not None:
            self._gz.close()
        self._raw.close()


def _rows(writer: ReadWriter, names, labels):
    for i, (g, n) in enumerate(zip(labels.tolist(), writer.lengths.tolist())):
        yield f"{writer.read_id(i)}\t{names[g]}\t{n}\n"


def write_truth(path: Path, writer: ReadWriter, names, labels):
    with open(path, "w") as f:
        f.write("sequence_id\tgenome\tlength\n")
        f.writelines(_rows(writer, names, labels))


def write_gold(path: Path, sample_id: str, writer: ReadWriter, names, labels):
    with open(path, "w") as f:
        f.write("@Version:0.9.1\n")
        f.write(f"@SampleID:{sample_id}\n")
        f.write("@@SEQUENCEID\tBINID\tLENGTH\n")
        f.writelines(_rows(writer, names, labels))


def length_stats(lengths: np.ndarray) -> dict:
    if len(lengths) == 0:
        return {"n": 0}
    s = np.sort(lengths)[::-1]
    c = np.cumsum(s)
    n50 = int(s[np.searchsorted(c, c[-1] / 2)])
    return {"n": int(len(s)), "bases": int(c[-1]), "mean": round(float(s.mean()), 1),
            "sd": round(float(s.std()), 1), "min": int(s[-1]),
            "median": float(np.median(s)), "n50": n50, "max": int(s[0]),
            "p05": float(np.percentile(s, 5)), "p95": float(np.percentile(s, 95))}


# --------------------------------------------------------------------------- simlord

def iter_fastq(path: Path):
    with open(path, "rb") as f:
        while True:
            h = f.readline()
            if not h:
                return
            seq = f.readline().rstrip(b"\n")
            f.readline()
            qual = f.readline().rstrip(b"\n")
            if not h.startswith(b"@") or len(seq) != len(qual):
                raise SimError(f"{path}: malformed SimLoRD FASTQ record {h[:60]!r}")
            yield seq, qual


def run_simlord(args, names, counts, records, tmp: Path) -> list[Path]:
    py = Path(args.simlord_python)
    if not py.exists():
        raise SimError(f"SimLoRD's python {py} not found: install SimLoRD (benchmarks/README.md) "
                       "or pass --simlord-python")
    wrapper = tmp / "simlord_seeded.py"
    wrapper.write_text(SIMLORD_WRAPPER)
    length_args = ["--min-readlength", str(args.min_length)]
    if args.length_mean is not None:
        mu, sigma = lognormal_params(args.length_mean, args.length_sd)
        # scipy lognorm(s=sigma, loc=0, scale=exp(mu))
        length_args += ["--lognorm-readlength", repr(sigma), "0", repr(math.exp(mu))]
    jobs = []
    for name, n in zip(names, counts):
        prefix = tmp / f"sim_{name}"
        if n == 0:
            jobs.append((name, None, None, prefix))
            continue
        ref = tmp / f"{name}.fa"
        with open(ref, "wb") as f:
            for i, (_, seq) in enumerate(records[name]):
                f.write(b">%s_%d\n" % (name.encode(), i + 1))
                for j in range(0, len(seq), 80):
                    f.write(seq[j:j + 80] + b"\n")
        # OUTPUT_PREFIX first: --lognorm-readlength takes a variable number of values.
        cmd = [str(py), str(wrapper), str(genome_seed(args.seed, name)), str(prefix),
               "--read-reference", str(ref), "--num-reads", str(int(n)), "--no-sam",
               *length_args]
        jobs.append((name, cmd, ref, prefix))
    pending = sorted([j for j in jobs if j[1] is not None],
                     key=lambda j: -counts[names.index(j[0])])
    running: list[tuple] = []
    while pending or running:
        while pending and len(running) < max(1, args.jobs):
            name, cmd, ref, prefix = pending.pop(0)
            log = open(tmp / f"sim_{name}.log", "wb")
            running.append((name, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log,
                            time.time()))
        time.sleep(0.2)
        for item in list(running):
            name, proc, log, t0 = item
            if proc.poll() is None:
                continue
            log.close()
            running.remove(item)
            if proc.returncode != 0:
                for _, p, lg, _ in running:
                    p.kill()
                tail = (tmp / f"sim_{name}.log").read_text(errors="replace")[-2000:]
                raise SimError(f"SimLoRD failed on {name} (exit {proc.returncode}):\n{tail}")
            if not args.quiet:
                print(f"  simlord {name}: {counts[names.index(name)]} reads in "
                      f"{time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    return [None if cmd is None else Path(f"{prefix}.fastq") for _, cmd, _, prefix in jobs]


def simulate_simlord(args, names, counts, records, labels, writer, tmp):
    fastqs = run_simlord(args, names, counts, records, tmp)
    its = [iter_fastq(p) if p is not None else iter(()) for p in fastqs]
    # SimLoRD's reads of one genome are i.i.d., so taking them in file order at the shuffled
    # label positions gives a uniformly shuffled read set without holding it in memory.
    for g in labels:
        try:
            seq, qual = next(its[g])
        except StopIteration:
            raise SimError(f"SimLoRD gave fewer reads than asked for {names[g]}") from None
        writer.write(seq, qual)
    for g, it in enumerate(its):
        if next(it, None) is not None:
            raise SimError(f"SimLoRD gave more reads than asked for {names[g]}")


# --------------------------------------------------------------------------- cut

def simulate_cut(args, names, records, labels, writer, rng):
    """Reads cut from the genomes, in output order, in batches of about 2 Mb (vectorised).

    Per read: template length (SimLoRD's default distribution or a log-normal, at least
    --min-length, at most the longest chromosome), chromosome (weighted by length, re-drawn
    while shorter than the template, as SimLoRD does), uniform start, strand 50/50.  Per
    template base: deletion with p_del, else substitution to one of the 3 other bases with
    p_sub; independently, one random base inserted after it with p_ins."""
    chroms = []
    for name in names:
        arrs = []
        for _, seq in records[name]:
            a = CODE[np.frombuffer(seq, dtype=np.uint8)]
            bad = a == 4
            if bad.any():  # non-ACGT symbols -> random bases (as SimLoRD does)
                a[bad] = rng.integers(0, 4, int(bad.sum()), dtype=np.uint8)
            arrs.append(a)
        chroms.append((arrs, np.array([len(a) for a in arrs], dtype=np.int64)))
    n = len(labels)
    if args.length_mean is not None:
        mu, sigma = lognormal_params(args.length_mean, args.length_sd)
        target = rng.lognormal(mu, sigma, n)
    else:  # SimLoRD's default distribution (shifted log-normal)
        s, loc, scale = SIMLORD_LOGNORM
        target = loc + scale * np.exp(s * rng.standard_normal(n))
    target = np.maximum(args.min_length, target.astype(np.int64))
    chrom = np.zeros(n, dtype=np.int64)
    clen = np.zeros(n, dtype=np.int64)
    for g, (arrs, lens) in enumerate(chroms):
        sel = np.flatnonzero(labels == g)
        target[sel] = np.minimum(target[sel], lens.max())
        c = np.zeros(len(sel), dtype=np.int64)
        if len(arrs) > 1:
            w = lens / lens.sum()
            c = rng.choice(len(arrs), size=len(sel), p=w)
            short = lens[c] < target[sel]
            while short.any():
                c[short] = rng.choice(len(arrs), size=int(short.sum()), p=w)
                short = lens[c] < target[sel]
        chrom[sel] = c
        clen[sel] = lens[c]
    start = np.minimum((rng.random(n) * (clen - target + 1)).astype(np.int64), clen - target)
    strand = rng.random(n) < 0.5
    p_del, p_sub, p_ins = args.del_rate, args.sub_rate, args.ins_rate
    qchar = bytes([33 + min(93, round(-10 * math.log10(max(1e-9, p_del + p_sub + p_ins))))])
    fastq = writer.fmt == "fastq"
    b0 = 0
    while b0 < n:
        b1 = b0 + 1 + int(np.searchsorted(np.cumsum(target[b0:b0 + 4096]), 2_000_000))
        b1 = min(b1, n, b0 + 4096)
        parts = []
        for i in range(b0, b1):
            frag = chroms[labels[i]][0][chrom[i]][start[i]:start[i] + target[i]]
            parts.append(3 - frag[::-1] if strand[i] else frag)
        t = np.concatenate(parts)
        u = rng.random(len(t), dtype=np.float32)
        dele = u < p_del
        sub = (u >= p_del) & (u < p_del + p_sub)
        t[sub] = (t[sub] + rng.integers(1, 4, int(sub.sum()), dtype=np.uint8)) & 3
        ins = rng.random(len(t), dtype=np.float32) < p_ins
        reps = (~dele).astype(np.int8) + ins
        out = np.repeat(t, reps)
        ends = np.cumsum(reps, dtype=np.int64)
        out[ends[ins] - 1] = rng.integers(0, 4, int(ins.sum()), dtype=np.uint8)
        tstart = np.concatenate(([0], np.cumsum(target[b0:b1])[:-1]))
        olen = np.add.reduceat(reps, tstart, dtype=np.int64)
        text = ACGT[out].tobytes()
        o = 0
        for L in olen.tolist():
            if L == 0:
                raise SimError("a read lost every base to deletions; lower --del-rate")
            writer.write(text[o:o + L], qchar * L if fastq else None)
            o += L
        b0 = b1


# --------------------------------------------------------------------------- main

class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    def _get_help_string(self, action):  # show a default only where there is one
        if action.default in (None, False):
            return action.help
        return super()._get_help_string(action)


def build_parser():
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="See the module docstring and benchmarks/README.md for the models and defaults.",
        formatter_class=_Formatter)
    p.add_argument("-o", "--out", required=True, type=Path, help="output directory")
    p.add_argument("-n", "--num-reads", type=int, required=True, help="total number of reads")
    p.add_argument("--mode", choices=["simlord", "cut"], default="simlord")
    p.add_argument("--seed", type=int, required=True, help="master seed (all randomness)")
    p.add_argument("--genome-dir", type=Path, default=DEFAULT_GENOME_DIR)
    p.add_argument("--genomes", default=None,
                   help="comma-separated subset/order of genomes (case-insensitive substrings of "
                        "the file names, e.g. 'coli,aureus'); default: all, in the order "
                        + ",".join(DEFAULT_ORDER))
    p.add_argument("--abundances", default=f"geometric:{DEFAULT_GEOMETRIC_RATIO}",
                   help="read shares per genome in --genomes order: 'geometric[:RATIO]' "
                        "(weights RATIO**i), 'even', or comma-separated weights")
    p.add_argument("--length-mean", type=float, default=None,
                   help="mean read length of a log-normal length distribution; default: "
                        "SimLoRD's default distribution (mean 8,210, sd 3,696 bp)")
    p.add_argument("--length-sd", type=float, default=None,
                   help="sd of the log-normal length distribution (with --length-mean; "
                        "default 0.45 * mean)")
    p.add_argument("--min-length", type=int, default=SIMLORD_MIN_LENGTH,
                   help="shortest template length (SimLoRD --min-readlength)")
    p.add_argument("--sub-rate", type=float, default=CUT_SUB, help="cut mode: substitutions per base")
    p.add_argument("--ins-rate", type=float, default=CUT_INS, help="cut mode: insertions per base")
    p.add_argument("--del-rate", type=float, default=CUT_DEL, help="cut mode: deletions per base")
    p.add_argument("--format", choices=["fastq", "fasta"], default="fastq")
    p.add_argument("--no-gzip", action="store_true", help="write the reads uncompressed")
    p.add_argument("--gzip-level", type=int, default=None, choices=range(1, 10), metavar="1-9",
                   help="gzip level of the reads; default 6 in simlord mode, 1 in cut mode "
                        "(level 6 would triple a cut run's time for 10%% smaller files)")
    p.add_argument("--sample-id", default=None, help="@SampleID of gold.binning (default: --out name)")
    p.add_argument("--jobs", type=int, default=1, help="simlord mode: genomes simulated at once")
    p.add_argument("--simlord-python", default=os.environ.get("SIMLORD_PYTHON", str(DEFAULT_SIMLORD_PYTHON)),
                   help="python of SimLoRD's venv (env SIMLORD_PYTHON)")
    p.add_argument("--quiet", action="store_true", help="only the one-line summary")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    t0 = time.time()
    try:
        if args.num_reads < 1:
            raise SimError("--num-reads must be >= 1")
        if args.length_sd is not None and args.length_mean is None:
            raise SimError("--length-sd needs --length-mean")
        if args.length_mean is not None:
            if args.length_mean <= 0:
                raise SimError("--length-mean must be > 0")
            if args.length_sd is None:
                args.length_sd = 0.45 * args.length_mean
            if args.length_sd <= 0:
                raise SimError("--length-sd must be > 0")
        if args.min_length < 1:
            raise SimError("--min-length must be >= 1")
        rates = (args.sub_rate, args.ins_rate, args.del_rate)
        if min(rates) < 0 or args.sub_rate + args.del_rate >= 1 or args.ins_rate >= 1:
            raise SimError("error rates must be >= 0, sub+del < 1 and ins < 1")
        if args.out.exists() and not args.out.is_dir():
            raise SimError(f"{args.out} exists and is not a directory")
        available = genome_files(args.genome_dir)
        names = select_genomes(available, args.genomes)
        shares = parse_abundances(args.abundances, len(names))
        counts = split_counts(args.num_reads, shares)
        records = {n: read_fasta(available[n]) for n in names}

        rng = np.random.default_rng(np.random.SeedSequence([args.seed, 1]))
        labels = rng.permutation(np.repeat(np.arange(len(names)), counts))

        if args.gzip_level is None:
            args.gzip_level = 6 if args.mode == "simlord" else 1
        if args.mode == "simlord" and not Path(args.simlord_python).exists():
            raise SimError(f"SimLoRD's python {args.simlord_python} not found: install SimLoRD "
                           "(benchmarks/README.md) or pass --simlord-python")
        created = not args.out.exists()
        args.out.mkdir(parents=True, exist_ok=True)
        ext = ("fq" if args.format == "fastq" else "fa") + ("" if args.no_gzip else ".gz")
        final = {"reads": args.out / f"reads.{ext}", "truth": args.out / "truth.tsv",
                 "gold": args.out / "gold.binning", "manifest": args.out / "simulation.json"}
        tmp = Path(tempfile.mkdtemp(prefix=".simulate-", dir=args.out))
        try:
            staged = {k: tmp / v.name for k, v in final.items()}
            writer = ReadWriter(staged["reads"], args.format,
                                None if args.no_gzip else args.gzip_level, args.num_reads)
            t_sim = time.time()
            if args.mode == "simlord":
                simulate_simlord(args, names, counts, records, labels, writer, tmp)
            else:
                simulate_cut(args, names, records, labels, writer,
                             np.random.default_rng(np.random.SeedSequence([args.seed, 2])))
            writer.close()
            t_sim = time.time() - t_sim
            if writer.n != args.num_reads:
                raise SimError(f"wrote {writer.n} reads, expected {args.num_reads}")
            write_truth(staged["truth"], writer, names, labels)
            write_gold(staged["gold"], args.sample_id or args.out.resolve().name,
                       writer, names, labels)
            stats = length_stats(writer.lengths)
            per = []
            for g, name in enumerate(names):
                lg = writer.lengths[labels == g]
                gsize = sum(len(s) for _, s in records[name])
                per.append({"genome": name, "file": available[name].name,
                            "abundance": round(float(shares[g]), 6), "reads": int(counts[g]),
                            "bases": int(lg.sum()), "genome_bp": gsize,
                            "gc": round(sum(s.count(b"G") + s.count(b"C") for _, s in records[name])
                                        / gsize, 4),
                            "coverage": round(float(lg.sum()) / gsize, 2)})
            manifest = {
                "command": "python benchmarks/simulate.py " + " ".join(
                    argv if argv is not None else sys.argv[1:]),
                "mode": args.mode, "seed": args.seed, "num_reads": args.num_reads,
                "abundances_spec": args.abundances, "genomes": per,
                "read_lengths": stats,
                "length_model": ("SimLoRD default lognorm(s=%.6f, loc=%.1f, scale=%.1f)" % SIMLORD_LOGNORM
                                 if args.length_mean is None else
                                 f"lognormal mean={args.length_mean:g} sd={args.length_sd:g}"),
                "min_length": args.min_length,
                "error_model": ("SimLoRD 1.0.4 defaults (1-pass ins 0.11, del 0.04, sub 0.01; "
                                "multi-pass error reduction)" if args.mode == "simlord" else
                                {"sub": args.sub_rate, "ins": args.ins_rate, "del": args.del_rate}),
                "format": args.format, "files": {k: v.name for k, v in final.items()},
                "simulate_seconds": round(t_sim, 1),
            }
            staged["manifest"].write_text(json.dumps(manifest, indent=1) + "\n")
            for k in ("reads", "truth", "gold", "manifest"):
                os.replace(staged[k], final[k])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            if created and not any(args.out.iterdir()):
                args.out.rmdir()  # failed before anything was written: leave no trace
    except SimError as e:
        print(f"simulate: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    st = manifest["read_lengths"]
    mix = ", ".join(f"{p['genome'].split('_')[0][:1].upper()}.{p['genome'].split('_')[1]}"
                    f" {p['abundance'] * 100:.1f}%" for p in per)
    print(f"simulate: {args.mode} {st['n']} reads, {st['bases'] / 1e6:.1f} Mb, mean {st['mean']:.0f} "
          f"N50 {st['n50']} bp, {len(names)} genome{'s' if len(names) > 1 else ''} ({mix}), seed {args.seed} -> "
          f"{final['reads']} [{time.time() - t0:.0f} s]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
