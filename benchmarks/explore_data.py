"""Public data sets for the exploration benchmarks (intermediate cells, anomaly scores).

Each loader returns AnnData (cells x genes) on the data's own scale with a group column, cached
as .h5ad under benchmarks/data/ (git-ignored). Nothing is selected by label here: the only gene
filter is "detected in at least 10 % of all cells", which never looks at a group.

  lung      shared/data/expression/lung_development.h5ad: 185 mouse lung epithelial cells, FPKM,
            obs 'age' (E14.5, E16.5, E18.5, P107). Time course, development set.
  hsmm      Debian r-bioc-hsmmsinglecell (Trapnell et al. 2014): 271 human skeletal muscle
            myoblasts, FPKM, obs 'hours' (0, 24, 48, 72 h of differentiation). Confirmation.
  guo       Debian r-bioc-destiny, data 'guo' (Guo et al. 2010): 428 mouse embryo cells, qPCR of
            48 genes (values as shipped minus the matrix minimum, one constant, so that they are
            non-negative), obs 'divisions'
            (log2 of the cell number of the embryo: 1 .. 6, 2- to 64-cell). Confirmation.
  pbmc      scanpy's bundled pbmc68k_reduced: 700 PBMCs, .raw (log-normalised, 765 genes),
            obs 'bulk_labels' (10 types). Anomaly development set.
  all_b     Debian r-bioc-all (Chiaretti et al. 2004): B-lineage acute lymphoblastic leukaemia,
            RMA log2 microarray values of 12625 probe sets, obs 'mol.biol' (molecular subtype;
            the four with >= 5 patients: NEG, BCR/ABL, ALL1/AF4, E2A/PBX1; 94 patients). Added
            in round 3 as the anomaly confirmation set: scored once, with the final code only.
  flu_time  Debian r-bioc-qusage, data 'fluExample' (Huang et al. 2011, GSE30550): blood of 17
            people challenged with influenza H3N2, log2 microarray values of 4147 genes at 15
            sampling times from 0 to 108 h (252 samples; bulk, not single cells). obs 'window':
            three consecutive sampling times pooled into one point, labelled by their mean hour
            rounded (6 = 0/5/12 h, 29 = 21/29/36 h, 53 = 45/53/60 h, 77 = 69/77/84 h, 101 =
            93/101/108 h; 48-51 samples each; the windows were fixed before any scoring). Time
            course, hold out 53 (f = 0.5). Added in round 4: confirmation.
  flu_subject  the same samples, obs 'subject' (17 people, 14-15 samples each): leave one
            person out ("a new patient"). Added in round 4: anomaly confirmation.

The Debian packages are fetched with `apt-get download` (no install) and unpacked with dpkg -x;
the R data files are read with the `rdata` package (bench extra).

    python benchmarks/explore_data.py          # builds every cache and prints a summary
"""

from __future__ import annotations

import subprocess
import tempfile
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / "data"
LUNG = ROOT.parent / "shared" / "data" / "expression" / "lung_development.h5ad"
R_LIB = "usr/lib/R/site-library"

# name -> (group column, role in the time-course benchmark, role in the anomaly benchmark); round 4:
# lung, hsmm, guo (round 2) and all_b (round 3) were scored before, so they are development (seen) sets;
# the flu sets are new confirmation sets
DATASETS = {"lung": ("age", "development", "development (seen)"),
            "hsmm": ("hours", "development (seen)", "development (seen)"),
            "guo": ("divisions", "development (seen)", "development (seen)"),
            "pbmc": ("bulk_labels", None, "development (seen)"),
            "all_b": ("mol.biol", None, "development (seen)"),  # round 4: scored in round 3
            "flu_time": ("window", "confirmation", None),  # round 4, scored once by the final code
            "flu_subject": ("subject", None, "confirmation")}
# time-course hold-outs (a point with neighbours on both sides) and their numeric times
HOLD_OUT = {"lung": "Embryonic day 16.5", "hsmm": "48", "guo": "4", "flu_time": "53"}
# values on a log scale without zeros (qPCR, microarray): time-course models use the normal likelihood
NO_ZEROS = ("guo", "flu_time")
FLU_WINDOWS = ((0, 5, 12), (21, 29, 36), (45, 53, 60), (69, 77, 84), (93, 101, 108))


def _debian_files(package: str, inner: str) -> Path:
    """Unpack Debian `package` once under the cache; the path of `inner` in it."""
    target = CACHE / "debian" / package
    if not (target / inner).exists():
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["apt-get", "download", package], cwd=tmp, check=True, capture_output=True)
            deb = next(Path(tmp).glob(f"{package}_*.deb"))
            subprocess.run(["dpkg", "-x", str(deb), str(target)], check=True)
    return target / inner


def _read_rda(path: Path, name: str):
    import rdata

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return rdata.read_rda(str(path))[name]


def _detected(cells: ad.AnnData, share: float = 0.1, floor: float = 0.0) -> ad.AnnData:
    x = np.asarray(cells.X)
    return cells[:, (x > floor).mean(0) >= share].copy()


def _build_hsmm() -> ad.AnnData:
    base = _debian_files("r-bioc-hsmmsinglecell", f"{R_LIB}/HSMMSingleCell/data")
    expr = _read_rda(base / "HSMM_expr_matrix.rda", "HSMM_expr_matrix")  # genes x cells FPKM
    sheet = _read_rda(base / "HSMM_sample_sheet.rda", "HSMM_sample_sheet")
    genes = _read_rda(base / "HSMM_gene_annotation.rda", "HSMM_gene_annotation")
    x = np.asarray(expr, dtype=np.float32).T
    gene_ids = [str(g) for g in expr.coords[expr.dims[0]].values]
    cell_ids = [str(c) for c in expr.coords[expr.dims[1]].values]
    names = genes.reindex(gene_ids)["gene_short_name"].astype(str).to_numpy()
    obs = pd.DataFrame({"hours": sheet.loc[cell_ids, "Hours"].astype(int).astype(str).to_numpy()}, index=cell_ids)
    cells = ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=gene_ids))
    cells.var["symbol"] = names
    return _detected(cells, floor=1.0)


