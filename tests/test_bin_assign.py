"""Binning round 3: leftovers labelled from the input features, log-scale coverage bins, and the
`biovae bin` command line not importing torch before its k-mer table (memory)."""

import subprocess
import sys

import numpy as np

from biovae.bin.cluster import cluster_latent
from biovae.bin.refine import feature_labels
from biovae.features.coverage import bin_edges, coverage


def test_feature_labels_uses_what_the_latent_lost():
    rng = np.random.default_rng(1)
    truth = np.repeat([0, 1], 600)
    # two genomes apart in feature column 3 only; their latent (2-D) is one blob
    feats = rng.normal(size=(1200, 10))
    feats[:, 3] += 6 * truth
    core = np.r_[0:200, 600:800]
    todo = np.setdiff1d(np.arange(1200), core)
    got = feature_labels(feats, core, truth[core], todo, seed=1)
    assert (got == truth[todo]).mean() > 0.98
    # wired into the clustering: two latent blobs, the features decide the leftovers' labels
    latent = np.vstack([rng.normal(size=(600, 2)), rng.normal(size=(600, 2)) + [8, 0]])
    labels, _ = cluster_latent(latent, features=feats, seed=1)
    binned = labels >= 0
    assert binned.mean() > 0.9 and len(np.unique(labels[binned])) == 2
    # labels of the two bins agree with the genomes (up to naming)
    agree = max((labels[binned] == truth[binned]).mean(), (labels[binned] != truth[binned]).mean())
    assert agree > 0.97


def test_log_coverage_bins_tell_low_counts_apart():
    edges = bin_edges(16, 16, "log")
    assert list(edges[:8]) == [1, 2, 3, 4, 5, 6, 7, 10] and np.all(np.diff(edges[:-1]) >= 1)
    genome = np.random.default_rng(2).choice(np.frombuffer(b"ACGT", np.uint8), 3000).tobytes()
    for copies in (1, 2, 5):
        reads = [genome] * copies  # every 15-mer is seen `copies` times (a random genome: no repeats)
        hist = coverage(reads, k=15, bins=16, scale="log").hist
        assert hist[0, copies - 1] > 0.99  # counts 1, 2 and 5 fall in bins 0, 1 and 4
        assert coverage(reads, k=15, bins=16, width=16).hist[0, 0] > 0.99  # linear width 16: all in bin 0


def test_bin_command_line_does_not_import_torch_to_parse():
    code = ("import sys; from biovae.cli import build_parser; build_parser(['bin']).parse_args("
            "['bin', 'x.fa', '-o', 'y']); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
