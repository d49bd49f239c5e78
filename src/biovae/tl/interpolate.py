"""Paths through a fitted model's latent space, decoded into profiles.

    path = interpolate(model, "CD14+ Monocyte", "CD19+ B", steps=10, data=adata, label_key="bulk_labels")
    path.obs["position"]      # 0 = start, 1 = end
    path.X                    # decoded profiles, cells x genes, on the input's scale

An endpoint is one cell, a set of cells (their latent centroid) or a label (the centroid of that
label's cells in `data`, or, for a model conditioned on labels, of the training cells the model
stored). Expression models (biovae.expr) give AnnData over their genes; a plain engine VAE (e.g.
an image model over flattened pixels) takes endpoints as rows of its own input.
"""

from __future__ import annotations

from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd

from biovae.engine.vae import VAE
from biovae.errors import BiovaeError, require
from biovae.io.expression import get_labels

PATHS = ("linear", "slerp")
SPACES = ("latent", "data")


# -- the model, whatever wraps it --------------------------------------------------------------
def model_parts(model):
    """(engine VAE, ExpressionModel or None) of a fitted model; a clear error for anything else."""
    from biovae.expr.model import ExpressionModel

    if isinstance(model, ExpressionModel):
        return model.vae, model
    if isinstance(model, VAE):
        return model, None
    if isinstance(getattr(model, "vae", None), VAE):  # other workflows' wrappers (e.g. image models)
        return model.vae, None
    raise BiovaeError(f"expected a fitted biovae model, got {type(model).__name__}",
                      "pass what biovae.expr.fit / VAE.fit returned, or a loaded model folder")


def load_model(folder):
    """Read a model folder: an ExpressionModel for expression models, else the engine VAE."""
    vae = VAE.load(folder)
    if vae.metadata.get("kind") == "expression":
        from biovae.expr.model import ExpressionModel

        return ExpressionModel.load(folder)
    return vae


def model_kind(model) -> str:
    """'expression', the metadata kind of an engine model (e.g. 'images'), or 'engine'."""
    vae, expr = model_parts(model)
    return "expression" if expr is not None else str(vae.metadata.get("kind") or "engine")


def expression_input(expr, data, layer=None, labels=None, source="the data"):
    """Model-scale matrix (n, genes) float32 of `data` and its condition dict (None when the model
    is unconditional; labels: obs column or array, default the model's label column)."""
    x = expr.model_input(data, layer, source)
    if not expr.conditional:
        return x, None
    key = labels if labels is not None else expr.label_key
    require(isinstance(data, ad.AnnData) and key is not None,
            "this model is conditioned on labels, so the data needs a label per cell",
            "give AnnData with the model's label column, or labels=")
    return x, {"label": get_labels(data, key)}


# -- endpoints -----------------------------------------------------------------------------------
@dataclass
class Endpoint:
    """A resolved endpoint: latent point (latent_dim,), its model-scale mean profile (features,)
    when built from data, the condition label to decode it with, and a readable description."""

    latent: np.ndarray
    profile: np.ndarray | None
    label: str | None
    what: str
    key: tuple


def _majority(labels) -> str | None:
    if labels is None:
        return None
    values, counts = np.unique(np.asarray(labels, dtype=str), return_counts=True)
    return str(values[np.argmax(counts)])


def _from_rows(vae, x, cond, what, key) -> Endpoint:
    mean, _ = vae.encode(x, cond)
    label = None if cond is None else _majority(cond["label"])
    return Endpoint(mean.mean(0), np.asarray(x, dtype=np.float64).mean(0), label, what, key)


def _cells(data, spec, which) -> np.ndarray:
    """Row indices in `data` named by `spec` (cell names, or a boolean mask over the cells)."""
    arr = np.asarray(spec)
    if arr.dtype == bool:
        require(arr.shape == (data.n_obs,), f"the {which} mask has {arr.size} entries for {data.n_obs} cells")
        idx = np.flatnonzero(arr)
    else:
        names = pd.Index(data.obs_names)
        wanted = [str(s) for s in np.atleast_1d(arr)]
        missing = [s for s in wanted if s not in names]
        if missing:
            raise BiovaeError(f"{which} cell {missing[0]!r} is not in the data ({len(missing)} missing)",
                              "give cell names of the data (obs_names), or a label")
        idx = names.get_indexer(wanted)
    require(idx.size > 0, f"the {which} selects no cells", "select at least one cell")
    return idx


