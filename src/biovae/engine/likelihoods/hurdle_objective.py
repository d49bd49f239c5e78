"""hurdle_cell's training objective with its gradient written out (`HurdleCellLogProb`), used by
CellScaleHurdle.log_prob when the decoder output needs a gradient and the fast operations are
on (engine.backends; BIOVAE_CPU_KERNELS=off gives the distribution's autograd reference).

For x, loc, zero logit l and raw scale r (scale s = softplus(r) + floor), nz = [x != 0]:

    log p(x) = -softplus(l) + (1 - nz) l + nz (-z^2 / 2 - log s - log(2 pi) / 2),  z = (x - loc) / s
    d/d loc  = nz z / s
    d/d l    = (1 - nz) - sigmoid(l)
    d/d r    = nz (z^2 - 1) / s * sigmoid(r)

Why: through autograd the same sum builds about twenty (batch, features) tensors a step (two
where's, softplus and its backward, the three strided parts stacked back into one gradient).
benchmarks/hurdle_objective_speed.py (forward + backward, 128 cells x 765 genes, one thread,
2026-12-07, AMD EPYC Zen 4): 1.98x the autograd reference with PyTorch's AVX-512 kernels, 1.68x
with its AVX2 ones (ATEN_CPU_CAPABILITY=avx2). tests/test_likelihoods.py checks values and
gradients against the autograd reference.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from biovae.engine.likelihoods.base import HALF_LOG_2PI


class HurdleCellLogProb(torch.autograd.Function):
    """Per-sample hurdle_cell log-likelihood (batch,) from x (batch, f) and the decoder's raw
    output (batch, 3 f: loc, zero logits, raw scale), and its gradient with respect to raw."""

    @staticmethod
    def forward(ctx, x, raw, floor: float):
        f = x.shape[1]
        loc, logit, r = raw[:, :f], raw[:, f:2 * f], raw[:, 2 * f:]
        scale = F.softplus(r).add_(floor)
        z = (x - loc).div_(scale)
        nz = x != 0
        normal = (z * z).mul_(-0.5).sub_(torch.log(scale)).sub_(HALF_LOG_2PI)
        out = torch.where(nz, normal, logit).sub_(F.softplus(logit)).sum(-1)
        ctx.save_for_backward(raw, z, scale, nz)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        raw, z, scale, nz = ctx.saved_tensors
        f = z.shape[1]
        g = grad[:, None]
        d_raw = torch.empty_like(raw)
        keep = nz.to(raw.dtype).mul_(g)  # g nz
        inv = scale.reciprocal()
        torch.mul(z, inv, out=d_raw[:, :f]).mul_(keep)
        torch.sub(g - keep, torch.sigmoid(raw[:, f:2 * f]).mul_(g), out=d_raw[:, f:2 * f])
        torch.mul(z, z, out=d_raw[:, 2 * f:]).sub_(1.0).mul_(inv).mul_(keep).mul_(torch.sigmoid(raw[:, 2 * f:]))
        return None, d_raw, None
