"""Benchmark: biovae's read features against kmertools on the same reads.

Run by hand (not part of the test suite):
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/features.py --n-reads 5000 --seed 1

Reads are cut from the shared genomes (all 7, uneven abundances, both strands, lengths
log-normal around 5 kb, 1% substitutions; seeded) and written to benchmarks/out/. Every
measurement runs in its own child process so its peak RSS (VmHWM, including the Python
interpreter and numpy) is its own; reads/s counts reading plus features and leaves out the
start-up (imports, loading the cached numba kernels: about a second), printed apart. Printed, each against a baseline measured in the same run:
  - reading: biovae.io.fastx (validating) against pyfastx.Fastx (not validating);
  - composition (k = 4): biovae.features.kmers.composition against pykmertools
    OligoComputer(4).vectorise_batch, both on one thread and on all threads, with the largest
    difference between the two sets of vectors;
  - coverage (k = 15, 16 bins of width 16): biovae's two-pass KmerTable against the
    `kmertools cov` binary, with the largest difference between the histograms.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GENOMES = ROOT.parent / "shared" / "data" / "genomes"
OUT = ROOT / "benchmarks" / "out" / "features"
ABUNDANCE = [0.30, 0.20, 0.15, 0.12, 0.10, 0.08, 0.05]  # uneven, sums to 1
_COMP = bytes.maketrans(b"ACGT", b"TGCA")


def make_reads(n: int, seed: int, path: Path) -> int:
    """Write n reads cut from the shared genomes to `path` (FASTA); returns total bases."""
    from biovae.io.fastx import read_fastx

    rng = np.random.default_rng(seed)
    genomes = [b"".join(read_fastx(p).seqs).upper() for p in sorted(GENOMES.glob("*.fna.gz"))]
    source = rng.choice(len(genomes), size=n, p=ABUNDANCE[: len(genomes)] / np.sum(ABUNDANCE[: len(genomes)]))
    lengths = np.clip(rng.lognormal(np.log(5000), 0.5, size=n), 1000, 30000).astype(int)
    total = 0
    with open(path, "wb") as fh:
        for i, (g, length) in enumerate(zip(source, lengths)):
            genome = genomes[g]
            start = int(rng.integers(0, len(genome) - length))
            read = bytearray(genome[start : start + length])
            hits = np.flatnonzero(rng.random(length) < 0.01)
            for pos, base in zip(hits, rng.integers(0, 4, size=len(hits))):
                read[pos] = b"ACGT"[base]
            read = bytes(read)
            if rng.random() < 0.5:
                read = read.translate(_COMP)[::-1]
            fh.write(b">read%d genome=%d\n%s\n" % (i, g, read))
            total += length
    return total


# --- children: each measures itself --------------------------------------------------------


def _peak_mb(pid: str | int = "self") -> float:
    """Peak resident memory (VmHWM) of a process in MB. Not ru_maxrss: Linux carries that
    across fork+exec, so a child would report its parent's peak."""
    for text in Path(f"/proc/{pid}/status").read_text().splitlines():
        if text.startswith("VmHWM:"):
            return int(text.split()[1]) / 1024
    return float("nan")


