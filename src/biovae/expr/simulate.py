"""The toy data of the VAExprs vignette (Bioconductor), reimplemented from its description.

The vignette draws every value from a normal with mean 5 and standard deviation 5 (R's
`rnorm(n, mu, sigma)` takes the sd), gives each of 3 groups of 100 cells its own block of 100
"up-regulated" genes (blocks do not overlap: genes 1-100, 101-200, 201-300; the other 700 genes
are the same in all groups), shifts each such gene by one draw of N(6, sd 10) shared by all cells
of the group, and finally sets negative values to 0.

Two details of the vignette's R code are not copied: it adds the shift to the values of genes
1-100 for every group (so groups 2 and 3 get copies of genes 1-100 rather than their own noise),
and a shift drawn from N(6, 10) is negative about 27% of the time, so some "up" genes go down.
Here each group's genes keep their own noise, and the shift of each gene is recorded in
var["shift"] so callers can pick the genes that really go up.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

from biovae.errors import require


def simulate_vaexprs(
    n_groups: int = 3, n_cells: int = 100, n_genes: int = 1000, n_up: int = 100,
    mean: float = 5.0, sd: float = 5.0, up_mean: float = 6.0, up_sd: float = 10.0, seed: int = 0,
) -> ad.AnnData:
    """Simulate the VAExprs vignette's expression data: groups of cells with their own genes up.

    n_groups groups of n_cells cells each; n_genes genes with values N(mean, sd); group g's
    block of n_up genes (genes g*n_up+1 .. (g+1)*n_up, disjoint blocks) is shifted in group g's
    cells by a per-gene N(up_mean, up_sd); values below 0 become 0. Units are arbitrary
    expression levels (not counts, not logged).
    Returns AnnData of shape (n_groups * n_cells, n_genes), X float32, cells "cell1".., genes
    "gene1".., obs["group"] ("group1".., categorical), var["up_in"] (the group whose block the
    gene is in, "" for genes up in no group) and var["shift"] (the shift drawn, 0 if none).
    """
    require(min(n_groups, n_cells, n_genes) >= 1, "n_groups, n_cells and n_genes must be >= 1")
    require(0 <= n_up and n_groups * n_up <= n_genes,
            f"{n_groups} groups x {n_up} up-regulated genes do not fit in {n_genes} genes",
            "lower n_up or raise n_genes")
    require(sd >= 0 and up_sd >= 0, "standard deviations must be >= 0")
    rng = np.random.default_rng(seed)
    X = rng.normal(mean, sd, size=(n_groups * n_cells, n_genes))
    groups = np.repeat([f"group{g + 1}" for g in range(n_groups)], n_cells)
    up_in = np.full(n_genes, "", dtype=object)
    shift = np.zeros(n_genes)
    for g in range(n_groups):
        block = slice(g * n_up, (g + 1) * n_up)
        shift[block] = rng.normal(up_mean, up_sd, size=n_up)
        up_in[block] = f"group{g + 1}"
        X[g * n_cells:(g + 1) * n_cells, block] += shift[block]
    np.clip(X, 0, None, out=X)
    obs = pd.DataFrame({"group": pd.Categorical(groups)},
                       index=[f"cell{i + 1}" for i in range(len(groups))])
    var = pd.DataFrame({"up_in": up_in, "shift": shift},
                       index=[f"gene{j + 1}" for j in range(n_genes)])
    return ad.AnnData(X=X.astype(np.float32), obs=obs, var=var)
