"""Benchmark: `biovae bin` wall time per stage and peak RSS at 10^4, 10^5 and 10^6 reads.

Run by hand (not part of the test suite), from the repository root:
    .venv/bin/python benchmarks/binning.py --sizes 10000 100000 1000000 --threads 2

Reads: `benchmarks/simulate.py --mode cut` (all seven shared genomes, geometric 0.7 abundances,
SimLoRD-like lengths, 12 % PacBio-CLR-like errors; seed 1), made once per size under
benchmarks/data/cutN/ (git-ignored). Each size runs `biovae bin` in its own child process, so the
peak RSS in its summary.json (ru_maxrss of that process) is that run's alone.

Printed per size: each stage's seconds, total, peak RSS, bins, F1 and ARI against the truth. Then,
for consecutive sizes, the growth exponent of the total time and of each stage
(log(t2/t1) / log(n2/n1); 1.0 is linear) and the ratio of the measured time to a linear
extrapolation from the smallest size (the baseline: cost proportional to reads). Training samples
at most --train-sample reads (default 100,000), so its cost stops growing above that. Results go to
benchmarks/out/binning.json.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data"
OUT = ROOT / "benchmarks" / "out"
STAGES = ["features", "scale", "train", "encode", "cluster", "evaluate", "write"]


def reads_for(n: int, seed: int) -> Path:
    folder = DATA / f"cut{n // 1000}k"
    if not (folder / "reads.fq.gz").exists():
        print(f"simulating {n:,} cut reads into {folder} ...", flush=True)
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "simulate.py"), "--mode", "cut", "-n", str(n),
                        "--seed", str(seed), "-o", str(folder), "--quiet"], check=True)
    return folder


def run_size(n: int, args) -> dict:
    folder = reads_for(n, args.seed)
    out = OUT / f"binning_{n}"
    t0 = time.perf_counter()
    cmd = [str(ROOT / ".venv" / "bin" / "biovae"), "bin", str(folder / "reads.fq.gz"), "-o", str(out),
           "--truth", str(folder / "truth.tsv"), "--threads", str(args.threads), "--seed", str(args.seed),
           "--quiet", *args.extra]
    if out.exists():
        import shutil

        shutil.rmtree(out)
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    s = json.loads((out / "summary.json").read_text())
    ev = s.get("evaluation", {}).get("by_sequence", {})
    return {"reads": n, "wall_seconds": round(wall, 1), "stage_seconds": s["stage_seconds"],
            "peak_rss_mib": s["peak_rss_mib"], "peak_rss_mib_after_stage": s.get("peak_rss_mib_after_stage"),
            "bins": s["bins"], "unbinned": s["unbinned"],
            "f1": ev.get("f1_sample"), "ari": ev.get("ari"), "epochs": s["epochs_trained"]}


def exponent(a: float, b: float, na: int, nb: int) -> float:
    return math.log(max(b, 1e-3) / max(a, 1e-3)) / math.log(nb / na)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("extra", nargs="*", help="more `biovae bin` options, after --")
    args = p.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in sorted(args.sizes):
        rows.append(run_size(n, args))
        r = rows[-1]
        stages = "  ".join(f"{k} {r['stage_seconds'].get(k, 0):.1f}" for k in STAGES if k in r["stage_seconds"])
        f1 = "-" if r["f1"] is None else f"{r['f1']:.3f}"
        ari = "-" if r["ari"] is None else f"{r['ari']:.3f}"
        print(f"{n:>9,} reads: {r['wall_seconds']:7.1f} s wall | {stages} | peak {r['peak_rss_mib']:,.0f} MiB"
              f" | {r['bins']} bins, F1 {f1}, ARI {ari}", flush=True)
        if r["peak_rss_mib_after_stage"]:
            print("           peak RSS after each stage (MiB): " + ", ".join(
                f"{k} {v:,.0f}" for k, v in r["peak_rss_mib_after_stage"].items()), flush=True)
        (OUT / f"binning_{'_'.join(str(n) for n in sorted(args.sizes))}.json").write_text(json.dumps({"threads": args.threads, "runs": rows}, indent=2))
    base = rows[0]
    print("\ngrowth (1.0 = linear) and time / linear extrapolation from the smallest size:")
    for a, b in zip(rows, rows[1:]):
        per = {k: exponent(a["stage_seconds"].get(k, 0), b["stage_seconds"].get(k, 0), a["reads"], b["reads"])
               for k in ("features", "train", "cluster") if k in a["stage_seconds"]}
        linear = base["wall_seconds"] * b["reads"] / base["reads"]
        print(f"{a['reads']:,} -> {b['reads']:,}: total exponent "
              f"{exponent(a['wall_seconds'], b['wall_seconds'], a['reads'], b['reads']):.2f} ("
              + ", ".join(f"{k} {v:.2f}" for k, v in per.items())
              + f"); time / linear baseline {b['wall_seconds'] / linear:.2f}")


if __name__ == "__main__":
    main()
