"""Choosing the likelihood of a fit from the training cells alone (likelihood="auto").

Each candidate of the input's kind (CANDIDATES) is fitted on the training cells as a plain fit
would be: the engine holds out the same validation part of them (validation_split, seed;
engine.data.split_indices) and stops when the loss on it stops falling, which is how the fit
chooses when to stop. To keep the cost near that of one fit, every candidate is first trained
for PROBE_EPOCHS epochs only (a probe, checkpointed); the one with the lowest validation loss
(negative ELBO of those cells) at that epoch wins, and only it is trained on, from its probe to
its stopping point, reaching the weights of a plain fit of it. The candidates of one kind share
the transform and preprocessing (the hurdles' scaling), so their losses are densities of the same
values and comparable; nothing outside the training cells is read. A fit costs the winner's plain
fit plus PROBE_EPOCHS epochs of each other candidate (before the probes: the sum of all the
candidates' full fits). The probe picked what comparing the full fits' best validation losses
picks in 6 of 6 development fits, 5 of 6 confirmation fits, and not on the synthetic data of
tests/test_expr_backed.py, where the loss curves cross at epoch 6 (benchmarks/expr_choice_probe.py;
docs/generation.md).

Each candidate's generated cells are also compared with the validation cells by a random forest
(`realism_auc`, the benchmark's recipe: library-normalised log1p values, the most variable genes,
principal components, 5-fold AUC; 0.5 = indistinguishable) and that AUC is reported, but it does
not choose: with the ~56 validation cells of a 700-cell data set it picked the candidate that
was better on the held-out cells in 1 of 6 development fits (pbmc68k_reduced and pbmc68k_counts,
splits 0-2), the validation loss in 4 of 6 (docs/generation.md).
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA

from biovae.engine.data import split_indices
from biovae.evaluate.generation import classifier_auc

# (likelihood, transform) per input kind, the first also the choice for data read in chunks
# (backed) and for too few validation cells. Chosen on the development sets (docs/generation.md):
# with calibrated generation (expr.calibrate) "hurdle" scored the lower held-out RF-AUC in 7 of 9
# development fits and on average on each set (pbmc68k_counts 0.565 against 0.609,
# pbmc68k_reduced 0.577 against 0.606, pbmc68k_cpm 0.588 against 0.643; 3 splits each,
# benchmarks/expr_calibrate_dev.py).
CANDIDATES = {
    "counts": [("hurdle", "auto"), ("hurdle_cell", "auto")],
    "full_length": [("hurdle", "auto"), ("hurdle_cell", "auto")],
    "log_normalised": [("hurdle", "auto"), ("hurdle_cell", "auto")],
}
# Candidates are compared after this many epochs; only the winner is trained on (the choice
# costs a plain fit of the winner plus this many epochs of each other candidate). Chosen on the
# development sets (benchmarks/expr_choice_probe.py, docs/generation.md).
PROBE_EPOCHS = 5
MIN_VALIDATION_CELLS = 20  # below this the validation part says too little to choose on
TOP_GENES = 1000
FOREST_SEEDS = 3  # forests (different folds and subsamples) averaged per candidate


def validation_index(n: int, fraction: float, seed: int) -> np.ndarray:
    """The training cells the engine holds out for early stopping (and the choice scores on)."""
    return split_indices(n, fraction, seed)[1]


def features(x: np.ndarray, kind: str) -> np.ndarray:
    """The forest's view of cells on the input scale: library-normalised log1p values (as given
    for log-normalised data)."""
    x = np.asarray(x, dtype=np.float64)
    if kind == "log_normalised":
        return x
    return np.log1p(x / np.maximum(x.sum(1, keepdims=True), 1e-12) * 1e4)


def forest_view(real: np.ndarray, generated: np.ndarray, kind: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """What the forest sees of real and generated cells (both cells x genes, input scale): up to 50
    principal components of the TOP_GENES most variable genes of `features`, genes and components
    taken from both sides pooled (fitted on one side, they would fit its noise)."""
    fr, fg = features(real, kind), features(generated, kind)
    both = np.vstack([fr, fg])
    top = np.argsort(-both.var(0), kind="stable")[:TOP_GENES]
    pca = PCA(n_components=min(50, len(both) - 1, len(top)), random_state=seed).fit(both[:, top])
    return pca.transform(fr[:, top]), pca.transform(fg[:, top])


def realism_auc(real: np.ndarray, generated: np.ndarray, kind: str, seed: int,
                labels_real=None, labels_generated=None) -> float:
    """Random-forest AUC of real vs generated cells (both cells x genes, input scale) on their
    forest_view, the mean of FOREST_SEEDS forests."""
    zr, zg = forest_view(real, generated, kind, seed)
    aucs = [classifier_auc(zr, zg, seed=seed + k, labels_r=labels_real, labels_g=labels_generated)[0]
            for k in range(FOREST_SEEDS)]
    return float(np.mean(aucs))


def score(model, real: np.ndarray, labels: np.ndarray | None, seed: int) -> float:
    """realism_auc of `model`'s generated cells against the validation cells `real` (input
    scale), as many generated cells per label as there are validation cells of it."""
    if labels is None:
        generated = model.generate(len(real), seed=seed)
        return realism_auc(real, _dense(generated.X), model.pre.kind, seed)
    names, counts = np.unique(labels, return_counts=True)
    generated = model.generate(int(counts.sum()), labels=dict(zip(names, counts.tolist())), seed=seed)
    return realism_auc(real, _dense(generated.X), model.pre.kind, seed, labels,
                       generated.obs["label"].astype(str).to_numpy())


def _dense(x) -> np.ndarray:
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)


def choose(fit_one, kind: str, x: np.ndarray, labels: np.ndarray | None, fraction: float, seed: int):
    """Probe every candidate of `kind` with fit_one(likelihood, transform, PROBE_EPOCHS,
    finish=False) -> ExpressionModel (a fit paused after that many epochs, trained only), keep the
    one with the lowest validation loss at that epoch (probe_loss) and train it on with
    fit_one(likelihood, transform), which goes on from its probe to the stopping point; the others
    are finished as probed with fit_one(likelihood, transform, PROBE_EPOCHS). Each candidate (the winner
    fully trained, the others as probed) is also scored by the forest against the validation
    cells of x (input scale, all training cells; labels per cell or None). Returns (model,
    record): record {"chosen", "criterion", "probe_epochs", "candidates": [{"likelihood",
    "transform", "validation_loss" (at the probe's end), "validation_rf_auc", "epochs"}],
    "validation_cells"}; with fewer than MIN_VALIDATION_CELLS validation cells only the first
    candidate is fitted and the record says why."""
    val = validation_index(x.shape[0], fraction, seed)
    options = CANDIDATES[kind]
    if len(val) < MIN_VALIDATION_CELLS:
        likelihood, transform = options[0]
        model = fit_one(likelihood, transform)
        return model, {"chosen": likelihood, "validation_cells": int(len(val)), "candidates": [],
                       "note": f"{len(val)} validation cells (< {MIN_VALIDATION_CELLS}): {likelihood} without a choice"}
    real = _dense(x[val])
    lab = None if labels is None else np.asarray(labels)[val]
    probes = [fit_one(likelihood, transform, PROBE_EPOCHS, finish=False) for likelihood, transform in options]
    losses = [probe_loss(m.vae.history) for m in probes]
    won = int(np.argmin(losses))
    # the winner trains on from its probe to its stopping point, as a plain fit of it would; the
    # others are finished as probed (samplers and calibration: only what is kept is finished)
    models = [fit_one(*options[i]) if i == won else fit_one(*options[i], PROBE_EPOCHS) for i in range(len(options))]
    rows = [{"likelihood": likelihood, "transform": m.pre.transform, "validation_loss": round(float(loss), 3),
             "validation_rf_auc": round(score(m, real, lab, seed), 4), "epochs": len(m.vae.history)}
            for (likelihood, _), m, loss in zip(options, models, losses)]
    model = models[won]
    return model, {"chosen": model.pre.likelihood, "criterion": f"validation loss after {PROBE_EPOCHS} epochs",
                   "probe_epochs": PROBE_EPOCHS, "validation_cells": int(len(val)), "candidates": rows}


def probe_loss(history: list[dict]) -> float:
    """The validation loss of a probe's last epoch (epoch PROBE_EPOCHS, or the last where it
    stopped sooner): every candidate is compared at the same epoch, so at the same KL weight of
    the warm-up."""
    return float(history[min(PROBE_EPOCHS, len(history)) - 1]["val_loss"])


def describe(record: dict | None) -> str:
    """The choice in a few words for the summary line: 'chosen by the loss of 56 validation cells:
    hurdle 521.9 (RF-AUC 0.600), hurdle_cell 529.2 (RF-AUC 0.656)'."""
    if not record:
        return ""
    if not record.get("candidates"):
        return record.get("note", "")
    parts = ", ".join(f"{c['likelihood']} {c['validation_loss']:.4g} (RF-AUC {c['validation_rf_auc']:.3f})"
                      for c in record["candidates"])
    return f"chosen by the loss of {record['validation_cells']} validation cells: {parts}"
