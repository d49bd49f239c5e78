"""`biovae interpolate | anomaly | traversal`: skins over biovae.tl and biovae.pl.traversal.
Each writes a JSON summary (OUT.summary.json) and a run report (OUT.report.html) beside its output."""

from __future__ import annotations

import argparse
from pathlib import Path

from biovae.cli.common import add_runtime_options, finish_file_output
from biovae.errors import BiovaeError
from biovae.io.outputs import SIDECARS, check_output_file

_FMT = argparse.ArgumentDefaultsHelpFormatter


def register(sub) -> None:
    p = sub.add_parser("interpolate", help="decode a latent path between two labels or cells", formatter_class=_FMT,
                       description="Decode profiles along a path through an expression model's latent space, "
                       "from one label (or cell) to another. Labels are looked up in --labels of DATA, else among "
                       "the labels a conditional model was fitted on.")
    p.add_argument("model", help="model folder written by `biovae fit`")
    p.add_argument("--from", dest="start", help="start: a label, or a cell name of --data")
    p.add_argument("--to", dest="end", help="end: a label, or a cell name of --data")
    p.add_argument("-o", "--out", required=True, help="output .h5ad or .csv/.tsv (points x genes; --cells: .h5ad)")
    p.add_argument("--cells", action="store_true",
                   help="instead of a path: generate cells of the --hold-out time point of column --labels in --data "
                   "from its two neighbouring time points (biovae.tl.intermediate_cells); MODEL must have been "
                   "fitted without that time point's cells")
    p.add_argument("--hold-out", help="with --cells: the time point (a value of --labels) to generate")
    p.add_argument("--method", default="shift", choices=["shift", "sample", "nearest"],
                   help="with --cells: shift real neighbour cells by the decoded latent change, sample the likelihood, "
                   "or (nearest) copy the real neighbour cells nearest the latent path (nothing generated)")
    p.add_argument("--n", type=int, help="with --cells: cells to generate (default: as many as the time point has, "
                   "else the mean of its neighbours' counts)")
    p.add_argument("--data", help="cells to take the endpoints from (h5ad, CSV/TSV, 10x folder)")
    p.add_argument("--labels", help="obs column of --data holding the labels (default: the model's)")
    p.add_argument("--layer", help="layer of --data ('raw' for .raw)")
    p.add_argument("--steps", type=int, default=10, help="points from start to end inclusive")
    p.add_argument("--path", default="linear", choices=["linear", "slerp"])
    p.add_argument("--space", default="latent", choices=["latent", "data"],
                   help="latent: decode the latent path; data: straight line between the mean profiles")
    add_runtime_options(p, device=False)
    p.set_defaults(handler=_interpolate)

    a = sub.add_parser("anomaly", help="anomaly scores of cells under a fitted model", formatter_class=_FMT,
                       description="Score each cell: negative ELBO, reconstruction error, encoder variance and "
                       "latent distances to the training cells (higher = more unusual). Several model folders "
                       "(an ensemble, e.g. fits with seeds 0, 1, 2) give each score averaged over them. For "
                       "cells of unseen types or states rank by knn_resid (latent kNN distance plus standardised "
                       "reconstruction residual; needs --reference, the training cells, else latent_knn), with models "
                       "fitted as biovae.tl.fit_anomaly_models does: `biovae fit DATA --genes highly_variable "
                       "--likelihood normal --latent-dim 32 --dropout 0 --seed S` (see biovae.tl.anomaly_model).")
    a.add_argument("model", nargs="+", help="model folder(s) written by `biovae fit`")
    a.add_argument("data", help="cells to score (h5ad, CSV/TSV, 10x folder)")
    a.add_argument("-o", "--out", required=True, help="output table (.tsv or .csv), one row per cell")
    a.add_argument("--labels", help="obs column with the labels a conditional model needs")
    a.add_argument("--layer", help="layer of DATA ('raw' for .raw)")
    a.add_argument("--reference", help="the training cells, to define the latent distribution "
                   "(default: the training latents stored in the model)")
    a.add_argument("--calibration", help="normal cells the model(s) never fitted (e.g. a third of the training cells "
                   "held back): adds a conformal p-value of the ranking score and a 'novel' column (p < --alpha)")
    a.add_argument("--alpha", type=float, default=0.05, help="with --calibration: p-value below which a cell is novel")
    a.add_argument("--samples", type=int, default=1, help="posterior draws for the reconstruction likelihood")
    a.add_argument("--backed", action="store_true",
                   help="read DATA (and --reference) .h5ad in row chunks instead of whole, for data larger than memory")
    add_runtime_options(a, device=False)
    a.set_defaults(handler=_anomaly)

    t = sub.add_parser("traversal", help="draw decoded outputs along each latent dimension", formatter_class=_FMT)
    t.add_argument("model", help="model folder (expression or image model)")
    t.add_argument("-o", "--out", required=True, help="PNG/PDF/SVG")
    t.add_argument("--dims", type=int, nargs="+", help="latent dimensions (default: the first 10)")
    t.add_argument("--span", type=float, default=3.0, help="move each dimension over +-span prior sd")
    t.add_argument("--steps", type=int, default=7)
    t.add_argument("--label", help="condition of a conditional model (default: its first label)")
    t.add_argument("--genes", type=int, default=12, help="top changing genes per dimension (expression)")
    add_runtime_options(t, device=False)
    t.set_defaults(handler=_traversal)


