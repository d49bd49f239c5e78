"""pl.latent: the latent-space plot of `biovae bin`, by UMAP or (--plot pca) principal components."""

import numpy as np
import pytest

from biovae.errors import BiovaeError
from biovae.pl.latent import plot_latent, umap_embedding


def _two_clusters():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    x[:150, 0] += 8.0  # two genomes, apart along one latent axis
    return x, np.repeat([0, 1], 150)


def test_pca_embedding_separates_the_clusters_and_is_labelled_as_components(tmp_path):
    x, bins = _two_clusters()
    rows, xy = umap_embedding(x, max_points=200, seed=1, method="pca")
    assert len(rows) == 200 and np.all(np.diff(rows) > 0)
    first = xy[:, 0] * np.sign(xy[bins[rows] == 0, 0].mean())
    assert (first[bins[rows] == 0] > 0).all() and (first[bins[rows] == 1] < 0).all()
    fig = plot_latent(x, bins, truth=np.where(bins == 0, "E. coli", "S. aureus"), path=tmp_path / "p.png",
                      method="pca", seed=1)
    assert [ax.get_xlabel() for ax in fig.axes[:2]] == ["component 1", "component 1"]
    assert (tmp_path / "p.png").stat().st_size > 10_000


def test_unknown_method_is_a_clear_error():
    x, bins = _two_clusters()
    with pytest.raises(BiovaeError, match="unknown latent plot method 'tsne'"):
        plot_latent(x, bins, method="tsne")
