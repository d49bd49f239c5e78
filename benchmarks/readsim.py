"""Building blocks of benchmarks/simulate.py: genomes, abundances, read output, truth files, and
the fast "cut" read model. See simulate.py's docstring for what they make."""

from __future__ import annotations

import gzip
import io
import math
import zlib
from pathlib import Path

import numpy as np

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

