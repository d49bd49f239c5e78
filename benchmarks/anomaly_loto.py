"""Leave-one-type-out anomaly detection on scanpy's pbmc68k_reduced (700 PBMCs, 10 types).

Cells are split 80/20 per type (--seed). For each type T: fit the anomaly models
(biovae.tl.fit_anomaly_models: --models VAEs, seeds seed .. seed+models-1, each score averaged
over them) on the training cells of the other nine types; score every cell of T (never seen) and
the held-out 20 % of the other types; AUROC of each score for "is T".

Baselines, fitted once on the same training cells and the same input as the VAE (log-normalised
.raw restricted to the same genes, each gene standardised on the training cells), in the same
run: PCA reconstruction error (as many components as latent dimensions, and with 10 components)
and sklearn's IsolationForest (200 trees). With --genes highly_variable (default) they are also fitted on all
765 genes (columns *_all genes), since the VAE's gene selection is part of its recipe.
pca_knn (mean distance to the 10 nearest training cells in 50 principal components of the same
input) is an extra reference, not one of the issue's baselines: a plain kNN detector without VAE.

Genes: pbmc68k_reduced's precomputed highly-variable flags, which were computed on every cell,
the held-out type's included. benchmarks/anomaly_groups.py selects genes on training cells only
and covers three more data sets; prefer its figures.

Settings were chosen on split seeds 0 and 1 (see biovae.tl.anomaly_model); seeds 2, 3, 4 were
run once afterwards to confirm. The previous defaults were `--genes all --latent-dim 10
--dropout 0.1 --models 1`.

    nice .venv/bin/python benchmarks/anomaly_loto.py --seed 0 1 2 3 4 [--threads 1]
        [--genes highly_variable|all] [--latent-dim 32] [--dropout 0] [--models 3] [--likelihood normal]
Writes benchmarks/out/anomaly_loto.json (every seed's table) and prints the tables.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import anndata as ad
import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

from biovae.evaluate.generation import split_cells
from biovae.expr.genes import select_genes
from biovae.expr.preprocess import Preprocessor
from biovae.io.atomic import write_json
from biovae.tl import SCORES, anomaly_scores
from biovae.tl.anomaly_model import ANOMALY_SETTINGS, fit_anomaly_models

ROOT = Path(__file__).resolve().parents[1]
BASELINES = ("pca_error", "pca_error_10", "isolation_forest")


def standardised(train: ad.AnnData, scored: ad.AnnData) -> tuple[np.ndarray, np.ndarray]:
    """Both matrices on the normal-likelihood model's scale, fitted on the training cells."""
    pre = Preprocessor("normal").fit(train.X)
    return pre.transform_data(train.X), pre.transform_data(scored.X)


def baselines(x_train: np.ndarray, x: np.ndarray, components: int, seed: int, suffix: str = "") -> dict:
    """PCA error with `components` (the latent size) and with 10 components (the size used before
    the latent grew to 32, and the better one here), and IsolationForest."""
    out = {}
    for name, n in (("pca_error", components), ("pca_error_10", 10)):
        if name == "pca_error_10" and n == components:
            continue
        pca = PCA(n, random_state=seed).fit(x_train)
        out[name + suffix] = ((pca.inverse_transform(pca.transform(x)) - x) ** 2).mean(1)
    forest = IsolationForest(n_estimators=200, random_state=seed).fit(x_train)
    out[f"isolation_forest{suffix}"] = -forest.score_samples(x)
    return out


def pca_knn(x_train: np.ndarray, x: np.ndarray, seed: int, k: int = 10) -> np.ndarray:
    pca = PCA(min(50, x_train.shape[1]), random_state=seed).fit(x_train)
    dist, _ = NearestNeighbors(n_neighbors=k).fit(pca.transform(x_train)).kneighbors(pca.transform(x))
    return dist.mean(1)