def _expression_model(folder):
    from biovae.tl.interpolate import load_model, model_kind

    model = load_model(folder)
    kind = model_kind(model)
    if kind != "expression":
        raise BiovaeError(f"{folder} holds a model of kind {kind!r}, but this command works on expression models",
                          "give a model folder written by `biovae fit`")
    return model


def _read(path, layer=None):
    from biovae.io.expression import read_expression

    return read_expression(path, layer=layer)


def _interpolate(args) -> None:
    from biovae.io.expression import write_expression
    from biovae.tl.interpolate import interpolate

    if args.cells:
        return _intermediate(args)
    if not (args.start and args.end):
        raise BiovaeError("interpolate needs --from and --to (or --cells with --hold-out)",
                          "name the path's two ends, e.g. --from 'CD14+ Monocyte' --to 'CD19+ B'")
    check_output_file(args.out, [args.model, args.data], args.force)
    model = _expression_model(args.model)
    data = _read(args.data, args.layer) if args.data else None
    path = interpolate(model, args.start, args.end, steps=args.steps, data=data, label_key=args.labels,
                       space=args.space, path=args.path)
    write_expression(path, args.out)
    info = dict(path.uns["biovae_interpolation"])
    summary = {"model": args.model, "data": args.data, **info, "steps": path.n_obs, "genes": path.n_vars,
               "output": args.out}
    lead = (f"{path.n_obs} points from {info['start']} to {info['end']} ({info['space']}, {info['path']}) "
            f"written to {args.out}")
    finish_file_output("interpolate", args.out, summary, lead, args, tables=_path_table(path))


def _intermediate(args) -> None:
    from biovae.io.expression import write_expression
    from biovae.tl.intermediate import intermediate_cells

    if not (args.data and args.labels and args.hold_out):
        raise BiovaeError("--cells needs --data, --labels (the time column) and --hold-out",
                          "e.g. --cells --data cells.h5ad --labels age --hold-out 'Embryonic day 16.5'")
    if Path(args.out).suffix.lower() != ".h5ad":
        raise BiovaeError(f"--cells writes AnnData, but {args.out} is not an .h5ad", "name the output .h5ad")
    check_output_file(args.out, [args.model, args.data], args.force)
    model = _expression_model(args.model)
    cells = intermediate_cells(model, _read(args.data, args.layer), args.labels, args.hold_out, n=args.n,
                               seed=args.seed, layer=args.layer, method=args.method)
    write_expression(cells, args.out)
    info = dict(cells.uns["biovae_intermediate"])
    summary = {"model": args.model, "data": args.data, **info, "cells": cells.n_obs, "genes": cells.n_vars,
               "output": args.out}
    lead = (f"{cells.n_obs} cells of {info['hold_out']} (fraction {info['fraction']:.3g} from {info['before']} "
            f"to {info['after']}) written to {args.out}")
    finish_file_output("interpolate", args.out, summary, lead, args, title="biovae interpolate --cells")


def _path_table(path):
    """The genes that change most along an interpolation path, at each step, for the report."""
    import numpy as np
    import pandas as pd

    x = np.asarray(path.X.todense() if hasattr(path.X, "todense") else path.X, dtype=float)
    top = np.argsort(-np.abs(x[-1] - x[0]), kind="stable")[:15]
    cols = [f"{p:.2f}" for p in path.obs["position"].to_numpy(dtype=float)]
    frame = pd.DataFrame(x[:, top].T, index=path.var_names[top], columns=cols)
    return {"Genes that change most along the path (rows) by path position (columns)": frame.rename_axis("gene")}


RANK_BY = "knn_resid"  # biovae.tl.anomaly_calibration.DEFAULT_SCORE (benchmarks/anomaly_groups.py); kept light here
FALLBACK_RANK = "latent_knn"  # for models without the training cells' score scales and no in-memory --reference


