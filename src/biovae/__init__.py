"""biovae: variational autoencoders for biological data.

Layers, from the bottom up:
  biovae.io        read and validate inputs, write outputs atomically
  biovae.features  k-mer composition, read coverage, scaling
  biovae.engine    the VAE: networks, likelihoods, training, model files
  biovae.bin / biovae.expr / biovae.tl   workflows built on the engine
  biovae.pl        plots
  biovae.cli       the command line, a thin skin over the above
"""

from biovae.errors import BiovaeError
from biovae.version import __version__

__all__ = ["BiovaeError", "VAE", "__version__"]


def __getattr__(name):
    # Import torch lazily so `biovae --help` and the readers stay fast.
    if name == "VAE":
        from biovae.engine.vae import VAE

        return VAE
    if name in ("io", "features", "engine", "bin", "expr", "images", "tl", "pl", "evaluate"):
        import importlib

        return importlib.import_module(f"biovae.{name}")
    raise AttributeError(f"module 'biovae' has no attribute {name!r}")
