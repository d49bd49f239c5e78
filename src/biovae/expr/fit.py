"""biovae.expr.fit: expression matrix (+ labels) -> fitted ExpressionModel.

Stages: read -> labels -> preprocess (fitted on these cells) -> build VAE (conditional when
labels are given) -> train -> fit samplers. Each stage validates its input and says what to fix.
With backed=True the matrix stays in its .h5ad file: every stage reads it in row chunks
(biovae.io.backed), and training streams preprocessed batches from windows of shuffled chunks
(engine.data.ChunkedRows), so memory follows the chunk size, not the number of cells.
"""

from __future__ import annotations

import dataclasses
import tempfile

import anndata as ad
import numpy as np
import pandas as pd

from biovae.engine.data import ChunkedRows
from biovae.engine.vae import VAE
from biovae.expr import calibrate, choose, kinds, samplers
from biovae.expr.model import ExpressionModel
from biovae.expr.preprocess import HURDLES, Preprocessor
from biovae.expr.settings import FitSettings
from biovae.io.backed import BackedExpression, open_backed
from biovae.io.expression import as_matrix, check_values, get_batches, get_labels

DENSE_VALUES = 2 << 20  # values per block when a backed pass densifies rows (16 MiB as float64)


def read_labels(data, labels, cells) -> np.ndarray | None:
    """Labels (n,) str from an obs column name or an array; None without labels."""
    if labels is None:
        return None
    if isinstance(data, BackedExpression):
        frame = ad.AnnData(obs=data.obs)
    else:
        frame = data if isinstance(data, ad.AnnData) else ad.AnnData(obs=pd.DataFrame(index=list(cells)))
    return get_labels(frame, labels).astype(str)


