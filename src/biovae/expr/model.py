"""ExpressionModel: a fitted (conditional) VAE over genes, facing AnnData.

It owns the engine's VAE, the preprocessing fitted on the training cells, the gene names, the
label column, and what the samplers need: per-label Gaussian mixtures of the training latents
("mixture") and a sample of encoded training cells ("posterior"). All of it is saved in the
model folder (safetensors + JSON) and restored by `load`.
"""

from __future__ import annotations

import anndata as ad
import numpy as np

from biovae.engine.data import ChunkedRows
from biovae.engine.vae import VAE
from biovae.errors import BiovaeError
from biovae.expr import samplers
from biovae.expr.preprocess import Preprocessor
from biovae.io.backed import open_backed
from biovae.io.expression import as_matrix, check_values, gene_order

KIND = "expression"
LATENT_KEY = "X_biovae"


class ExpressionModel:
    """Use `biovae.expr.fit(...)` to make one, `ExpressionModel.load(folder)` to read one."""

    def __init__(self, vae: VAE, pre: Preprocessor, genes: list[str], label_key: str | None,
                 labels: list[str] | None):
        self.vae, self.pre, self.genes = vae, pre, list(genes)
        self.label_key, self.labels = label_key, labels

    @property
    def conditional(self) -> bool:
        return bool(self.vae.config.conditions)

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

    def _conditions(self, labels) -> dict | None:
        return {"label": labels} if self.conditional else None

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
        cond = None
        if self.conditional:
            from biovae.io.expression import get_labels

            cond = self._conditions(get_labels(adata, labels if labels is not None else self.label_key))
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

    def generate(self, n: int = 100, labels=None, method: str = "mixture", seed: int = 0) -> ad.AnnData:
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
        obs: 'label' and 'generated' (True).
        """
        if method not in samplers.METHODS:
            raise BiovaeError(f"unknown generation method {method!r}", f"choose one of {', '.join(samplers.METHODS)}")
        rng = np.random.default_rng(seed)
        blocks, names = [], []
        for lab, k in self._requests(n, labels):
            z = samplers.draw_latent(self, method, lab, k, rng)
            cond = self._conditions([lab] * k)
            lib = samplers.draw_library(self, lab, k, rng)
            y = self.vae.decode_sample(z, cond, seed=int(rng.integers(2**31)))
            size = samplers.draw_size(self, lab, y, rng)
            blocks.append(self.pre.inverse(y, lib, size))
            names += [lab if lab is not None else "all"] * k
        x = np.concatenate(blocks)
        obs = {"label": np.asarray(names, dtype=object), "generated": np.ones(len(names), dtype=bool)}
        out = ad.AnnData(X=x, obs=obs)
        out.obs_names = [f"generated_{i}" for i in range(out.n_obs)]
        out.var_names = self.genes
        out.uns["biovae"] = {"method": method, "seed": seed, "likelihood": self.pre.likelihood}
        return out

    # -- files -----------------------------------------------------------------------------------
    def save(self, folder, summary: dict | None = None, extras: dict[str, str] | None = None,
             force: bool = False) -> None:
        """Write the model folder (engine files + expression metadata), atomically; a folder
        biovae did not write is replaced only with `force`."""
        self.vae.metadata = {"kind": KIND, "genes": self.genes, "label_key": self.label_key,
                             "labels": self.labels, "preprocess": self.pre.to_json()}
        self.vae.state.update(self.pre.arrays())
        self.vae.save(folder, summary=summary, extras=extras, force=force)

    @classmethod
    def load(cls, folder) -> "ExpressionModel":
        vae = VAE.load_kind(folder, KIND, "biovae fit")
        meta = vae.metadata
        pre = Preprocessor.restore(meta["preprocess"], vae.state)
        return cls(vae, pre, meta["genes"], meta.get("label_key"), meta.get("labels"))
