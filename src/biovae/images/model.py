"""ImageModel: a fitted convolutional VAE over object patches (e.g. nuclei), facing images.

It owns the engine's VAE (network "conv"), the patch settings it was fitted with (size,
normalisation, isolation, edge handling), the training mean patch (the baseline that
reconstructions are compared with) and the training latent distribution (for Mahalanobis
scores). The model folder is the engine's (safetensors + JSON); config.json's metadata
{"kind": "images", "shape": [H, W], ...} tells other tools that it holds an image model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from biovae.engine import state
from biovae.engine.vae import VAE
from biovae.errors import BiovaeError
from biovae.images import metrics
from biovae.io.images import Patches, image_patches

KIND = "images"
PATCH_OPTIONS = ("size", "normalize", "percentiles", "isolate", "edge")


@dataclass
class TrainingPatches(state.Record):
    """What an image model keeps of its training patches: the mean patch (H * W,), the baseline
    of reconstruction quality, and the Gaussian of their latent means (centre (d,), precision
    (d, d)), for Mahalanobis scores."""

    namespace: ClassVar[str] = "images"
    mean_patch: np.ndarray
    latent_mean: np.ndarray
    latent_precision: np.ndarray

    def mahalanobis(self, z: np.ndarray) -> np.ndarray:
        """Distance (n,) of latent points z (n, d) to the training latent Gaussian."""
        d = np.asarray(z, dtype=np.float64) - self.latent_mean
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", d, self.latent_precision, d), 0.0))

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"mean_patch": self.mean_patch, "latent_mean": self.latent_mean,
                "latent_precision": self.latent_precision}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "TrainingPatches":
        return cls(arrays["mean_patch"], arrays["latent_mean"], arrays["latent_precision"])


class ImageModel:
    """Use `biovae.images.fit(...)` to make one, `ImageModel.load(folder)` to read one.

    patch_options: the keyword arguments of biovae.io.images.image_patches used for training.
    """

    def __init__(self, vae: VAE, patch_options: dict):
        self.vae = vae
        self.patch_options = {k: patch_options[k] for k in PATCH_OPTIONS if k in patch_options}

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of a patch, pixels."""
        h, w = self.vae.config.image_shape[:2]
        return int(h), int(w)

    # -- data in -------------------------------------------------------------------------------
    def patches(self, image, mask) -> Patches:
        """Patches of an image + instance mask, cut and normalised the way the training ones were."""
        opts = dict(self.patch_options)
        return image_patches(image, mask, opts.pop("size", self.shape[0]), **opts)

    def rows(self, data) -> np.ndarray:
        """Patches (Patches, (n, H, W) or (n, H * W)) as VAE rows (n, H * W) float32."""
        x = data.images if isinstance(data, Patches) else np.asarray(data, dtype=np.float32)
        h, w = self.shape
        if x.ndim == 3 and x.shape[1:] == (h, w):
            return x.reshape(len(x), -1).astype(np.float32, copy=False)
        if x.ndim == 2 and x.shape[1] == h * w:
            return x.astype(np.float32, copy=False)
        raise BiovaeError(f"this image model takes {h} x {w} patches, got an array of shape {x.shape}",
                          f"cut patches with size={h} (ImageModel.patches does it)")

    # -- data out ------------------------------------------------------------------------------
    def encode(self, data) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and log-variance per patch: two (n, latent_dim) float32 arrays."""
        return self.vae.encode(self.rows(data))

    def decode(self, z) -> np.ndarray:
        """Expected patches (n, H, W) at latent points z (n, latent_dim)."""
        return self.vae.decode(z).reshape(-1, *self.shape)

    def reconstruct(self, data) -> np.ndarray:
        """Each patch decoded from its posterior mean: (n, H, W)."""
        return self.vae.reconstruct(self.rows(data)).reshape(-1, *self.shape)

    def mean_patch(self) -> np.ndarray:
        """The mean training patch (H, W): the baseline reconstruction."""
        return self.training.mean_patch.reshape(self.shape)

    def quality(self, data) -> dict:
        """Reconstruction quality of the patches, means over patches: ssim and corr (Pearson) of
        the VAE reconstruction, and the same for the mean training patch as the reconstruction."""
        x = self.rows(data).reshape(-1, *self.shape)
        rec = self.reconstruct(x)
        base = np.broadcast_to(self.mean_patch(), x.shape)
        return {"patches": int(len(x)),
                "ssim": float(metrics.ssim(rec, x).mean()), "corr": float(metrics.pearson(rec, x).mean()),
                "baseline_ssim": float(metrics.ssim(base, x).mean()),
                "baseline_corr": float(metrics.pearson(base, x).mean())}

    def scores(self, data, *, seed: int = 0) -> pd.DataFrame:
        """Anomaly scores per patch (higher = more unusual), one row each:
        neg_elbo (nats, one posterior draw per patch, beta 1), recon_error (mean squared error of
        the mean reconstruction per pixel, intensity units squared), mean_encoder_variance (mean
        over latent dimensions of exp(logvar)), latent_mahalanobis (distance of the posterior mean
        to the training latent means). With Patches, also id, row, col (centroid, px) and area (px)."""
        x = self.rows(data)
        terms = self.vae.elbo(x, seed=seed)
        mean, logvar = terms["mean"], terms["logvar"]
        frame = {} if not isinstance(data, Patches) else {
            "id": data.ids, "row": data.centroids[:, 0].round(2), "col": data.centroids[:, 1].round(2),
            "area": data.areas}
        frame.update({"neg_elbo": -terms["elbo"], "recon_error": terms["mse"],
                      "mean_encoder_variance": np.exp(logvar).mean(1),
                      "latent_mahalanobis": self.training.mahalanobis(mean)})
        return pd.DataFrame(frame)

    def remember_training(self, x: np.ndarray) -> None:
        """Store what scoring and quality need from the training patches x (n, H * W)."""
        mean, _ = self.vae.encode(x)
        cov = np.cov(mean, rowvar=False).reshape(mean.shape[1], mean.shape[1])
        cov += 1e-6 * np.eye(len(cov)) * max(np.trace(cov) / len(cov), 1e-12)  # a near-flat dimension stays finite
        state.put(self.vae.state, TrainingPatches(x.mean(0).astype(np.float32), mean.mean(0), np.linalg.inv(cov)))

    @property
    def training(self) -> TrainingPatches:
        """The training patches' record (see TrainingPatches), saved with the model."""
        record = state.get(self.vae.state, TrainingPatches)
        if record is None:
            raise BiovaeError("this image model holds no training-patch statistics",
                              "fit it with biovae.images.fit or `biovae fit-images`")
        return record

    # -- files -----------------------------------------------------------------------------------
    def save(self, folder, summary: dict | None = None) -> None:
        """Write the model folder (engine files + image metadata), atomically."""
        opts = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.patch_options.items()}
        self.vae.metadata = {**self.vae.metadata, "kind": KIND, "shape": list(self.shape), "patches": opts}
        self.vae.save(folder, summary=summary)

    @classmethod
    def load(cls, folder) -> "ImageModel":
        """Read a model folder written by `biovae fit-images` / ImageModel.save; refuses other kinds."""
        vae = VAE.load_kind(folder, KIND, "biovae fit-images")
        return cls(vae, vae.metadata.get("patches") or {})
