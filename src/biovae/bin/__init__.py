"""Binning workflow: long reads (or contigs with per-sample abundance) -> genome bins.

    import biovae.bin
    result = biovae.bin.run("reads.fq.gz", "out", settings=biovae.bin.BinSettings(seed=1))
    result.bins        # DataFrame sequence_id, bin (every input sequence, 'unbinned' included)
    result.latent      # (n usable, latent_dim) latent means, rows named by result.latent_ids
    result.quality     # one row per bin: sequences, bases, spread, nearest-bin separation[, truth]
    result.summary     # the dict written to OUT/summary.json

The files in OUT are those of `biovae bin` (bins.tsv, bins.binning, clusters.tsv, latent.npz,
model/, report.html, summary.json).
"""

from biovae.lazy import exports

__getattr__ = exports(__name__, {
    "BinSettings": ("biovae.bin.settings", "BinSettings"),
    "BinningResult": ("biovae.bin.api", "BinningResult"),
    "run": ("biovae.bin.api", "run"),
    "bin_quality": ("biovae.bin.api", "bin_quality"),
})
__all__ = ["BinSettings", "BinningResult", "run", "bin_quality"]
