"""`biovae fit | generate | encode | plot-model | plot-aug | evaluate-generation`: skins over
biovae.expr (fit: biovae.expr.run with a FitSettings), biovae.pl and biovae.evaluate.generation.
Each writes a JSON summary beside its output."""

from __future__ import annotations

import argparse
from pathlib import Path

from biovae.cli.common import (add_runtime_options, distributed_options, finish_file_output, run_parameters,
                               summary_line)
from biovae.errors import BiovaeError
from biovae.expr.settings import FitSettings
from biovae.io.atomic import write_json
from biovae.io.outputs import check_output_file
from biovae.report import report_path, write_report

_FMT = argparse.ArgumentDefaultsHelpFormatter
_D = FitSettings()


def _data_options(p) -> None:
    p.add_argument("--layer", help="AnnData layer to use ('raw' for .raw); default X")
    p.add_argument("--genes-in-rows", action="store_true", help="CSV/TSV has genes in rows and cells in columns")


def register(sub) -> None:
    p = sub.add_parser("fit", help="fit a (conditional) VAE to expression data", formatter_class=_FMT,
                       description="Fit a VAE to a cells x genes matrix (h5ad, CSV/TSV, or a 10x mtx folder); "
                       "with --labels, a conditional VAE that can generate cells of each label.")
    p.add_argument("data", help="h5ad, CSV/TSV (cells x genes) or 10x mtx folder")
    p.add_argument("-o", "--out", required=True, help="model folder (written atomically)")
    p.add_argument("--labels", help="obs column (h5ad) with one label per cell: makes a conditional VAE")
    p.add_argument("--batch-key", help="obs column naming each cell's batch: a batch covariate (batch-corrected "
                   "latent, generation per batch)")
    _data_options(p)
    p.add_argument("--genes", help="fit on these genes only: a boolean var column (e.g. highly_variable) or a "
                   "file with one gene name per line; default all genes")
    p.add_argument("--likelihood", default=_D.likelihood,
                   help="auto (default: hurdle and hurdle_cell both fitted, the one with the lower loss on the "
                   "validation part of the training cells kept), hurdle, hurdle_cell, normal, gaussian, "
                   "bernoulli (values); nb, zinb, poisson (raw counts)")
    p.add_argument("--transform", default=_D.transform, help="auto, normalize_log1p, log1p, none (non-count likelihoods)")
    p.add_argument("--input-kind", default=_D.input_kind, choices=["auto", "counts", "full_length", "log_normalised"],
                   help="what the values are (auto: detected); sets the auto transform and the generated cells' "
                   "support (whole counts for counts); scaled data with negatives are refused")
    p.add_argument("--latent-dim", type=int, default=_D.latent_dim)
    p.add_argument("--hidden", type=int, nargs="+", default=_D.hidden)
    p.add_argument("--beta", type=float, default=_D.beta)
    p.add_argument("--dropout", type=float, default=_D.dropout)
    p.add_argument("--condition-every-layer", action=argparse.BooleanOptionalAction, default=_D.condition_every_layer,
                   help="feed the label to every decoder layer, not only its input (generated cells match "
                   "their type more often)")
    p.add_argument("--marginal-start", action=argparse.BooleanOptionalAction, default=_D.marginal_start,
                   help="hurdle likelihoods: start the decoder at each gene's marginal (more realistic cells "
                   "from short fits)")
    p.add_argument("--calibrate", action=argparse.BooleanOptionalAction, default=_D.calibrate,
                   help="hurdle likelihoods: map each gene's generated non-zero values onto the training cells' "
                   "quantiles (and full-length cells onto their totals)")
    p.add_argument("--epochs", type=int, default=_D.epochs, help="maximum epochs (early stopping may end sooner)")
    p.add_argument("--batch-size", type=int, default=_D.batch_size)
    p.add_argument("--lr", type=float, default=_D.lr)
    p.add_argument("--patience", type=int, default=_D.patience)
    p.add_argument("--validation-split", type=float, default=_D.validation_split)
    p.add_argument("--resume", action="store_true", help="continue from OUT.partial/checkpoint of a stopped fit")
    p.add_argument("--backed", action="store_true",
                   help="read the .h5ad in row chunks and never hold the whole matrix (data larger than memory)")
    add_runtime_options(p, distributed=True)
    p.set_defaults(handler=_fit)

    g = sub.add_parser("generate", help="generate cells from a fitted model", formatter_class=_FMT)
    g.add_argument("model", help="model folder written by `biovae fit`")
    g.add_argument("-n", type=int, default=100, help="cells in all (shared over labels) unless --label is given")
    g.add_argument("--label", action="append", default=[], metavar="NAME=N", help="N cells of label NAME (repeatable)")
    g.add_argument("--method", default="mixture", choices=["mixture", "prior", "posterior"],
                   help="where latent points come from: a Gaussian mixture of the label's training latents, "
                   "N(0, I), or around encoded training cells")
    g.add_argument("--batch", help="generate cells of this batch (a model fitted with --batch-key; default: "
                   "batches drawn uniformly)")
    g.add_argument("-o", "--out", required=True, help="output .h5ad or .csv")
    add_runtime_options(g, device=False)
    g.set_defaults(handler=_generate)

    c = sub.add_parser("encode", help="latent coordinates of cells under a fitted model", formatter_class=_FMT,
                       description="Write DATA with the model's latent means in obsm['X_biovae'] (and with "
                       "--normalized a denoised, normalised expression layer 'biovae_normalized'); everything "
                       "else in DATA is kept.")
    c.add_argument("model", help="model folder written by `biovae fit`")
    c.add_argument("data", help="h5ad, loom, 10x .h5, CSV/TSV or 10x mtx folder with the model's genes")
    c.add_argument("--labels", help="obs column of the labels (a conditional model; default: the fit's column)")
    _data_options(c)
    c.add_argument("--normalized", action="store_true",
                   help="also write layers['biovae_normalized'] (the model's genes only in the output)")
    c.add_argument("-o", "--out", required=True, help="output .h5ad")
    add_runtime_options(c, device=False)
    c.set_defaults(handler=_encode)

    m = sub.add_parser("plot-model", help="draw a model's architecture", formatter_class=_FMT)
    m.add_argument("model")
    m.add_argument("-o", "--out", help="PNG/PDF/SVG (default MODEL/architecture.png)")
    add_runtime_options(m, device=False)
    m.set_defaults(handler=_plot_model)

    a = sub.add_parser("plot-aug", help="real vs generated cells in 2-D", formatter_class=_FMT)
    a.add_argument("real")
    a.add_argument("generated")
    a.add_argument("--labels", help="obs column of the real cells' labels")
    a.add_argument("--method", default="pca", choices=["pca", "tsne", "umap"])
    a.add_argument("--layer", help="layer of the real data ('raw' for .raw)")
    a.add_argument("-o", "--out", default="augmented.png")
    add_runtime_options(a, device=False)
    a.set_defaults(handler=_plot_aug)

    e = sub.add_parser("evaluate-generation", help="realism metrics of generated vs held-out real cells",
                       formatter_class=_FMT)
    e.add_argument("real", help="held-out real cells (never the training cells)")
    e.add_argument("generated")
    e.add_argument("--labels", help="obs column of the real cells' labels")
    e.add_argument("--layer", help="layer of the real data ('raw' for .raw)")
    e.add_argument("-o", "--out", default="generation_metrics.json")
    add_runtime_options(e, device=False)
    e.set_defaults(handler=_evaluate)


