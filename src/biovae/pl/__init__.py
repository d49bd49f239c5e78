"""Plots (matplotlib, saved as PNG): latent UMAPs, real vs generated cells, heatmaps, traversals.

    biovae.pl.plot_latent(latent, bins, truth=..., path="latent_umap.png")
    biovae.pl.real_vs_generated(real, generated, label_key="cell_type", save="augmented.png")
    biovae.pl.traversal(model, dims=[0, 1], span=3, save="traversal.png")

(Names differ from the module files, so that importing a module never hides a function.)
Imported lazily, so that importing biovae does not import matplotlib.
"""

from biovae.lazy import exports

_NAMES = {
    "plot_latent": ("biovae.pl.latent", "plot_latent"),
    "real_vs_generated": ("biovae.pl.augmented", "augmented"),
    "traversal": ("biovae.pl.traverse", "traversal"),
    "traversal_values": ("biovae.pl.traverse", "traversal_values"),
}

__all__ = sorted(_NAMES)
__getattr__ = exports("biovae.pl", _NAMES)
