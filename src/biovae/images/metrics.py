"""Reconstruction quality of image patches: SSIM and Pearson correlation, per patch.

Both take stacks (n, H, W) of the same shape and return (n,) float64 arrays. Own code (numpy +
scipy), so nothing beyond the project's dependencies is needed.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from biovae.errors import require

_K1, _K2 = 0.01, 0.03  # the constants of Wang et al. (2004)
_SIGMA, _TRUNCATE = 1.5, 3.5  # Gaussian window of sd 1.5 px, 11 x 11 taps


def _stacks(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim == 2:
        a, b = a[None], b[None]
    require(a.shape == b.shape and a.ndim == 3, f"image stacks must both be (n, H, W), got {a.shape} and {b.shape}")
    return a, b


def ssim(a, b, data_range: float = 1.0) -> np.ndarray:
    """Structural similarity of each pair a[i], b[i]: (n,), 1 for identical patches.

    Gaussian-weighted local means, variances and covariance (sd 1.5 px), the SSIM map of Wang et
    al. (2004) with K1 = 0.01, K2 = 0.03 and L = data_range (1 for intensities in [0, 1]),
    averaged over the pixels at least 5 px from the border (where the window is whole).
    """
    a, b = _stacks(a, b)
    c1, c2 = (_K1 * data_range) ** 2, (_K2 * data_range) ** 2

    def blur(v):
        return ndi.gaussian_filter(v, sigma=(0, _SIGMA, _SIGMA), truncate=_TRUNCATE, mode="reflect")

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    smap = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    r = int(_TRUNCATE * _SIGMA + 0.5)
    if a.shape[1] > 2 * r and a.shape[2] > 2 * r:
        smap = smap[:, r:-r, r:-r]
    return smap.reshape(len(smap), -1).mean(1)


def pearson(a, b) -> np.ndarray:
    """Pearson correlation of the pixels of each pair a[i], b[i]: (n,); 0 where one is flat."""
    a, b = _stacks(a, b)
    a = a.reshape(len(a), -1)
    b = b.reshape(len(b), -1)
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    den = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    return np.divide((a * b).sum(1), den, out=np.zeros(len(a)), where=den > 0)
