"""`biovae bin` and `biovae evaluate`: thin skins over biovae.bin.run and evaluate_files."""

from __future__ import annotations

import argparse
from pathlib import Path

from biovae.bin.settings import BinSettings
from biovae.cli.common import add_runtime_options, run_parameters, summary_line

_D = BinSettings()


def register(sub) -> None:
    p = sub.add_parser(
        "bin", help="bin long reads (or contigs with --abundance) into genomes",
        description="Bin metagenomic long reads by composition and alignment-free coverage, or assembled "
        "contigs by composition and per-sample abundance (--abundance). Writes OUT/bins.tsv, "
        "bins.binning, clusters.tsv (VAMB layout), latent.npz, model/, latent_umap.png and summary.json.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("sequences", help="reads or contigs: FASTA or FASTQ, plain or gzip (detected from content)")
    p.add_argument("-o", "--out", required=True, help="output folder (written atomically)")
    p.add_argument("--abundance", help="contigs mode: per-contig abundance, format detected from the content: a sorted, "
                   "indexed BAM, a MetaBAT2 jgi depth file, a CoverM contig TSV, a strobealign --aemb file or a VAMB TSV")
    p.add_argument("--truth", help="evaluate against this truth table (sequence_id, genome[, length]) or CAMI gold standard")
    p.add_argument("--write-fasta", action="store_true", help="also write bins/<bin>.fna (CheckM2/GTDB-Tk input)")
    p.add_argument("--fasta-gzip", action="store_true", help="with --write-fasta: write bins/<bin>.fna.gz")
    p.add_argument("--sample-id", help="CAMI @SampleID of bins.binning (default: the input file's stem); "
                   "AMBER needs the gold standard's")
    p.add_argument("--resume", action="store_true", help="reuse cached features and the training checkpoint of a stopped run")
    f = p.add_argument_group("features")
    f.add_argument("--k", type=int, default=_D.k, help="composition k-mer size (3..6)")
    f.add_argument("--cov-k", type=int, default=_D.cov_k, help="reads mode: coverage k-mer size")
    f.add_argument("--cov-bins", type=int, default=_D.cov_bins, help="coverage histogram bins")
    f.add_argument("--cov-width", type=int, default=_D.cov_width, help="k-mer counts per coverage bin (linear scale)")
    f.add_argument("--cov-scale", choices=["linear", "log"], default=_D.cov_scale,
                   help="coverage bins of equal width, or widening geometrically from count 1 to 128")
    f.add_argument("--min-length", type=int, default=_D.min_length, help="shorter sequences are reported unbinned")
    m = p.add_argument_group("model and training")
    m.add_argument("--latent-dim", type=int, default=_D.latent_dim)
    m.add_argument("--hidden", type=int, nargs="+", default=_D.hidden, help="encoder layer sizes")
    m.add_argument("--beta", type=float, default=_D.beta, help="KL weight")
    m.add_argument("--composition-weight", type=float, default=_D.composition_weight)
    m.add_argument("--coverage-weight", type=float, default=_D.coverage_weight,
                   help="coverage (reads; default 1) or abundance (contigs; default VAMB's share: 5.7 x composition "
                   "columns / abundance columns) block weight, per column")
    m.add_argument("--epochs", type=int, default=_D.epochs, help="maximum epochs (early stopping may end sooner)")
    m.add_argument("--batch-size", type=int, default=_D.batch_size)
    m.add_argument("--lr", type=float, default=_D.lr)
    m.add_argument("--patience", type=int, default=_D.patience, help="early-stopping patience, epochs")
    m.add_argument("--train-threads", type=int, default=_D.train_threads,
                   help="torch threads while training (0: as --threads); one is fastest for this small network")
    m.add_argument("--train-sample", type=int, default=_D.train_sample, help="train on at most this many sequences")
    c = p.add_argument_group("clustering")
    c.add_argument("--min-cluster-size", type=int, default=None, help="HDBSCAN min cluster size (None: sqrt of the points fitted)")
    c.add_argument("--min-samples", type=int, default=None, help="HDBSCAN min samples (None: min cluster size / 10, within 5..25)")
    c.add_argument("--fit-sample", type=int, default=_D.fit_sample, help="HDBSCAN is fitted on at most this many points")
    c.add_argument("--assign-radius", type=float, default=None,
                   help="a leftover point joins its nearest bin when within the bin's radius; default: the 99%% "
                   "quantile of the same distance over the fitted sample's points of that bin; a number N: N times "
                   "the bin's 99%% nearest-neighbour radius among its core points (5 was the earlier default)")
    p.add_argument("--plot", choices=["umap", "pca", "none"], default=_D.plot,
                   help="latent_umap.png: principal components (fast), UMAP (numba compiles it on each run, tens of seconds) or none")
    c.add_argument("--cluster-selection", choices=["leaf", "eom"], default=_D.cluster_selection,
                   help="HDBSCAN cluster selection (leaf keeps touching genomes apart)")
    c.add_argument("--no-join-shared", dest="join_shared", action="store_false",
                   help="reads: do not join bins whose reads share a genome's k-mers (one small genome cut in two)")
    q = p.add_argument_group("bin quality (single-copy marker genes: pyrodigal + pyhmmer)")
    q.add_argument("--quality", choices=["auto", "on", "off"], default=_D.quality,
                   help="per-bin completeness and contamination: auto = contigs only, on = also reads (slow), off")
    q.add_argument("--markers", help="HMMER3 file of single-copy marker profiles with trusted cut-offs "
                   "(default: $BIOVAE_MARKER_HMM, else the marker.hmm of an installed metacoag or SemiBin)")
    q.add_argument("--no-marker-refine", dest="marker_refine", action="store_false",
                   help="report marker quality but do not split contaminated bins or merge complementary fragments")
    add_runtime_options(p)
    p.set_defaults(handler=_bin)

    e = sub.add_parser("evaluate", help="score bins against a truth table (AMBER definitions)",
                       description="Precision, recall, F1 and ARI of a binning, per sequence and per base, "
                       "overall and per bin, as AMBER defines them.")
    e.add_argument("bins", help="bins.tsv (or a CAMI binning file)")
    e.add_argument("--truth", required=True, help="truth table or CAMI gold standard")
    e.add_argument("-o", "--out", help="folder for evaluation.json and per_bin.tsv (default: beside BINS)")
    add_runtime_options(e, device=False)
    e.set_defaults(handler=_evaluate, command="evaluate")


def _bin(args) -> None:
    from biovae.bin.pipeline import headline, run

    s = BinSettings(k=args.k, cov_k=args.cov_k, cov_bins=args.cov_bins, cov_width=args.cov_width,
                    cov_scale=args.cov_scale,
                    min_length=args.min_length, latent_dim=args.latent_dim, hidden=args.hidden, beta=args.beta,
                    composition_weight=args.composition_weight, coverage_weight=args.coverage_weight,
                    epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=args.patience,
                    train_sample=args.train_sample, train_threads=args.train_threads, min_cluster_size=args.min_cluster_size,
                    min_samples=args.min_samples, fit_sample=args.fit_sample,
                    cluster_selection=args.cluster_selection, join_shared=args.join_shared,
                    assign_radius=args.assign_radius, plot=args.plot, seed=args.seed,
                    threads=args.threads, device=args.device, progress=not args.quiet,
                    quality=args.quality, markers=args.markers, marker_refine=args.marker_refine)
    summary = run(args.sequences, args.out, abundance=args.abundance, truth=args.truth, settings=s,
                  write_fasta=args.write_fasta, resume=args.resume, fasta_gzip=args.fasta_gzip,
                  sample_id=args.sample_id, force=args.force)
    summary_line("bin", f"{headline(summary)}; results in {args.out}")


def _evaluate(args) -> None:
    from biovae.evaluate.binning import evaluate_files, f1_ari_text

    import pandas as pd

    from biovae.report import report_path, write_report

    from biovae.io.outputs import check_output_file

    out = args.out or str(Path(args.bins).resolve().parent)
    for name in ("evaluation.json", "per_bin.tsv"):
        check_output_file(Path(out) / name, [args.bins, args.truth], args.force,
                          sidecars=(".report.html",) if name == "evaluation.json" else ())
    result = evaluate_files(args.bins, args.truth, out_dir=out)
    lead = f1_ari_text(result)
    shown = {k: v for k, v in result.items() if k not in ("per_bin", "per_genome")}
    tables = {"Per bin": pd.read_csv(Path(out) / "per_bin.tsv", sep="\t", index_col=0)}
    write_report(report_path(Path(out) / "evaluation.json"), "biovae evaluate", lead=lead, summary=shown,
                 tables=tables, parameters=run_parameters(args), outputs=["evaluation.json", "per_bin.tsv"], base=out)
    summary_line("evaluate", f"{lead}; written to {out}/evaluation.json")