def run_split(cells: ad.AnnData, args, seed: int) -> dict:
    """AUROC per held-out type for every score, on split `seed`."""
    train_all, test = split_cells(cells, 0.2, label_key="bulk_labels", seed=seed)
    genes = None if args.genes == "all" else args.genes
    table = {}
    for held in sorted(set(cells.obs["bulk_labels"])):
        train = train_all[train_all.obs["bulk_labels"] != held].copy()
        models = fit_anomaly_models(train, genes=genes, n_models=args.models, seed=seed, progress=False,
                                    likelihood=args.likelihood, latent_dim=args.latent_dim, dropout=args.dropout)
        novel = cells[cells.obs["bulk_labels"] == held]
        known = test[test.obs["bulk_labels"] != held]
        scored = ad.concat([novel, known], merge="same")
        truth = np.r_[np.ones(novel.n_obs), np.zeros(known.n_obs)]
        scores = {c: v.to_numpy() for c, v in anomaly_scores(models, scored, seed=seed).items()}
        x_train, x = standardised(select_genes(train, genes), select_genes(scored, genes))
        scores.update(baselines(x_train, x, args.latent_dim, seed))
        scores["pca_knn"] = pca_knn(x_train, x, seed)
        if genes is not None:
            scores.update(baselines(*standardised(train, scored), args.latent_dim, seed, suffix="_all_genes"))
        table[held] = {"held_out_cells": int(novel.n_obs), "other_cells": int(known.n_obs),
                       **{c: float(roc_auc_score(truth, v)) for c, v in scores.items()}}
        print(f"  seed {seed} {held[:30]:30s} latent_knn={table[held]['latent_knn']:.3f} "
              f"pca_error={table[held]['pca_error']:.3f}", flush=True)
    return table


def summarise(table: dict) -> tuple[dict, dict]:
    columns = [c for c in next(iter(table.values())) if c not in ("held_out_cells", "other_cells")]
    mean = {c: float(np.mean([row[c] for row in table.values()])) for c in columns}
    best = max(SCORES, key=lambda c: mean[c])
    against = [b for b in BASELINES if b in mean]
    check = {"best_vae_score": best, "best_vae_mean_auroc": mean[best],
             "reaches_0.85": bool(mean[best] >= 0.85),
             **{f"beats_{b}": bool(mean[best] > mean[b]) for b in against},
             **{f"ratio_vs_{b}": mean[best] / mean[b] for b in against}}
    return mean, check


def print_table(table: dict, mean: dict, check: dict, seed: int, seconds: float) -> None:
    columns, types = list(mean), list(table)
    width = max(len(c) for c in columns)
    print(f"\nsplit seed {seed}: AUROC per held-out type (rows: scores; {seconds:.0f} s)")
    print(f"{'score':{width}s} " + " ".join(f"{t[:9]:>9s}" for t in types) + f" {'mean':>7s}")
    for c in columns:
        print(f"{c:{width}s} " + " ".join(f"{table[t][c]:9.3f}" for t in types) + f" {mean[c]:7.3f}")
    print(f"{'held-out n':{width}s} " + " ".join(f"{table[t]['held_out_cells']:9d}" for t in types))
    print(", ".join(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}" for k, v in check.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, nargs="+", default=[0], help="split seeds (one table each)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--genes", default="highly_variable", help="var column of genes to fit on, or 'all'")
    ap.add_argument("--latent-dim", type=int, default=ANOMALY_SETTINGS["latent_dim"])
    ap.add_argument("--dropout", type=float, default=ANOMALY_SETTINGS["dropout"])
    ap.add_argument("--likelihood", default=ANOMALY_SETTINGS["likelihood"])
    ap.add_argument("--models", type=int, default=3, help="VAEs per held-out type; scores averaged")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "anomaly_loto.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import scanpy as sc

    pbmc = sc.datasets.pbmc68k_reduced()
    cells = pbmc.raw.to_adata()
    cells.obs = pbmc.obs[["bulk_labels"]].copy()
    cells.var["highly_variable"] = pbmc.var["highly_variable"].reindex(cells.var_names).fillna(False).to_numpy(bool)
    runs = {}
    for seed in args.seed:
        t0 = time.time()
        table = run_split(cells, args, seed)
        mean, check = summarise(table)
        print_table(table, mean, check, seed, time.time() - t0)
        runs[str(seed)] = {"per_type": table, "mean": mean, "check": check, "seconds": round(time.time() - t0, 1)}
    if len(runs) > 1:
        print("\nmean AUROC by split seed: " + "; ".join(
            f"{s}: {r['check']['best_vae_score']} {r['check']['best_vae_mean_auroc']:.3f}, pca_error "
            f"{r['mean']['pca_error']:.3f}, isolation_forest {r['mean']['isolation_forest']:.3f}"
            for s, r in runs.items()))
    settings = {"genes": args.genes, "likelihood": args.likelihood, "latent_dim": args.latent_dim,
                "dropout": args.dropout, "models": args.models, "hidden": list(ANOMALY_SETTINGS["hidden"])}
    write_json(args.out, {"settings": settings, "seeds": args.seed, "runs": runs})
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
