#!/usr/bin/env python3
"""Binning on the development, confirmation and real-read sets, and re-clustering of a saved latent.

    # one end-to-end run per set (wall time, peak RSS of the child, AMBER figures):
    python benchmarks/binning_sets.py run dev confirm real
    # bin/overlap.py's share of each pair of bins (bins of a run made with --extra --no-join-shared):
    python benchmarks/binning_sets.py shares confirm_b dev_hifi
    # cluster the latent.npz of those runs again with other clustering settings (no training):
    python benchmarks/binning_sets.py recluster dev --valley 0.3 0.5 0.7

Sets (git-ignored under benchmarks/data/):
  dev      benchmarks/simulate.py --mode simlord -n 30000 --seed 1 -o benchmarks/data/sim30k
           (the seven shared genomes; clustering settings are chosen here only)
  demo     data/demo (committed: 3,000 SimLoRD reads of four shared genomes; development too)
  confirm  benchmarks/confirm_set.py sim -n 30000 --seed 7 -o benchmarks/data/confirm30k
           (its results were read many times while the code changed: "development (seen)" since)
  real     benchmarks/confirm_set.py real --seed 7 -o benchmarks/data/real_mix
  confirm_b  benchmarks/confirm_set.py sim --genomes b -n 30000 --seed 23 -o benchmarks/data/confirm_b
           (round 3's confirmation set, run once with round 3's code; development (seen) from round 4 on)
  confirm_c  benchmarks/confirm_set.py sim --genomes c --hifi-share 0.2 -n 30000 --seed 59 -o benchmarks/data/confirm_c
           (round 4's confirmation set: eight other genomes, three technologies, run once with the final code)
  dev_hifi, dev_hifi_a  confirm_b's and confirm30k's genomes with a fifth HiFi-like reads (15,000 reads;
           seeds 24 and 8; development)

Figures: read (sequence) F1 and ARI by AMBER's definitions (biovae.evaluate.binning), bins, the
genomes with >= 150 reads that have a bin of their own (the bin that holds most of the genome's
reads is mapped to that genome), wall seconds and peak RSS. Results go to benchmarks/out/.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data"
OUT = ROOT / "benchmarks" / "out"
SETS = {"dev": DATA / "sim30k", "demo": ROOT / "data" / "demo", "confirm": DATA / "confirm30k", "real": DATA / "real_mix",
        "confirm_b": DATA / "confirm_b", "confirm_c": DATA / "confirm_c", "dev_hifi": DATA / "dev_hifi",
        "dev_hifi_a": DATA / "dev_hifi_a"}


def figures(evaluation: dict) -> dict:
    ev = evaluation["by_sequence"]
    per = evaluation.get("per_genome", [])
    per_bin = {r["bin"]: r["genome"] for r in evaluation.get("per_bin", [])}
    big = [g for g in per if g["sequences"] >= 150]
    own = [g for g in big if g["best_bin"] is not None and per_bin.get(g["best_bin"]) == g["genome"]]
    return {"f1": round(ev["f1_sample"] or 0, 4), "ari": round(ev["ari"] or 0, 4),
            "precision": round(ev["precision_sample"] or 0, 4), "recall": round(ev["recall_sample"] or 0, 4),
            "binned": round(ev["fraction_binned"], 4), "bins": len(per_bin),
            "genomes_150_own_bin": f"{len(own)}/{len(big)}",
            "missing": sorted(g["genome"] for g in big if g not in own)}


def by_technology(name: str, bins) -> dict:
    """Read F1 and ARI of the reads of each sequencing technology alone (sets with technology.tsv)."""
    import pandas as pd

    from biovae.evaluate.binning import evaluate_tables
    from biovae.io.bins import read_truth

    path = SETS[name] / "technology.tsv"
    if not path.exists():
        return {}
    tech = pd.read_csv(path, sep="\t", dtype=str).set_index("sequence_id")["technology"]
    truth = read_truth(SETS[name] / "truth.tsv")
    out = {}
    for t in sorted(tech.unique()):
        ids = set(tech.index[tech == t])
        ev = evaluate_tables(bins[bins["sequence_id"].isin(ids)], truth[truth["sequence_id"].isin(ids)])
        out[t] = {k: round(ev["by_sequence"][k] or 0, 4) for k in ("f1_sample", "ari", "fraction_binned")}
    return out


def run_set(name: str, extra: list[str]) -> dict:
    folder = SETS[name]
    out = OUT / f"bin_{name}"
    reads = next(p for p in (folder / "reads.fq.gz", folder / "reads.fa.gz") if p.exists())
    cmd = [sys.executable, "-m", "biovae", "bin", str(reads), "-o", str(out),
           "--truth", str(folder / "truth.tsv"), "--threads", "2", "--seed", "1", "--quiet", *extra]
    if out.exists():
        import shutil

        shutil.rmtree(out)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    s = json.loads((out / "summary.json").read_text())
    import pandas as pd

    from biovae.evaluate.binning import evaluate_files

    ev = evaluate_files(out / "bins.tsv", folder / "truth.tsv", out_dir=OUT / f"eval_{name}")
    row = {"set": name, "command": " ".join(cmd[1:]), "wall_s": round(wall, 1), "peak_rss_mib": s["peak_rss_mib"],
           "stage_seconds": s["stage_seconds"], **figures(ev), "clustering": s["clustering"],
           "by_technology": by_technology(name, pd.read_csv(out / "bins.tsv", sep="\t", dtype=str))}
    return row


def set_features(name: str):
    """The standardised input features of a set (the rows of its latent.npz), computed once and kept
    in OUT/features_NAME/ (biovae.bin.features' cache)."""
    from biovae.bin import features as feat
    from biovae.bin.settings import BinSettings

    folder = SETS[name]
    reads = next(p for p in (folder / "reads.fq.gz", folder / "reads.fa.gz") if p.exists())
    f, _ = feat.compute(reads, BinSettings(threads=2, progress=False), OUT / f"features_{name}")
    return feat.standardise(f)[0]


def recluster(name: str, options: dict, rare: str | None = None) -> dict:
    import numpy as np
    import pandas as pd

    from biovae.bin.cluster import cluster_latent
    from biovae.evaluate.binning import evaluate_tables
    from biovae.io.bins import bin_names, read_truth

    z = np.load(OUT / f"bin_{name}" / "latent.npz", allow_pickle=True)
    ids, mean, truth = z["ids"], z["mean"], read_truth(SETS[name] / "truth.tsv")
    x = None if options.pop("latent_vote", False) else set_features(name)
    if rare:  # keep only N reads of one genome: a rare member made from the same set
        genome, n = rare.split(":")
        of = set(truth["sequence_id"][truth["genome"] == genome])
        mask = np.array([i in of for i in ids])
        drop = np.flatnonzero(mask)[int(n):]
        keep = np.setdiff1d(np.arange(len(ids)), drop)
        ids, mean, x = ids[keep], mean[keep], None if x is None else x[keep]
        truth = truth[truth["sequence_id"].isin(set(ids))]
    t0 = time.perf_counter()
    labels, stats = cluster_latent(mean, features=x, threads=2, seed=1, **options)
    secs = time.perf_counter() - t0
    table = pd.DataFrame({"sequence_id": ids, "bin": bin_names(labels)})
    ev = evaluate_tables(table, truth)
    return {"set": name, "options": options, "features": x is not None, "seconds": round(secs, 1), **figures(ev),
            "splits": stats.get("splits"), "merges": stats.get("merges"), "fallback": stats.get("fallback"),
            "by_technology": by_technology(name, table)}


def lrbinner(name: str) -> dict:
    """Score LRBinner's reads-mode output (OUT/bins.txt: one bin id per read, in input order) on a
    set. LRBinner runs by hand in its own venv (benchmarks/.peers/, ../shared/peers.md), e.g.
    python lrbinner.py reads -r reads.fq -o benchmarks/out/lrbinner_confirm -k 3 -bs 1 -bc 8
        --ae-epochs 100 --ae-dims 8 -mbs 100 -bit 0 -t 2"""
    import pandas as pd

    from biovae.evaluate.binning import evaluate_tables
    from biovae.io.bins import read_truth

    truth = read_truth(SETS[name] / "truth.tsv")  # rows in read order
    bins = [line.strip() for line in open(OUT / f"lrbinner_{name}" / "bins.txt") if line.strip()]
    assert len(bins) == len(truth), (len(bins), len(truth))
    table = pd.DataFrame({"sequence_id": truth["sequence_id"], "bin": [f"lrb_{b}" for b in bins]})
    return {"set": name, "peer": "LRBinner", **figures(evaluate_tables(table, truth)),
            "by_technology": by_technology(name, table)}


def shares(name: str) -> list[dict]:
    """bin/overlap.py's share for every pair of bins of OUT/bin_NAME/bins.tsv (run it with
    --extra --no-join-shared to see the bins before the join), with each bin's self-confirmation
    and its majority genome: the measurement behind the join's threshold and self floor."""
    import numpy as np
    import pandas as pd

    from biovae.bin import overlap
    from biovae.io.bins import read_truth

    folder = SETS[name]
    reads = next(p for p in (folder / "reads.fq.gz", folder / "reads.fa.gz") if p.exists())
    bins = pd.read_csv(OUT / f"bin_{name}" / "bins.tsv", sep="\t", dtype=str)
    labels = np.array([int(b.split("_")[1]) if b.startswith("bin_") else -1 for b in bins.iloc[:, 1]])
    genome = read_truth(folder / "truth.tsv").set_index("sequence_id")["genome"].loc[bins.iloc[:, 0]].to_numpy()
    rng = np.random.default_rng(1)
    want = np.zeros(len(labels), dtype=bool)
    for b in np.unique(labels[labels >= 0]):
        idx = np.flatnonzero(labels == b)
        want[rng.choice(idx, min(overlap.MAX_READS, len(idx)), replace=False)] = True
    kmers = overlap.bin_kmers(*overlap.distinct_per_read(*overlap.sketch_file(reads, want, threads=2)), labels)
    own = {b: overlap.confirmed(v) for b, v in kmers.items()}
    major = {b: pd.Series(genome[labels == b]).value_counts().index[0] for b in kmers}
    return [{"set": name, "share": round(sh, 3), "same_genome": bool(major[a] == major[b]),
             "min_self": round(min(own[a], own[b]), 3), "a": major[a], "b": major[b]}
            for sh, a, b in overlap.shared_pairs(kmers, threshold=0.0, min_self=0.0)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=["run", "recluster", "lrbinner", "shares"])
    p.add_argument("sets", nargs="+", choices=list(SETS))
    p.add_argument("--valley", type=float, nargs="*", default=[None])
    p.add_argument("--no-refine", action="store_true")
    p.add_argument("--latent-vote", action="store_true",
                   help="recluster: label leftovers by the latent vote alone (before: not from the features)")
    p.add_argument("--radius-quantile", type=float, nargs="*", default=[None])
    p.add_argument("--min-cluster-size", type=int, default=None)
    p.add_argument("--rare", help="recluster: keep only N reads of GENOME (GENOME:N), a rare member")
    p.add_argument("--assign-radius", type=float, default=None, help="None: from the sample (the default)")
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more `biovae bin` options (run)")
    args = p.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.sets:
        if args.what == "lrbinner":
            rows.append(lrbinner(name))
            print(json.dumps(rows[-1]), flush=True)
            continue
        if args.what == "shares":
            rows += shares(name)
            top = sorted(rows, key=lambda r: (r["same_genome"], -r["share"]))
            print("\n".join(json.dumps(r) for r in top if r["set"] == name and (r["same_genome"] or r["share"] > 0.01)))
            continue
        if args.what == "run":
            rows.append(run_set(name, args.extra))
            print(json.dumps(rows[-1]), flush=True)
            continue
        for v in args.valley:
            for q in args.radius_quantile:
                rows.append(recluster(name, {"valley": v, "refine": not args.no_refine,
                                             "radius_factor": args.assign_radius, "radius_quantile": q,
                                             "min_cluster_size": args.min_cluster_size,
                                             "latent_vote": args.latent_vote}, args.rare))
                print(json.dumps(rows[-1]), flush=True)
    stamp = time.strftime("%Y%m%d_%H%M%S")
    (OUT / f"binning_sets_{args.what}_{stamp}.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
