"""Generated cells with and without calibration (biovae.expr.calibrate), same fits (development sets only).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/expr_calibrate_dev.py [--datasets pbmc68k_counts,..]
        [--splits 3] [--likelihoods hurdle,hurdle_cell] [--out benchmarks/out/expr_calibrate_dev.json]

For each development data set, split seed s (the 80/20 split of benchmarks/expr_realism_multi.py) and
likelihood, biovae is fitted once on the 80 % (defaults otherwise, calibration on), then as many
cells as the training cells have are generated twice with the same seed: with the model's
calibration maps removed from its state, and with them. Both are scored against the held-out 20 %
by the benchmark's metrics (expr_realism_multi.score: RF-AUC, MMD^2, detected-gene and
library-size KS); the median over cells of the largest value is printed beside the held-out
cells' one. The two generations share every draw, so the difference is the calibration's.
Refuses confirmation data sets.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import expr_datasets  # noqa: E402
from expr_realism_multi import score  # noqa: E402

import biovae.expr as ex  # noqa: E402
from biovae.evaluate.generation import split_cells  # noqa: E402
from biovae.expr.calibrate import MarginalMaps  # noqa: E402

HERE = Path(__file__).resolve().parent


def one(name: str, seed: int, likelihood: str) -> list[dict]:
    label = expr_datasets.DATASETS[name][1]
    train, test = split_cells(expr_datasets.load(name), 0.2, label_key=label, seed=seed)
    model = ex.fit(train, labels=label, seed=seed, progress=False, likelihood=likelihood)
    ltr = train.obs[label].astype(str).to_numpy() if label else np.full(train.n_obs, "all")
    lte = test.obs[label].astype(str).to_numpy() if label else np.full(test.n_obs, "all")
    want = pd.Series(ltr).value_counts().to_dict() if label else None
    real = np.asarray(test.X, np.float64)
    full = dict(model.vae.state)
    rows = []
    for calibrated in (False, True):
        model.vae.state = full if calibrated else {k: v for k, v in full.items()
                                                   if not k.startswith(MarginalMaps.namespace + ".")}
        gen = model.generate(train.n_obs, labels=want, seed=seed)
        g = np.asarray(gen.X, np.float64)
        m = score(real, g, model.pre.kind, seed, lte, gen.obs["label"].astype(str).to_numpy())
        rows.append({"dataset": name, "split": seed, "likelihood": likelihood, "calibrated": calibrated, **m,
                     "largest_value_generated": float(np.median(g.max(1))),
                     "largest_value_heldout": float(np.median(real.max(1)))})
        print(f"{name} split {seed} {likelihood:11s} calibrated={calibrated!s:5s} "
              + "  ".join(f"{k} {v:.4f}" for k, v in m.items())
              + f"  largest value median {rows[-1]['largest_value_generated']:.3g} "
              f"(held-out {rows[-1]['largest_value_heldout']:.3g})", flush=True)
    model.vae.state = full
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default=",".join(expr_datasets.DEVELOPMENT))
    ap.add_argument("--splits", type=int, default=3)
    ap.add_argument("--likelihoods", default="hurdle,hurdle_cell")
    ap.add_argument("--out", default=str(HERE / "out" / "expr_calibrate_dev.json"))
    args = ap.parse_args()
    names = args.datasets.split(",")
    if any(n not in expr_datasets.DEVELOPMENT for n in names):
        raise SystemExit(f"development data only: {', '.join(expr_datasets.DEVELOPMENT)}")
    import torch

    torch.set_num_threads(1)
    rows = [r for n in names for s in range(args.splits) for lik in args.likelihoods.split(",") for r in one(n, s, lik)]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=1))
    frame = pd.DataFrame(rows)
    print(frame.groupby(["dataset", "likelihood", "calibrated"])[["rf_auc", "ks_library_size", "ks_detected_genes"]]
          .mean().round(3).to_string())


if __name__ == "__main__":
    main()