def _build_guo() -> ad.AnnData:
    base = _debian_files("r-bioc-destiny", f"{R_LIB}/destiny/data")
    eset = _read_rda(base / "guo.rda", "guo")
    arr = eset.assayData["exprs"]  # xarray genes x cells
    pheno = eset.phenoData.data
    x = np.asarray(arr, dtype=np.float32).T
    x = x - x.min()  # one constant for the whole matrix: expression models take non-negative values
    cols = [str(c) for c in arr.coords["dim_1"].values]
    num = pheno.set_index(pheno.index.astype(str)).loc[cols, "num_cells"].astype(int).to_numpy()
    obs = pd.DataFrame({"divisions": np.log2(num).round().astype(int).astype(str), "num_cells": num},
                       index=[f"guo_{c}" for c in cols])
    return ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=[str(g) for g in arr.coords["dim_0"].values]))


def _read_locked_rda(path: Path, name: str):
    """An R object whose environments hold lazy-load promises (ExpressionSet assayData):
    rdata's converter with promises read as None (the data themselves are not promises)."""
    import rdata
    from rdata.conversion import SimpleConverter
    from rdata.parser import RObjectType

    class Converter(SimpleConverter):
        def _convert_next(self, data):
            if getattr(getattr(data, "info", None), "type", None) == RObjectType.PROM:
                return None
            return super()._convert_next(data)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Converter(default_encoding="latin1").convert(rdata.parser.parse_file(str(path), extension="rda"))[name]


def _build_all_b() -> ad.AnnData:
    base = _debian_files("r-bioc-all", f"{R_LIB}/ALL/data")
    eset = _read_locked_rda(base / "ALL.rda", "ALL")
    arr = eset.assayData.frame["exprs"]  # xarray probe sets x patients
    pheno = eset.phenoData.data
    cols = [str(c) for c in arr.coords[arr.dims[1]].values]
    pheno = pheno.set_index(pheno.index.astype(str)).loc[cols]
    groups = pheno["mol.biol"].astype(str)
    keep = (pheno["BT"].astype(str).str.startswith("B") & groups.map(groups.value_counts() >= 5)).to_numpy()
    x = np.asarray(arr, dtype=np.float32).T[keep]
    obs = pd.DataFrame({"mol.biol": groups.to_numpy()[keep]}, index=[f"all_{c}" for c in np.asarray(cols)[keep]])
    return ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=[str(g) for g in arr.coords[arr.dims[0]].values]))


def _build_flu() -> ad.AnnData:
    base = _debian_files("r-bioc-qusage", f"{R_LIB}/qusage/data")
    found = _read_rda(base / "fluExample.RData", "eset.full")  # xarray genes x samples
    meta = _read_rda(base / "fluExample.RData", "flu.meta")
    cols = [str(c) for c in found.coords[found.dims[1]].values]
    meta = meta.set_index(meta["SampleID"].astype(str)).loc[cols]
    hours = meta["Hours.Numeric"].astype(float).round().astype(int).to_numpy()
    window = {h: str(int(round(np.mean(w)))) for w in FLU_WINDOWS for h in w}
    obs = pd.DataFrame({"window": [window[h] for h in hours], "subject": meta["Subject"].astype(str).to_numpy(),
                        "hours": hours})
    x = np.asarray(found, dtype=np.float32).T
    order = np.random.default_rng(0).permutation(len(x))  # sample ids anonymised, order shuffled
    obs = obs.iloc[order].set_axis([f"flu_{i:03d}" for i in range(len(x))])
    return ad.AnnData(X=x[order], obs=obs, var=pd.DataFrame(index=[str(g) for g in found.coords[found.dims[0]].values]))


def _build_pbmc() -> ad.AnnData:
    import scanpy as sc

    pbmc = sc.datasets.pbmc68k_reduced()
    cells = pbmc.raw.to_adata()
    cells.obs = pbmc.obs[["bulk_labels"]].astype(str).copy()
    cells.var = pd.DataFrame(index=cells.var_names)  # drop the precomputed flags (they saw every type)
    return cells


def _build_lung() -> ad.AnnData:
    cells = ad.read_h5ad(LUNG)
    cells.obs = cells.obs[["age"]].astype(str).copy()
    return cells


BUILDERS = {"lung": _build_lung, "hsmm": _build_hsmm, "guo": _build_guo, "pbmc": _build_pbmc, "all_b": _build_all_b,
            "flu_time": _build_flu, "flu_subject": _build_flu}


def load(name: str) -> ad.AnnData:
    """The data set `name` (see DATASETS), from the cache when present."""
    path = CACHE / f"{name}.h5ad"
    if name != "lung" and path.exists():
        return ad.read_h5ad(path)
    cells = BUILDERS[name]()
    if name != "lung":
        CACHE.mkdir(parents=True, exist_ok=True)
        cells.write_h5ad(path)
    return cells


def main() -> None:
    for name, (key, tc, an) in DATASETS.items():
        cells = load(name)
        counts = cells.obs[key].value_counts().sort_index()
        print(f"{name}: {cells.n_obs} cells x {cells.n_vars} genes; {key}: "
              + ", ".join(f"{k} ({v})" for k, v in counts.items())
              + f"; time course: {tc or '-'}; anomaly: {an}")


if __name__ == "__main__":
    main()
