"""Dropout for the engine's networks, a fast operation with a PyTorch reference
(`nn.functional.dropout`): on the CPU in float32 the mask is a counter-based hash of (a seed
drawn from PyTorch's generator, element index), computed in C (kernels/dropout.c) and recomputed
in the backward pass, so no mask is stored and no per-element random numbers are drawn.

Why: `nn.Dropout` on the CPU draws one Mersenne-Twister number per element (bernoulli_);
`benchmarks/dropout_speed.py` times both side by side. The seed comes from torch's default
generator, so `torch.manual_seed` (and biovae's --seed) fixes the masks: same seed, same weights.
Where engine.backends gives no kernel (GPU tensors, other dtypes, BIOVAE_CPU_KERNELS=off, no C
compiler) this is the reference. Each element is kept with probability 1 - p to within 2^-32 and
scaled by 1 / (1 - p), as in `nn.Dropout` (tests/test_dropout.py).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from biovae.engine import backends


def keep_threshold(p: float) -> int:
    """The kernel keeps an element whose 32-bit hash is below this: (1 - p) * 2^32."""
    return min(int(round((1.0 - p) * 2.0**32)), 2**32 - 1)


def draw_seed() -> int:
    """A mask seed from torch's default generator, so seeded runs repeat their masks."""
    return int(torch.randint(0, 2**62, (1,)).item())


def _apply(lib, x: torch.Tensor, seed: int, p: float) -> torch.Tensor:
    y = torch.empty_like(x)
    lib.dropout_apply(x.data_ptr(), y.data_ptr(), x.numel(), seed, keep_threshold(p), 1.0 / (1.0 - p))
    return y


class HashDropout(torch.autograd.Function):
    """dropout with the hashed mask of `seed`; its backward pass applies the same mask."""

    @staticmethod
    def forward(ctx, lib, x, seed, p):
        ctx.lib, ctx.seed, ctx.p = lib, seed, p
        return _apply(lib, x, seed, p)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        return None, _apply(ctx.lib, grad.contiguous(), ctx.seed, ctx.p), None, None


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """`nn.functional.dropout(x, p, training)`, with the C mask where backends gives the kernel."""
    if not training or p == 0.0:
        return x
    lib = backends.kernel_for("dropout", x) if 0.0 < p < 1.0 and x.numel() > 0 else None
    if lib is None:
        return nn.functional.dropout(x, p, training)
    return HashDropout.apply(lib, x.contiguous(), draw_seed(), p)


class Dropout(nn.Dropout):
    """`nn.Dropout` (same arguments, no parameters) computed by `dropout` above."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)