def fit(data, labels=None, *, settings: FitSettings | None = None, checkpoint_dir: str | None = None,
        resume: bool = False, **changes) -> ExpressionModel:
    """Fit a VAE (a conditional VAE when `labels` is given) to expression data.

    data: AnnData (X, a layer, or `.raw` with layer="raw"), numpy/scipy matrix or DataFrame,
      cells x genes, non-negative. labels: an obs column name or one label per cell.
    settings: a FitSettings (its defaults when None); `changes` (any of its field names, e.g.
      likelihood="nb", epochs=50) apply on top. checkpoint_dir / resume: where training
      checkpoints go, and whether to continue from one. The fields:
    input_kind: None/"auto" (detect, see biovae.expr.kinds), "counts", "full_length" or
      "log_normalised": sets the "auto" transform and the output's support; scaled data (any
      negative value) are refused, naming `.raw` or a counts layer of the AnnData if it has one.
    batch_key: an obs column naming each cell's batch (as scvi-tools' batch_key): the encoder and
      decoder see it, so the latent is corrected for it and cells can be generated per batch.
      A missing column or an empty value is an error.
    likelihood: "auto" (default): "hurdle" and "hurdle_cell" are each trained for a few epochs
      (biovae.expr.choose.PROBE_EPOCHS) and the one with the lower loss on the validation part of
      the training cells is trained on to its stopping point (biovae.expr.choose; model.choice
      holds both candidates' validation loss and forest AUC; a plain fit's time plus the probe;
      "hurdle" alone with too few validation cells or backed data). "hurdle_cell": exact zeros
      + a Gaussian whose location, zero probability and scale are all decoded per cell and gene
      (see engine.likelihoods); "hurdle": the same with one learned scale per gene;
      "normal" (Gaussian, learned per-gene scale),
      "gaussian" (unit variance, MSE), "bernoulli", or for raw counts "nb", "zinb", "poisson".
      Chosen on pbmc68k_reduced by RF-AUC (lower is better) on an inner 80/20 split of the
      training cells, 3 fits x 3 generations each: "hurdle_cell" 0.64, "hurdle" 0.68; on the
      held-out 20% then 0.68 against 0.72. "nb" and "zinb" on the counts recovered from the
      log-normalised values scored 0.82-0.85 and 0.89-0.91 (one fit, held-out 20%).
      Larger networks (hidden 512-256: 0.81), latent 32 (0.77), no dropout (0.79) or longer
      training (patience 60: 0.74) were worse with "hurdle" on the inner split.
    backed: read data (an .h5ad path, or an AnnData opened with backed="r") in row chunks and
      never hold the dense matrix: each epoch reads the file once; the same model quality as in
      memory, with batches shuffled within windows of chunks rather than over all cells.
    condition_every_layer: feed the label to every decoder layer, not only its input (default;
      see biovae.engine.config.ModelConfig): on pbmc68k_reduced a classifier of the real cells
      calls 0.744 of the generated cells their requested type instead of 0.666 (3 splits), at
      the same realism (RF-AUC 0.702 vs 0.709; benchmarks/expr_realism.py).
    marginal_start: for "hurdle" and "hurdle_cell", start the decoder's output biases at each
      gene's non-zero mean, zero fraction and spread (engine.hurdle explains why): on
      pbmc68k_reduced (6 splits) held-out RF-AUC 0.614 instead of 0.704 for the CVAE, 0.643
      instead of 0.660 for the VAE; MMD^2 on 10 PCs rises (CVAE 0.0073 from 0.0044). No
      effect on other likelihoods; a resumed fit takes its weights from the checkpoint.
    calibrate: for "hurdle" and "hurdle_cell" (in memory, not backed), map each gene's generated
      non-zero values onto the training cells' quantiles per label, and full-length cells onto
      the training totals (biovae.expr.calibrate). Development sets, 3 splits each, "hurdle":
      held-out RF-AUC pbmc68k_counts 0.578 -> 0.565, pbmc68k_reduced 0.591 -> 0.577,
      pbmc68k_cpm 0.620 -> 0.588; library-size KS 0.143 -> 0.090, 0.144 -> 0.107 and 0.638 ->
      0.308 (benchmarks/expr_calibrate_dev.py, docs/generation.md). With "hurdle_cell" the
      RF-AUC changed little (0.601 -> 0.609, 0.607 -> 0.606, 0.638 -> 0.643).
    The remaining options are the engine's (see biovae.engine.config); epochs is a maximum,
    early stopping on the validation loss ends sooner. `devices`, `strategy`, `num_nodes` and
    `precision` go to the trainer (e.g. devices=2, strategy="ddp": data-parallel processes).
    """
    s = (settings or FitSettings()).changed(**changes)
    labels = s.labels if labels is None else labels
    if s.likelihood != "auto":
        return _fit_one(data, labels, s, checkpoint_dir, resume)
    if s.backed:  # no second pass over a file read in chunks: the first candidate, no choice
        kind = s.input_kind if s.input_kind not in (None, "auto") else "counts"
        model = _fit_one(data, labels, s.changed(likelihood=choose.CANDIDATES[kind][0][0]), checkpoint_dir, resume)
        model.choice = {"chosen": model.pre.likelihood, "candidates": [], "note": "backed data: no choice"}
        return model
    x, genes, cells = as_matrix(data, s.layer)
    check_values(x, None, "the expression data", genes=genes, cells=cells, allow_negative=True)
    kind = _kind(s.input_kind, [x], data, s.layer, "the expression data")

    # each candidate's probe is checkpointed, so that the winner's fit goes on from it; without a
    # checkpoint_dir of the caller's, in a temporary folder saved at the pause and the end only
    with tempfile.TemporaryDirectory(prefix="biovae-choice-") as scratch:
        folder, every = (checkpoint_dir, 1) if checkpoint_dir is not None else (scratch, s.epochs)

        def fit_one(likelihood, transform, stop_after=None, finish=True):
            where = f"{folder}/{likelihood}-{transform}"
            # a probe (finish=False) starts afresh unless the caller resumes and is only trained; a
            # finishing call goes on from its probe (the winner to its stopping point, the others
            # by no further epoch) and then fits the samplers and the calibration
            return _fit_one(data, labels, s.changed(likelihood=likelihood, transform=transform), where,
                            resume or finish, stop_after=stop_after, checkpoint_every=every, finish=finish)

        lab = read_labels(data, labels, cells)
        model, record = choose.choose(fit_one, kind, x, lab, s.validation_split, s.seed)
    if checkpoint_dir is None:  # the saved settings name no temporary folder
        model.vae.train_config = dataclasses.replace(model.vae.train_config, checkpoint_dir=None, checkpoint_every=1)
    model.choice = record
    return model


