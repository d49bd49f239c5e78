"""The development evidence for likelihood="auto" and the mixture sampler's components.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/expr_choice_dev.py [--splits 3] [--components 4,10,20]

On the DEVELOPMENT sets only (pbmc68k_reduced, pbmc68k_counts; benchmarks/expr_datasets.py), for
each 80/20 split (seeds 0..splits-1, as benchmarks/expr_realism_multi.py) and each candidate of
biovae.expr.choose ("hurdle_cell", "hurdle"): one fit on the 80 %, its best validation loss (the
criterion of "auto"), the forest's AUC against the validation cells (biovae.expr.choose.score,
what "auto" reports), and the held-out RF-AUC of expr_realism_multi.score for generated cells
from the "mixture" sampler refitted with each --components maximum, and from "posterior".
Prints one line per fit and a table of means; writes benchmarks/out/expr_choice_dev.json.
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
from biovae.expr import choose, samplers  # noqa: E402
from biovae.expr.fit import read_labels  # noqa: E402

HERE = Path(__file__).resolve().parent


def refit_samplers(model, train, label, seed, components: int) -> None:
    """The model's latent samplers fitted again with at most `components` mixture components."""
    x = np.asarray(train.X, np.float64)
    lab = read_labels(train, label, train.obs_names)
    sizes = model.pre.fitted_sizes
    before = samplers.GMM_COMPONENTS
    samplers.GMM_COMPONENTS = components
    try:
        samplers.fit(model.vae, model.pre.transform_data(x), x.sum(1), lab, model.labels, seed, sizes,
                     (x > 0).sum(1) if sizes is not None else None)
    finally:
        samplers.GMM_COMPONENTS = before


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splits", type=int, default=3)
    ap.add_argument("--components", default="4,10,20")
    ap.add_argument("--out", default=str(HERE / "out" / "expr_choice_dev.json"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    rows = []
    for name in expr_datasets.DEVELOPMENT:
        label = expr_datasets.DATASETS[name][1]
        real = expr_datasets.load(name)
        for seed in range(args.splits):
            train, test = split_cells(real, 0.2, label_key=label, seed=seed)
            x_train, x_test = np.asarray(train.X, np.float64), np.asarray(test.X, np.float64)
            ltr = train.obs[label].astype(str).to_numpy() if label else None
            lte = test.obs[label].astype(str).to_numpy() if label else np.full(test.n_obs, "all")
            want = pd.Series(ltr).value_counts().to_dict() if label else None
            val = choose.validation_index(train.n_obs, 0.1, seed)
            for likelihood, _ in choose.CANDIDATES["counts"]:
                model = ex.fit(train, labels=label, seed=seed, progress=False, likelihood=likelihood)
                row = {"dataset": name, "split": seed, "likelihood": likelihood,
                       "validation_loss": min(h["val_loss"] for h in model.vae.history),
                       "validation_rf_auc": choose.score(model, x_train[val], None if ltr is None else ltr[val], seed)}
                for variant in [f"mixture{k}" for k in args.components.split(",")] + ["posterior"]:
                    if variant.startswith("mixture"):
                        refit_samplers(model, train, label, seed, int(variant[7:]))
                    g = model.generate(train.n_obs, labels=want, seed=seed,
                                       method="posterior" if variant == "posterior" else "mixture")
                    m = score(x_test, np.asarray(g.X, np.float64), model.pre.kind, seed, lte,
                              g.obs["label"].astype(str).to_numpy())
                    row[f"heldout_rf_auc_{variant}"] = m["rf_auc"]
                rows.append(row)
                print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                Path(args.out).write_text(json.dumps(rows, indent=1))
    frame = pd.DataFrame(rows)
    print(frame.drop(columns="split").groupby(["dataset", "likelihood"]).mean().round(3).to_string())


if __name__ == "__main__":
    main()