def _fit(args) -> None:
    from biovae.expr.workflow import run

    s = FitSettings(labels=args.labels, batch_key=args.batch_key, layer=args.layer, genes=args.genes,
                    genes_in_rows=args.genes_in_rows, input_kind=args.input_kind, backed=args.backed,
                    likelihood=args.likelihood, transform=args.transform, latent_dim=args.latent_dim,
                    hidden=args.hidden, beta=args.beta, dropout=args.dropout,
                    condition_every_layer=args.condition_every_layer, marginal_start=args.marginal_start,
                    calibrate=args.calibrate, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=args.patience,
                    validation_split=args.validation_split, seed=args.seed, device=args.device,
                    progress=not args.quiet, **distributed_options(args))
    summary = run(args.data, args.out, s, force=args.force, resume=args.resume, parameters=run_parameters(args))
    summary_line("fit", f"{summary['headline']}; model in {args.out}")


def _label_counts(items: list[str]) -> dict[str, int] | None:
    if not items:
        return None
    out = {}
    for item in items:
        name, sep, count = item.rpartition("=")
        if not sep or not name or not count.isdigit():
            raise BiovaeError(f"--label {item!r} is not NAME=N", "write e.g. --label 'B cell=200'")
        out[name] = int(count)
    return out


def _generate(args) -> None:
    from biovae.expr import load
    from biovae.io.expression import write_expression

    check_output_file(args.out, [args.model], args.force)
    model = load(args.model)
    new = model.generate(args.n, labels=_label_counts(args.label), method=args.method, seed=args.seed,
                         batch=args.batch)
    write_expression(new, args.out)
    counts = new.obs["label"].value_counts().to_dict()
    summary = {"model": args.model, "cells": new.n_obs, "per_label": counts, "method": args.method,
               "seed": args.seed, "output": args.out}
    lead = f"{new.n_obs} cells ({len(counts)} labels, {args.method}) written to {args.out}"
    finish_file_output("generate", args.out, summary, lead, args)