def _child(task: str, fasta: Path, out: Path, threads: int) -> dict:
    """Run one measurement; returns startup seconds (imports, cached-kernel loading), work
    seconds (reading + features) and peak RSS in MB."""
    t0 = time.perf_counter()
    from biovae.io.fastx import iter_chunks

    result = None
    if task == "read-biovae":
        ready = time.perf_counter()
        n = sum(len(c) for c in iter_chunks(fasta))
    elif task == "read-pyfastx":
        import pyfastx

        ready = time.perf_counter()
        n = sum(1 for _ in pyfastx.Fastx(str(fasta)))
    elif task == "comp-biovae":
        from biovae.features.kmers import composition

        composition([b"ACGTACGT"], 4)
        ready = time.perf_counter()
        result = np.concatenate([composition(c.seqs, 4, threads=threads).freqs for c in iter_chunks(fasta)])
    elif task == "comp-kmertools":
        import pykmertools

        oc = pykmertools.OligoComputer(4)
        ready = time.perf_counter()
        result = np.concatenate([np.asarray(oc.vectorise_batch([s.decode() for s in c.seqs]), dtype=np.float32) for c in iter_chunks(fasta)])
    elif task == "cov-biovae":
        from biovae.features.coverage import KmerTable, coverage
        from biovae.features.kmers import pack

        coverage([b"ACGTACGTACGTACGTACGT"], k=15)
        ready = time.perf_counter()
        table = KmerTable.for_histogram(15, 16, 16)
        for c in iter_chunks(fasta):
            table.add(*pack(c.seqs))
        result = np.concatenate([table.histograms(*pack(c.seqs), 16, 16, threads).hist for c in iter_chunks(fasta, unique_ids=False)])
    elif task == "cov-kmertools":
        binary = shutil.which("kmertools") or str(Path(sys.executable).with_name("kmertools"))
        work = out.with_suffix(".dir")
        shutil.rmtree(work, ignore_errors=True)
        ready = time.perf_counter()
        proc = subprocess.Popen([binary, "cov", "-i", str(fasta), "-o", str(work), "-k", "15", "-s", "16", "-c", "16", "-t", str(threads)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peak = 0.0
        while proc.poll() is None:  # VmHWM only grows, so the last reading before exit is the peak
            try:
                peak = max(peak, _peak_mb(proc.pid))
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        end = time.perf_counter()
        if proc.returncode:
            raise SystemExit(f"kmertools cov failed with status {proc.returncode}")
        np.save(out, np.loadtxt(work / "kmers.vectors", dtype=np.float32))
        return {"startup": ready - t0, "seconds": end - ready, "peak_rss_mb": peak}
    else:
        raise SystemExit(f"unknown task {task}")
    end = time.perf_counter()
    if result is not None:
        np.save(out, result)
    return {"startup": ready - t0, "seconds": end - ready, "peak_rss_mb": _peak_mb()}


def run_child(task: str, fasta: Path, threads: int, env_threads: int) -> tuple[dict, Path]:
    out = OUT / f"{task}-t{threads}.npy"
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS=str(env_threads), RAYON_NUM_THREADS=str(env_threads))
    cmd = [sys.executable, __file__, "--child", task, "--fasta", str(fasta), "--out", str(out), "--threads", str(threads)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode:
        raise SystemExit(f"{task} failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1]), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-reads", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2, help="thread count of the multi-threaded runs")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--fasta", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.fasta, args.out, args.threads)))
        return

    OUT.mkdir(parents=True, exist_ok=True)
    fasta = OUT / f"reads_{args.n_reads}_seed{args.seed}.fa"
    bases = make_reads(args.n_reads, args.seed, fasta)
    print(f"{args.n_reads} reads, {bases / 1e6:.1f} Mb, from {len(list(GENOMES.glob('*.fna.gz')))} genomes -> {fasta}")
    # compile the numba kernels into their on-disk cache so no child pays for compilation
    from biovae.features.coverage import coverage
    from biovae.features.kmers import composition

    composition([b"ACGTACGTAC"], 4, threads=2)
    coverage([b"ACGTACGTACGTACGTACGT"], k=15, threads=2)

    def line(name, base, ours, theirs, extra=""):
        rate = args.n_reads / ours["seconds"], args.n_reads / theirs["seconds"]
        print(f"{name:<32} biovae {rate[0]:>8.0f} reads/s {ours['peak_rss_mb']:>5.0f} MB (startup {ours['startup']:.1f} s) | "
              f"{base:<16} {rate[1]:>8.0f} reads/s {theirs['peak_rss_mb']:>5.0f} MB (startup {theirs['startup']:.1f} s) | "
              f"speed x{rate[0] / rate[1]:.2f}, memory x{ours['peak_rss_mb'] / theirs['peak_rss_mb']:.2f}{extra}")

    ours, _ = run_child("read-biovae", fasta, 1, 1)
    theirs, _ = run_child("read-pyfastx", fasta, 1, 1)
    line("read FASTA", "pyfastx", ours, theirs)
    for threads in (1, args.threads):
        ours, a = run_child("comp-biovae", fasta, threads, threads)
        theirs, b = run_child("comp-kmertools", fasta, threads, threads)
        diff = np.abs(np.load(a) - np.load(b)).max()
        line(f"composition k=4, {threads} thread(s)", "OligoComputer", ours, theirs, f", max |diff| {diff:.1e}")
    for threads in (1, args.threads):
        ours, a = run_child("cov-biovae", fasta, threads, threads)
        theirs, b = run_child("cov-kmertools", fasta, threads, threads)
        diff = np.abs(np.load(a) - np.load(b)).max()
        line(f"coverage k=15, {threads} thread(s)", "kmertools cov", ours, theirs, f", max |diff| {diff:.1e}")


if __name__ == "__main__":
    main()
