"""`biovae demo`: both main jobs on bundled data, end to end, in a few minutes on a laptop CPU.

1. Binning: 3,000 SimLoRD reads of 4 genomes (data/demo, with the truth) -> bins, F1 and ARI.
2. Generation: a conditional VAE on scanpy's bundled pbmc68k_reduced (80% of cells), 100 new
   cells per cell type, the real-vs-generated plot and the RF-AUC against the held-out 20%.
"""

from __future__ import annotations

from pathlib import Path

from biovae.cli.common import add_runtime_options, summary_line
from biovae.errors import BiovaeError
from biovae.io.atomic import atomic_dir, write_json
from biovae.io.outputs import output_folder

DEMO_READS = Path(__file__).resolve().parents[3] / "data" / "demo"


def register(sub) -> None:
    p = sub.add_parser("demo", help="bin the bundled demo reads and generate PBMC cells",
                       description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("-o", "--out", default="demo_out", help="output folder")
    p.add_argument("--data", default=str(DEMO_READS), help="folder with reads.fa.gz and truth.tsv")
    p.add_argument("--skip-expression", action="store_true", help="only the binning part")
    add_runtime_options(p)
    p.set_defaults(handler=_demo)


def _demo(args) -> None:
    from biovae.bin.pipeline import run
    from biovae.bin.settings import BinSettings

    data, out = Path(args.data), Path(args.out)
    reads, truth = data / "reads.fa.gz", data / "truth.tsv"
    if not reads.exists():
        raise BiovaeError(f"demo reads not found at {reads}", "run from a biovae checkout or pass --data")
    s = BinSettings(seed=args.seed, threads=args.threads, device=args.device, progress=not args.quiet)
    # the whole demo folder is one atomic output: complete, or left as it was
    with output_folder(out, [data], args.force), atomic_dir(out, force=args.force) as tmp:
        summary = run(reads, tmp / "bins", truth=truth, settings=s)
        ev = summary["evaluation"]["by_sequence"]
        print(f"binning: {summary['sequences']} reads -> {summary['bins']} bins; "
              f"F1 {ev['f1_sample']:.3f}, ARI {ev['ari']:.3f}; plot {out / 'bins' / 'latent_umap.png'}")
        result = {"binning": {"bins": summary["bins"], "f1": ev["f1_sample"], "ari": ev["ari"]}}
        if not args.skip_expression:
            result["generation"] = _expression(tmp / "expression", out / "expression", args)
        write_json(tmp / "demo_summary.json", result)
        text = f"binning F1 {ev['f1_sample']:.3f} ARI {ev['ari']:.3f}"
        if "generation" in result:
            text += f"; generated PBMCs RF-AUC {result['generation']['rf_auc']:.3f}"
        _report(tmp, text, result, args)
    summary_line("demo", f"{text}; results in {out}")


def _report(out: Path, lead: str, result: dict, args) -> None:
    """OUT/report.html: both parts on one page; the binning's own report stays in OUT/bins."""
    from biovae.cli.common import run_parameters
    from biovae.report import write_report

    images = [("binning: latent space by bin and by truth", out / "bins" / "latent_umap.png")]
    outputs = ["bins/report.html", "bins/bins.tsv", "demo_summary.json"]
    if "generation" in result:
        images.append(("generation: real vs generated PBMCs", out / "expression" / "augmented.png"))
        outputs += ["expression/report.html", "expression/generated.h5ad", "expression/generation_metrics.json"]
    write_report(out / "report.html", "biovae demo", lead=lead, summary=result, images=images,
                 parameters=run_parameters(args), outputs=outputs, base=out)


def _expression(out: Path, final: Path, args) -> dict:
    import scanpy as sc

    import biovae.expr as ex
    from biovae.evaluate.generation import evaluate_generation, split_cells
    from biovae.io.expression import write_expression
    from biovae.pl.augmented import augmented

    pbmc = sc.datasets.pbmc68k_reduced()
    real = pbmc.raw.to_adata()
    real.obs = pbmc.obs[["bulk_labels"]].copy()
    train, test = split_cells(real, 0.2, label_key="bulk_labels", seed=args.seed)
    model = ex.fit(train, labels="bulk_labels", seed=args.seed, device=args.device, progress=not args.quiet)
    gen = model.generate(labels={lab: 100 for lab in model.labels}, method="mixture", seed=args.seed)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model")
    write_expression(gen, out / "generated.h5ad")
    augmented(real, gen, method="umap", label_key="bulk_labels", seed=args.seed, save=out / "augmented.png")
    m = evaluate_generation(test, gen, label_key="bulk_labels", seed=args.seed)
    write_json(out / "generation_metrics.json", m)
    _expression_report(out, model, m)
    print(f"generation: {gen.n_obs} cells of {len(model.labels)} types; RF-AUC vs held-out real "
          f"{m['overall']['rf_auc']:.3f} (0.5 = indistinguishable); plot {final / 'augmented.png'}")
    return {"cells": gen.n_obs, "rf_auc": m["overall"]["rf_auc"], "mmd2": m["overall"]["mmd2"]}


def _expression_report(out: Path, model, m: dict) -> None:
    """OUT/expression/report.html: training curves, the real-vs-generated plot, metrics per label."""
    from biovae.evaluate.generation import per_label_table
    from biovae.report import write_report

    write_report(out / "report.html", "biovae demo: generated PBMCs",
                 lead=f"RF-AUC {m['overall']['rf_auc']:.3f} against held-out real cells (0.5 = indistinguishable)",
                 summary=m["overall"], history=model.vae.history, tables={"Per label": per_label_table(m)},
                 images=[("real vs generated cells (UMAP)", out / "augmented.png")],
                 outputs=["generated.h5ad", "generation_metrics.json", "model/"], base=out)

