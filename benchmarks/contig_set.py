#!/usr/bin/env python3
"""Contig binning on draft assemblies of real genomes, biovae and VAMB side by side.

    python benchmarks/contig_set.py build dev --seed 1        # -> benchmarks/data/contigs/dev
    python benchmarks/contig_set.py build confirm --seed 7    # -> benchmarks/data/contigs/confirm
    python benchmarks/contig_set.py build confirm_c --seed 13 # -> benchmarks/data/contigs/confirm_c
    python benchmarks/contig_set.py run biovae dev            # -> benchmarks/out/contigs/biovae_dev
    python benchmarks/contig_set.py run --seed 2 biovae confirm_c   # -> .../biovae_confirm_c_s2
    python benchmarks/contig_set.py run vamb dev              # needs benchmarks/.peers/vamb (peers.md)
    python benchmarks/contig_set.py refine-check dev          # marker split/merge on damaged bins
    python benchmarks/contig_set.py seeds dev --seeds 1,2,3,4,5   # refinement over seeds, mean / worst

Sets (nothing under benchmarks/data/ is committed):
  dev      four draft assemblies shipped in Debian ragout-examples, of the species among the seven
           shared genomes: E. coli MG1655 (156 contigs), S. aureus USA300 (767), H. pylori SJM180
           (183), V. cholerae H1 (1,407). Settings are chosen here only.
  confirm  species NOT among the shared seven: two draft genomes of PyPI gtdbtk 2.8.0's test data
           (genome_2: 20 contigs, genome_3: 106), and MEGAHIT assemblies made here of simulated
           short reads (dwgsim, 20x, 2 x 150 bp) of S. suis SC84 (Debian abacas-examples), M. leprae
           TN (kmer-examples) and K. pneumoniae HS11286 (kleborate-examples). Read at seeds 1-3 in
           round 3, so development (seen) since.
  confirm_c  genomes no contig set used before, from sourmash's repository (commit 6ae9cd3): two drafts
           as shipped, Sphingobacteriaceae DW12 (GCF_000783305, 78 records) and the TARA_ASE_MAG_00031
           metagenome-assembled genome (459 contigs); MEGAHIT assemblies made here of S. enterica LT2
           (GCF_000006945) and of the 500 kb pieces of A. muciniphila and S. baltica OS185 in its docs.

Contigs of >= 1,000 bp are kept, shuffled and renamed contig_000001...; a contig's truth is the
assembly it comes from. Abundance: SAMPLES samples; in each, every genome gets a log-normal depth
(median 6x, sigma 0.8, clipped to 1-40x) of dwgsim 2 x 150 bp reads drawn from the sequence its
contigs were assembled from: all records of a shipped draft (ragout's USA300 draft holds contigs
that its reference lacks), the reference genome of an assembly made here; mapped to all contigs
with minimap2 -x sr,
sorted and indexed with samtools. abundance.tsv (VAMB's layout) holds the per-sample mean depth
that biovae's own BAM reader (biovae.io.depth) gives; both tools bin from that same file.
Figures: AMBER's F1 and ARI counting contigs (and by bp), bins, wall and peak RSS (/usr/bin/time).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from confirm_set import DOC, package_file  # noqa: E402

DATA = HERE / "data" / "contigs"
OUT = HERE / "out" / "contigs"
VAMB = HERE / ".peers" / "vamb" / "bin" / "vamb"
MIN_LEN = 1000
SAMPLES = 3
RAG = DOC + "ragout/examples/"
GTDBTK = ("pypi", "gtdbtk==2.8.0", "gtdbtk/tests/data/genomes/")
SOURMASH = ("git", "sourmash-bio/sourmash@6ae9cd32d9ac2841c98415bc1c043597536a5470")
# genome -> (draft: (kind, package, path) or None to assemble here, reference: (kind, package, path) or None;
# the reference is used only to simulate the reads to assemble)
SETS = {
    "dev": {
        "escherichia_coli_MG1655": (("deb", "ragout-examples", RAG + "E.Coli/mg1655_contigs.fasta.gz"),
                                    ("deb", "ragout-examples", RAG + "E.Coli/references/MG1655-K12.fasta.gz")),
        "staphylococcus_aureus_USA300": (("deb", "ragout-examples", RAG + "S.Aureus/usa300_contigs.fasta.gz"),
                                         ("deb", "ragout-examples", RAG + "S.Aureus/references/USA300_FPR3757.fasta.gz")),
        "helicobacter_pylori_SJM180": (("deb", "ragout-examples", RAG + "H.Pylori/SJM180_contigs.fasta.gz"),
                                       ("deb", "ragout-examples", RAG + "H.Pylori/references/SJM180.fasta.gz")),
        "vibrio_cholerae_H1": (("deb", "ragout-examples", RAG + "V.Cholerae/h1_contigs.fasta.gz"),
                               ("deb", "ragout-examples", RAG + "V.Cholerae/references/H1.fasta.gz")),
    },
    "confirm": {
        "gtdbtk_test_genome_2": ((*GTDBTK[:2], GTDBTK[2] + "genome_2.fna"), None),
        "gtdbtk_test_genome_3": ((*GTDBTK[:2], GTDBTK[2] + "genome_3.fna"), None),
        "streptococcus_suis_SC84": (None, ("deb", "abacas-examples", DOC + "abacas-examples/SS_SC84.dna.gz")),
        "mycobacterium_leprae_TN": (None, ("deb", "kmer-examples", DOC + "kmer-examples/test_data.tar.gz::"
                                           "GCF_000195855.1_ASM19585v1_genomic.fna")),
        "klebsiella_pneumoniae_HS11286": (None, ("deb", "kleborate-examples",
                                                 DOC + "kleborate/examples/data/Klebs_HS11286.fna.xz")),
    },
    # built 2026-12-08 before any round-4 change to the marker refinement; read once, at the end
    "confirm_c": {
        "sphingobacteriaceae_DW12": ((*SOURMASH, "data/GCF_000783305.1_ASM78330v1_genomic.fna.gz"), None),
        "tara_ase_mag_00031": ((*SOURMASH, "tests/test-data/lca/TARA_ASE_MAG_00031.fa.gz"), None),
        "salmonella_enterica_LT2": (None, (*SOURMASH, "data/GCF_000006945.1_ASM694v1_genomic.fna.gz")),
        "akkermansia_muciniphila_500kb": (None, (*SOURMASH, "doc/genomes/akkermansia.fa")),
        "shewanella_baltica_OS185_500kb": (None, (*SOURMASH, "doc/genomes/shew_os185.fa")),
    },
}


def sh(cmd, **kw):
    print("+", cmd if isinstance(cmd, str) else " ".join(map(str, cmd)), flush=True)
    return subprocess.run(cmd, check=True, shell=isinstance(cmd, str), **kw)


def fasta_records(data: bytes) -> list[tuple[str, str]]:
    out, name, parts = [], None, []
    for line in data.decode().splitlines():
        if line.startswith(">"):
            if name is not None:
                out.append((name, "".join(parts).upper()))
            name, parts = line[1:].split()[0], []
        elif line.strip():
            parts.append(line.strip())
    if name is not None:
        out.append((name, "".join(parts).upper()))
    return out


def write_fasta(path: Path, records) -> Path:
    with open(path, "w") as fh:
        for name, seq in records:
            fh.write(f">{name}\n")
            for i in range(0, len(seq), 80):
                fh.write(seq[i:i + 80] + "\n")
    return path


def simulate(ref: Path, depth: float, seed: int, prefix: Path) -> tuple[Path, Path]:
    """dwgsim 2 x 150 bp read pairs at `depth` x (no random reads, no mutations, 0.5 % and 1 % errors)."""
    sh(["dwgsim", "-C", f"{depth:.3f}", "-1", "150", "-2", "150", "-d", "400", "-s", "40", "-y", "0", "-r", "0",
        "-e", "0.005", "-E", "0.01", "-z", str(seed), "-o", "1", str(ref), str(prefix)],
       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return Path(f"{prefix}.bwa.read1.fastq.gz"), Path(f"{prefix}.bwa.read2.fastq.gz")


def assemble(name: str, ref: Path, seed: int, work: Path) -> list[tuple[str, str]]:
    """MEGAHIT contigs of 20x simulated read pairs of one genome (one thread)."""
    r1, r2 = simulate(ref, 20.0, seed, work / f"asm_{name}")
    out = work / f"megahit_{name}"
    sh(["megahit", "-1", str(r1), "-2", str(r2), "-o", str(out), "-t", "1", "--min-contig-len", str(MIN_LEN)],
       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return fasta_records((out / "final.contigs.fa").read_bytes())


def build(name: str, seed: int, out: Path) -> None:
    from biovae.io.depth import read_depth

    out.mkdir(parents=True, exist_ok=True)
    work = out / "work"
    work.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    contigs, sources, manifest = [], {}, {"set": name, "seed": seed, "genomes": {}}
    for i, (genome, (draft, ref)) in enumerate(SETS[name].items()):
        if draft:  # reads come from the assembly's own sequence (a draft's strain need not be its reference's)
            recs = fasta_records(package_file(*draft))
            ref_path = write_fasta(work / f"src_{genome}.fa", [(f"c{j}", re.sub("[^ACGT]", "N", s))
                                                               for j, (_, s) in enumerate(recs)])
        else:
            ref_path = write_fasta(work / f"src_{genome}.fa", [(n, re.sub("[^ACGT]", "N", s))
                                                               for n, s in fasta_records(package_file(*ref))])
            recs = assemble(genome, ref_path, seed + i, work)
        kept = [(genome, s) for _, s in recs if len(s) >= MIN_LEN]
        sources[genome] = ref_path
        contigs += kept
        manifest["genomes"][genome] = {"draft": "/".join(draft[1:]) if draft else "megahit (made here)",
                                       "contigs": len(kept), "bp": sum(len(s) for _, s in kept)}
    order = rng.permutation(len(contigs))
    ids = [f"contig_{k + 1:06d}" for k in range(len(contigs))]
    shuffled = [contigs[j] for j in order]
    write_fasta(out / "contigs.fna", [(cid, s) for cid, (_, s) in zip(ids, shuffled)])
    with open(out / "truth.tsv", "w") as fh:
        fh.write("sequence_id\tgenome\tlength\n")
        for cid, (g, s) in zip(ids, shuffled):
            fh.write(f"{cid}\t{g}\t{len(s)}\n")
    depths = np.clip(np.exp(rng.normal(np.log(6.0), 0.8, size=(SAMPLES, len(sources)))), 1.0, 40.0)
    manifest["depths"] = {g: [round(float(d), 2) for d in depths[:, k]] for k, g in enumerate(sources)}
    columns = []
    for s in range(SAMPLES):
        r1s, r2s = [], []
        for k, (genome, ref_path) in enumerate(sources.items()):
            r1, r2 = simulate(ref_path, float(depths[s, k]), seed * 1000 + s * 100 + k, work / f"s{s}_{genome}")
            r1s.append(r1)
            r2s.append(r2)
        bam = out / f"sample{s + 1}.bam"
        sh(f"cat {' '.join(map(str, r1s))} > {work}/r1.fq.gz && cat {' '.join(map(str, r2s))} > {work}/r2.fq.gz")
        sh(f"minimap2 -t 1 -ax sr {out}/contigs.fna {work}/r1.fq.gz {work}/r2.fq.gz 2>/dev/null "
           f"| samtools sort -@ 0 -m 500M -o {bam} - && samtools index {bam}")
        columns.append(read_depth(bam, "bam", ids, [len(s) for _, s in shuffled])[0][:, 0])
    with open(out / "abundance.tsv", "w") as fh:
        fh.write("contigname\t" + "\t".join(f"sample{s + 1}" for s in range(SAMPLES)) + "\n")
        for j, cid in enumerate(ids):
            fh.write(cid + "\t" + "\t".join(f"{c[j]:.5f}" for c in columns) + "\n")
    manifest["contigs"] = len(ids)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    sh(["rm", "-rf", str(work)])
    print(json.dumps(manifest, indent=1))


def timed(cmd: list[str], log: Path) -> dict:
    """Run under /usr/bin/time -v: wall seconds and peak RSS (MiB) of the command and its children."""
    with open(log, "w") as fh:
        sh(["/usr/bin/time", "-v", *cmd], stdout=fh, stderr=subprocess.STDOUT,
           env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")})
    text = log.read_text()
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", text)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    h, m, s = (float(x or 0) for x in wall.groups())
    return {"wall_s": round(h * 3600 + m * 60 + s, 1), "peak_rss_mib": round(int(rss.group(1)) / 1024)}


def score(bins_table, truth_path: Path) -> dict:
    from biovae.evaluate.binning import evaluate_tables
    from biovae.io.bins import read_truth

    ev = evaluate_tables(bins_table, read_truth(truth_path))
    seq, bp = ev["by_sequence"], ev["by_bp"]
    return {"bins": len(ev["per_bin"]), "count_f1": seq["f1_sample"], "count_ari": seq["ari"],
            "bp_f1": bp["f1_sample"] if bp else None, "bp_ari": bp["ari"] if bp else None,
            "binned": seq["fraction_binned"],
            "per_bin": [{k: r[k] for k in ("bin", "genome", "sequences", "precision_seq", "recall_seq")}
                        for r in ev["per_bin"]]}


def run_tool(tool: str, name: str, threads: int, extra: list[str], seed: int = 1) -> dict:
    import pandas as pd

    label = f"{tool}_{name}" + ("" if seed == 1 else f"_s{seed}")
    data, out = DATA / name, OUT / label
    OUT.mkdir(parents=True, exist_ok=True)
    sh(["rm", "-rf", str(out)])
    if tool == "biovae":
        cmd = [sys.executable, "-m", "biovae", "bin", str(data / "contigs.fna"), "--abundance",
               str(data / "abundance.tsv"), "-o", str(out), "--seed", str(seed), "--threads", str(threads), *extra]
        res = timed(cmd, OUT / f"{label}.log")
        table = pd.read_csv(out / "bins.tsv", sep="\t", dtype=str)
        table.columns = ["sequence_id", "bin"]
        summary = json.loads((out / "summary.json").read_text())
        res["marker_quality"] = summary.get("marker_quality")
    else:
        cmd = [str(VAMB), "bin", "default", "--outdir", str(out), "--fasta", str(data / "contigs.fna"),
               "--abundance_tsv", str(data / "abundance.tsv"), "-p", str(threads), "--seed", str(seed), *extra]
        res = timed(cmd, OUT / f"{label}.log")
        clusters = pd.read_csv(out / "vae_clusters_unsplit.tsv", sep="\t", dtype=str)
        table = pd.DataFrame({"sequence_id": clusters.iloc[:, 1], "bin": clusters.iloc[:, 0]})
        # VAMB's README writes bins of >= 200 kb (--minfasta 200000); smaller clusters scored as unbinned
        lengths = dict(zip(*pd.read_csv(data / "truth.tsv", sep="\t")[["sequence_id", "length"]].to_numpy().T))
        size = table.assign(bp=table["sequence_id"].map(lengths)).groupby("bin")["bp"].sum()
        res["bins_200kb"] = score(table[table["bin"].map(size) >= 200_000], data / "truth.tsv")
        res["bins_200kb"].pop("per_bin")
    res.update(score(table, data / "truth.tsv"))
    res.update(tool=tool, set=name, command=" ".join(cmd))
    (OUT / f"{label}.json").write_text(json.dumps(res, indent=1))
    print(json.dumps({k: v for k, v in res.items() if k not in ("per_bin", "marker_quality")}, indent=1))
    return res


def marker_hits(name: str, seqs):
    """(marker genes of every contig of a set, markers in the set); cached, as gene calling is the
    slow part and the contigs do not change."""
    import pandas as pd

    from biovae.bin import markers

    hmms = markers.load_profiles(markers.find_marker_hmm()[0])
    cache = OUT / f"marker_hits_{name}.tsv"
    if cache.exists():
        return pd.read_csv(cache, sep="\t"), markers.n_markers(hmms)
    hits = markers.marker_hits(seqs.seqs, hmms)
    hits.to_csv(cache, sep="\t", index=False)
    return hits, markers.n_markers(hmms)


def seeds_check(name: str, seeds: list[int]) -> dict:
    """Marker refinement over seeds: biovae at each seed with --quality off (clustering only, saved
    under OUT/seeds/), then bin/marker_refine.refine on those bins as the markers stage would run it;
    count F1 / ARI without and with the refinement, per seed, mean and worst."""
    import pandas as pd

    from biovae.bin.marker_refine import refine
    from biovae.io.fastx import read_fastx

    data = DATA / name
    seqs = read_fastx(data / "contigs.fna")
    ids, lengths = list(seqs.ids), np.array([len(s) for s in seqs.seqs])
    hits, total = marker_hits(name, seqs)
    rows_out = []
    for seed in seeds:
        run = OUT / "seeds" / f"{name}_s{seed}"
        if not (run / "latent.npz").exists():
            sh(["rm", "-rf", str(run)])
            timed([sys.executable, "-m", "biovae", "bin", str(data / "contigs.fna"), "--abundance",
                   str(data / "abundance.tsv"), "-o", str(run), "--seed", str(seed), "--threads", "1",
                   "--quality", "off", "--plot", "none"], OUT / "seeds" / f"{name}_s{seed}.log")
        table = pd.read_csv(run / "bins.tsv", sep="\t", dtype=str)
        bins = sorted(b for b in table.iloc[:, 1].unique() if b != "unbinned")
        labels = np.array([bins.index(b) if b != "unbinned" else -1 for b in table.iloc[:, 1]])
        with np.load(run / "latent.npz") as z:
            pos = {i: k for k, i in enumerate(ids)}
            rows, mean = np.array([pos[i] for i in z["ids"]]), z["mean"]
        fixed, changes = refine(labels, rows, mean, hits, total, seed=seed, lengths=lengths)
        row = {"seed": seed, "changes": changes}
        for key, lab in (("none", labels), ("refined", fixed)):
            t = pd.DataFrame({"sequence_id": ids, "bin": [f"b{v}" if v >= 0 else "unbinned" for v in lab]})
            s = score(t, data / "truth.tsv")
            row[key] = [round(s["count_f1"], 3), round(s["count_ari"], 3), s["bins"]]
        print(row, flush=True)
        rows_out.append(row)
    result = {"set": name, "seeds": rows_out}
    for key in ("none", "refined"):
        a = np.array([r[key][:2] for r in rows_out])
        result[key] = {"mean": a.mean(0).round(3).tolist(), "worst": a.min(0).round(3).tolist()}
        print(key, "count F1 / ARI mean", result[key]["mean"], "worst", result[key]["worst"])
    (OUT / f"seeds_check_{name}.json").write_text(json.dumps(result, indent=1))
    return result


def refine_check(name: str, seed: int) -> dict:
    """Marker split/merge on damaged copies of a saved biovae run's bins (OUT/contigs/biovae_NAME):
    every pair of bins joined into one (should be split), every bin cut in two by k-means on its
    latent (should be merged); count F1 / ARI before and after bin/marker_refine.refine."""
    import pandas as pd

    from biovae.bin.marker_refine import refine
    from biovae.io.fastx import read_fastx

    data, run = DATA / name, OUT / f"biovae_{name}"
    seqs = read_fastx(data / "contigs.fna")
    bins = pd.read_csv(run / "bins.tsv", sep="\t", dtype=str)
    names = sorted(b for b in bins["bin"].unique() if b != "unbinned")
    labels = np.array([names.index(b) if b != "unbinned" else -1 for b in bins["bin"]])
    with np.load(run / "latent.npz") as z:
        rows = np.array([list(seqs.ids).index(i) for i in z["ids"]])
        mean = z["mean"]
    hits, total = marker_hits(name, seqs)
    lengths = np.array([len(s) for s in seqs.seqs])

    def scored(lab):
        table = pd.DataFrame({"sequence_id": list(seqs.ids), "bin": [f"b{v}" if v >= 0 else "unbinned" for v in lab]})
        s = score(table, data / "truth.tsv")
        return round(s["count_f1"], 4), round(s["count_ari"], 4), s["bins"]

    cases = []
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            damaged = np.where(labels == b, a, labels)
            damaged = np.where(damaged > b, damaged - 1, damaged)
            cases.append((f"join {names[a]}+{names[b]}", damaged))
    where = np.full(len(labels), -1)
    where[rows] = np.arange(len(rows))
    for a in range(len(names)):
        members = np.flatnonzero((labels == a) & (where >= 0))
        from sklearn.cluster import KMeans

        part = KMeans(2, n_init=4, random_state=seed).fit_predict(mean[where[members]])
        damaged = labels.copy()
        damaged[members[part == 1]] = labels.max() + 1
        cases.append((f"cut {names[a]}", damaged))
    result = {"original": scored(labels), "cases": []}
    for what, damaged in cases:
        fixed, changes = refine(damaged, rows, mean, hits, total, seed=seed, lengths=lengths)
        result["cases"].append({"case": what, "damaged": scored(damaged), "refined": scored(fixed), "changes": changes})
        print(what, scored(damaged), "->", scored(fixed), changes, flush=True)
    (OUT / f"refine_check_{name}.json").write_text(json.dumps(result, indent=1))
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("set", choices=sorted(SETS))
    b.add_argument("--seed", type=int, default=1)
    r = sub.add_parser("run")
    r.add_argument("tool", choices=["biovae", "vamb"])
    r.add_argument("set", choices=sorted(SETS))
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--seed", type=int, default=1, help="the tool's seed (outputs get _sSEED unless 1)")
    r.add_argument("extra", nargs=argparse.REMAINDER, help="passed on to the tool")
    c = sub.add_parser("refine-check", help="marker split/merge on joined and cut copies of a saved run's bins")
    c.add_argument("set", choices=sorted(SETS))
    c.add_argument("--seed", type=int, default=1)
    k = sub.add_parser("seeds", help="count F1 / ARI without and with the marker refinement, over seeds")
    k.add_argument("set", choices=sorted(SETS))
    k.add_argument("--seeds", default="1,2,3,4,5")
    a = p.parse_args(argv)
    if a.cmd == "build":
        build(a.set, a.seed, DATA / a.set)
    elif a.cmd == "seeds":
        seeds_check(a.set, [int(v) for v in a.seeds.split(",")])
    elif a.cmd == "refine-check":
        refine_check(a.set, a.seed)
    else:
        run_tool(a.tool, a.set, a.threads, a.extra, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
