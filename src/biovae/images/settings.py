"""Every setting of the cell-image workflow (`biovae fit-images`, biovae.images.run), with its
default and why. The CLI shows each of them; biovae.images.fit takes the model ones."""

from __future__ import annotations

from dataclasses import dataclass

from biovae.settings import Settings


@dataclass
class ImageSettings(Settings):
    # patches (biovae.io.images.image_patches)
    size: int = 64  # patch side in pixels; divisible by 2 ** len(channels)
    normalize: str = "image"  # percentile scaling to [0, 1] over the whole image, per patch, or none
    isolate: str = "object"  # blank all but the object, blank other objects, or keep all
    edge: str = "pad"  # objects near the border: pad or drop
    holdout: float = 0.0  # fraction of objects left out of training and scored for quality
    # model
    latent_dim: int = 16
    channels: tuple[int, ...] = (8, 16, 32, 64)  # encoder conv channels, one halving each
    hidden: tuple[int, ...] = (256,)  # dense layers after the convolutions
    likelihood: str = "bernoulli"  # pixel likelihood for intensities in [0, 1]
    # beta 0.1: with the per-pixel Bernoulli likelihood on dim intensities (nuclei ~0.3 after
    # scaling) the KL term at beta 1 outweighs the reconstruction and blurs it; on 25 held-out
    # nuclei of img2d.tif, 60 epochs: SSIM 0.896 at beta 0.1, 0.884 at 0.3, 0.859 at 1 (mean
    # patch 0.840). Anomaly scores use beta 1.
    beta: float = 0.1
    norm: str = "batch"
    copies: int = 8  # patches per object after rotation/flip augmentation (1 = none)
    # training: all epochs run (no validation split: augmented copies of one object would leak)
    epochs: int = 60
    batch_size: int = 64
    lr: float = 2e-3
    warmup_fraction: float = 0.2
    # runtime
    seed: int = 0
    device: str = "cpu"
    progress: bool = True

    def model_dict(self) -> dict:
        """The model and training settings (the summary's "model" part)."""
        patch = {"size", "normalize", "isolate", "edge", "holdout", "seed", "device", "progress"}
        return {k: v for k, v in self.to_dict().items() if k not in patch}

    def patch_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("size", "normalize", "isolate", "edge")}