def _anomaly(args) -> None:
    from biovae.io.atomic import atomic_file
    from biovae.tl.anomaly import anomaly_scores

    out = Path(args.out)
    if out.suffix.lower() not in (".tsv", ".csv"):
        raise BiovaeError(f"cannot tell the table format of {out}", "name the output .tsv or .csv")
    check_output_file(out, [*args.model, args.data, args.reference, args.calibration], args.force, sidecars=(*SIDECARS, ".scores.png"))
    models = [_expression_model(folder) for folder in args.model]
    model = models[0] if len(models) == 1 else models
    read = _read
    if args.backed:
        from biovae.io.backed import open_backed as read
    data = read(args.data, args.layer)
    reference = read(args.reference, args.layer) if args.reference else None
    calibration = _read(args.calibration, args.layer) if args.calibration else None
    if not 0 < args.alpha < 1:
        raise BiovaeError(f"--alpha must lie between 0 and 1, got {args.alpha}", "e.g. --alpha 0.05")
    try:
        if reference is not None and not args.backed:  # what knn_resid needs, from the training cells
            from biovae.tl.anomaly import fit_score_scales

            for one in models:
                fit_score_scales(one, reference, labels=args.labels, seed=args.seed)
        scores = anomaly_scores(model, data, labels=args.labels, reference=reference, n_samples=args.samples,
                                seed=args.seed)
        rank_by = RANK_BY if scores[RANK_BY].notna().all() else FALLBACK_RANK
        if calibration is not None:
            from biovae.tl.anomaly_calibration import conformal_pvalues

            cal = anomaly_scores(model, calibration, labels=args.labels, reference=reference,
                                 n_samples=args.samples, seed=args.seed)[rank_by]
            scores["p_value"] = conformal_pvalues(scores[rank_by].to_numpy(), cal.to_numpy(), seed=args.seed)
            scores["novel"] = scores["p_value"] < args.alpha
    finally:
        for opened in (data, reference) if args.backed else ():
            if opened is not None:
                opened.close()
    with atomic_file(out) as tmp:
        scores.to_csv(tmp, sep="\t" if out.suffix.lower() == ".tsv" else ",", float_format="%.6g")
    top = scores[rank_by].sort_values(ascending=False).head(5)
    summary = {"model": args.model if len(args.model) > 1 else args.model[0], "data": args.data,
               "reference": args.reference, "cells": len(scores),
               "median": scores.median(numeric_only=True).to_dict(), f"highest_{rank_by}": top.to_dict(),
               "ranked_by": rank_by, "seed": args.seed, "output": str(out)}
    if calibration is not None:
        summary.update(calibration=args.calibration, calibration_cells=int(calibration.n_obs), alpha=args.alpha,
                       novel_cells=int(scores["novel"].sum()))
    lead = f"{len(scores)} cells scored ({', '.join(scores.columns)}) written to {out}"
    finish_file_output("anomaly", out, summary, lead, args,
                       images=[("distribution of the anomaly scores", _score_histograms(scores, out))],
                       tables={f"Highest-scoring cells by {rank_by}":
                               scores.sort_values(rank_by, ascending=False).head(20)})


def _score_histograms(scores, out: Path) -> Path:
    """OUT.scores.png: one histogram per numeric score column."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    from biovae.pl.augmented import save_figure

    cols = [c for c in scores.columns if scores[c].dtype.kind in "fi" and scores[c].notna().any()]
    fig = Figure(figsize=(3.2 * max(1, len(cols)), 2.8), dpi=90)
    for ax, col in zip(fig.subplots(1, max(1, len(cols)), squeeze=False)[0], cols):
        ax.hist(scores[col].to_numpy(dtype=float), bins=40, color="#4477aa")
        ax.set_title(col, fontsize=9)
    fig.tight_layout()
    png = Path(str(out) + ".scores.png")
    save_figure(fig, png, dpi=fig.dpi)
    return png


def _traversal(args) -> None:
    from biovae.pl.traverse import traversal
    from biovae.tl.interpolate import load_model

    check_output_file(args.out, [args.model], args.force)
    model = load_model(args.model)
    traversal(model, dims=args.dims, span=args.span, steps=args.steps, label=args.label, n_genes=args.genes,
              save=args.out)
    summary = {"model": args.model, "dims": args.dims, "span": args.span, "steps": args.steps, "plot": args.out}
    finish_file_output("traversal", args.out, summary, f"latent traversal of {args.model} drawn to {args.out}", args,
                       images=[("latent traversal", args.out)])
