"""Mean expression of the most variable genes per label, real beside generated."""

from __future__ import annotations

import anndata as ad
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from biovae.errors import require
from biovae.evaluate.generation import pearson
from biovae.io.expression import gene_order, get_labels
from biovae.pl.augmented import dense_matrix, save_figure


def heatmap(
    real: ad.AnnData, generated: ad.AnnData, label_key: str | None = None, n_genes: int = 50,
    save=None, *, generated_label_key: str | None = None, layer: str | None = None,
    generated_layer: str | None = None, max_rows: int = 100,
) -> Figure:
    """Two heatmaps on one colour scale: real (left) and generated (right); return the Figure.

    Columns: the `n_genes` genes with the highest variance over the real cells, ordered by the
    row in which their real mean peaks, so marker blocks line up. Rows: with `label_key`, one
    per label present on both sides (mean over the label's cells; the right axis gives the
    Pearson correlation of the label's real and generated mean profiles over all genes);
    without it, up to `max_rows` cells of each side, evenly spaced. Generated labels come from
    `generated_label_key` (default: label_key if generated has it, else "label").
    layer / generated_layer: which matrix of each to use. save: .png/.pdf/.svg, atomic.
    """
    require(n_genes >= 1, f"n_genes must be at least 1, got {n_genes}")
    R, genes = dense_matrix(real, layer)
    G, gen_genes = dense_matrix(generated, generated_layer)
    if list(gen_genes) != list(genes):
        G = G[:, gene_order(gen_genes, genes, "the generated cells")]
    top = np.argsort(-R.var(0), kind="stable")[: min(n_genes, R.shape[1])]

    if label_key is not None:
        gen_key = generated_label_key or (label_key if label_key in generated.obs else "label")
        real_labels, gen_labels = get_labels(real, label_key), get_labels(generated, gen_key)
        rows = [x for x in sorted(set(real_labels)) if x in set(gen_labels)]
        require(rows, f"no label of {label_key!r} has both real and generated cells",
                f"check that generated obs[{gen_key!r}] uses the real label names")
        full_r = np.array([R[real_labels == x].mean(0) for x in rows])
        full_g = np.array([G[gen_labels == x].mean(0) for x in rows])
        A, B = full_r[:, top], full_g[:, top]
        right_ticks = [f"r = {pearson(a, b):.2f}" for a, b in zip(full_r, full_g)]
        left_ticks, what = rows, "mean expression"
    else:
        A, B = R[_spaced(len(R), max_rows)][:, top], G[_spaced(len(G), max_rows)][:, top]
        left_ticks = right_ticks = None
        what = "expression"
    cols = np.lexsort((-A.max(0), A.argmax(0)))  # by peak row, then strongest first
    A, B, names = A[:, cols], B[:, cols], np.asarray(genes)[top][cols]

    n_rows = max(A.shape[0], B.shape[0])
    width = min(22.0, 4.5 + 0.26 * len(names))
    height = 2.6 + (0.32 * n_rows if left_ticks is not None else 3.0)
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=left_ticks is not None)
    vmin, vmax = min(A.min(), B.min()), max(A.max(), B.max())
    for ax, M, title in ((axes[0], A, f"real ({R.shape[0]} cells)"),
                         (axes[1], B, f"generated ({G.shape[0]} cells)")):
        image = ax.imshow(M, aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax,
                          interpolation="nearest")
        ax.set_title(title)
        ax.set_xticks(np.arange(len(names)), names, rotation=90, fontsize=6)
    if left_ticks is not None:
        axes[0].set_yticks(np.arange(len(left_ticks)), left_ticks, fontsize=8)
        axes[1].tick_params(labelleft=False)
        twin = axes[1].secondary_yaxis("right")
        twin.set_yticks(np.arange(len(right_ticks)), right_ticks, fontsize=7)
    else:
        axes[0].set_ylabel("cells")
        axes[1].set_yticks([])
        axes[0].set_yticks([])
    fig.colorbar(image, ax=list(axes), shrink=0.8, label=what, location="right", pad=0.01)
    fig.suptitle(f"Top {len(names)} variable genes: real vs generated")
    if save is not None:
        save_figure(fig, save)
    return fig


def _spaced(n: int, k: int) -> np.ndarray:
    return np.arange(n) if n <= k else np.unique(np.linspace(0, n - 1, k).round().astype(int))