def _fit_one(data, labels, s: FitSettings, checkpoint_dir, resume, stop_after=None,
             checkpoint_every=1, finish=True) -> ExpressionModel:
    """One fit with the likelihood and transform of `s` (see fit); stop_after: train that many
    epochs only, a pause checkpointed in checkpoint_dir (engine.config.TrainConfig); finish=False:
    train only, without the samplers and the calibration (a probe that may be trained on)."""
    layer, backed, input_kind, batch_key = s.layer, s.backed, s.input_kind, s.batch_key
    likelihood, transform, seed = s.likelihood, s.transform, s.seed
    source = open_backed(data, layer) if backed else None
    try:
        if backed:
            y, genes, lab, pre, raw_library, sizes, detected = _backed_input(source, labels, likelihood, transform,
                                                                             input_kind, data)
        else:
            y, genes, lab, pre, raw_library, sizes, detected = _memory_input(data, labels, layer, likelihood,
                                                                             transform, input_kind)
        known = sorted(set(lab)) if lab is not None else None
        batch = get_batches(source if backed else data, batch_key)
        batches = sorted(set(batch)) if batch is not None else None
        spec = {**({"label": known} if known else {}), **({"batch": batches} if batches else {})}
        vae = VAE(len(genes), likelihood=likelihood, latent_dim=s.latent_dim, hidden=s.hidden, dropout=s.dropout,
                  norm=s.norm, conditions=spec or None, beta=s.beta, seed=seed,
                  condition_every_layer=s.condition_every_layer)
        cond = {**({"label": lab} if lab is not None else {}), **({"batch": batch} if batch is not None else {})} or None
        if s.marginal_start:
            vae.start_at_marginals(y)
        vae.fit(y, cond, epochs=s.epochs, batch_size=s.batch_size, lr=s.lr, validation_split=s.validation_split,
                patience=s.patience, warmup_fraction=s.warmup_fraction, seed=seed, device=s.device,
                progress=s.progress, checkpoint_dir=checkpoint_dir, resume=resume, devices=s.devices,
                strategy=s.strategy, num_nodes=s.num_nodes, precision=s.precision, stop_after=stop_after,
                checkpoint_every=checkpoint_every)
        if finish:
            samplers.fit(vae, y, raw_library, lab, known, seed, sizes, detected, cond)
    finally:
        if source is not None and source is not data:
            source.close()
    label_key = labels if isinstance(labels, str) else ("label" if labels is not None else None)
    model = ExpressionModel(vae, pre, [str(g) for g in genes], label_key, known, batch_key, batches)
    model.label_style = label_style(data, labels, known)
    if finish and s.calibrate and likelihood in HURDLES and isinstance(y, np.ndarray):  # backed: not calibrated
        calibrate.fit(model, y, lab, raw_library, seed)
    return model


def label_style(data, key, known) -> dict | None:
    """The label column's categories (in the data's order) and scanpy colours
    (uns['<key>_colors'], one per category) when the data have them, for generated cells."""
    if not isinstance(key, str) or not isinstance(data, ad.AnnData) or key not in data.obs:
        return None
    column = data.obs[key]
    cats = ([str(c) for c in column.cat.categories] if isinstance(column.dtype, pd.CategoricalDtype)
            else list(known))
    if not set(known) <= set(cats):
        cats = list(known)
    colors = data.uns.get(f"{key}_colors")
    colors = [str(c) for c in colors] if colors is not None and len(colors) == len(cats) else None
    return {"categories": cats, "colors": colors}


def _kind(given, blocks, data, layer, source) -> str:
    """The input kind to model (detected unless given); refuses scaled data."""
    others = [a for a in kinds.unscaled_layers(data) if a != layer] if isinstance(data, ad.AnnData) else []
    return kinds.resolve(given, kinds.detect(blocks), source, others)


def _memory_input(data, labels, layer, likelihood, transform, input_kind=None):
    """The whole matrix in memory: (model input, genes, labels, preprocessor, raw library
    sizes, lattice size factors or None, detected genes per cell or None)."""
    x, genes, cells = as_matrix(data, layer)
    check_values(x, None, "the expression data", genes=genes, cells=cells, allow_negative=True)
    kind = _kind(input_kind, [x], data, layer, "the expression data")
    check_values(x, likelihood, "the expression data", genes=genes, cells=cells)
    lab = read_labels(data, labels, cells)
    pre = Preprocessor(likelihood, transform, kind=kind).fit(x)
    y = pre.transform_data(x)
    raw_library = np.asarray(x.sum(axis=1)).ravel()
    sizes = pre.fitted_sizes
    detected = np.asarray((x > 0).sum(axis=1)).ravel() if sizes is not None else None
    return y, genes, lab, pre, raw_library, sizes, detected


def _backed_input(src: BackedExpression, labels, likelihood, transform, input_kind=None, data=None):
    """As _memory_input, from row chunks of an .h5ad file; the model input is a ChunkedRows."""
    lab = read_labels(src, labels, src.cells)
    step = max(1, min(src.chunk_rows, DENSE_VALUES // src.n_vars))  # rows densified at a time
    kind = _kind(input_kind, (x for _, x in src.chunks(step)), data, None, str(src.path))
    library, detected = [], []
    for a, x in src.chunks(step):
        check_values(x, likelihood, str(src.path), genes=src.genes, cells=src.cells[a:a + x.shape[0]])
        library.append(np.asarray(x.sum(axis=1)).ravel())
        detected.append(np.asarray((x > 0).sum(axis=1)).ravel())

    def blocks():
        return (x for _, x in src.chunks(step))

    pre = Preprocessor(likelihood, transform, kind=kind).fit_chunks(blocks)
    sizes = pre.fitted_sizes
    y = ChunkedRows(src.rows, src.shape, src.chunk_rows, transform=pre.transform_data)
    return (y, src.genes, lab, pre, np.concatenate(library), sizes,
            np.concatenate(detected) if sizes is not None else None)