def resolve(model, spec, which="start", *, data=None, label_key=None, layer=None) -> Endpoint:
    """Turn one endpoint specification into an Endpoint (see interpolate)."""
    vae, expr = model_parts(model)
    if expr is None:
        rows = np.asarray(spec, dtype=np.float32)
        rows = rows.reshape(1, -1) if rows.ndim == 1 else rows.reshape(len(rows), -1)
        require(rows.shape[1] == vae.n_features and rows.shape[0] >= 1,
                f"the {which} must be rows of the model's input ({vae.n_features} values each), "
                f"got shape {np.shape(spec)}", "give one sample or an array of samples")
        return _from_rows(vae, rows, None, f"{len(rows)} sample(s)", ("rows", rows.tobytes()))

    key = label_key if label_key is not None else expr.label_key
    if isinstance(spec, ad.AnnData):
        x, cond = expression_input(expr, spec, layer, None, f"the {which} cells")
        return _from_rows(vae, x, cond, f"{spec.n_obs} cell(s)", ("cells", tuple(spec.obs_names)))

    if isinstance(spec, (str, np.str_)):
        spec = str(spec)
        if data is not None and key is not None and key in data.obs:
            labels = get_labels(data, key)
            if spec in set(labels):
                return _rows_of(expr, data, np.flatnonzero(labels == spec), layer, f"label {spec!r}", ("label", spec))
        if expr.conditional and spec in (expr.labels or []):
            i = expr.labels.index(spec)
            stored = expr.samplers.posterior_means(i)
            return Endpoint(stored.mean(0), None, spec, f"label {spec!r} (training cells)", ("label", spec))
        if data is not None and spec in set(data.obs_names):
            return _rows_of(expr, data, _cells(data, [spec], which), layer, f"cell {spec!r}", ("cells", (spec,)))
        known = _known_labels(expr, data, key)
        raise BiovaeError(f"unknown {which} {spec!r}: not a label{'' if data is None else ' or cell'} "
                          f"{'of the model' if data is None else 'in the data'}",
                          f"use one of: {', '.join(known[:20])}" if known else
                          "give data with a label column (label_key) to interpolate between labels")

    require(data is not None, f"a set of cells as {which} needs the data they belong to", "pass data=")
    idx = _cells(data, spec, which)
    return _rows_of(expr, data, idx, layer, f"{len(idx)} cell(s)", ("cells", tuple(data.obs_names[idx])))


def _rows_of(expr, data, idx, layer, what, ident) -> Endpoint:
    sub = data[np.sort(idx)]
    x, cond = expression_input(expr, sub, layer, None, f"the cells of {what}")
    return _from_rows(expr.vae, x, cond, what, ident)


def _known_labels(expr, data, key) -> list[str]:
    if data is not None and key is not None and key in data.obs:
        return sorted(set(get_labels(data, key)))
    return list(expr.labels or [])


# -- paths ---------------------------------------------------------------------------------------
def path_points(a: np.ndarray, b: np.ndarray, positions: np.ndarray, path: str = "linear") -> np.ndarray:
    """Points (len(positions), d) between vectors a and b (d,) at positions in [0, 1].

    linear: (1 - t) a + t b. slerp: sin((1 - t) w) / sin(w) a + sin(t w) / sin(w) b, w the angle
    between a and b (the usual spherical path for Gaussian latents, which avoids the low-norm
    middle of a straight line); linear where a and b are (anti)parallel or one is zero.
    """
    require(path in PATHS, f"unknown path {path!r}", f"choose one of {', '.join(PATHS)}")
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    t = np.asarray(positions, np.float64)[:, None]
    if path == "slerp":
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        if na > 1e-12 and nb > 1e-12:
            cos = np.clip(a @ b / (na * nb), -1.0, 1.0)
            omega = np.arccos(cos)
            if 1e-6 < omega < np.pi - 1e-6:
                s = np.sin(omega)
                return np.sin((1 - t) * omega) / s * a + np.sin(t * omega) / s * b
    return (1 - t) * a + t * b


