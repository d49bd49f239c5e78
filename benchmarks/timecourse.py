"""Time-course prediction on mouse lung development (monocle's 185 epithelial cells, FPKM).

Hold out a time point, fit VAEs on the others (one per seed), decode the latent point between
the neighbours' centroids at the right fraction, and compare with two baselines computed in the
same run: linear interpolation of the neighbours' mean profiles, and the nearer neighbour (both
neighbours are listed; at a tie both are "nearer"). Space: log1p(FPKM) over the 200 genes of
highest variance across the training cells. Settings: biovae.tl.times.DEFAULT_SETTINGS,
fixed before looking at the E16.5 result. A check that never touches E16.5: remove the E16.5
cells and hold out E18.5 (between E14.5 and P107 = 126.5 days post coitum, f = 0.036).

    nice .venv/bin/python benchmarks/timecourse.py [--seeds 0 1 2] [--threads 1]
Writes benchmarks/out/timecourse.json and prints the table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import anndata as ad
import numpy as np
import torch

from biovae.io.atomic import write_json
from biovae.tl import predict_intermediate

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "expression" / "lung_development.h5ad"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--hold-out", default="Embryonic day 16.5")
    ap.add_argument("--check", default="Embryonic day 18.5", help="second hold-out, without the first's cells")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "timecourse.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lung = ad.read_h5ad(args.data)
    report = {"data": args.data, "seeds": args.seeds, "hold_outs": []}
    tasks = [(args.hold_out, lung), (args.check, lung[lung.obs["age"] != args.hold_out].copy())]
    for hold, data in tasks:
        t0 = time.time()
        runs = [predict_intermediate(None, data, "age", hold_out=hold, seed=s) for s in args.seeds]
        base = runs[0].metrics
        vae = np.array([[r.metrics.loc["vae", "pearson_r"], r.metrics.loc["vae", "rmse"]] for r in runs])
        rows = {f"vae seed {s}": tuple(v) for s, v in zip(args.seeds, vae)}
        rows["vae mean over seeds"] = tuple(vae.mean(0))
        for name, label in (("linear", "linear interpolation"), ("before", f"neighbour {runs[0].before}"),
                            ("after", f"neighbour {runs[0].after}")):
            nearer = " (nearer)" if base.loc[name, "nearer"] else ""
            rows[label + nearer] = (base.loc[name, "pearson_r"], base.loc[name, "rmse"])
        print(f"\nhold out {hold} ({data.n_obs} cells): f = {runs[0].fraction:.3f} between {runs[0].before} "
              f"and {runs[0].after}; space: {runs[0].space}")
        print(f"{'prediction':44s} {'pearson r':>10s} {'RMSE':>8s} {'RMSE / linear':>14s}")
        for k, (r, e) in rows.items():
            print(f"{k:44s} {r:10.4f} {e:8.4f} {e / base.loc['linear', 'rmse']:14.3f}")
        beats = {k: int(sum(r.beats_baselines()[k] for r in runs)) for k in runs[0].beats_baselines()}
        print("seeds where the VAE beats (higher r and lower RMSE):",
              ", ".join(f"{k}: {v}/{len(runs)}" for k, v in beats.items()), f"({time.time() - t0:.0f} s)")
        report["hold_outs"].append({"hold_out": hold, "cells": data.n_obs, "fraction": runs[0].fraction,
                                    "before": runs[0].before, "after": runs[0].after, "space": runs[0].space,
                                    "table": {k: {"pearson_r": r, "rmse": e} for k, (r, e) in rows.items()},
                                    "seeds_vae_beats": beats, "seconds": round(time.time() - t0, 1)})
    write_json(args.out, report)
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
