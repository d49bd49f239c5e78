"""Judge a binning against the true genome of each sequence, the way CAMI's AMBER does.

Definitions (AMBER 2.0.8, genome binning, `binning_classes.GenomeQuery.compute_metrics`;
AMBER's own field names in brackets). Every metric is computed twice: counting sequences
(`by_sequence`) and counting base pairs (`by_bp`, needs lengths).

* Unbinned sequences (bin `unbinned`, label -1, or absent from the bins table) are AMBER's
  "unassigned": they are in no bin, so they take no part in purity or in the Rand indices,
  but they count in every genome's size, so they lower completeness, recall and accuracy.
* Each bin b is mapped to the genome g*(b) that holds the most base pairs of it (the most
  sequences when no lengths are known; ties go to the genome seen first in that bin, in
  input order). The true positives of b, TP(b), are its sequences (bp) of g*(b). The mapping
  is by bp for both counts, as in AMBER.
* Purity of bin b: TP(b) / size(b)  [precision_bp / precision_seq per bin].
  Per-bin completeness: TP(b) / size of g*(b) in the truth, unbinned included.
* Completeness of genome g: the largest share of g found in a single bin (the bin holding
  most bp of g; ties to the pair seen first); 0 when no sequence of g is binned.
* Average purity `precision_avg` = mean purity over bins  [precision_avg_bp/seq].
  Average completeness `recall_avg` = mean completeness over all true genomes
  [recall_avg_bp/seq]. `f1_avg` = their harmonic mean  [f1_score_bp/seq].
* Sample precision `precision_sample` = sum of TP(b) / sum of bin sizes (binned only)
  [precision_weighted_bp/seq]; sample recall `recall_sample` = sum over genomes of the
  best-bin share / total size [recall_weighted_bp/seq]; `f1_sample` = harmonic mean
  [f1_score_per_bp/seq].
* `accuracy` = sum of TP(b) / total size, unbinned included  [accuracy_bp/seq].
* `rand_index`, `ari`: (adjusted) Rand index of the bins against the genomes over the binned
  sequences only; by_bp weighs each sequence by its length, counting pairs of base pairs
  [rand_index_bp, adjusted_rand_index_bp]. ARI is 1 when its denominator is 0 (AMBER's rule).
* `fraction_binned` = binned / total  [percentage_of_assigned_bps/seqs, as a fraction].
A metric with nothing to average over (no bins) is None.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from biovae.errors import BiovaeError, require
from biovae.io.atomic import atomic_file, write_json
from biovae.io.bins import UNBINNED, read_bins, read_truth

DEFINITIONS = "CAMI AMBER 2.0.8 genome binning (see biovae.evaluate.binning)"
_PER_BIN_COLUMNS = ["bin", "genome", "sequences", "tp_sequences", "precision_seq", "recall_seq",
                    "bp", "tp_bp", "precision_bp", "recall_bp"]


def binning_metrics(predicted, truth, lengths=None) -> dict:
    """Precision, recall, F1 and ARI of a binning, overall, per bin and per genome.

    predicted: n bin labels, integers (-1 = unbinned) or names (`unbinned`, None or NaN =
        unbinned). truth: n genome names. lengths: n sequence lengths in bp, or None.
    Returns a JSON-ready dict: counts, `by_sequence` and `by_bp` (None without lengths) metric
    dicts as in the module docstring, `per_bin` and `per_genome` lists of row dicts.
    """
    pred = _as_bins(predicted)
    true = np.asarray([str(t) for t in truth], dtype=object)
    require(len(pred) == len(true), f"{len(pred)} bin labels but {len(true)} truth labels")
    require(len(true) > 0, "nothing to evaluate: no sequences")
    has_len = lengths is not None
    bp = np.asarray(lengths, dtype=np.int64) if has_len else np.ones(len(true), dtype=np.int64)
    require(bp.shape == true.shape, f"{len(bp)} lengths for {len(true)} sequences")
    require(bool(np.all(bp >= 0)), "sequence lengths must be non-negative")

    binned = pred != UNBINNED
    genome_code, genomes = pd.factorize(true, sort=False)
    n_gen = len(genomes)
    seq_total = np.bincount(genome_code, minlength=n_gen)
    bp_total = np.bincount(genome_code, weights=bp, minlength=n_gen).astype(np.int64)
    bin_code, bins = pd.factorize(pred[binned], sort=False)
    n_bins = len(bins)
    g_binned = genome_code[binned]
    conf_seq = np.zeros((n_bins, n_gen), dtype=np.int64)
    conf_bp = np.zeros((n_bins, n_gen), dtype=np.int64)
    np.add.at(conf_seq, (bin_code, g_binned), 1)
    np.add.at(conf_bp, (bin_code, g_binned), bp[binned])
    first = _first_seen(bin_code, g_binned, n_bins, n_gen)

    # AMBER maps by bp even for the per-sequence figures; without lengths bp == counts.
    bin_genome = _argmax_first(conf_bp, first, axis=1)            # (n_bins,)
    genome_bin = _argmax_first(conf_bp, first, axis=0)            # (n_gen,)
    out = {
        "definitions": DEFINITIONS,
        "sequences": int(len(true)),
        "sequences_binned": int(binned.sum()),
        "bp": int(bp.sum()) if has_len else None,
        "bp_binned": int(bp[binned].sum()) if has_len else None,
        "bins": int(n_bins),
        "genomes": int(n_gen),
        "by_sequence": _summary(conf_seq, seq_total, bin_genome, genome_bin),
        "by_bp": _summary(conf_bp, bp_total, bin_genome, genome_bin) if has_len else None,
    }
    out["per_bin"] = _per_bin(bins, genomes, conf_seq, conf_bp, seq_total, bp_total, bin_genome, has_len)
    out["per_genome"] = _per_genome(bins, genomes, conf_seq, conf_bp, seq_total, bp_total,
                                    bin_genome, genome_bin, has_len)
    return out


def evaluate_tables(bins: pd.DataFrame, truth: pd.DataFrame, source: str = "bins table") -> dict:
    """Evaluate a bins table (sequence_id, bin) against a truth table (sequence_id, genome[, length]).

    Every binned id must be in the truth (else BiovaeError naming the first unknown id).
    Truth ids missing from the bins table count as unbinned, as in AMBER; how many is
    reported as `missing_from_bins`. Returns the dict of `binning_metrics`.
    """
    known = pd.Index(truth["sequence_id"])
    pos = known.get_indexer(bins["sequence_id"])
    if (pos < 0).any():
        unknown = bins["sequence_id"][pos < 0]
        raise BiovaeError(
            f"{source}: {len(unknown)} sequence ids are not in the truth table, the first "
            f"is {unknown.iloc[0]!r}", "use the truth table of the same sequence set")
    # Bins-table order first, so AMBER's first-seen tie rule follows that file; then the
    # truth ids the bins table lacks, as unbinned.
    missing = np.setdiff1d(np.arange(len(known)), pos)
    rows = np.concatenate([pos, missing])
    pred = np.concatenate([bins["bin"].to_numpy(dtype=object),
                           np.full(len(missing), UNBINNED, dtype=object)])
    lengths = truth["length"].to_numpy()[rows] if "length" in truth else None
    result = binning_metrics(pred, truth["genome"].to_numpy()[rows], lengths)
    result["missing_from_bins"] = int(len(missing))
    return result


def f1_ari_text(result: dict) -> str:
    """'F1 0.972, ARI 0.945': the per-sequence F1 (AMBER's sample F1) and ARI of a result, as text."""
    ev = result.get("by_sequence") or {}
    f1, ari = ("n/a" if ev.get(k) is None else f"{ev[k]:.3f}" for k in ("f1_sample", "ari"))
    return f"F1 {f1}, ARI {ari}"


def evaluate_files(bins_tsv, truth_tsv, out_dir=None) -> dict:
    """Evaluate bins.tsv (or a CAMI binning) against a truth TSV (or a CAMI gold standard).

    Prints nothing. When out_dir is given, writes `evaluation.json` (the whole dict) and
    `per_bin.tsv` (one row per bin, columns as in `per_bin`) into it, each atomically.
    Returns the metrics dict of `binning_metrics`, with the input paths added.
    """
    bins = read_bins(bins_tsv)
    truth = read_truth(truth_tsv)
    result = evaluate_tables(bins, truth, source=str(bins_tsv))
    result["bins_file"] = str(bins_tsv)
    result["truth_file"] = str(truth_tsv)
    if out_dir is not None:
        from biovae import __version__

        result["biovae_version"] = __version__
        out = Path(out_dir)
        require(not out.exists() or out.is_dir(), f"output {out} exists and is a file",
                "give a folder path for the evaluation")
        write_json(out / "evaluation.json", result)
        with atomic_file(out / "per_bin.tsv") as tmp:
            pd.DataFrame(result["per_bin"], columns=_PER_BIN_COLUMNS).to_csv(
                tmp, sep="\t", index=False, na_rep="NA", float_format="%.6f")
    return result


# --- helpers -------------------------------------------------------------------------------


def _as_bins(predicted) -> np.ndarray:
    arr = np.asarray(predicted)
    if arr.dtype.kind in "iu":
        return np.asarray([UNBINNED if v < 0 else str(v) for v in arr.tolist()], dtype=object)
    out = []
    for v in arr.tolist():
        missing = v is None or (isinstance(v, float) and np.isnan(v)) or str(v) in ("", UNBINNED)
        out.append(UNBINNED if missing else str(v))
    return np.asarray(out, dtype=object)


def _first_seen(bin_code, genome_code, n_bins, n_gen) -> np.ndarray:
    """Row index at which each (bin, genome) pair first occurs; a large value where it never does."""
    first = np.full((n_bins, n_gen), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, (bin_code, genome_code), np.arange(len(bin_code)))
    return first


def _argmax_first(conf, first, axis) -> np.ndarray:
    """Per row (axis=1) or column (axis=0): index of the largest entry, ties to the pair seen first."""
    if conf.size == 0:
        return np.zeros(conf.shape[1 - axis], dtype=np.int64)
    top = conf.max(axis=axis, keepdims=True)
    rank = np.where(conf == top, first, np.iinfo(np.int64).max)
    return rank.argmin(axis=axis)


def _summary(conf, total, bin_genome, genome_bin) -> dict:
    n_bins, n_gen = conf.shape
    size = conf.sum(axis=1)
    tp = conf[np.arange(n_bins), bin_genome] if n_bins else np.zeros(0, dtype=np.int64)
    best = conf[genome_bin, np.arange(n_gen)] if n_bins else np.zeros(n_gen, dtype=np.int64)
    purity = [_div(t, s) for t, s in zip(tp, size)]
    completeness = [_div(b, t) for b, t in zip(best, total)]
    p_avg = _mean([p for p in purity if p is not None])
    r_avg = _mean([c for c in completeness if c is not None])
    p_sample = _div(tp.sum(), size.sum())
    r_sample = _div(best.sum(), total.sum())
    ri, ari = _rand(conf)
    return {
        "precision_avg": p_avg, "recall_avg": r_avg, "f1_avg": _f1(p_avg, r_avg),
        "precision_sample": p_sample, "recall_sample": r_sample, "f1_sample": _f1(p_sample, r_sample),
        "accuracy": _div(tp.sum(), total.sum()),
        "rand_index": ri, "ari": ari,
        "fraction_binned": _div(size.sum(), total.sum()),
    }


def _rand(conf) -> tuple[float | None, float | None]:
    """Rand index and ARI from a bins x genomes table of counts (or bp), exact integer pairs."""
    def pairs(v):
        v = int(v)
        return v * (v - 1) // 2

    n = int(conf.sum())
    all_pairs = pairs(n)
    if all_pairs == 0:
        return None, None
    both = sum(pairs(v) for v in conf.ravel() if v > 1)
    same_bin = sum(pairs(v) for v in conf.sum(axis=1))
    same_genome = sum(pairs(v) for v in conf.sum(axis=0))
    ri = (all_pairs - same_bin - same_genome + 2 * both) / all_pairs
    expected = same_bin * same_genome / all_pairs
    denom = (same_bin + same_genome) / 2 - expected
    return float(ri), (float((both - expected) / denom) if denom != 0 else 1.0)


def _per_bin(bins, genomes, conf_seq, conf_bp, seq_total, bp_total, bin_genome, has_len) -> list[dict]:
    rows = []
    for b, name in enumerate(bins):
        g = bin_genome[b]
        row = {"bin": str(name), "genome": str(genomes[g]),
               "sequences": int(conf_seq[b].sum()), "tp_sequences": int(conf_seq[b, g]),
               "precision_seq": _div(conf_seq[b, g], conf_seq[b].sum()),
               "recall_seq": _div(conf_seq[b, g], seq_total[g]),
               "bp": None, "tp_bp": None, "precision_bp": None, "recall_bp": None}
        if has_len:
            row.update(bp=int(conf_bp[b].sum()), tp_bp=int(conf_bp[b, g]),
                       precision_bp=_div(conf_bp[b, g], conf_bp[b].sum()),
                       recall_bp=_div(conf_bp[b, g], bp_total[g]))
        rows.append(row)
    return rows


def _per_genome(bins, genomes, conf_seq, conf_bp, seq_total, bp_total, bin_genome, genome_bin,
                has_len) -> list[dict]:
    rows = []
    mapped = np.bincount(bin_genome, minlength=len(genomes)) if len(bins) else np.zeros(len(genomes), int)
    for g, name in enumerate(genomes):
        found = len(bins) > 0 and conf_seq[genome_bin[g], g] > 0
        b = genome_bin[g] if found else None
        rows.append({
            "genome": str(name), "sequences": int(seq_total[g]),
            "bp": int(bp_total[g]) if has_len else None,
            "best_bin": str(bins[b]) if b is not None else None,
            "recall_seq": _div(conf_seq[b, g], seq_total[g]) if b is not None else 0.0,
            "recall_bp": (_div(conf_bp[b, g], bp_total[g]) if b is not None else 0.0) if has_len else None,
            "bins_mapped": int(mapped[g]),
        })
    return rows


def _div(a, b) -> float | None:
    return float(a) / float(b) if b else None


def _mean(values) -> float | None:
    return float(np.mean(values)) if values else None


def _f1(p, r) -> float | None:
    if p is None or r is None or p + r == 0:
        return None
    return 2 * p * r / (p + r)
