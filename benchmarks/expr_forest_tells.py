"""What a random forest uses to tell generated from held-out real cells (development sets only).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/expr_forest_tells.py [--dataset pbmc68k_reduced] [--split 0]
        [--fit KEY=VALUE ...]

One 80/20 split (biovae.evaluate.generation.split_cells, seeded), biovae fitted on the 80 % with its
defaults (or --fit options), as many cells generated per label as the training cells have, then
the forest of benchmarks/expr_realism_multi.py (5 folds) on several views of held-out vs generated cells:
  pcs             the benchmark's view (top 1,000 variable genes, 50 PCs of both sides pooled)
  cell summaries  library size, detected genes, largest value, mean non-zero value (4 numbers)
  genes           the 1,000 genes themselves; the 10 most important with their zero fraction,
                  non-zero mean and sd on each side
  shuffled genes  the generated cells with each gene permuted among the cells of one label: no
                  gene-gene correlation left within a label (how much correlation the model carries)
Prints each view's AUC (0.5 = indistinguishable). Use it on development data only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
import expr_datasets  # noqa: E402

import biovae.expr as ex  # noqa: E402
from biovae.evaluate.generation import classifier_auc, split_cells  # noqa: E402
from biovae.expr.choose import features  # noqa: E402


def summaries(x: np.ndarray) -> np.ndarray:
    pos = np.where(x > 0, x, np.nan)
    return np.c_[x.sum(1), (x > 0).sum(1), x.max(1), np.nanmean(pos, 1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="pbmc68k_reduced")
    ap.add_argument("--split", type=int, default=0)
    ap.add_argument("--fit", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    name, seed = args.dataset, args.split
    assert name in expr_datasets.DEVELOPMENT, "development data only"
    label = expr_datasets.DATASETS[name][1]
    train, test = split_cells(expr_datasets.load(name), 0.2, label_key=label, seed=seed)
    options = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.fit)}
    model = ex.fit(train, labels=label, seed=seed, progress=False, **options)
    ltr = train.obs[label].astype(str).to_numpy() if label else np.full(train.n_obs, "all")
    lte = test.obs[label].astype(str).to_numpy() if label else np.full(test.n_obs, "all")
    want = pd.Series(ltr).value_counts().to_dict() if label else None
    gen = model.generate(train.n_obs, labels=want, seed=seed)
    G = np.asarray(gen.X, np.float64)
    lg = gen.obs["label"].astype(str).to_numpy() if label else np.full(len(G), "all")
    R = np.asarray(test.X, np.float64)
    kind = model.pre.kind
    print(f"{name} split {seed}: {model.pre.likelihood}, {model.pre.transform}, {kind}, choice {model.choice}")
    fr, fg = features(R, kind), features(G, kind)
    both = np.vstack([fr, fg])
    top = np.argsort(-both.var(0), kind="stable")[:1000]
    pca = PCA(min(50, len(both) - 1), random_state=seed).fit(both[:, top])
    zr, zg = pca.transform(fr[:, top]), pca.transform(fg[:, top])
    auc = lambda a, b: classifier_auc(a, b, seed=seed, labels_r=lte, labels_g=lg)[0]  # noqa: E731
    print(f"  pcs             AUC {auc(zr, zg):.3f}")
    print(f"  cell summaries  AUC {auc(summaries(R), summaries(G)):.3f}")
    for i, what in enumerate(["library size", "detected genes", "largest value", "mean non-zero"]):
        print(f"    {what:14s} AUC {auc(summaries(R)[:, [i]], summaries(G)[:, [i]]):.3f}   "
              f"real median {np.median(summaries(R)[:, i]):.3g}  generated {np.median(summaries(G)[:, i]):.3g}")
    print(f"  genes           AUC {auc(fr[:, top], fg[:, top]):.3f}")
    n = min(len(R), len(G))
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(G), n, replace=False)
    X = np.vstack([fr[:, top][:n], fg[:, top][pick]])
    y = np.repeat([0, 1], n)
    forest = RandomForestClassifier(300, random_state=seed, n_jobs=1).fit(X, y)
    genes = np.asarray(model.genes)[top]
    for j in np.argsort(-forest.feature_importances_)[:10]:
        a, b = fr[:, top[j]], fg[:, top[j]]
        stat = lambda v: f"zero {np.mean(v == 0):.2f} mean {v[v > 0].mean() if (v > 0).any() else 0:.2f} sd {v[v > 0].std() if (v > 0).sum() > 1 else 0:.2f}"  # noqa: E731
        print(f"    {genes[j]:12s} importance {forest.feature_importances_[j]:.3f}  real {stat(a)}  generated {stat(b)}")
    def nonzero(v, f):
        return np.array([f(c[c > 0]) if (c > 0).sum() > 2 else np.nan for c in v.T])

    sd_ratio = nonzero(fg[:, top], np.std) / nonzero(fr[:, top], np.std)
    mean_diff = nonzero(fg[:, top], np.mean) - nonzero(fr[:, top], np.mean)
    zero_diff = (fg[:, top] == 0).mean(0) - (fr[:, top] == 0).mean(0)
    print(f"  over the 1,000 genes: generated / real non-zero sd, median {np.nanmedian(sd_ratio):.3f} "
          f"(quartiles {np.nanpercentile(sd_ratio, 25):.3f}-{np.nanpercentile(sd_ratio, 75):.3f}); non-zero mean "
          f"difference median {np.nanmedian(mean_diff):+.3f}; zero fraction difference median {np.median(zero_diff):+.3f}")
    shuffled = fg.copy()
    for lab in np.unique(lg):
        idx = np.flatnonzero(lg == lab)
        for g in range(shuffled.shape[1]):
            shuffled[idx, g] = shuffled[rng.permutation(idx), g]
    zs = pca.transform(shuffled[:, top])
    print(f"  shuffled genes  AUC {auc(zr, zs):.3f}  (generated cells with gene-gene correlation removed within labels)")
    real_sh = fr.copy()
    for lab in np.unique(lte):
        idx = np.flatnonzero(lte == lab)
        for g in range(real_sh.shape[1]):
            real_sh[idx, g] = real_sh[rng.permutation(idx), g]
    print(f"  real, shuffled  AUC {auc(zr, pca.transform(real_sh[:, top])):.3f}  (held-out cells vs themselves "
          f"with correlation removed: what correlation alone tells)")


if __name__ == "__main__":
    main()
