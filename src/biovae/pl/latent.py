"""UMAP scatter of the latent space, coloured by bin (and by the true genome when known)."""

from __future__ import annotations

import warnings

import numpy as np

from biovae.errors import require
from biovae.pl.augmented import save_figure

MAX_POINTS = 10_000
_GREY = (0.75, 0.75, 0.75, 0.6)
_LEGEND_MAX = 20


def umap_embedding(latent, max_points: int = MAX_POINTS, seed: int = 0,
                   method: str = "umap") -> tuple[np.ndarray, np.ndarray]:
    """Two-dimensional UMAP (method="umap") or PCA ("pca") of a seeded sample of the rows of `latent`.

    latent: array (n, d). Returns (rows, xy): rows int64 (m,) are the sampled row indices in
    increasing order, m = min(n, max_points); xy float32 (m, 2). UMAP runs with
    random_state=seed, PCA initialisation and 200 epochs (deterministic, ~10 s for 10,000
    points on one core); with d <= 2 the coordinates are used as they are, and below 16
    points the first two principal components stand in for UMAP.
    """
    x = np.asarray(latent, dtype=np.float32)
    require(x.ndim == 2 and x.shape[0] >= 1 and x.shape[1] >= 1,
            f"latent must be a non-empty 2-D array, got shape {x.shape}")
    require(max_points >= 1, f"max_points must be at least 1, got {max_points}")
    n, d = x.shape
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, max_points, replace=False)) if n > max_points else np.arange(n)
    sample = x[rows]
    if d <= 2:
        xy = np.zeros((len(rows), 2), dtype=np.float32)
        xy[:, :d] = sample
    elif len(rows) < 16 or method == "pca":
        centred = sample - sample.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        xy = np.zeros((len(rows), 2), dtype=np.float32)
        k = min(2, vt.shape[0])
        xy[:, :k] = centred @ vt[:k].T
    else:
        import umap

        model = umap.UMAP(n_components=2, n_neighbors=min(15, len(rows) - 1), init="pca",
                          n_epochs=200, random_state=seed)
        with warnings.catch_warnings():  # "n_jobs overridden by random_state": seeded on purpose
            warnings.simplefilter("ignore", UserWarning)
            xy = np.asarray(model.fit_transform(sample), dtype=np.float32)
    return rows.astype(np.int64), xy


def plot_latent(latent, bins, truth=None, path=None, *, max_points: int = MAX_POINTS,
                seed: int = 0, title: str | None = None, method: str = "umap"):
    """Scatter a UMAP (or with method="pca", the first two principal components: no numba
    compilation, ~40 s less in a fresh process) of up to `max_points` sequences, coloured by
    bin; a second panel by truth.

    latent: array (n, d) of latent means. bins: n labels (integers with -1 = unbinned, or
    names with `unbinned`). truth: n true genome names, or None for one panel.
    path: where to save the PNG (atomically), or None. Returns the matplotlib Figure (drawn
    on the Agg canvas; pyplot is not used, so no window opens and no global state changes).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from biovae.io.bins import UNBINNED, bin_names

    names = np.asarray(bin_names(bins), dtype=object)
    n = np.asarray(latent).shape[0] if np.ndim(latent) == 2 else -1
    require(len(names) == n, f"{len(names)} bin labels for {n} latent vectors")
    if truth is not None:
        truth = np.asarray([str(t) for t in truth], dtype=object)
        require(len(truth) == n, f"{len(truth)} truth labels for {n} latent vectors")
    require(method in ("umap", "pca"), f"unknown latent plot method {method!r}", "use umap or pca")
    rows, xy = umap_embedding(latent, max_points=max_points, seed=seed, method=method)
    axis = "UMAP" if method == "umap" and xy.shape[0] >= 16 and np.shape(latent)[1] > 2 else "component"

    panels = [("bin", names[rows], UNBINNED)]
    if truth is not None:
        panels.append(("true genome", truth[rows], None))
    fig = Figure(figsize=(6.4 * len(panels), 5.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    for k, (what, labels, grey) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        _scatter(ax, xy, labels, grey)
        ax.set_title(f"coloured by {what}")
        ax.set_xlabel(f"{axis} 1")
        ax.set_ylabel(f"{axis} 2")
        ax.set_xticks([])
        ax.set_yticks([])
    shown = f"{len(rows):,} of {n:,} sequences" if len(rows) < n else f"{n:,} sequences"
    fig.suptitle(f"{title} ({shown})" if title else f"Latent space, {shown}")
    if path is not None:
        save_figure(fig, path, dpi=fig.dpi)
    return fig


def _scatter(ax, xy, labels, grey) -> None:
    """Draw one panel: categories by decreasing size, `grey` (unbinned) first and in grey."""
    from matplotlib import colormaps

    values, counts = np.unique(labels.astype(str), return_counts=True)
    order = [values[i] for i in np.lexsort((values, -counts))]
    palette = colormaps["tab20"].colors if len(order) > 10 else colormaps["tab10"].colors
    size = max(2.0, min(12.0, 3000.0 / max(len(xy), 1)))
    if grey is not None and grey in order:
        order.remove(grey)
        mask = labels == grey
        ax.scatter(xy[mask, 0], xy[mask, 1], s=size, color=_GREY, linewidths=0,
                   label=f"{grey} ({int(mask.sum())})", rasterized=True)
    for j, value in enumerate(order):
        mask = labels == value
        colour = palette[j % len(palette)] if len(order) <= len(palette) else \
            colormaps["gist_ncar"](0.05 + 0.9 * j / max(len(order) - 1, 1))
        ax.scatter(xy[mask, 0], xy[mask, 1], s=size, color=colour, linewidths=0,
                   label=f"{value} ({int(mask.sum())})", rasterized=True)
    if len(order) <= _LEGEND_MAX:
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, markerscale=2,
                  frameon=False)
    else:
        ax.text(0.01, 0.01, f"{len(order)} groups (legend omitted)", transform=ax.transAxes,
                fontsize=8, va="bottom")