def _encode(args) -> None:
    from biovae.expr import load
    from biovae.io.expression import read_expression, write_expression

    if not str(args.out).lower().endswith(".h5ad"):
        raise BiovaeError(f"encode writes an .h5ad, not {args.out}", "name the output OUT.h5ad")
    check_output_file(args.out, [args.model, args.data], args.force)
    model = load(args.model)
    adata = read_expression(args.data, genes_in_rows=args.genes_in_rows)  # X stays X in the output
    model.encode(adata, labels=args.labels, layer=args.layer)
    if args.normalized:
        from biovae.io.expression import align_genes

        adata = align_genes(adata, model.genes, "the data to encode")
        model.denoised(adata, labels=args.labels, layer=args.layer)
    write_expression(adata, args.out)
    summary = {"model": args.model, "data": args.data, "cells": adata.n_obs, "latent_dim": model.vae.latent_dim,
               "normalized_layer": bool(args.normalized), "seed": args.seed, "output": args.out}
    lead = f"{adata.n_obs} cells encoded ({model.vae.latent_dim} dimensions in obsm['X_biovae']) to {args.out}"
    finish_file_output("encode", args.out, summary, lead, args)


def _plot_model(args) -> None:
    from biovae.engine.vae import VAE
    from biovae.pl.model_graph import model_graph

    out = args.out or str(Path(args.model) / "architecture.png")
    check_output_file(out, [args.model] if args.out else [], args.force, sidecars=(".report.html",))
    model_graph(VAE.load(args.model), save=out)
    write_report(report_path(out), "biovae plot-model", lead=f"architecture of {args.model}",
                 images=[("model architecture", out)], parameters=run_parameters(args))
    summary_line("plot-model", f"architecture drawn to {out}")


def _read_pair(args):
    from biovae.io.expression import read_expression

    real = read_expression(args.real, layer=args.layer)
    return real, read_expression(args.generated)


def _plot_aug(args) -> None:
    from biovae.pl.augmented import augmented

    check_output_file(args.out, [args.real, args.generated], args.force)
    real, gen = _read_pair(args)
    augmented(real, gen, method=args.method, label_key=args.labels, seed=args.seed, save=args.out)
    summary = {"real": args.real, "generated": args.generated, "real_cells": real.n_obs,
               "generated_cells": gen.n_obs, "method": args.method, "plot": args.out}
    lead = f"{real.n_obs} real and {gen.n_obs} generated cells drawn to {args.out}"
    finish_file_output("plot-aug", args.out, summary, lead, args, images=[("real vs generated cells", args.out)])


def _evaluate(args) -> None:
    from biovae.evaluate.generation import evaluate_generation, per_label_table

    from biovae import __version__

    check_output_file(args.out, [args.real, args.generated], args.force, sidecars=(".report.html",))
    real, gen = _read_pair(args)
    result = evaluate_generation(real, gen, label_key=args.labels, seed=args.seed)
    write_json(args.out, {**result, "biovae_version": __version__})
    o = result["overall"]
    lead = (f"RF-AUC {o['rf_auc']:.3f} (0.5 = indistinguishable), MMD2 {o['mmd2']:.4f}, "
            f"mean corr {o['mean_corr']:.3f}")
    write_report(report_path(args.out), "biovae evaluate-generation", lead=lead, summary=o,
                 tables={"Per label": per_label_table(result)}, parameters=run_parameters(args),
                 outputs=[Path(args.out).name])
    summary_line("evaluate-generation", f"{lead}; written to {args.out}")
