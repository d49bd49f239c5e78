"""Benchmark: the join step's read sketch (biovae.bin.overlap.sketch_file) against sourmash.

Run by hand (not part of the test suite; needs the `bench` extra for sourmash):
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/overlap_sketch_speed.py --n-reads 8000 --rounds 3

The first --n-reads reads of confirm_b (development, seen data) are written once, as plain FASTQ,
to benchmarks/out/overlap_sketch/. Both sides then sketch that file on one thread, one sketch per
read, hashes kept with their read's row, reading the file included:
  - biovae: overlap.sketch_file (numba; canonical 21-mers, 1/64 kept, low-complexity k-mers
    skipped) then overlap.distinct_per_read (a set per read, as sourmash keeps);
  - sourmash: screed reads the file, MinHash(n=0, ksize=21, scaled=64).add_sequence(seq,
    force=True) per read (canonical 21-mers, 1/64 kept, k-mers with N skipped), its hashes into the
    same (rows, hashes) arrays. sourmash has no low-complexity filter; it is left out of its side.
Rounds alternate the two sides in one process; the best round of each and their ratio are printed,
with reading alone (biovae.io.fastx, screed) apart. The first round loads the numba cache.

Agreement (--check-reads reads): a Python reference walks every k-mer of each read, canonical by
string, and applies each side's hash (splitmix64's finaliser of the 2-bit code; sourmash's own
hash, from MinHash.kmers_and_hashes) and limit: each side must keep exactly its reference's set.
Printed with it: the share of distinct canonical k-mers each keeps, and the share of sourmash's
kept k-mers that biovae's low-complexity filter would drop, and what sourmash's only route to the
k-mers behind its hashes (MinHash.kmers_and_hashes, which such a filter needs) costs against
add_sequence on the same reads.

--memory runs each side once in a child process: imports and a warm-up sketch of 10 reads (numba's
cached kernels, sourmash's library loaded), then the RSS, then the peak RSS (VmHWM, reset after the
warm-up) of the sketch of all the reads, so each figure is its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "benchmarks" / "data" / "confirm_b" / "reads.fq.gz"
OUT = ROOT / "benchmarks" / "out" / "overlap_sketch"
_COMP = bytes.maketrans(b"ACGT", b"TGCA")
_M64 = (1 << 64) - 1


def reads_file(n: int) -> Path:
    """The first n reads of confirm_b as plain FASTQ (written once)."""
    from biovae.io.fastx import iter_chunks

    path = OUT / f"confirm_b_first{n}.fq"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    done = 0
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        for chunk in iter_chunks(SOURCE, unique_ids=False):
            for rid, seq in zip(chunk.ids, chunk.seqs):
                fh.write(b"@%s\n%s\n+\n%s\n" % (rid.encode(), seq, b"I" * len(seq)))
                done += 1
                if done == n:
                    break
            if done == n:
                break
    tmp.rename(path)
    return path


def sketch_biovae(path: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    from biovae.bin import overlap

    rows, hashes = overlap.sketch_file(path, np.ones(n, dtype=bool), threads=1)
    return overlap.distinct_per_read(rows, hashes)


def sketch_sourmash(path: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    import screed
    from sourmash import MinHash

    rows, hashes = [], []
    with screed.open(str(path)) as records:
        for i, rec in enumerate(records):
            mh = MinHash(n=0, ksize=21, scaled=64)
            mh.add_sequence(rec.sequence, force=True)
            h = np.fromiter(mh.hashes, dtype=np.uint64)
            hashes.append(h)
            rows.append(np.full(len(h), i, dtype=np.int64))
    return np.concatenate(rows), np.concatenate(hashes)


def read_biovae(path: Path) -> int:
    from biovae.io.fastx import iter_chunks

    return sum(len(c.seqs) for c in iter_chunks(path, unique_ids=False))


def read_screed(path: Path) -> int:
    import screed

    with screed.open(str(path)) as records:
        return sum(1 for _ in records)


def splitmix(x: int) -> int:
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def check(path: Path, n: int, bio: tuple, smash: tuple) -> dict:
    """Each side's kept set per read against a Python reference walk (module docstring)."""
    from biovae.bin import overlap
    from biovae.io.fastx import read_fastx
    from sourmash import MinHash

    seqs = read_fastx(path, unique_ids=False).seqs[:n]
    code = {ord("A"): 0, ord("C"): 1, ord("G"): 2, ord("T"): 3}
    bio_limit = (1 << 64) // overlap.SCALE - 1
    mh = MinHash(n=0, ksize=overlap.K, scaled=overlap.SCALE)
    sm_limit = mh._max_hash
    k, low = overlap.K, overlap.LOW_GC
    stats = dict(reads=n, same_kmers=0, bio_exact=0, sm_exact=0, distinct=0, bio_kept=0, sm_kept=0, sm_low=0)
    for i, seq in enumerate(seqs):
        sm_hash = {}
        for w, h in mh.kmers_and_hashes(seq.decode(), force=True):
            if h is not None:
                w = w.encode()
                sm_hash[min(w, w.translate(_COMP)[::-1])] = h
        kmers = set()
        for j in range(len(seq) - k + 1):
            w = seq[j:j + k]
            if not w.strip(b"ACGT"):  # no N
                kmers.add(min(w, w.translate(_COMP)[::-1]))
        stats["same_kmers"] += kmers == set(sm_hash)
        bio_ref, sm_ref, low_kept = set(), set(), 0
        for w in kmers:
            gc = w.count(b"G") + w.count(b"C")
            complex_ = low <= gc <= k - low
            v = 0
            for c in w:
                v = (v << 2) | code[c]
            h = splitmix(v)
            if complex_ and h <= bio_limit:
                bio_ref.add(h)
            if sm_hash.get(w, _M64) <= sm_limit:
                sm_ref.add(sm_hash[w])
                low_kept += not complex_
        bio_got = set(bio[1][bio[0] == i].tolist())
        sm_got = set(smash[1][smash[0] == i].tolist())
        stats["bio_exact"] += bio_got == bio_ref
        stats["sm_exact"] += sm_got == sm_ref
        stats["distinct"] += len(kmers)
        stats["bio_kept"] += len(bio_ref)
        stats["sm_kept"] += len(sm_ref)
        stats["sm_low"] += low_kept
    return stats


