"""Latent traversals: decode points that move along one latent dimension at a time.

For expression models each panel is a heatmap of the genes that change most along that
dimension (rows) against the latent value (columns); for image models (metadata kind "images",
shape [H, W]) the grid shows the decoded images, one row per dimension.
"""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from biovae.errors import BiovaeError, require
from biovae.pl.augmented import save_figure
from biovae.tl.interpolate import model_parts


def _condition(vae, expr, label):
    if not vae.config.conditions:
        require(label is None, "this model is not conditional, so it takes no label")
        return None
    if expr is not None:
        label = label if label is not None else expr.labels[0]
        if str(label) not in expr.labels:
            raise BiovaeError(f"label {label!r} was not seen when the model was fitted",
                              f"use one of: {', '.join(expr.labels)}")
        return {"label": str(label)}
    require(isinstance(label, dict), "this model is conditional: pass label={covariate: label}")
    return label


def traversal_values(model, dims=None, span: float = 3.0, steps: int = 7, *, base=None, label=None):
    """Decoded outputs along each latent dimension, the others held at `base`.

    dims: latent dimensions (default: all, at most 10). Each moves over base[d] + linspace(-span,
    span, steps), in prior standard deviations. base: (latent_dim,) point, default 0 (the prior
    mean). label: the condition of a conditional model (default its first label).
    Returns (values (len(dims), steps, n_features) on the input's scale for expression models and
    the model's scale otherwise, offsets (steps,), dims list).
    """
    vae, expr = model_parts(model)
    d = vae.latent_dim
    dims = list(range(min(d, 10))) if dims is None else [int(i) for i in np.atleast_1d(dims)]
    require(len(dims) >= 1 and all(0 <= i < d for i in dims),
            f"latent dimensions must lie in 0..{d - 1}, got {dims}")
    require(span > 0 and int(steps) >= 2, f"need span > 0 and steps >= 2, got span={span}, steps={steps}")
    base = np.zeros(d, np.float32) if base is None else np.asarray(base, np.float32).ravel()
    require(base.shape == (d,), f"base must have {d} values, got {base.size}")
    offsets = np.linspace(-span, span, int(steps))
    z = np.repeat(base[None], len(dims) * len(offsets), axis=0)
    for i, dim in enumerate(dims):
        z[i * len(offsets):(i + 1) * len(offsets), dim] += offsets
    y = vae.decode(z, _condition(vae, expr, label))
    if expr is not None:
        y = expr.pre.inverse(y)
    return y.reshape(len(dims), len(offsets), -1), offsets, dims


def _log_display(expr, values):
    logged = expr.pre.counts or expr.pre.transform in ("log1p", "normalize_log1p")
    return (np.log1p(values), "log1p expression") if logged else (values, "expression")


def traversal(model, dims=None, span: float = 3.0, steps: int = 7, *, base=None, label=None,
              n_genes: int = 12, save=None) -> Figure:
    """Draw a latent traversal and return the Figure (saved to `save`, .png/.pdf/.svg, atomically).

    Expression models: one heatmap per dimension, the `n_genes` genes with the largest change
    (max - min of the decoded value) along it, on a log1p scale for linear-scale data. Image models
    (metadata {"kind": "images", "shape": [H, W]}): a grid of decoded images, rows = dimensions,
    columns = latent values, one grey scale for the whole grid. See traversal_values for the rest.
    """
    vae, expr = model_parts(model)
    values, offsets, dims = traversal_values(model, dims, span, steps, base=base, label=label)
    meta = dict(vae.metadata or {})
    image_shape = getattr(vae.config, "image_shape", None)  # conv models know their shape before saving
    if image_shape and "shape" not in meta:
        meta["shape"] = list(image_shape[:2])
    if expr is None and (meta.get("kind") == "images" or image_shape):
        fig = _image_grid(values, offsets, dims, meta)
    elif expr is not None:
        fig = _heatmaps(expr, values, offsets, dims, n_genes)
    else:
        raise BiovaeError(f"cannot draw a traversal for a {meta.get('kind', 'plain engine')!r} model",
                          "traversals are drawn for expression and image models")
    if save is not None:
        save_figure(fig, save)
    return fig


def _heatmaps(expr, values, offsets, dims, n_genes) -> Figure:
    require(n_genes >= 1, f"n_genes must be at least 1, got {n_genes}")
    shown, scale_name = _log_display(expr, values)
    n_genes = min(n_genes, shown.shape[2])
    cols = min(len(dims), 4)
    rows = -(-len(dims) // cols)
    fig = Figure(figsize=(3.2 * cols, 0.25 * n_genes * rows + 1.4 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, dim, block in zip(axes, dims, shown):
        change = block.max(0) - block.min(0)
        top = np.argsort(-change, kind="stable")[:n_genes]
        im = ax.imshow(block[:, top].T, aspect="auto", cmap="viridis", interpolation="nearest")
        ax.set_yticks(range(len(top)), [expr.genes[j] for j in top], fontsize=7)
        ticks = sorted({0, len(offsets) // 2, len(offsets) - 1})
        ax.set_xticks(ticks, [f"{offsets[t]:+.1f}" for t in ticks], fontsize=7)
        ax.set_xlabel(f"z{dim}", fontsize=8)
        fig.colorbar(im, ax=ax, shrink=0.8).ax.tick_params(labelsize=6)
    for ax in axes[len(dims):]:
        ax.set_visible(False)
    fig.suptitle(f"latent traversal: top changing genes per dimension ({scale_name})", fontsize=9)
    return fig


def _image_grid(values, offsets, dims, meta) -> Figure:
    shape = tuple(int(s) for s in meta.get("shape", ()))
    require(len(shape) == 2 and shape[0] * shape[1] == values.shape[2],
            f"the model's image shape {list(shape)} does not match its {values.shape[2]} outputs")
    lo, hi = float(values.min()), float(values.max())
    fig = Figure(figsize=(1.1 * len(offsets) + 0.6, 1.1 * len(dims) + 0.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(dims), len(offsets), squeeze=False)
    for r, dim in enumerate(dims):
        for c, off in enumerate(offsets):
            ax = axes[r, c]
            ax.imshow(values[r, c].reshape(shape), cmap="gray", vmin=lo, vmax=hi)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(f"z{dim}", fontsize=8)
            if r == len(dims) - 1:
                ax.set_xlabel(f"{off:+.1f}", fontsize=7)
    fig.suptitle("latent traversal (decoded images)", fontsize=9)
    return fig
