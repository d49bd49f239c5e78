"""Leave-one-group-out novelty detection on five public data sets (benchmarks/explore_data.py).

  pbmc  development                                        group: cell type (10)
  lung  development (seen; scored in round 2)              group: age (4 time points)
  hsmm  development (seen)                                 group: hours of differentiation (4)
  guo   development (seen)                                 group: embryo stage (6)
  all_b development (seen; confirmation in round 3)       group: molecular subtype of B-lineage ALL (4)
  flu_subject confirmation (round 4; scored once, final code)  group: person (17; influenza challenge, blood)

Per split seed, each group's cells are split 70 / 30 (train / test). For each group G: the
training cells of the other groups are split again, 2/3 to fit and 1/3 to calibrate (80 / 20 in rounds 2-3; never
fitted). Genes are chosen on the fit cells only: the 300 most highly variable (scanpy, flavor
'seurat', on log1p values; data already on a log scale as they are), all genes when there are
no more than 300. biovae.tl.fit_anomaly_models (--models VAEs) is fitted on them; the cells
scored are every cell of G (novel) and the test cells of the other groups (normal). AUROC of
each score for "is G". Baselines on the same genes and cells, each gene standardised on the fit
cells: PCA reconstruction error (10 components), IsolationForest (200 trees) and the mean
distance to the 10 nearest fit cells in 50 principal components (pca_knn).

Calibration: conformal p-values of the default score (biovae.tl.anomaly_calibration) from the
calibration cells, smoothed (seeded) and plain; reported as the share of normal test cells with
p < 0.05 (ideal 0.05).

Combinations (biovae.tl.anomaly_calibration.COMBINATIONS): the mean of two scores, each in units
of its spread over the calibration cells (robust z).

Diagnostics (why scores behave as they do): AUROC of the mean squared standardised input value
('input_energy': how far a cell's genes lie from the training means), and the Spearman
correlation over the scored cells between encoder_var and input_energy.

    OMP_NUM_THREADS=1 python benchmarks/anomaly_groups.py [--data pbmc lung hsmm guo] [--seed 0] [--models 1]
Writes benchmarks/out/anomaly_groups.json and prints one table per data set.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

from biovae.evaluate.generation import split_cells
from biovae.expr.preprocess import Preprocessor
from biovae.io.atomic import write_json
from biovae.tl import anomaly_scores
from biovae.tl.anomaly_calibration import CALIBRATION_FRACTION, DEFAULT_SCORE, combined_scores, conformal_pvalues
from biovae.tl.anomaly_model import fit_anomaly_models
from biovae.tl.times import log_mode, to_log

import explore_data

ROOT = Path(__file__).resolve().parents[1]
BASELINES = ("pca_error", "isolation_forest", "pca_knn")
TOP_GENES = 300


def training_genes(fit: ad.AnnData, n_top: int = TOP_GENES) -> list[str]:
    """Highly variable genes of the fit cells only (all genes when there are few)."""
    if fit.n_vars <= n_top:
        return list(map(str, fit.var_names))
    import scanpy as sc

    x = np.asarray(fit.X, dtype=np.float64)
    logs = ad.AnnData(to_log(x, log_mode(x)), var=pd.DataFrame(index=fit.var_names))
    sc.pp.highly_variable_genes(logs, flavor="seurat", n_top_genes=n_top)
    return list(map(str, logs.var_names[logs.var["highly_variable"].to_numpy()]))


def baselines(x_fit: np.ndarray, x: np.ndarray, seed: int) -> dict:
    pca = PCA(min(10, x_fit.shape[1], len(x_fit) - 1), random_state=seed).fit(x_fit)
    out = {"pca_error": ((pca.inverse_transform(pca.transform(x)) - x) ** 2).mean(1)}
    out["isolation_forest"] = -IsolationForest(n_estimators=200, random_state=seed).fit(x_fit).score_samples(x)
    pca = PCA(min(50, x_fit.shape[1], len(x_fit) - 1), random_state=seed).fit(x_fit)
    dist, _ = NearestNeighbors(n_neighbors=10).fit(pca.transform(x_fit)).kneighbors(pca.transform(x))
    out["pca_knn"] = dist.mean(1)
    return out


def hold_out(cells, train_all, test, key, held, n_models: int, seed: int,
             calibration_fraction: float = CALIBRATION_FRACTION, settings: dict | None = None):
    """Leave group `held` out: (models, genes, fit, calibration, novel, known, scored cells).

    The models are fitted on 2/3 of the other groups' training cells, on genes chosen from
    those cells only; the other third calibrates; `scored` is every cell of `held` plus the
    other groups' test cells."""
    others = train_all[train_all.obs[key] != held]
    fit, cal = split_cells(others, calibration_fraction, label_key=key, seed=seed)
    genes = training_genes(fit)
    fit = fit[:, genes].copy()
    models = fit_anomaly_models(fit, genes=None, n_models=n_models, seed=seed, progress=False, **(settings or {}))
    novel, known = cells[cells.obs[key] == held], test[test.obs[key] != held]
    return models, genes, fit, cal, novel, known, ad.concat([novel, known], merge="same")


