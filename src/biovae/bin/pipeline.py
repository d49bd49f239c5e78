"""biovae.bin.run: reads or contigs -> bins, as a pipeline of named stages.

    features  k-mer composition | coverage (reads) or abundance (contigs), cached
    scale     per-column standardisation of the usable sequences
    train     the engine's two-block VAE (composition | coverage/abundance), on a seeded sample
    encode    latent means and log-variances of every usable sequence
    cluster   HDBSCAN on the latent means, close leftovers labelled from their features, the rest unbinned
    join      (reads) bins that share a genome's k-mers joined (bin/overlap.py)
    markers   (contigs, or --quality on) single-copy marker genes: bins split / merged where they
              say so, per-bin completeness and contamination (bin/quality.py)
    write     bins.tsv, bins.binning, latent.npz, model/, latent_umap.png, [bins/], summary.json
    evaluate  (with a truth table) AMBER-style precision, recall, F1, ARI

OUT is written atomically: it is complete, or left as it was. Intermediates (features, training
checkpoint) live in OUT.partial/ until the run succeeds, so --resume picks up where a killed run
stopped.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import numpy as np

from biovae.bin import features as feat
from biovae.bin import quality
from biovae.bin.settings import BinSettings, abundance_weight
from biovae.engine import state
from biovae.errors import BiovaeError
from biovae.io.atomic import atomic_dir, write_json
from biovae.io.outputs import output_folder, work_folder
from biovae.io.bins import bin_names

UMAP_POINTS = 10_000


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Stages:
    """Records wall time and peak memory of each stage for summary.json."""

    def __init__(self, progress: bool):
        self.times: dict[str, float] = {}
        self.peaks: dict[str, float] = {}  # process peak RSS (MiB) at the end of each stage
        self.progress = progress

    def __call__(self, name: str):
        stages = self

        class _Stage:
            def __enter__(self):
                self.t0 = time.perf_counter()
                if stages.progress:
                    print(f"[biovae bin] {name} ...", flush=True)

            def __exit__(self, *exc):
                stages.times[name] = round(time.perf_counter() - self.t0, 3)
                stages.peaks[name] = round(peak_rss_mib(), 1)

        return _Stage()


def check_input(path: Path, what: str) -> None:
    if not path.exists():
        raise BiovaeError(f"{what} file {path} does not exist", "check the path")
    if not path.is_file():
        raise BiovaeError(f"{what} path {path} is not a file", "give a FASTA/FASTQ file (plain or gzip)")


def run(sequences, out, *, abundance=None, truth=None, settings: BinSettings | None = None,
        write_fasta: bool = False, resume: bool = False, force: bool = False, fasta_gzip: bool = False,
        sample_id: str | None = None) -> dict:
    """Bin the sequences of a FASTA/FASTQ file (reads mode) or, with `abundance`, contigs.

    write_fasta: also write OUT/bins/<bin>.fna (.fna.gz with fasta_gzip).
    sample_id: the CAMI @SampleID of bins.binning (default: the input file's stem).
    Returns the summary dict that is also written to OUT/summary.json. OUT may be new, empty or
    an earlier biovae output; anything else is refused unless `force` (biovae.io.outputs).
    """
    s = (settings or BinSettings()).validate()
    path, out = Path(sequences), Path(out)
    ab_path = None if abundance is None else Path(abundance)
    check_input(path, "sequence")
    if ab_path is not None:
        check_input(ab_path, "abundance")
    if s.markers is not None and quality.wanted(s.quality, ab_path is not None):
        check_input(Path(s.markers), "marker HMM")  # before training, not after
    fasta = "gzip" if write_fasta and fasta_gzip else bool(write_fasta)
    # a second run into OUT refuses; intermediates live in OUT.partial until the run succeeds
    with output_folder(out, [path, ab_path, truth], force), work_folder(out, resume) as work:
        return _run(path, out, work, ab_path, truth, s, fasta, resume, force, sample_id or _stem(path))


def _stem(path: Path) -> str:
    name = path.name
    for ext in (".gz", ".fq", ".fastq", ".fa", ".fasta", ".fna"):
        name = name[: -len(ext)] if name.endswith(ext) and len(name) > len(ext) else name
    return name


def _run(path: Path, out: Path, work: Path, ab_path: Path | None, truth, s: BinSettings, write_fasta,
         resume: bool, force: bool, sample_id: str) -> dict:
    truth_table = _read_truth(truth)
    stage = _Stages(s.progress)

    with stage("features"):
        f, reused = feat.compute(path, s, work, ab_path)
    with stage("scale"):
        x, scaling = feat.standardise(f)
    with stage("train"):
        vae = _train(x, f, s, work, resume)
        state.put(vae.state, scaling)
    with stage("encode"):
        mean, logvar = vae.encode(x)
    with stage("cluster"):
        from biovae.bin.cluster import cluster_latent

        # reads: leftovers labelled from their features (measured on reads only, docs/binning.md)
        labels_valid, cstats = cluster_latent(mean, features=None if ab_path else x,
                                              min_cluster_size=s.min_cluster_size, min_samples=s.min_samples,
                                              fit_sample=s.fit_sample, selection=s.cluster_selection,
                                              radius_factor=s.assign_radius, threads=s.threads or None, seed=s.seed)
        labels = np.full(len(f.ids), -1, dtype=np.int64)
        labels[f.valid] = labels_valid
    if ab_path is None and s.join_shared and labels.max() > 0:
        with stage("join"):
            from biovae.bin.overlap import join_shared

            labels, cstats["join"] = join_shared(path, labels, f.valid, threads=max(1, s.threads or 1),
                                                   seed=s.seed)
    marker_quality = None
    if quality.wanted(s.quality, ab_path is not None):
        with stage("markers"):
            labels, marker_quality = quality.estimate(path, f.valid, labels, marker_file=s.markers,
                                                      min_length=s.min_length, threads=s.threads or 1, mean=mean,
                                                      refine=s.marker_refine and ab_path is not None, seed=s.seed)
            if ab_path is None and "per_bin" in marker_quality:
                marker_quality["note"] = quality.READS_NOTE
    evaluation = None
    if truth_table is not None:
        with stage("evaluate"):
            from biovae.evaluate.binning import evaluate_tables
            import pandas as pd

            table = pd.DataFrame({"sequence_id": f.ids, "bin": bin_names(labels)})
            evaluation = evaluate_tables(table, truth_table, source=str(path))
    summary = _summary(path, ab_path, s, f, labels, cstats, vae, stage, reused, evaluation)
    summary["marker_quality"] = marker_quality
    with stage("write"):
        _write(out, f, labels, mean, logvar, vae, summary, truth_table, path, write_fasta, s, force, sample_id)
    return summary


def _read_truth(truth):
    if truth is None:
        return None
    from biovae.io.bins import read_truth

    return read_truth(truth)


def _train(x: np.ndarray, f: feat.Features, s: BinSettings, work: Path, resume: bool):
    # torch is imported here, after the features: its ~180 MiB would otherwise sit on top of the
    # k-mer table at the features stage's peak (docs/binning.md, memory)
    import torch

    from biovae.engine.config import Block
    from biovae.engine.vae import VAE

    n_comp = f.composition.shape[1]
    blocks = [Block("composition", n_comp, "gaussian", s.composition_weight),
              Block(f.block2, x.shape[1] - n_comp, "gaussian", _second_weight(s, f, x.shape[1] - n_comp))]
    vae = VAE(blocks=blocks, latent_dim=s.latent_dim, hidden=s.hidden, beta=s.beta, seed=s.seed)
    before = torch.get_num_threads()
    if s.train_threads:
        torch.set_num_threads(s.train_threads)
    rng = np.random.default_rng(s.seed)
    rows = np.sort(rng.choice(len(x), s.train_sample, replace=False)) if len(x) > s.train_sample else slice(None)
    try:
        vae.fit(x[rows], epochs=s.epochs, batch_size=s.batch_size, lr=s.lr, patience=s.patience,
                validation_split=s.validation_split, seed=s.seed, device=s.device, progress=s.progress,
                checkpoint_dir=str(work / "checkpoint"), checkpoint_every=5, resume=resume)
    finally:
        torch.set_num_threads(before)
    return vae


def _second_weight(s: BinSettings, f: feat.Features, width: int) -> float:
    """--coverage-weight, or its default: 1 for the reads' coverage, VAMB's share for contig abundance."""
    if s.coverage_weight is not None:
        return s.coverage_weight
    return abundance_weight(f.composition.shape[1], width) if f.block2 == "abundance" else 1.0


def _summary(path, ab_path, s, f, labels, cstats, vae, stage, reused, evaluation) -> dict:
    from biovae import __version__

    binned = labels >= 0
    sizes = np.bincount(labels[binned])
    bp = np.bincount(labels[binned], weights=f.lengths[binned], minlength=len(sizes)).astype(np.int64)
    out = {
        "biovae_version": __version__,
        "mode": "contigs" if ab_path else "reads",
        "input": str(path), "abundance": None if ab_path is None else str(ab_path),
        "sequences": int(len(f.ids)), "bases": int(f.lengths.sum()),
        "too_short_or_empty": int((~f.valid).sum()),
        "bins": int(len(sizes)), "binned": int((labels >= 0).sum()), "unbinned": int((labels < 0).sum()),
        "bin_sizes": {name: {"sequences": int(n), "bases": int(bp[b])}
                      for b, (name, n) in enumerate(zip(bin_names(np.arange(len(sizes))), sizes))},
        "epochs_trained": len(vae.history),
        "final_val_loss": vae.history[-1]["val_loss"] if vae.history else None,
        "features_from_cache": reused,
        "clustering": {k: v for k, v in cstats.items() if k not in ("cluster_sizes", "radius")},
        "stage_seconds": stage.times,
        "peak_rss_mib_after_stage": stage.peaks,
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "settings": s.to_dict(),
    }
    if evaluation is not None:
        out["evaluation"] = {k: v for k, v in evaluation.items() if k not in ("per_bin", "per_genome")}
    out["warning"] = low_binning_warning(out)
    return out


def low_binning_warning(summary: dict) -> str | None:
    """A sentence for a run that produced little: fewer than half of its sequences binned, or all
    of them in one bin; how many, the likely cause and the option to try. None otherwise."""
    n, binned, short = summary["sequences"], summary["binned"], summary["too_short_or_empty"]
    if n and 2 * binned >= n and summary["bins"] == 1:
        return (f"all {binned:,} binned sequences form one bin: expected for a single genome, otherwise the "
                f"features hold no genome signal (long N runs, random or very short sequences); check "
                f"latent_umap.png, or try --min-cluster-size 10")
    if n == 0 or 2 * binned >= n:
        return None
    s = summary["settings"]
    head = f"only {binned:,} of {n:,} sequences binned"
    if 2 * short >= n:
        return (f"{head}: {short:,} are shorter than --min-length {s['min_length']} or have no ACGT k-mer; "
                f"try --min-length {max(100, s['min_length'] // 4)} if they are real reads")
    if summary["bins"] == 0:
        return (f"{head}: no cluster found in the latent space (one genome at low coverage, or sequences "
                f"without genome signal such as long N runs); try --min-cluster-size 10")
    return (f"{head}: most lie between or away from the {summary['bins']} bins; "
            f"try --assign-radius {2 * (s['assign_radius'] or 5):g}")


def _write(out, f, labels, mean, logvar, vae, summary, truth_table, path, write_fasta, s, force, sample_id) -> None:
    from biovae.io.bins import write_bin_fasta, write_bins_tsv, write_cami_binning, write_vamb_clusters

    t0 = time.perf_counter()
    with atomic_dir(out, force=force) as tmp:
        write_bins_tsv(tmp / "bins.tsv", list(f.ids), labels)
        write_cami_binning(tmp / "bins.binning", list(f.ids), labels, sample_id=sample_id, lengths=f.lengths)
        write_vamb_clusters(tmp / "clusters.tsv", list(f.ids), bin_names(labels))
        ids_valid = f.ids[f.valid]
        with open(tmp / "latent.npz", "wb") as fh:
            np.savez_compressed(fh, ids=ids_valid, mean=mean, logvar=logvar)
        vae.metadata = {"kind": "binning", "block2": f.block2, "settings": s.to_dict()}
        vae.save(tmp / "model")
        if s.plot != "none":
            _plot(tmp / "latent_umap.png", mean, np.asarray(bin_names(labels[f.valid]), dtype=object),
                  _truth_labels(truth_table, ids_valid), s.seed, s.plot)
        if write_fasta:
            from biovae.io.fastx import read_fastx

            seqs = read_fastx(path)
            write_bin_fasta(tmp / "bins", seqs.ids, [q.decode() for q in seqs.seqs], labels,
                            compress=write_fasta == "gzip")
        summary["outputs"] = sorted(p.name for p in tmp.iterdir()) + ["summary.json"]
        summary["stage_seconds"]["write"] = round(time.perf_counter() - t0, 3)  # all but summary.json
        summary["peak_rss_mib"] = round(peak_rss_mib(), 1)
        summary["outputs"].append("report.html")
        write_json(tmp / "summary.json", summary)
        _report(tmp, summary, vae.history)


def headline(summary: dict) -> str:
    """The run in one line (the CLI's summary line and the report's lead)."""
    from biovae.evaluate.binning import f1_ari_text

    text = (f"{summary['sequences']:,} sequences -> {summary['bins']} bins, {summary['unbinned']:,} unbinned; "
            f"{sum(summary['stage_seconds'].values()):.0f} s, peak {summary['peak_rss_mib']:.0f} MiB")
    if summary.get("evaluation"):
        text += f"; {f1_ari_text(summary['evaluation'])} against the truth"
    markers = quality.headline(summary.get("marker_quality"))
    if markers:
        text += f"; {markers}"
    if summary.get("warning"):
        text += f"; WARNING: {summary['warning']}"
    return text


def _report(folder: Path, summary: dict, history: list[dict]) -> None:
    """OUT/report.html: the summary, training curves, latent plot, bin sizes and settings."""
    import pandas as pd

    from biovae.report import write_report

    sizes = pd.DataFrame(summary["bin_sizes"]).T.rename_axis("bin")
    per_bin = (summary.get("marker_quality") or {}).get("per_bin")
    if per_bin:
        sizes = sizes.join(pd.DataFrame(per_bin).T)
    shown = {k: v for k, v in summary.items() if k not in ("settings", "bin_sizes", "outputs")}
    if per_bin:
        shown["marker_quality"] = {k: v for k, v in summary["marker_quality"].items() if k != "per_bin"}
    write_report(folder / "report.html", "biovae bin", lead=headline(summary), summary=shown, history=history,
                 images=[] if summary["settings"]["plot"] == "none" else
                 [(f"latent space ({summary['settings']['plot'].upper()} of the VAE means), by bin and by truth",
                   folder / "latent_umap.png")],
                 tables={"Bins": sizes}, parameters=summary["settings"], outputs=summary["outputs"], base=folder)


def _truth_labels(truth_table, ids):
    if truth_table is None:
        return None
    lookup = dict(zip(truth_table["sequence_id"].astype(str), truth_table["genome"].astype(str)))
    return np.array([lookup.get(i, "unknown") for i in ids], dtype=object)


def _plot(path: Path, mean, bins, truth, seed, method) -> None:
    from biovae.pl.latent import plot_latent

    plot_latent(mean, bins, truth=truth, path=path, max_points=UMAP_POINTS, seed=seed, method=method)
