#!/usr/bin/env python3
"""Do binning features depend on the sequencing technology? (issue 19, item 2)

Two measurements on a set whose reads carry a technology label (technology.tsv; confirm30k and
confirm_b: half SimLoRD PacBio, half pbsim ONT-like reads of each genome):

1. For each genome, the distance between its two technologies' feature centroids, against the
   spread of its reads (RMS distance to its centroid) and the distance to the nearest other
   genome's centroid, in the standardised features biovae bins on (composition block = 136
   tetranucleotide columns, coverage block = 16 columns), and how well a linear discriminant
   tells the two technologies apart within the genome (5-fold accuracy; 0.5 = not at all).
2. Homopolymer errors, which pbsim does not make but ONT does: the same reads with one base of
   each homopolymer run of >= 3 deleted with probability p (ONT R9-like, p = 0.3), composition
   only, centroid shift against the spread and the nearest genome.

    python benchmarks/technology_features.py confirm30k
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data"
OUT = ROOT / "benchmarks" / "out"


def centroid_table(x: np.ndarray, genome: np.ndarray, tech: np.ndarray, cols: slice) -> pd.DataFrame:
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.model_selection import cross_val_score

    x = x[:, cols]
    names = np.unique(genome)
    cents = np.array([x[genome == g].mean(0) for g in names])
    rows = []
    for i, g in enumerate(names):
        mine = genome == g
        techs = np.unique(tech[mine])
        spread = float(np.sqrt(((x[mine] - cents[i]) ** 2).sum(1).mean()))
        other = np.delete(cents, i, axis=0)
        nearest = float(np.min(np.linalg.norm(other - cents[i], axis=1)))
        a, b = (x[mine & (tech == t)] for t in techs[:2])
        shift = float(np.linalg.norm(a.mean(0) - b.mean(0)))
        acc = float(cross_val_score(LinearDiscriminantAnalysis(), x[mine], tech[mine], cv=5).mean())
        rows.append({"genome": g, "reads": int(mine.sum()), "tech_shift": round(shift, 3),
                     "spread": round(spread, 3), "nearest_genome": round(nearest, 3),
                     "shift/nearest": round(shift / nearest, 3), "lda_tech_accuracy": round(acc, 3)})
    return pd.DataFrame(rows)


def homopolymer_deletions(seq: bytes, p: float, rng) -> bytes:
    """Delete one base of each homopolymer run of length >= 3 with probability p."""
    out, last = [], 0
    for m in re.finditer(rb"A{3,}|C{3,}|G{3,}|T{3,}", seq):
        if rng.random() < p:
            out.append(seq[last:m.end() - 1])
            last = m.end()
    out.append(seq[last:])
    return b"".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("set", help="folder under benchmarks/data with reads.fq.gz, truth.tsv, technology.tsv")
    p.add_argument("--homopolymer-p", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    from biovae.bin import features as feat
    from biovae.bin.settings import BinSettings
    from biovae.features.kmers import composition
    from biovae.io.bins import read_truth
    from biovae.io.fastx import read_fastx

    folder = DATA / args.set
    reads = folder / "reads.fq.gz"
    t0 = time.time()
    f, _ = feat.compute(reads, BinSettings(threads=1, progress=False), OUT / f"features_{args.set}")
    x, scaling = feat.standardise(f)
    ids = f.ids[f.valid]
    truth = read_truth(folder / "truth.tsv").set_index("sequence_id")["genome"]
    tech = pd.read_csv(folder / "technology.tsv", sep="\t", dtype=str).set_index("sequence_id")["technology"]
    genome, techs = truth.reindex(ids).to_numpy(), tech.reindex(ids).to_numpy()
    n_comp = f.composition.shape[1]
    result = {"set": args.set, "command": "python benchmarks/technology_features.py " + " ".join(sys.argv[1:])}
    pd.set_option("display.width", 200)
    for name, cols in (("composition", slice(0, n_comp)), ("coverage", slice(n_comp, None)), ("all", slice(None))):
        table = centroid_table(x, genome, techs, cols)
        print(f"\n{name} block\n{table.to_string(index=False)}", flush=True)
        result[name] = table.to_dict("records")
    # homopolymer deletions on one technology's reads, composition only, same standardisation
    rng = np.random.default_rng(args.seed)
    seqs = read_fastx(reads)
    index = {i: j for j, i in enumerate(seqs.ids)}
    pick = np.flatnonzero(techs == np.unique(techs)[-1])
    pick = rng.choice(pick, min(4000, len(pick)), replace=False)
    raw = [seqs.seqs[index[i]] for i in ids[pick]]
    edited = [homopolymer_deletions(s, args.homopolymer_p, rng) for s in raw]
    mean, scale = scaling.mean[:n_comp], scaling.scale[:n_comp]
    scale = np.where(scale > 0, scale, 1)
    ca = (composition(raw, k=4).freqs - mean) / scale
    cb = (composition(edited, k=4).freqs - mean) / scale
    comp = x[:, :n_comp]
    rows = []
    for g in np.unique(genome[pick]):
        mine = genome[pick] == g
        if mine.sum() < 30:
            continue
        c = comp[genome == g].mean(0)
        spread = np.sqrt(((comp[genome == g] - c) ** 2).sum(1).mean())
        others = [comp[genome == o].mean(0) for o in np.unique(genome) if o != g]
        nearest = np.min(np.linalg.norm(np.array(others) - c, axis=1))
        shift = np.linalg.norm(cb[mine].mean(0) - ca[mine].mean(0))
        rows.append({"genome": g, "reads": int(mine.sum()), "homopolymer_shift": round(float(shift), 3),
                     "spread": round(float(spread), 3), "nearest_genome": round(float(nearest), 3),
                     "shift/nearest": round(float(shift / nearest), 3)})
    table = pd.DataFrame(rows)
    removed = 1 - sum(map(len, edited)) / sum(map(len, raw))
    print(f"\nhomopolymer deletions (p={args.homopolymer_p}, {removed:.2%} of bases removed), composition\n"
          f"{table.to_string(index=False)}")
    result["homopolymer"] = {"p": args.homopolymer_p, "bases_removed": round(removed, 4),
                             "table": table.to_dict("records")}
    result["seconds"] = round(time.time() - t0, 1)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"technology_features_{args.set}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
