"""Per-cell anomaly features of the leave-one-group-out set-up (benchmarks/anomaly_groups.py),
saved for choosing a default score offline on the development sets (never run on a
confirmation set). One .npz per data set and hold-out under benchmarks/out/feat/: for the
scored cells and the calibration cells, per model: latent means, model-scale inputs and
mean reconstructions; plus the fit cells' latents / inputs / reconstructions and the truth.

    OMP_NUM_THREADS=1 python benchmarks/anomaly_features.py --data pbmc lung guo hsmm --models 3 --seed 0
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from biovae.expr.preprocess import Preprocessor
from biovae.tl import anomaly_scores

from anomaly_groups import baselines, dataset_split, hold_out

ROOT = Path(__file__).resolve().parents[1]
DEVELOPMENT = ("pbmc", "lung", "guo", "hsmm", "all_b")  # all_b: development (seen) since round 4


def parts(model, cells):
    y = model.model_input(cells, None, "cells")
    mean, logvar = model.vae.encode(y, None)
    return y.astype(np.float32), mean.astype(np.float32), model.vae.decode(mean, None).astype(np.float32), logvar


def dump(name, args, seed):
    key, cells, train_all, test, groups = dataset_split(name, seed)
    for gi, held in enumerate(groups):
        models, genes, fit, cal, novel, known, scored = hold_out(cells, train_all, test, key, held, args.models, seed,
                                                                 args.calibration_fraction)
        scored = scored[:, genes].copy()
        cal = cal[:, genes].copy()
        out = {"truth": np.r_[np.ones(novel.n_obs), np.zeros(known.n_obs)]}
        frame = anomaly_scores(models, scored, seed=seed)
        cal_frame = anomaly_scores(models, cal, seed=seed)
        for c in frame.columns:
            out[f"s_{c}"], out[f"c_{c}"] = frame[c].to_numpy(), cal_frame[c].to_numpy()
        pre = Preprocessor("normal").fit(fit.X)
        xf, xs, xc = (pre.transform_data(a.X) for a in (fit, scored, cal))
        out["x_fit"], out["x_s"], out["x_c"] = xf, xs, xc
        for b, v in baselines(xf, xs, seed).items():
            out[f"s_{b}"] = v
        for b, v in baselines(xf, xc, seed).items():
            out[f"c_{b}"] = v
        for m, model in enumerate(models):
            for tag, part in (("fit", fit), ("s", scored), ("c", cal)):
                y, z, rec, logvar = parts(model, part)
                out[f"m{m}_{tag}_y"], out[f"m{m}_{tag}_z"], out[f"m{m}_{tag}_rec"] = y, z, rec
                out[f"m{m}_{tag}_lv"] = logvar.astype(np.float32)
        np.savez_compressed(ROOT / "benchmarks" / "out" / "feat" / f"{name}_s{seed}_g{gi}.npz", **out)
        print(name, seed, held, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", nargs="+", default=list(DEVELOPMENT))
    ap.add_argument("--seed", type=int, nargs="+", default=[0])
    ap.add_argument("--models", type=int, default=3)
    ap.add_argument("--calibration-fraction", type=float, default=0.2,
                    help="the saved features (rounds 3-4) use the round-3 split: 80 %% fit, 20 %% calibration")
    args = ap.parse_args()
    assert all(d in DEVELOPMENT for d in args.data), "development sets only"
    torch.set_num_threads(1)
    for name in args.data:
        for s in args.seed:
            dump(name, args, s)


if __name__ == "__main__":
    main()
