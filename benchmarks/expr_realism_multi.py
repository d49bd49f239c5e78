"""Realism of generated cells on several public data sets of different kinds, seeded 80/20 splits.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/expr_realism_multi.py [--splits 3] [--datasets a,b]
        [--no-scvi] [--scvi-epochs 200]

Data: benchmarks/expr_datasets.py (pbmc68k_reduced, its recovered counts pbmc68k_counts and those
per million, pbmc68k_cpm, are the DEVELOPMENT sets, on which biovae's settings were chosen; every
other set is CONFIRMATION: no setting was chosen on it). For each
data set and split seed s (0, 1, .. --splits - 1) the cells are split 80/20
(biovae.evaluate.generation.split_cells, stratified by the label column when there is one) and
every generator is fitted on the 80% only. Rows:
  biovae default    biovae.expr.fit(train, labels=<label column or None>, seed=s) with every
                    default (CVAE where labels exist; likelihood "auto", chosen on the validation
                    part of the 80%, see biovae.expr.choose), then generate() as many cells per
                    label as the training cells have, seed s.
  diagonal Gaussian per label, independent N(mean, sd) per gene on log1p(10^4 x / library) of the
                    training cells; mapped back by expm1 x library / 10^4 with a library drawn
                    from the training cells of that label, clipped at 0, rounded for counts
                    (log-normalised data: fitted on the values as given).
  scvi-tools        SCVI with its defaults (benchmarks/scvi_peer.py in its own venv, max epochs
                    --scvi-epochs), on counts: the data's own for counts, round(x) for FPKM, the
                    exactly recovered counts for pbmc68k_reduced (see expr_realism.py);
                    posterior_predictive_sample, one per training cell, mapped back the same way.
  real vs real      the training cells themselves (the ceiling).
Metrics against the held-out 20%: RF-AUC (random forest, 5 folds, on library-normalised log1p
values (as given for log-normalised data), the 1,000 genes most variable and 50 principal
components of held-out and generated cells pooled - fitted on the held-out cells alone, they fit
those few cells' noise and real-vs-real read 0.84 on lung_development; 0.5 = indistinguishable), MMD^2 on 10 of those
PCs, and the two-sample KS statistic of per-cell library sizes and of detected genes (values > 0),
both on the data's own scale. Writes benchmarks/out/expr_realism_multi.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import expr_datasets  # noqa: E402

import biovae.expr as ex  # noqa: E402
from biovae.evaluate.generation import classifier_auc, mmd_pca, split_cells  # noqa: E402
from biovae.expr.choose import describe, features, forest_view  # noqa: E402
from biovae.expr.kinds import detect  # noqa: E402
from biovae.expr.preprocess import lattice_size_factors  # noqa: E402

HERE = Path(__file__).resolve().parent
SCVI_PYTHON = HERE / ".peers" / "scvi" / "bin" / "python"


def score(real: np.ndarray, gen: np.ndarray, kind: str, seed: int, lab_r=None, lab_g=None) -> dict:
    zr, zg = forest_view(real, gen, kind, seed)  # the recipe expr.choose scores its candidates with
    auc, _ = classifier_auc(zr, zg, seed=seed, labels_r=lab_r, labels_g=lab_g)
    return {"rf_auc": auc, "mmd2": mmd_pca(zr[:, :10], zg[:, :10], n_pcs=10, seed=seed),
            "ks_detected_genes": float(ks_2samp((real > 0).sum(1), (gen > 0).sum(1)).statistic),
            "ks_library_size": float(ks_2samp(real.sum(1), gen.sum(1)).statistic)}


def gaussian(train: np.ndarray, labels: np.ndarray, kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.zeros_like(train, dtype=np.float64)
    for lab in np.unique(labels):
        idx = np.flatnonzero(labels == lab)
        f = features(train[idx], kind)
        sd = f.std(0, ddof=1) if len(idx) > 1 else np.zeros(f.shape[1])
        y = np.maximum(f.mean(0) + sd * rng.standard_normal(f.shape), 0)
        if kind == "log_normalised":
            out[idx] = y
            continue
        lib = train[rng.choice(idx, len(idx))].sum(1, keepdims=True)
        v = np.expm1(y) * lib / 1e4
        out[idx] = np.round(v) if kind == "counts" else v
    return out


def scvi_counts(train: np.ndarray, kind: str):
    """(counts for SCVI, function mapping sampled counts back to the data's scale)."""
    if kind == "log_normalised":
        s = lattice_size_factors(train)
        if s is None:
            return None, None
        return np.round(np.expm1(train) / s[:, None]), lambda k: np.log1p(k * s[:, None])
    return np.round(train), lambda k: k


def run_scvi(counts: np.ndarray, seed: int, epochs: int) -> tuple[np.ndarray, float]:
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(inp, counts=counts.astype(np.float32))
        t0 = time.perf_counter()
        proc = subprocess.run([str(SCVI_PYTHON), str(HERE / "scvi_peer.py"), "realism", str(inp), str(out),
                               "--draws", "1", "--seed", str(seed), "--threads", "1", "--epochs", str(epochs)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"scvi_peer.py failed:\n{proc.stderr[-2000:]}")
        return np.load(out)["samples"][0].astype(np.float64), time.perf_counter() - t0


def one_split(name: str, real: ad.AnnData, label: str | None, seed: int, args) -> list[dict]:
    train, test = split_cells(real, 0.2, label_key=label, seed=seed)
    kind = detect([train.X])
    Xtr, Xte = np.asarray(train.X, np.float64), np.asarray(test.X, np.float64)
    ltr = train.obs[label].astype(str).to_numpy() if label else np.full(train.n_obs, "all")
    lte = test.obs[label].astype(str).to_numpy() if label else np.full(test.n_obs, "all")
    rows = []

    def add(gen_name, gen, gen_labels, seconds, note=""):
        m = score(Xte, gen, kind, seed, lte, gen_labels)
        rows.append({"dataset": name, "split": seed, "kind": kind, "generator": gen_name, **m,
                     "seconds": round(seconds, 1), "note": note})
        print(f"  {name} split {seed} {gen_name:18s} RF-AUC {m['rf_auc']:.3f}  MMD2 {m['mmd2']:.4f}  "
              f"KS det {m['ks_detected_genes']:.3f}  KS lib {m['ks_library_size']:.3f}  ({seconds:.0f} s)",
              flush=True)

    t0 = time.perf_counter()
    model = ex.fit(train, labels=label, seed=seed, progress=False, **args.fit_options)
    fit_s = time.perf_counter() - t0
    want = pd.Series(ltr).value_counts().to_dict() if label else None
    gen = model.generate(train.n_obs, labels=want, seed=seed, method=args.method)
    add("biovae default", np.asarray(gen.X, np.float64), gen.obs["label"].astype(str).to_numpy(), fit_s,
        f"{model.pre.kind}, {model.pre.likelihood}, {model.pre.transform}, {len(model.vae.history)} epochs"
        + (f"; {describe(model.choice)}" if model.choice else ""))
    if args.only_biovae:
        return rows
    t0 = time.perf_counter()
    add("diagonal Gaussian", gaussian(Xtr, ltr, kind, seed), ltr, time.perf_counter() - t0)
    earlier = args.scvi_rows.get((name, seed))
    if earlier is not None:  # SCVI's own run on the same split: nothing of biovae enters it
        rows.append({**earlier, "note": f"scvi-tools row of an earlier run ({earlier.get('source')})"})
        print(f"  {name} split {seed} scvi-tools          RF-AUC {earlier['rf_auc']:.3f}  (earlier run)", flush=True)
    elif not args.no_scvi and SCVI_PYTHON.exists():
        counts, back = scvi_counts(Xtr, kind)
        if counts is not None:
            sample, secs = run_scvi(counts, seed, args.scvi_epochs)
            add("scvi-tools", back(sample), ltr, secs)
    add("real vs real", Xtr, ltr, 0.0)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splits", type=int, default=3)
    ap.add_argument("--datasets", default=",".join(expr_datasets.DATASETS))
    ap.add_argument("--no-scvi", action="store_true")
    ap.add_argument("--scvi-epochs", type=int, default=200)
    ap.add_argument("--out", default=str(HERE / "out" / "expr_realism_multi.json"))
    ap.add_argument("--fit", action="append", default=[], metavar="KEY=VALUE",
                    help="development only: a biovae.expr.fit option other than its default (JSON value)")
    ap.add_argument("--method", default="mixture", help="development only: generate()'s method")
    ap.add_argument("--only-biovae", action="store_true", help="development only: skip the other rows")
    ap.add_argument("--scvi-from", nargs="+", default=[], metavar="JSON",
                    help="take the scvi-tools row of a data set and split from these earlier runs' JSON files "
                         "instead of fitting SCVI again (its fit and samples do not depend on biovae's code)")
    ap.add_argument("--table", nargs="+", metavar="JSON",
                    help="only print the markdown table of earlier runs' JSON files (e.g. parallel runs)")
    args = ap.parse_args()
    if args.table:
        print(markdown(pd.DataFrame([r for f in args.table for r in json.loads(Path(f).read_text())])))
        return
    args.fit_options = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.fit)}
    args.scvi_rows = {(r["dataset"], r["split"]): {**r, "source": Path(f).name} for f in args.scvi_from
                      for r in json.loads(Path(f).read_text()) if r["generator"] == "scvi-tools"}
    import torch

    torch.set_num_threads(1)
    rows = []
    for name in args.datasets.split(","):
        label = expr_datasets.DATASETS[name][1]
        real = expr_datasets.load(name)
        for seed in range(args.splits):
            rows += one_split(name, real, label, seed, args)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(rows, indent=1))
    print(markdown(pd.DataFrame(rows)))


def markdown(frame: pd.DataFrame) -> str:
    """One row per set, data set and generator: mean over splits (min-max) of each metric."""
    frame = frame.assign(set=np.where(frame["dataset"].isin(expr_datasets.DEVELOPMENT), "development",
                                      "confirmation")).sort_values("set", kind="stable", ascending=False)
    metrics = ["rf_auc", "mmd2", "ks_detected_genes", "ks_library_size"]
    lines = ["| set | data (kind) | generator | splits | RF-AUC | MMD^2 | detected-gene KS | library-size KS |",
             "|---|---|---|---|---|---|---|---|"]
    for (st, ds, kind, gen), g in frame.groupby(["set", "dataset", "kind", "generator"], sort=False):
        cells = [f"{g[m].mean():.3f} ({g[m].min():.2f}-{g[m].max():.2f})" if m != "mmd2"
                 else f"{g[m].mean():.4f}" for m in metrics]
        lines.append(f"| {st} | {ds} ({kind}) | {gen} | {len(g)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