def one_group(cells, train_all, test, key, held, args, seed) -> dict:
    models, genes, fit, cal, novel, known, scored = hold_out(cells, train_all, test, key, held, args.models, seed,
                                                             args.calibration_fraction, json.loads(args.settings))
    truth = np.r_[np.ones(novel.n_obs), np.zeros(known.n_obs)]
    frame = anomaly_scores(models, scored[:, genes], seed=seed)
    scores = {c: frame[c].to_numpy() for c in frame.columns}
    pre = Preprocessor("normal").fit(fit.X)
    x_fit, x = pre.transform_data(fit.X), pre.transform_data(scored[:, genes].X)
    scores.update(baselines(x_fit, x, seed))
    scores["input_energy"] = (x ** 2).mean(1)
    cal_frame = anomaly_scores(models, cal[:, genes], seed=seed)
    both = combined_scores(frame, cal_frame)
    scores.update({c: both[c].to_numpy() for c in both.columns})
    cal_frame = pd.concat([cal_frame, combined_scores(cal_frame, cal_frame)], axis=1)
    p = conformal_pvalues(scores[DEFAULT_SCORE], cal_frame[DEFAULT_SCORE].to_numpy(), seed=seed)
    plain = conformal_pvalues(scores[DEFAULT_SCORE], cal_frame[DEFAULT_SCORE].to_numpy())
    row = {c: float(roc_auc_score(truth, v)) for c, v in scores.items()}
    row.update(held_out_cells=int(novel.n_obs), normal_cells=int(known.n_obs), genes=len(genes),
               calibration_cells=int(cal.n_obs),
               normal_share_p_below_0_05=float(np.mean(p[truth == 0] < 0.05)),
               novel_share_p_below_0_05=float(np.mean(p[truth == 1] < 0.05)),
               normal_share_plain_p_below_0_05=float(np.mean(plain[truth == 0] < 0.05)),
               encoder_var_vs_input_energy=float(spearmanr(scores["encoder_var"], scores["input_energy"])[0]))
    return row


def dataset_split(name: str, seed: int):
    """(group column, all cells (dense X), training cells, test cells, groups) of data set `name`."""
    key = explore_data.DATASETS[name][0]
    cells = explore_data.load(name)
    cells.obs[key] = cells.obs[key].astype(str)
    if hasattr(cells.X, "toarray"):
        cells.X = cells.X.toarray()
    train_all, test = split_cells(cells, 0.3, label_key=key, seed=seed)
    return key, cells, train_all, test, sorted(set(cells.obs[key]))


def run_dataset(name: str, args, seed: int) -> dict:
    key, cells, train_all, test, groups = dataset_split(name, seed)
    table = {}
    for held in groups:
        table[held] = one_group(cells, train_all, test, key, held, args, seed)
        print(f"  {name} seed {seed} {held[:28]:28s} {DEFAULT_SCORE}={table[held][DEFAULT_SCORE]:.3f} "
              f"pca_knn={table[held]['pca_knn']:.3f} p<0.05 normal={table[held]['normal_share_p_below_0_05']:.3f}",
              flush=True)
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", nargs="+", default=["pbmc", "lung", "hsmm", "guo"])
    ap.add_argument("--seed", type=int, nargs="+", default=[0])
    ap.add_argument("--models", type=int, default=3)
    ap.add_argument("--calibration-fraction", type=float, default=CALIBRATION_FRACTION,
                    help="share of the other groups' training cells kept out of the fit to calibrate "
                    "(biovae.tl.fit_detector's: 1/3 since round 4; 0.2 in rounds 2-3)")
    ap.add_argument("--settings", default="{}", help="JSON of biovae.tl.fit_anomaly_models settings over "
                    "ANOMALY_SETTINGS, e.g. '{\"latent_dim\": 64, \"hidden\": [512, 256]}' (round 4: capacity)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "anomaly_groups.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    for name in args.data:
        t0 = time.time()
        tables = {str(s): run_dataset(name, args, s) for s in args.seed}
        rows = [row for table in tables.values() for row in table.values()]
        frame = pd.DataFrame(rows)
        mean = frame.mean(numeric_only=True)
        role = explore_data.DATASETS[name][2]
        scores = [c for c in frame.columns if c not in ("held_out_cells", "normal_cells", "genes", "calibration_cells")]
        print(f"\n{name} ({role}; {len(rows)} hold-outs, {time.time() - t0:.0f} s): mean over hold-outs")
        print(mean[scores].round(3).to_string())
        check = {"default": DEFAULT_SCORE, "mean_auroc": float(mean[DEFAULT_SCORE]),
                 **{f"beats_{b}": bool(mean[DEFAULT_SCORE] > mean[b]) for b in BASELINES},
                 "calibrated": bool(abs(mean["normal_share_p_below_0_05"] - 0.05) <= 0.03)}
        print(", ".join(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}" for k, v in check.items()), flush=True)
        results[name] = {"role": role, "tables": tables, "mean": mean.to_dict(), "check": check,
                         "seconds": round(time.time() - t0, 1)}
    write_json(args.out, {"seeds": args.seed, "models": args.models, "calibration_fraction": args.calibration_fraction,
                          "settings": json.loads(args.settings),
                          "results": results})
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
