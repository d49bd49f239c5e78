"""Grids of image patches: originals beside reconstructions, interpolation paths, traversals.

Every function takes stacks of (H, W) patches with intensities in [vmin, vmax] (default [0, 1],
as cut by biovae.io.images.image_patches), draws them in grey, returns the matplotlib Figure and
saves it atomically when `save` is given (.png, .pdf or .svg).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from biovae.errors import require


def image_grid(rows: Sequence[np.ndarray], row_labels: Sequence[str] | None = None,
               col_labels: Sequence[str] | None = None, title: str | None = None, *, vmin: float = 0.0,
               vmax: float = 1.0, cell: float = 0.9, save=None) -> Figure:
    """One row of patches per entry of `rows` (each (k, H, W); rows may differ in k)."""
    require(len(rows) >= 1, "nothing to draw: no rows of images")
    n_cols = max(len(r) for r in rows)
    fig = Figure(figsize=(cell * n_cols + (1.3 if row_labels else 0.2), cell * len(rows) + (0.5 if title else 0.15)))
    axes = fig.subplots(len(rows), n_cols, squeeze=False)
    for i, row in enumerate(rows):
        for j in range(n_cols):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(row):
                ax.imshow(row[j], cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
            else:
                ax.axis("off")
            if col_labels is not None and i == 0 and j < len(col_labels):
                ax.set_title(col_labels[j], fontsize=7)
        if row_labels is not None:
            axes[i, 0].set_ylabel(row_labels[i], fontsize=7, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(left=0.12 if row_labels else 0.01, right=0.99, bottom=0.01,
                        top=1 - (0.45 if title else 0.1) / fig.get_figheight(), wspace=0.04, hspace=0.08)
    if save is not None:
        from biovae.pl.augmented import save_figure

        save_figure(fig, save)
    return fig


def reconstructions(originals: np.ndarray, recon: np.ndarray, labels: Sequence[str] | None = None,
                    per_row: int = 8, title: str = "VAE reconstructions (posterior mean)", save=None) -> Figure:
    """Originals (n, H, W) above their reconstructions (n, H, W), `per_row` objects per pair of rows."""
    require(originals.shape == recon.shape, f"{originals.shape} originals but {recon.shape} reconstructions")
    rows, names = [], []
    for a in range(0, len(originals), per_row):
        rows += [originals[a:a + per_row], recon[a:a + per_row]]
        names += ["original", "reconstructed"]
    cols = None if labels is None else list(labels[:per_row])
    return image_grid(rows, names, cols, title, save=save)


def interpolation(path: np.ndarray, start: np.ndarray, end: np.ndarray, fractions: Sequence[float],
                  names: tuple[str, str] = ("start", "end"), save=None) -> Figure:
    """A decoded latent path (k, H, W) between two originals, which are drawn at its ends."""
    row = np.concatenate([start[None], path, end[None]])
    cols = [names[0]] + [f"{f:.2f}" for f in fractions] + [names[1]]
    return image_grid([row], None, cols, "latent interpolation (decoded), originals at the ends", save=save)


def traversal(grid: np.ndarray, dims: Sequence[int], values: Sequence[float], save=None) -> Figure:
    """grid (n_dims, n_values, H, W): row i decodes latent dimension dims[i] set to each value."""
    return image_grid(list(grid), [f"z{d}" for d in dims], [f"{v:+.1f}" for v in values],
                      "latent traversal (others at the training mean)", save=save)