def filter_cost(path: Path, n: int) -> tuple[float, float, int]:
    """Seconds for the first n reads: sourmash's add_sequence, and the only sourmash route to the
    k-mers behind its kept hashes (kmers_and_hashes, k-mer by k-mer), which the low-complexity
    filter needs; and the bases."""
    from biovae.io.fastx import read_fastx
    from sourmash import MinHash

    seqs = [s.decode() for s in read_fastx(path, unique_ids=False).seqs[:n]]
    t = time.perf_counter()
    for seq in seqs:
        MinHash(n=0, ksize=21, scaled=64).add_sequence(seq, force=True)
    t_add = time.perf_counter() - t
    mh = MinHash(n=0, ksize=21, scaled=64)
    limit = mh._max_hash
    t = time.perf_counter()
    for seq in seqs:
        [w for w, h in mh.kmers_and_hashes(seq, force=True) if h is not None and h <= limit]
    return t_add, time.perf_counter() - t, sum(map(len, seqs))


def vm(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024
    return -1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-reads", type=int, default=8000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--check-reads", type=int, default=100)
    ap.add_argument("--memory", action="store_true")
    ap.add_argument("--only", choices=["biovae", "sourmash"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    path = reads_file(args.n_reads)
    side = {"biovae": sketch_biovae, "sourmash": sketch_sourmash}
    if args.only:  # a child of --memory: imports and a warm-up on 10 reads, then one sketch
        fn = side[args.only]
        fn(reads_file(10), 10)  # loads numba's cached kernels / sourmash's library
        before = vm("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        fn(path, args.n_reads)
        print(json.dumps({"rss_before_mib": before, "peak_mib": vm("VmHWM")}))
        return
    from biovae.io.fastx import read_fastx

    bases = sum(len(s) for s in read_fastx(path, unique_ids=False).seqs)
    times = {"biovae": [], "sourmash": [], "read biovae.io.fastx": [], "read screed": []}
    out = {}
    for r in range(args.rounds):
        for name in ("biovae", "sourmash"):
            t = time.perf_counter()
            out[name] = side[name](path, args.n_reads)
            times[name].append(time.perf_counter() - t)
        for name, fn in (("read biovae.io.fastx", read_biovae), ("read screed", read_screed)):
            t = time.perf_counter()
            fn(path)
            times[name].append(time.perf_counter() - t)
    print(f"{args.n_reads} reads of confirm_b ({bases / 1e6:.1f} Mb), {args.rounds} rounds, one thread")
    for name, ts in times.items():
        print(f"  {name:22s} best {min(ts):6.2f} s  rounds {' '.join(f'{t:.2f}' for t in ts)}"
              + (f"  ({bases / min(ts) / 1e6:.0f} Mb/s)" if not name.startswith("read") else ""))
    ratio = min(times["sourmash"]) / min(times["biovae"])
    print(f"  ratio sourmash / biovae (best rounds): {ratio:.2f}")
    print(f"  kept (read, hash) pairs: biovae {len(out['biovae'][1]):,}  sourmash {len(out['sourmash'][1]):,}")
    if args.check_reads:
        s = check(path, args.check_reads, out["biovae"], out["sourmash"])
        print(f"  agreement on the first {s['reads']} reads: biovae = its reference on {s['bio_exact']}, "
              f"sourmash = its reference on {s['sm_exact']}, the same canonical k-mers (N skipped) on "
              f"{s['same_kmers']}; of {s['distinct']:,} distinct canonical k-mers "
              f"biovae keeps {s['bio_kept'] / s['distinct']:.4f}, sourmash {s['sm_kept'] / s['distinct']:.4f} "
              f"(1/64 = {1 / 64:.4f}); {s['sm_low']} of sourmash's {s['sm_kept']:,} are low-complexity "
              f"({s['sm_low'] / max(1, s['sm_kept']):.2%}, dropped by biovae's filter)")
        t_add, t_kmers, nb = filter_cost(path, args.check_reads)
        print(f"  sourmash on the first {args.check_reads} reads ({nb / 1e6:.1f} Mb): add_sequence {t_add:.3f} s, "
              f"kmers_and_hashes (k-mers for a low-complexity post-filter) {t_kmers:.3f} s "
              f"({t_kmers / t_add:.1f}x)")
    if args.memory:
        for name in side:
            res = subprocess.run([sys.executable, __file__, "--n-reads", str(args.n_reads), "--only", name],
                                 capture_output=True, text=True, check=True)
            m = json.loads(res.stdout.strip().splitlines()[-1])
            print(f"  memory {name:9s} RSS after warm-up {m['rss_before_mib']} MiB, peak {m['peak_mib']} MiB "
                  f"(+{m['peak_mib'] - m['rss_before_mib']} MiB)")


if __name__ == "__main__":
    main()
