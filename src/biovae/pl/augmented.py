"""Real and generated cells in one 2-D embedding (the idea of VAExprs' plot_aug).

Figures are built on matplotlib's object API (no pyplot state, no window): they render with
the Agg canvas whatever backend the session has, and nothing is left open between calls.
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import scipy.sparse as sp
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from biovae.errors import BiovaeError, require
from biovae.io.atomic import atomic_file
from biovae.io.expression import as_matrix, gene_order, get_labels

REAL_COLOUR, GENERATED_COLOUR = "#4c72b0", "#dd8452"
_SAVE_FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}


def augmented(
    real: ad.AnnData, generated: ad.AnnData, method: str = "pca", label_key: str | None = None,
    seed: int = 0, save=None, *, generated_label_key: str | None = None,
    layer: str | None = None, generated_layer: str | None = None, max_cells: int = 5000,
) -> Figure:
    """Scatter real and generated cells in a 2-D embedding; return the matplotlib Figure.

    method: "pca" (PC1/PC2 of a PCA fitted on the real cells, generated cells projected),
        "tsne" or "umap" (fitted on both together, on the first 50 real-fitted PCs).
    Left panel: coloured by source (real / generated). Right panel (with `label_key`): coloured
    by label, real cells as dots and generated as crosses; generated labels come from
    `generated_label_key` (default: label_key if generated has it, else "label").
    layer / generated_layer: which matrix of each to use (see biovae.io.expression.as_matrix).
    At most `max_cells` cells per side are drawn (seeded). save: .png, .pdf or .svg path,
    written atomically.
    """
    method = method.lower()
    require(method in ("pca", "tsne", "umap"), f"unknown embedding method {method!r}",
            "choose 'pca', 'tsne' or 'umap'")
    rng = np.random.default_rng(seed)
    R, genes = dense_matrix(real, layer)
    G, gen_genes = dense_matrix(generated, generated_layer)
    if list(gen_genes) != list(genes):
        G = G[:, gene_order(gen_genes, genes, "the generated cells")]
    keep_r, keep_g = _cap(len(R), max_cells, rng), _cap(len(G), max_cells, rng)
    R, G = R[keep_r], G[keep_g]
    coords, axis_names = embed(R, G, method, seed)
    source = np.r_[np.zeros(len(R), bool), np.ones(len(G), bool)]

    with_labels = label_key is not None
    fig = Figure(figsize=(13.5 if with_labels else 6.2, 5.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2 if with_labels else 1, squeeze=False)[0]
    order = rng.permutation(len(coords))  # interleave, so neither source hides the other
    colours = np.where(source, GENERATED_COLOUR, REAL_COLOUR)
    ax = axes[0]
    ax.scatter(coords[order, 0], coords[order, 1], c=colours[order], s=10, alpha=0.7,
               linewidths=0)
    ax.legend(handles=[_dot(REAL_COLOUR, f"real ({len(R)})"),
                       _dot(GENERATED_COLOUR, f"generated ({len(G)})")],
              loc="best", fontsize=8, frameon=False)
    ax.set_title("by source")
    if with_labels:
        gen_key = generated_label_key or (label_key if label_key in generated.obs else "label")
        labels = np.r_[get_labels(real, label_key)[keep_r], get_labels(generated, gen_key)[keep_g]]
        _by_label(axes[1], coords, labels, source)
    for ax in axes:
        ax.set_xlabel(axis_names[0])
        ax.set_ylabel(axis_names[1])
        ax.tick_params(labelsize=7)
    fig.suptitle(f"Real and generated cells, {method.upper() if method != 'tsne' else 't-SNE'}")
    if save is not None:
        save_figure(fig, save)
    return fig


def embed(R: np.ndarray, G: np.ndarray, method: str = "pca", seed: int = 0):
    """2-D coordinates of the cells of R then G (both cells x genes, same genes).

    Returns (coords of shape (len(R) + len(G), 2), (x-axis name, y-axis name)).
    """
    from sklearn.decomposition import PCA

    n_pcs = max(2, min(50, R.shape[0] - 1, R.shape[1]))
    require(R.shape[0] >= 3 and R.shape[1] >= 2,
            f"an embedding needs at least 3 real cells and 2 genes, got {R.shape[0]} and {R.shape[1]}")
    pca = PCA(n_components=n_pcs, random_state=seed).fit(R)
    Z = pca.transform(np.vstack([R, G]))
    if method == "pca":
        share = 100 * pca.explained_variance_ratio_
        return Z[:, :2], (f"PC1 ({share[0]:.1f}% of real variance)", f"PC2 ({share[1]:.1f}%)")
    n = len(Z)
    if method == "tsne":
        from sklearn.manifold import TSNE

        tsne = TSNE(n_components=2, perplexity=min(30.0, (n - 1) / 3), init="pca",
                    random_state=seed)
        return tsne.fit_transform(Z), ("t-SNE 1", "t-SNE 2")
    import umap

    reducer = umap.UMAP(n_neighbors=min(15, n - 1), random_state=seed, n_jobs=1)
    return reducer.fit_transform(Z), ("UMAP 1", "UMAP 2")


def save_figure(fig: Figure, path, dpi: int = 150) -> None:
    """Save `fig` atomically to `path`; the format (PNG, PDF or SVG) follows the extension. The
    file names biovae as its writer (so a later run may replace it, see biovae.io.outputs)."""
    path = Path(path)
    fmt = _SAVE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise BiovaeError(f"cannot tell the image format of {path}", "end the name in .png or .pdf")
    metadata = {"Software": "biovae"} if fmt == "png" else {"Creator": "biovae"}
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi, metadata=metadata)


def _by_label(ax, coords, labels, source) -> None:
    names = sorted(set(labels))
    palette = _palette(len(names))
    for i, name in enumerate(names):
        for is_gen, marker in ((False, "o"), (True, "x")):
            pick = (labels == name) & (source == is_gen)
            if pick.any():
                ax.scatter(coords[pick, 0], coords[pick, 1], color=palette[i], marker=marker,
                           s=10 if not is_gen else 14, alpha=0.75,
                           linewidths=0 if not is_gen else 0.8)
    handles = [_dot(palette[i], name) for i, name in enumerate(names)]
    handles += [Line2D([], [], ls="", marker="o", color="black", label="real"),
                Line2D([], [], ls="", marker="x", color="black", label="generated")]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8,
              frameon=False)
    ax.set_title("by label")


def _palette(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _dot(colour, label: str) -> Line2D:
    return Line2D([], [], ls="", marker="o", markersize=6, color=colour, label=label)


def dense_matrix(adata: ad.AnnData, layer: str | None):
    """The (layer of the) AnnData as a dense float64 matrix, with its gene names."""
    X, genes, _ = as_matrix(adata, layer)
    return (X.toarray() if sp.issparse(X) else X).astype(np.float64), genes


def _cap(n: int, cap: int, rng) -> np.ndarray:
    return np.arange(n) if n <= cap else np.sort(rng.choice(n, cap, replace=False))
