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
import scipy.sparse as sp

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


def simulate_count_blocks(n_cells: int, n_genes: int = 2000, n_types: int = 5, counts_per_cell: float = 1500.0,
                          seed: int = 0, block: int | None = None):
    """Raw UMI-like counts of cell types, made block by block so that any number of cells fits.

    Genes: log mean expression N(0, 1.5^2) (a few genes take much of each cell's counts, most
    are rare). Cell types: each shifts the log mean of its own random 10% of the genes by
    N(0, 2^2) (marker genes, up or down). Cells: a type drawn uniformly, a total count
    LogNormal(log counts_per_cell, 0.5^2) (at least 1), and counts Multinomial(total, the type's
    gene shares). At 4,000 genes and 250 counts per cell about 4% of the values are non-zero.
    Yields (labels (m,) object array "type_0".., counts (m, n_genes) float32 CSR) for blocks of
    cells, in order; the same seed gives the same cells whatever the block size.
    """
    require(min(n_cells, n_genes, n_types) >= 1 and counts_per_cell > 0,
            "n_cells, n_genes, n_types and counts_per_cell must be positive")
    rng = np.random.default_rng(seed)
    log_mean = rng.normal(0.0, 1.5, size=n_genes)
    shares = np.empty((n_types, n_genes))
    for t in range(n_types):
        shift = np.zeros(n_genes)
        markers = rng.choice(n_genes, size=max(1, n_genes // 10), replace=False)
        shift[markers] = rng.normal(0.0, 2.0, size=len(markers))
        w = np.exp(log_mean + shift)
        shares[t] = w / w.sum()
    cumulative = np.cumsum(shares, axis=1)
    cumulative[:, -1] = 1.0
    names = np.array([f"type_{t}" for t in range(n_types)], dtype=object)
    block = block or max(1, int(2e6 // counts_per_cell))  # ~2M draws: fast in cache
    for start in range(0, n_cells, block):
        m = min(block, n_cells - start)
        cell_rng = np.random.default_rng([seed, start // block])
        types = cell_rng.integers(0, n_types, size=m)
        totals = np.maximum(1, np.round(cell_rng.lognormal(np.log(counts_per_cell), 0.5, size=m))).astype(np.int64)
        grouped = np.argsort(types, kind="stable")  # draw type by type, then put the cells back
        cell_of_draw = np.repeat(np.arange(m), totals[grouped])
        u = cell_rng.random(len(cell_of_draw))
        genes = np.empty(len(u), dtype=np.int64)
        ends = np.cumsum([totals[types == t].sum() for t in range(n_types)])
        for t in range(n_types):
            a, b = (ends[t - 1] if t else 0), ends[t]
            genes[a:b] = np.searchsorted(cumulative[t], u[a:b], side="right")
        keys, counts = np.unique(cell_of_draw * n_genes + np.minimum(genes, n_genes - 1), return_counts=True)
        indptr = np.concatenate([[0], np.cumsum(np.bincount(keys // n_genes, minlength=m))])
        x = sp.csr_matrix((counts.astype(np.float32), (keys % n_genes).astype(np.int32), indptr), shape=(m, n_genes))
        back = np.argsort(grouped)
        yield names[types], x[back]


def simulate_counts(n_cells: int, n_genes: int = 2000, n_types: int = 5, counts_per_cell: float = 1500.0,
                    seed: int = 0) -> ad.AnnData:
    """simulate_count_blocks as one AnnData: X float32 CSR counts, obs["cell_type"]."""
    parts = list(simulate_count_blocks(n_cells, n_genes, n_types, counts_per_cell, seed))
    obs = pd.DataFrame({"cell_type": np.concatenate([lab for lab, _ in parts])},
                       index=[f"cell_{i}" for i in range(n_cells)])
    var = pd.DataFrame(index=[f"gene_{j}" for j in range(n_genes)])
    return ad.AnnData(X=sp.vstack([x for _, x in parts], format="csr"), obs=obs, var=var)
