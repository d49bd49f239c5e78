"""biovae.expr.run: the whole `biovae fit` workflow, from a file to a model folder.

    summary = biovae.expr.run("cells.h5ad", "model", FitSettings(labels="cell_type", seed=1))

It owns the output rules (biovae.io.outputs: a new, empty or earlier biovae folder; --force for
anything else), the lock, the folder of checkpoints (OUT.partial, kept for `resume` when a fit
is stopped), the atomic write of the model with its summary.json and report.html, and the notes
about a fit that produced little (biovae.engine.fit_notes).
"""

from __future__ import annotations

from pathlib import Path

from biovae.engine.fit_notes import training_notes
from biovae.errors import BiovaeError
from biovae.expr import calibrate
from biovae.expr.choose import describe
from biovae.expr.fit import fit
from biovae.expr.settings import FitSettings
from biovae.io.atomic import output_lock
from biovae.io.outputs import check_output_folder, work_folder


def run(data, out, settings: FitSettings | None = None, *, force: bool = False, resume: bool = False,
        parameters: dict | None = None) -> dict:
    """Fit a model to the expression file `data` and write it to the folder `out`.

    Returns the summary (also in OUT/summary.json), with "headline": the run in one line, any
    warnings included. parameters: the options to show in the report (default: the settings).
    """
    from biovae.report import render_report

    s = settings or FitSettings()
    genes_file = s.genes if s.genes and Path(s.genes).is_file() else None
    out = check_output_folder(out, [data, genes_file], force)
    with output_lock(out), work_folder(out, resume) as work:
        adata = read_input(data, s)
        # the layer was taken when reading
        model = fit(adata, settings=s.changed(layer=None), checkpoint_dir=str(work / "checkpoint"), resume=resume)
        h = model.vae.history
        summary = {"data": str(data), "cells": adata.n_obs, "genes": adata.n_vars, "labels": model.labels,
                   "input_kind": model.pre.kind, "likelihood": model.pre.likelihood,
                   "transform": model.pre.transform, "calibrated": calibrate.present(model),
                   "likelihood_choice": model.choice, "epochs_trained": len(h),
                   "final_train_loss": h[-1]["train_loss"], "final_val_loss": h[-1]["val_loss"], "seed": s.seed,
                   "notes": training_notes(h, s.beta)}
        lead = (f"{adata.n_obs} cells x {adata.n_vars} genes, {model.pre.kind} ({model.pre.likelihood}, "
                f"{model.pre.transform}{', calibrated' if summary['calibrated'] else ''}), {len(h)} epochs, "
                f"validation loss {h[-1]['val_loss'] or float('nan'):.4g}")
        if model.choice:
            lead += f"; {describe(model.choice)}"
        lead += "".join(f"; WARNING: {note}" for note in summary["notes"])
        page = render_report("biovae fit", lead=lead, summary=summary, history=h,
                             parameters=parameters or s.to_dict(),
                             tables={"Labels": label_table(model, adata, s.labels)})
        model.save(out, summary=summary, extras={"report.html": page}, force=force)
    return {**summary, "headline": lead}


def read_input(data, s: FitSettings):
    """The data of a fit: read whole (genes selected with s.genes), or with s.backed opened for
    reading in row chunks."""
    from biovae.io.expression import read_expression

    if not s.backed:
        adata = read_expression(data, genes_in_rows=s.genes_in_rows, layer=s.layer)
        if s.genes:
            from biovae.expr.genes import select_genes

            adata = select_genes(adata, s.genes)
        return adata
    from biovae.io.backed import open_backed

    if s.genes:
        raise BiovaeError("--genes selects columns of a matrix read whole, which --backed does not do",
                          "write the selected genes to a new .h5ad (adata[:, genes].write_h5ad) and fit that")
    if s.genes_in_rows:
        raise BiovaeError("--genes-in-rows applies to CSV/TSV tables, which --backed cannot read",
                          "give an .h5ad (cells in rows) with --backed")
    return open_backed(data, s.layer)


def label_table(model, adata, key):
    """Cells per label of the training data, for the fit report."""
    if not model.labels or not isinstance(key, str) or key not in adata.obs:
        return None
    return adata.obs[key].astype(str).value_counts().rename("training cells").to_frame().rename_axis("label")