def interpolate(model, start, end, steps: int = 10, *, data: ad.AnnData | None = None,
                label_key: str | None = None, layer: str | None = None, space: str = "latent",
                path: str = "linear", positions=None) -> ad.AnnData:
    """Decoded profiles along a path from `start` to `end`.

    start, end: for an expression model, a label (of `label_key` in `data`, else one the
      conditional model was fitted on), a cell name of `data`, a list of cell names or a boolean
      mask over `data`'s cells (their centroid), or an AnnData of cells. For a plain engine VAE,
      one sample (n_features,) or several (n, n_features) in the model's input space.
    steps: points from start to end inclusive (>= 2), or explicit `positions` in [0, 1].
    space: "latent" decodes the path between the endpoints' latent centroids; "data" is the
      straight line between their mean model-scale profiles (a baseline; needs cells).
    path: "linear" or "slerp" (spherical, for the latent space).
    A conditional model decodes each point under both endpoints' labels and mixes the two
    profiles with weights (1 - t, t).
    Returns AnnData (points x features): X on the input's scale (expression models; values per
    target_sum counts for library-normalised inputs), layers['model'] on the model's scale,
    obs 'position' in [0, 1] and 'step', obsm['X_biovae'] the latent points (latent space).
    """
    vae, expr = model_parts(model)
    require(space in SPACES, f"unknown interpolation space {space!r}", f"choose one of {', '.join(SPACES)}")
    if positions is None:
        require(int(steps) >= 2, f"steps must be at least 2 (start and end), got {steps}")
        positions = np.linspace(0.0, 1.0, int(steps))
    positions = np.asarray(positions, np.float64).ravel()
    require(positions.size >= 1 and np.all((positions >= 0) & (positions <= 1)),
            "path positions must lie in [0, 1]", "0 is the start, 1 the end")
    a = resolve(model, start, "start", data=data, label_key=label_key, layer=layer)
    b = resolve(model, end, "end", data=data, label_key=label_key, layer=layer)
    if a.key == b.key or np.allclose(a.latent, b.latent, atol=1e-7):
        raise BiovaeError(f"start and end are the same ({a.what})", "give two different cells, cell sets or labels")

    t = positions[:, None]
    z = None
    if space == "data":
        require(a.profile is not None and b.profile is not None,
                "space='data' needs the endpoints' cells, not only a stored label", "pass data= with those cells")
        y = (1 - t) * a.profile + t * b.profile
    else:
        z = path_points(a.latent, b.latent, positions, path).astype(np.float32)
        if a.label is None and b.label is None:
            y = vae.decode(z)
        else:
            ya, yb = vae.decode(z, {"label": a.label}), vae.decode(z, {"label": b.label})
            y = ya if a.label == b.label else (1 - t) * ya + t * yb
    y = np.asarray(y, dtype=np.float32)

    obs = pd.DataFrame({"position": positions, "step": np.arange(len(positions))},
                       index=[f"path_{i}" for i in range(len(positions))])
    var = pd.DataFrame(index=expr.genes if expr is not None else [f"feature_{j}" for j in range(y.shape[1])])
    out = ad.AnnData(X=expr.pre.inverse(y) if expr is not None else y.copy(), obs=obs, var=var)
    out.layers["model"] = y
    if z is not None:
        out.obsm["X_biovae"] = z
    meta = {"start": a.what, "end": b.what, "space": space, "path": path if space == "latent" else "linear",
            "start_label": a.label, "end_label": b.label}
    if "shape" in vae.metadata:
        meta["shape"] = list(vae.metadata["shape"])
    out.uns["biovae_interpolation"] = {k: v for k, v in meta.items() if v is not None}
    return out
