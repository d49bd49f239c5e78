"""Benchmark: wall time and peak RSS of `biovae bin` and `biovae fit --backed` at 10^4, 10^5 and
10^6 reads / cells, with the growth exponent of each.

Run by hand (not part of the test suite), from the repository root:
    .venv/bin/python benchmarks/scale.py --reads 10000 100000 1000000 --cells 10000 100000 1000000

Reads: benchmarks/binning.py does the work (its simulated cut reads, one `biovae bin` child per
size, per-stage seconds and peak RSS); this script only calls it. `--skip-reads` leaves it out.

Cells: simulated raw counts from biovae.expr.simulate.simulate_count_blocks, seed 1: 5 cell
types, 2,000 genes (log mean expression N(0, 1.5^2); each type shifts its own 10% of the genes
by N(0, 2^2)), LogNormal total counts around 300 per cell (about 8% of the values non-zero),
written block by block to benchmarks/data/cellsN.h5ad (CSR, git-ignored) once per size. Each
size runs `biovae fit FILE --backed --labels cell_type --epochs 2` (default network, no early
stopping in 2 epochs) in its own child process; its wall time and peak RSS (ru_maxrss of that
child, from os.wait4) are printed with, for consecutive sizes, the growth exponent
log(t2/t1) / log(n2/n1) (1.0 = linear; for RSS, 0 = flat). `--skip-cells` leaves it out.
Results go to benchmarks/out/scale.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import binning  # noqa: E402  (benchmarks/binning.py)

DATA, OUT = binning.DATA, binning.OUT
GENES, TYPES, COUNTS_PER_CELL = 2000, 5, 300.0


def cells_for(n: int, seed: int) -> Path:
    """benchmarks/data/cellsN.h5ad, simulated once (see the module's docstring)."""
    import pandas as pd

    from biovae.expr.simulate import simulate_count_blocks
    from biovae.io.backed import write_backed

    path = DATA / f"cells{n}.h5ad"
    if path.exists():
        return path
    print(f"simulating {n:,} cells x {GENES:,} genes into {path} ...", flush=True)
    DATA.mkdir(parents=True, exist_ok=True)

    def blocks():
        start = 0
        for labels, x in simulate_count_blocks(n, GENES, TYPES, COUNTS_PER_CELL, seed=seed):
            names = [f"cell_{i}" for i in range(start, start + len(labels))]
            yield pd.DataFrame({"cell_type": labels}, index=names), x
            start += len(labels)

    write_backed(path, blocks(), pd.DataFrame(index=[f"gene_{j}" for j in range(GENES)]))
    return path


def fit_cells(n: int, args) -> dict:
    data = cells_for(n, args.seed)
    out = OUT / f"scale_fit_{n}"
    if out.exists():
        import shutil

        shutil.rmtree(out)
    cmd = [str(ROOT / ".venv" / "bin" / "biovae"), "fit", str(data), "-o", str(out), "--backed",
           "--labels", "cell_type", "--epochs", str(args.epochs), "--threads", str(args.threads),
           "--seed", str(args.seed), "--quiet"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"biovae fit failed at {n:,} cells")
    summary = json.loads((out / "summary.json").read_text())
    return {"cells": n, "genes": GENES, "file_mib": round(data.stat().st_size / 2**20, 1),
            "dense_mib": round(n * GENES * 4 / 2**20, 1), "wall_seconds": round(wall, 1),
            "peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "epochs": summary["epochs_trained"],
            "final_val_loss": summary["final_val_loss"]}


def cells_table(rows: list[dict]) -> None:
    print(f"\n{'cells':>10} {'file MiB':>9} {'dense MiB':>10} {'wall s':>8} {'peak RSS MiB':>13}")
    for r in rows:
        print(f"{r['cells']:>10,} {r['file_mib']:>9,.0f} {r['dense_mib']:>10,.0f} {r['wall_seconds']:>8.1f} "
              f"{r['peak_rss_mib']:>13,.0f}")
    for a, b in zip(rows, rows[1:]):
        print(f"{a['cells']:,} -> {b['cells']:,} cells: time exponent "
              f"{binning.exponent(a['wall_seconds'], b['wall_seconds'], a['cells'], b['cells']):.2f}, "
              f"peak RSS exponent {binning.exponent(a['peak_rss_mib'], b['peak_rss_mib'], a['cells'], b['cells']):.2f}")


def reads_table(rows: list[dict]) -> None:
    print(f"\n{'reads':>10} {'wall s':>8} {'peak RSS MiB':>13}")
    for r in rows:
        print(f"{r['reads']:>10,} {r['wall_seconds']:>8.1f} {r['peak_rss_mib']:>13,.0f}")
    for a, b in zip(rows, rows[1:]):
        print(f"{a['reads']:,} -> {b['reads']:,} reads: time exponent "
              f"{binning.exponent(a['wall_seconds'], b['wall_seconds'], a['reads'], b['reads']):.2f}, "
              f"peak RSS exponent {binning.exponent(a['peak_rss_mib'], b['peak_rss_mib'], a['reads'], b['reads']):.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reads", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--cells", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--skip-reads", action="store_true", help="leave out `biovae bin`")
    p.add_argument("--skip-cells", action="store_true", help="leave out `biovae fit --backed`")
    p.add_argument("--epochs", type=int, default=2, help="epochs of each fit")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    args.extra = []  # binning.run_size passes these on to `biovae bin`
    OUT.mkdir(parents=True, exist_ok=True)
    result = {"threads": args.threads, "reads": [], "cells": []}
    if not args.skip_reads:
        for n in sorted(args.reads):
            result["reads"].append(binning.run_size(n, args))
            (OUT / "scale.json").write_text(json.dumps(result, indent=2))
        reads_table(result["reads"])
    if not args.skip_cells:
        for n in sorted(args.cells):
            result["cells"].append(fit_cells(n, args))
            print(f"{n:>9,} cells: {result['cells'][-1]}", flush=True)
            (OUT / "scale.json").write_text(json.dumps(result, indent=2))
        cells_table(result["cells"])


if __name__ == "__main__":
    main()
