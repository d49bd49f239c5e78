"""ExpressionModel: a fitted (conditional) VAE over genes, facing AnnData.

It owns the engine's VAE, the preprocessing fitted on the training cells, the gene names, the
label column, and what the samplers need: per-label Gaussian mixtures of the training latents
("mixture") and a sample of encoded training cells ("posterior"). All of it is saved in the
model folder (safetensors + JSON) and restored by `load`.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

from biovae.engine.data import ChunkedRows
from biovae.engine.vae import VAE
from biovae.errors import BiovaeError
from biovae.engine import state
from biovae.expr import calibrate, samplers
from biovae.expr.preprocess import Preprocessor
from biovae.io.backed import open_backed
from biovae.io.expression import as_matrix, check_values, gene_order, get_batches

KIND = "expression"
LATENT_KEY = "X_biovae"
NORMALIZED_KEY = "biovae_normalized"


class ExpressionModel:
    """Use `biovae.expr.fit(...)` to make one, `ExpressionModel.load(folder)` to read one."""

    def __init__(self, vae: VAE, pre: Preprocessor, genes: list[str], label_key: str | None,
                 labels: list[str] | None, batch_key: str | None = None, batches: list[str] | None = None):
        self.vae, self.pre, self.genes = vae, pre, list(genes)
        self.label_key, self.labels = label_key, labels
        self.batch_key, self.batches = batch_key, batches
        self.label_style: dict | None = None  # {"categories", "colors"} of the label column (see fit)
        self.choice: dict | None = None  # likelihood="auto": the candidates' scores (expr.choose)

    @property
    def conditional(self) -> bool:
        return "label" in (self.vae.config.conditions or {})

    # -- data in -------------------------------------------------------------------------------
    def _matrix(self, data, layer=None, source="the data"):
        x, genes, cells = as_matrix(data, layer)
        x = x[:, gene_order(genes, self.genes, source)]
        check_values(x, self.pre.likelihood, source, genes=np.asarray(self.genes), cells=cells)
        return x

    def model_input(self, data, layer=None, source: str = "the data") -> np.ndarray:
        """The cells of `data` (AnnData / DataFrame / matrix over the model's genes, any gene
        order, on the input scale) on the model's scale: (n, genes) float32 in model gene order.
        Missing genes or values the likelihood cannot take raise a BiovaeError naming `source`."""
        return self.pre.transform_data(self._matrix(data, layer, source))

    def chunked_input(self, source, source_name: str = "the data") -> ChunkedRows:
        """The cells of a BackedExpression as model-scale input read in row chunks (for
        biovae.tl and other callers; see _chunked)."""
        return self._chunked(source, source_name)

    def _conditions(self, labels, batches=None) -> dict | None:
        out = {"label": labels} if self.conditional else {}
        if self.batches:
            out["batch"] = batches
        return out or None

    def _batch_of(self, adata) -> np.ndarray | None:
        """The cells' batches from obs[batch_key] (a model fitted with batch_key), else None."""
        if not self.batches:
            return None
        batch = get_batches(adata, self.batch_key)
        unseen = sorted(set(batch) - set(self.batches))
        if unseen:
            raise BiovaeError(f"batch {unseen[0]!r} of column {self.batch_key!r} was not seen when the model was "
                              "fitted", f"use cells of the batches {', '.join(self.batches[:20])}")
        return batch

    def _batch_draws(self, batch, k: int, rng) -> list | None:
        """Batches for k generated cells: the one asked for (checked), or drawn uniformly."""
        if not self.batches:
            if batch is not None:
                raise BiovaeError("this model was fitted without a batch covariate, so it cannot generate per batch",
                                  "fit with --batch-key, or generate without --batch")
            return None
        if batch is None:
            return list(rng.choice(self.batches, size=k))
        if str(batch) not in self.batches:
            raise BiovaeError(f"batch {batch!r} was not seen when the model was fitted",
                              f"use one of: {', '.join(self.batches[:20])}")
        return [str(batch)] * k

    def _chunked(self, source, source_name: str) -> ChunkedRows:
        """The cells of a BackedExpression as model input read in chunks (genes put in model
        order, values checked as each chunk is read)."""
        columns = gene_order(source.genes, self.genes, source_name)
        genes = np.asarray(self.genes)

        def read(a, b):
            rows = source.rows(a, b)[:, columns]
            check_values(rows, self.pre.likelihood, source_name, genes=genes, cells=source.cells[a:b])
            return rows

        return ChunkedRows(read, (source.n_obs, len(self.genes)), source.chunk_rows, self.pre.transform_data, window=1)

    def encode(self, adata: ad.AnnData, labels=None, layer=None) -> np.ndarray:
        """Latent means of the cells, (n, latent_dim); also written to adata.obsm['X_biovae'].
        labels: an obs column name or array (needed by a conditional model; default: the
        model's label column). An AnnData opened with backed="r" is read in row chunks."""
        lab = None
        if self.conditional:
            from biovae.io.expression import get_labels

            lab = get_labels(adata, labels if labels is not None else self.label_key)
        cond = self._conditions(lab, self._batch_of(adata))
        if isinstance(adata, ad.AnnData) and adata.isbacked:
            source = open_backed(adata, layer)
            try:
                mean, _ = self.vae.encode(self._chunked(source, "the data to encode"), cond)
            finally:
                source.close()
        else:
            mean, _ = self.vae.encode(self.pre.transform_data(self._matrix(adata, layer, "the data to encode")), cond)
        adata.obsm[LATENT_KEY] = mean
        return mean

    def denoised(self, adata: ad.AnnData, labels=None, layer=None, library_size: float = 1e4) -> np.ndarray:
        """Denoised, normalised expression (n, genes) float32, like scvi-tools'
        get_normalized_expression: each cell decoded from its latent mean (the likelihood's
        expected value, no sampling). Counts and count-like inputs come out per `library_size`
        counts of the cell (count likelihoods: the decoder's mean at that library; continuous
        ones: expm1 of the decoded log1p-normalised value); full-length values on their own
        linear scale (expm1 of the decoded log1p value); log-normalised inputs on their log
        scale, as given. Also written to adata.layers['biovae_normalized'] when adata has exactly
        the model's genes, in its order."""
        mean = self.encode(adata, labels=labels, layer=layer)
        lab = None
        if self.conditional:
            from biovae.io.expression import get_labels

            lab = get_labels(adata, labels if labels is not None else self.label_key)
        cond = self._conditions(lab, self._batch_of(adata))
        if self.pre.counts:
            out = self.vae.decode(mean, cond, library=np.full(len(mean), library_size))
        else:
            v = self.vae.decode(mean, cond).astype(np.float64) * self.pre.scale + self.pre.center
            if self.pre.transform in ("normalize_log1p", "log1p"):
                v = np.expm1(np.maximum(v, 0.0))
            if self.pre.transform == "normalize_log1p":
                v = v * library_size / self.pre.target_sum
            out = np.maximum(v, 0.0)
        out = np.asarray(out, dtype=np.float32)
        if list(map(str, adata.var_names)) == self.genes:  # a layer must cover the data's own genes
            adata.layers[NORMALIZED_KEY] = out
        return out

    # -- data out ------------------------------------------------------------------------------
    def _requests(self, n: int, labels) -> list[tuple[str | None, int]]:
        if not self.conditional:
            if labels not in (None, {}):
                raise BiovaeError("this model was fitted without labels, so it cannot generate per label",
                                  "fit with --labels, or generate without --label")
            return [(None, n)]
        if labels is None:
            share = np.full(len(self.labels), n // len(self.labels))
            share[: n % len(self.labels)] += 1
            return [(lab, int(k)) for lab, k in zip(self.labels, share) if k > 0]
        if isinstance(labels, str):
            labels = {labels: n}
        for lab in labels:
            if str(lab) not in self.labels:
                raise BiovaeError(f"label {lab!r} was not seen when the model was fitted",
                                  f"use one of: {', '.join(self.labels)}")
        return [(str(lab), int(k)) for lab, k in labels.items() if int(k) > 0]

    def generate(self, n: int = 100, labels=None, method: str = "mixture", seed: int = 0,
                 batch: str | None = None) -> ad.AnnData:
        """New cells as AnnData (cells x the model's genes) on the input's scale.

        labels: None (n shared out evenly over the labels), one label (n of it), or
          {label: count}. method: "mixture" (default: z from a Gaussian mixture fitted to the
          training latents of that label), "prior" (z ~ N(0, I)) or "posterior" (z drawn from the
          posterior of random training cells of that label). On pbmc68k_reduced "mixture" and
          "posterior" score alike and better than "prior" (held-out MMD^2 0.002 vs 0.02; see
          benchmarks/expr_realism.py). Count likelihoods give sampled counts; others give
          expression values sampled from the likelihood and mapped back to the input scale, on
          the data's lattice of log-normalised counts when the training data were such (see
          biovae.expr.preprocess).
        batch: for a model fitted with batch_key, the batch to generate (default: each cell's
          batch drawn uniformly from the training batches); obs[batch_key] records it.
        obs: 'label' and 'generated' (True).
        """
        if method not in samplers.METHODS:
            raise BiovaeError(f"unknown generation method {method!r}", f"choose one of {', '.join(samplers.METHODS)}")
        rng = np.random.default_rng(seed)
        blocks, names, drawn = [], [], []
        for lab, k in self._requests(n, labels):
            z = samplers.draw_latent(self, method, lab, k, rng)
            batches = self._batch_draws(batch, k, rng)
            drawn += batches or []
            cond = self._conditions([lab] * k, batches)
            lib = samplers.draw_library(self, lab, k, rng)
            y = calibrate.apply(self, lab, self.vae.decode_sample(z, cond, seed=int(rng.integers(2**31))))
            size = samplers.draw_size(self, lab, y, rng)
            blocks.append(calibrate.scale_totals(self, lab, self.pre.inverse(y, lib, size)))
            names += [lab if lab is not None else "all"] * k
        x = np.concatenate(blocks)
        obs = {"label": np.asarray(names, dtype=object), "generated": np.ones(len(names), dtype=bool)}
        if self.batches:
            obs[self.batch_key] = np.asarray(drawn, dtype=object)
        style = self.label_style or {}
        if self.label_key and self.conditional:  # the label column under its own name and categories
            obs[self.label_key] = pd.Categorical(names, categories=style.get("categories") or self.labels)
        out = ad.AnnData(X=x, obs=obs)
        out.obs_names = [f"generated_{i}" for i in range(out.n_obs)]
        out.var_names = self.genes
        out.uns["biovae"] = {"method": method, "seed": seed, "likelihood": self.pre.likelihood}
        if style.get("colors") and self.label_key:
            out.uns[f"{self.label_key}_colors"] = list(style["colors"])
        return out

    def decode_draws(self, label: str | None, k: int, rng: np.random.Generator, method: str = "mixture",
                     batches: list | None = None) -> np.ndarray:
        """k cells of `label` drawn on the model's scale (n, genes), before any calibration, as
        generate draws them: latent points by `method`, then a draw of the likelihood; batches
        per cell (default: drawn uniformly when the model has a batch covariate)."""
        z = samplers.draw_latent(self, method, label, k, rng)
        if batches is None and self.batches:
            batches = self._batch_draws(None, k, rng)
        return self.vae.decode_sample(z, self._conditions([label] * k, batches), seed=int(rng.integers(2**31)))

    # -- files -----------------------------------------------------------------------------------
    def save(self, folder, summary: dict | None = None, extras: dict[str, str] | None = None,
             force: bool = False) -> None:
        """Write the model folder (engine files + expression metadata), atomically; a folder
        biovae did not write is replaced only with `force`."""
        self.vae.metadata = {"kind": KIND, "genes": self.genes, "label_key": self.label_key,
                             "labels": self.labels, "preprocess": self.pre.to_json(),
                             "batch_key": self.batch_key, "batches": self.batches, "label_style": self.label_style,
                             "choice": self.choice}
        self.vae.state.update(self.pre.arrays())
        self.vae.save(folder, summary=summary, extras=extras, force=force)

    @property
    def samplers(self) -> samplers.LatentSamplers:
        """The latent samplers fitted on the training cells (one per label; see expr.samplers)."""
        record = state.get(self.vae.state, samplers.LatentSamplers)
        if record is None:
            raise BiovaeError("this model holds no latent samplers", "fit it with biovae.expr.fit or `biovae fit`")
        return record

    @classmethod
    def load(cls, folder) -> "ExpressionModel":
        vae = VAE.load_kind(folder, KIND, "biovae fit")
        samplers.upgrade_state(vae.state)  # files written before the typed records
        meta = vae.metadata
        pre = Preprocessor.restore(meta["preprocess"], vae.state)
        model = cls(vae, pre, meta["genes"], meta.get("label_key"), meta.get("labels"), meta.get("batch_key"),
                   meta.get("batches"))
        model.label_style = meta.get("label_style")
        model.choice = meta.get("choice")
        return model
