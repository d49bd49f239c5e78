"""Public expression data sets for the realism benchmarks, each installed offline from a package.

    .venv/bin/python benchmarks/expr_datasets.py          # fetch/convert all, print one line each

| name | kind | cells x genes | labels | comes from |
|---|---|---|---|---|
| pbmc68k_reduced | log-normalised (log1p of size-factor-scaled counts) | 700 x 765 | bulk_labels (10) | scanpy's bundled copy (`.raw`); the DEVELOPMENT set |
| pbmc68k_counts | raw counts recovered exactly from pbmc68k_reduced's .raw (k = expm1(x) / s_c, see expr_realism.py) | 700 x 765 | none (used unlabelled) | the same; DEVELOPMENT set for count data |
| celltypist_pbmc | raw UMI counts (10x) | 559 x genes detected in >= 5% of cells | none | PyPI celltypist 1.7.1, celltypist/data/samples/sample_cell_by_gene.csv |
| hsmm | FPKM, full-length (Fluidigm C1) myoblasts | 271 x genes >= 1 FPKM in >= 20% of cells | Hours (4) | Debian r-bioc-hsmmsinglecell, data/HSMM_expr_matrix.rda + HSMM_sample_sheet.rda |
| lung_development | FPKM, full-length, mouse lung epithelium | 185 x 218 | age (4) | Debian r-bioc-monocle, as /work/shared/data/expression/lung_development.h5ad |

Gene filters are part of a data set's definition (the same for every generator and split); they
use detection only, never a generator's output. Cell and gene order are shuffled with a fixed
seed and cell names are anonymised ("cell_0".."cell_N"), so that nothing downstream can lean on
the original order. Converted copies are cached in benchmarks/data/ (git-ignored). The package
files are brought in by the ordinary clients: `pip download --no-deps celltypist==1.7.1` and
`apt-get download r-bioc-hsmmsinglecell` (unpacked with `dpkg -x`), nothing else from outside.
"""

from __future__ import annotations

import glob
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
CACHE = HERE / "data"
SHARED = HERE.parent.parent / "shared" / "data" / "expression"
DEVELOPMENT = ("pbmc68k_reduced", "pbmc68k_counts")
# name -> (kind, label column or None)
DATASETS = {
    "pbmc68k_reduced": ("log-normalised", "bulk_labels"),
    "pbmc68k_counts": ("raw counts", None),
    "celltypist_pbmc": ("raw UMI counts", None),
    "hsmm": ("FPKM (full-length)", "Hours"),
    "lung_development": ("FPKM (full-length)", "age"),
}


def load(name: str) -> ad.AnnData:
    """The data set `name` (a key of DATASETS) as AnnData: X dense float32 on its own scale,
    obs holding the label column when it has one."""
    if name not in DATASETS:
        raise SystemExit(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    path = CACHE / f"{name}.h5ad"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        adata = _tidy(globals()[f"_build_{name}"](), DATASETS[name][1])
        tmp = path.with_suffix(".tmp.h5ad")
        adata.write_h5ad(tmp)
        tmp.replace(path)
    return ad.read_h5ad(path)


def _tidy(adata: ad.AnnData, label: str | None) -> ad.AnnData:
    rng = np.random.default_rng(20261207)
    adata = adata[rng.permutation(adata.n_obs)][:, rng.permutation(adata.n_vars)].copy()
    X = adata.X.toarray() if sp.issparse(adata.X) else np.asarray(adata.X)
    obs = pd.DataFrame(index=[f"cell_{i}" for i in range(adata.n_obs)])
    if label:
        obs[label] = pd.Categorical(adata.obs[label].astype(str).to_numpy())
    return ad.AnnData(X=X.astype(np.float32), obs=obs, var=pd.DataFrame(index=adata.var_names.astype(str)))


def _build_pbmc68k_reduced() -> ad.AnnData:
    import scanpy as sc

    pbmc = sc.datasets.pbmc68k_reduced()
    real = pbmc.raw.to_adata()
    real.obs = pbmc.obs[["bulk_labels"]].copy()
    return real


def _build_pbmc68k_counts() -> ad.AnnData:
    from biovae.expr.preprocess import lattice_size_factors

    real = _build_pbmc68k_reduced()
    X = real.X.toarray() if sp.issparse(real.X) else np.asarray(real.X, dtype=np.float64)
    s = lattice_size_factors(X)
    return ad.AnnData(X=np.round(np.expm1(X) / s[:, None]), obs=real.obs.copy(), var=real.var[[]].copy())


def _build_celltypist_pbmc() -> ad.AnnData:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "celltypist==1.7.1", "-d", tmp],
                       check=True)
        wheel = glob.glob(f"{tmp}/celltypist-*.whl")[0]
        with zipfile.ZipFile(wheel) as z, z.open("celltypist/data/samples/sample_cell_by_gene.csv") as f:
            frame = pd.read_csv(f, index_col=0)
    X = frame.to_numpy(np.float32)
    keep = (X > 0).mean(0) >= 0.05
    return ad.AnnData(X=X[:, keep], obs=pd.DataFrame(index=frame.index.astype(str)),
                      var=pd.DataFrame(index=frame.columns[keep].astype(str)))


def _debian_data(package: str, folder: str) -> Path:
    installed = Path("/usr/lib/R/site-library") / folder / "data"
    if installed.exists():
        return installed
    unpacked = CACHE / package
    if not unpacked.exists():
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["apt-get", "download", package], cwd=tmp, check=True, capture_output=True)
            deb = glob.glob(f"{tmp}/{package}_*.deb")[0]
            subprocess.run(["dpkg", "-x", deb, str(unpacked)], check=True)
    return unpacked / "usr/lib/R/site-library" / folder / "data"


def _build_hsmm() -> ad.AnnData:
    import rdata

    data = _debian_data("r-bioc-hsmmsinglecell", "HSMMSingleCell")
    sheet = rdata.read_rda(str(data / "HSMM_sample_sheet.rda"))["HSMM_sample_sheet"]
    expr = rdata.read_rda(str(data / "HSMM_expr_matrix.rda"))["HSMM_expr_matrix"]
    X = np.asarray(expr.values, dtype=np.float32).T  # genes x cells in the package
    genes = np.asarray(expr.coords[expr.dims[0]].values, dtype=str)
    cells = np.asarray(expr.coords[expr.dims[1]].values, dtype=str)
    keep = (X >= 1).mean(0) >= 0.2
    obs = pd.DataFrame({"Hours": sheet.loc[cells, "Hours"].astype(str).to_numpy()}, index=cells)
    return ad.AnnData(X=X[:, keep], obs=obs, var=pd.DataFrame(index=genes[keep]))


def _build_lung_development() -> ad.AnnData:
    lung = ad.read_h5ad(SHARED / "lung_development.h5ad")
    lung.obs = lung.obs[["age"]].copy()
    return lung


def main() -> None:
    for name, (kind, label) in DATASETS.items():
        a = load(name)
        X = a.X
        labels = f"{label} ({a.obs[label].nunique()})" if label else "no labels"
        role = "development" if name in DEVELOPMENT else "confirmation"
        print(f"{name:18s} {role:12s} {kind:20s} {a.n_obs} x {a.n_vars}, {labels}; max {X.max():.4g}, "
              f"zeros {np.mean(X == 0):.2f}, integer {bool(np.all(X == np.round(X)))}")


if __name__ == "__main__":
    main()
