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
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from readsim import (DEFAULT_GEOMETRIC_RATIO, DEFAULT_ORDER, SIMLORD_LOGNORM, SIMLORD_MIN_LENGTH, ReadWriter,
                     SimError, genome_files, genome_seed, iter_fastq, length_stats, lognormal_params,
                     parse_abundances, read_fasta, select_genomes, simulate_cut, split_counts, write_gold,
                     write_truth)

HERE = Path(__file__).resolve().parent
DEFAULT_GENOME_DIR = (HERE.parent.parent / "shared" / "data" / "genomes")
DEFAULT_SIMLORD_PYTHON = HERE / ".peers" / "simlord" / "bin" / "python"

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
