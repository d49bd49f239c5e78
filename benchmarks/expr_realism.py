"""How realistic are generated PBMCs? biovae vs baselines vs scvi-tools, on one seeded 80/20 split.

    .venv/bin/python benchmarks/expr_realism.py [--seed 0] [--evals 3] [--no-scvi]

Data: scanpy's bundled pbmc68k_reduced, its `.raw` (log-normalised, 700 cells x 765 genes) and
obs['bulk_labels'] (10 cell types). `split_cells(real, 0.2, "bulk_labels", seed)` keeps 20% of each
label (140 cells) out of every fit; every metric compares a generator's cells with those held-out
cells (biovae.evaluate.generation.evaluate_generation, labels "bulk_labels").

Generators (each fitted once, on the 560 training cells; up to 100 cells per label are scored):
  biovae CVAE, defaults    biovae.expr.fit(train, labels="bulk_labels") with every default
                           (hurdle_cell likelihood, latent 10, hidden 256-128, label at every
                           decoder layer, decoder started at each gene's marginal, early
                           stopping), then model.generate(labels={label: 100}) with the default
                           "mixture" sampler: new cells from the prior side, no real cell behind
                           each one.
  biovae CVAE, no marginal the same with marginal_start=False: the decoder's output biases start
  start                    at 0 (the default until 2026-12-02; see biovae.engine.hurdle).
  biovae CVAE, label at    condition_every_layer=False (the label at the decoder's input only, the
  the decoder input only   default until 2026-12-02), "mixture" and method="posterior" (draws
                           around encoded training cells).
  For the CVAE rows "type agreement" is the share of generated cells that the classifier below
  (trained on the real training cells) calls the type they were generated as.
  biovae VAE, no labels    biovae.expr.fit(train) without labels (defaults; also a row with
                           marginal_start=False), 1,000 cells from its "mixture"
                           sampler. It cannot be asked for a cell type, so each generated cell is
                           labelled by a classifier (standardised logistic regression) trained on
                           the real training cells, as a user would annotate it; per predicted label
                           up to 100 cells are scored.
  biovae CVAE, the VAE's   the CVAE (defaults) asked, per generation seed, for as many cells of each
  label counts             label as the classifier gave the VAE (up to 100): evaluate_generation
                           scores only labels present on both sides, and the VAE gets few or no
                           cells of the rarest, hardest types, so its overall RF-AUC leaves them
                           out; this row has the same label composition, a like-for-like comparison.
  diagonal Gaussian        per label, independent N(mean, sd) per gene fitted on the training
                           cells, clipped at 0 (evaluate.generation.diagonal_gaussian_baseline).
  real (ceiling)           up to 100 real training cells per label, as if they were generated:
                           what a perfect generator would score against these held-out cells.
  scVI posterior pred.     scvi-tools SCVI (its defaults: 1 x 128 hidden, latent 10, ZINB, its
                           epoch rule) in its own venv (benchmarks/scvi_peer.py). SCVI needs
                           counts and pbmc68k_reduced ships none, but its .raw is exactly
                           log1p(k * s_c) with whole counts k and one size factor s_c per cell
                           (biovae.expr.preprocess.lattice_size_factors), so the counts of these
                           765 genes are recovered exactly: k = round(expm1(x) / s_c). SCVI is fit
                           on the training cells' counts; `posterior_predictive_sample` gives one
                           new count vector per training cell (conditioned on that real cell and its
                           library size: an easier task than generating from the prior), mapped back
                           to log1p(k * s_c) with that cell's s_c and labelled with its label. scvi
                           cannot generate cells of a chosen type without a real cell to start from.
Each generator is scored --evals times (generation / draw seed and metric seed 1..evals); the table
gives the mean and the range. Metrics: RF-AUC generated vs held-out real over all labels (label-
balanced; 0.5 = indistinguishable), "per label": the mean of the per-label RF-AUCs (labels with
>= 5 cells on both sides), MMD^2 on the real cells' top 10 PCs, and the correlation of
per-label mean profiles (mean over labels with >= 5 cells on both sides; 7 of the 10 labels, the
3 smallest have < 5 held-out cells) and its worst label. "no labels": the same RF-AUC and MMD^2
with labels ignored on both sides, generated cells in the training cells' label proportions
(CVAE: generate(labels=training label counts); VAE: as many cells as training cells; Gaussian: per
label as many as in training; scVI: one sample per training cell), so that no classifier's calls
enter the comparison of the conditional and the unconditional model.

Writes benchmarks/out/expr_realism.json. Needs the scvi venv for the last row (see scvi_peer.py);
without it (or with --no-scvi) that row is skipped with a note.
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
import torch

import biovae.expr as ex
from biovae.evaluate.generation import diagonal_gaussian_baseline, evaluate_generation, split_cells
from biovae.expr.preprocess import lattice_size_factors

HERE = Path(__file__).resolve().parent
SCVI_PYTHON = HERE / ".peers" / "scvi" / "bin" / "python"
KEY = "bulk_labels"
PER_LABEL = 100


def load(seed: int):
    import scanpy as sc

    pbmc = sc.datasets.pbmc68k_reduced()
    real = pbmc.raw.to_adata()
    real.obs = pbmc.obs[[KEY]].copy()
    real.X = real.X.toarray() if hasattr(real.X, "toarray") else np.asarray(real.X)
    return split_cells(real, 0.2, label_key=KEY, seed=seed)


def per_label(adata: ad.AnnData, labels: np.ndarray, n: int, seed: int) -> ad.AnnData:
    """Up to n cells of each label (drawn with seed), obs['label'] set."""
    rng = np.random.default_rng(seed)
    keep = np.concatenate([rng.permutation(np.flatnonzero(labels == lab))[:n] for lab in sorted(set(labels))])
    out = adata[np.sort(keep)].copy()
    out.obs = pd.DataFrame({"label": np.asarray(labels)[np.sort(keep)]}, index=out.obs_names)
    return out


def summarise(name: str, runs: list[dict], seconds: float, note: str, pooled: list[dict]) -> dict:
    def stat(key, part="overall", rs=runs):
        v = np.array([r[part][key] for r in rs], float)
        return {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max()), "values": v.tolist()}

    return {"generator": name, "rf_auc": stat("rf_auc"), "mmd2": stat("mmd2"),
            "rf_auc_no_labels": stat("rf_auc", rs=pooled), "mmd2_no_labels": stat("mmd2", rs=pooled),
            "per_label_mean_corr": stat("mean_corr", "per_label_mean"),
            "per_label_mean_rf_auc": stat("rf_auc", "per_label_mean"),
            "worst_label_mean_corr": stat("mean_corr", "per_label_worst"),
            "n_generated": [r["n_generated"] for r in runs], "fit_seconds": round(seconds, 1), "note": note}


def run_scvi(train, evals: int, seed: int, threads: int) -> tuple[list[ad.AnnData], float, str]:
    s = lattice_size_factors(train.X)
    if s is None:
        raise SystemExit("the training cells are not log-normalised counts; cannot recover counts for SCVI")
    counts = np.round(np.expm1(train.X.astype(np.float64)) / s[:, None]).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(inp, counts=counts)
        t0 = time.perf_counter()
        proc = subprocess.run([str(SCVI_PYTHON), str(HERE / "scvi_peer.py"), "realism", str(inp), str(out),
                               "--draws", str(evals), "--seed", str(seed), "--threads", str(threads)],
                              capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"scvi_peer.py failed:\n{proc.stderr[-3000:]}")
        info = proc.stderr.strip().splitlines()[-1]
        samples = np.load(out)["samples"]
    gens = []
    for k in samples:
        g = ad.AnnData(X=np.log1p(k.astype(np.float64) * s[:, None]).astype(np.float32), var=train.var[[]].copy())
        g.obs_names = [f"scvi_{i}" for i in range(g.n_obs)]
        gens.append(g)
    return gens, seconds, info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0, help="split and fit seed")
    ap.add_argument("--evals", type=int, default=3, help="generation/metric seeds per generator")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-scvi", action="store_true")
    ap.add_argument("--out", default=str(HERE / "out" / "expr_realism.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    train, test = load(args.seed)
    train_labels = train.obs[KEY].astype(str).to_numpy()
    seeds = list(range(1, args.evals + 1))

    def evaluate(gen, s):
        return evaluate_generation(test, gen, label_key=KEY, generated_label_key="label", seed=s)

    def evaluate_pooled(gen, s):  # no labels on either side; gen in the training cells' proportions
        return evaluate_generation(test, gen, seed=s)

    share = pd.Series(train_labels).value_counts().to_dict()  # training label counts (558 cells)

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    annotate = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(train.X, train_labels)

    def agreement(gen) -> float:  # share of generated cells the classifier calls their requested type
        return float(np.mean(annotate.predict(gen.X) == gen.obs["label"].astype(str).to_numpy()))

    def cvae_rows(name, methods, **options):  # fit one CVAE, score each sampler; returns it and its pooled runs
        t0 = time.perf_counter()
        model = ex.fit(train, labels=KEY, seed=args.seed, progress=False, **options)
        seconds, first = time.perf_counter() - t0, None
        for method in methods:
            gens = [model.generate(labels={lab: PER_LABEL for lab in model.labels}, method=method, seed=s)
                    for s in seeds]
            runs = [evaluate(g, s) for g, s in zip(gens, seeds)]
            pooled = [evaluate_pooled(model.generate(labels=share, method=method, seed=s), s) for s in seeds]
            first = pooled if first is None else first
            rows.append(summarise(name + ("" if method == "mixture" else f" ({method})"), runs, seconds,
                                  f"{len(model.vae.history)} epochs; {PER_LABEL} cells per label", pooled))
            rows[-1]["type_agreement"] = float(np.mean([agreement(g) for g in gens]))
        return model, seconds, first

    def vae_row(name, **options):  # the VAE's cells labelled by the classifier; returns its label counts
        t0 = time.perf_counter()
        vae = ex.fit(train, seed=args.seed, progress=False, **options)
        seconds = time.perf_counter() - t0
        runs, shares, pooled = [], [], []
        for s in seeds:
            pool = vae.generate(10 * PER_LABEL, method="mixture", seed=s)
            called = annotate.predict(pool.X)
            shares.append({k: int(v) for k, v in pd.Series(called).value_counts().items()})
            runs.append(evaluate(per_label(pool, called, PER_LABEL, s), s))
            pooled.append(evaluate_pooled(vae.generate(train.n_obs, method="mixture", seed=s), s))
        rows.append(summarise(name, runs, seconds,
                              f"{len(vae.vae.history)} epochs; 1,000 cells labelled by a classifier of the training "
                              f"cells, up to {PER_LABEL} per label; calls (seed 1): {shares[0]}", pooled))
        return shares

    rows = []
    cvae, t_cvae, cvae_pooled = cvae_rows("biovae CVAE, defaults", ("mixture",))
    cvae_rows("biovae CVAE, no marginal start", ("mixture",), marginal_start=False)
    cvae_rows("biovae CVAE, label at the decoder input only", ("mixture", "posterior"), condition_every_layer=False)
    shares = vae_row("biovae VAE, no labels")
    vae_row("biovae VAE, no labels, no marginal start", marginal_start=False)
    # The classifier gives the VAE few or no cells of the rarest types, and evaluate_generation
    # drops what one side lacks; the same CVAE with the VAE's label counts compares like with like.
    runs = [evaluate(cvae.generate(labels={k: min(v, PER_LABEL) for k, v in share_s.items()}, seed=s), s)
            for s, share_s in zip(seeds, shares)]
    rows.append(summarise("biovae CVAE, defaults, the VAE's label counts", runs, t_cvae,
                          "mixture; per label as many cells as the classifier gave the VAE (defaults; up to "
                          f"{PER_LABEL}), per generation seed; no-label columns: the CVAE (defaults) row's", cvae_pooled))

    runs = [evaluate(diagonal_gaussian_baseline(train, PER_LABEL, KEY, seed=s), s) for s in seeds]
    pooled = [evaluate_pooled(diagonal_gaussian_baseline(train, share, KEY, seed=s), s) for s in seeds]
    rows.append(summarise("diagonal Gaussian per label", runs, 0.0, f"{PER_LABEL} cells per label", pooled))
    runs = [evaluate(per_label(train, train_labels, PER_LABEL, s), s) for s in seeds]
    pooled = [evaluate_pooled(train, s) for s in seeds]
    rows.append(summarise("real training cells (ceiling)", runs, 0.0, f"up to {PER_LABEL} per label", pooled))

    scvi_note = None
    if args.no_scvi or not SCVI_PYTHON.exists():
        scvi_note = "skipped: " + ("--no-scvi" if args.no_scvi else f"no scvi venv at {SCVI_PYTHON}")
    else:
        gens, t_scvi, info = run_scvi(train, args.evals, args.seed, args.threads)
        runs = [evaluate(per_label(g, train_labels, PER_LABEL, s), s) for g, s in zip(gens, seeds)]
        pooled = [evaluate_pooled(g, s) for g, s in zip(gens, seeds)]
        rows.append(summarise("scvi-tools SCVI posterior predictive", runs, t_scvi,
                              f"{info}; one sample per training cell, up to {PER_LABEL} per label; "
                              "counts recovered exactly from the log-normalised .raw", pooled))

    print(f"pbmc68k_reduced, split seed {args.seed}: {train.n_obs} training / {test.n_obs} held-out cells; "
          f"mean (min-max) over {args.evals} generation+metric seeds")
    print(f"{'generator':46s} {'RF-AUC':>20s} {'per label':>9s} {'MMD^2':>7s} {'label mean corr':>21s} {'worst':>5s} "
          f"{'| no labels: RF-AUC':>28s} {'MMD^2':>7s} {'fit s':>6s}")
    for r in rows:
        a, c, p = r["rf_auc"], r["per_label_mean_corr"], r["rf_auc_no_labels"]
        print(f"{r['generator']:46s} {a['mean']:.3f} ({a['min']:.3f}-{a['max']:.3f}) "
              f"{r['per_label_mean_rf_auc']['mean']:9.3f} {r['mmd2']['mean']:7.4f} "
              f"{c['mean']:.3f} ({c['min']:.3f}-{c['max']:.3f}) {r['worst_label_mean_corr']['mean']:5.3f} "
              f"| {p['mean']:.3f} ({p['min']:.3f}-{p['max']:.3f}) {r['mmd2_no_labels']['mean']:7.4f} "
              f"{r['fit_seconds']:6.1f}" + (f"  type agreement {r['type_agreement']:.3f}" if "type_agreement" in r else ""))
    if scvi_note:
        print(f"scvi-tools: {scvi_note}")
    doc = {"dataset": "pbmc68k_reduced .raw", "label_key": KEY, "split_seed": args.seed,
           "n_train": train.n_obs, "n_test": test.n_obs, "eval_seeds": seeds, "rows": rows,
           "scvi": scvi_note or "ok", "command": " ".join(sys.argv)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
