"""Dropout for the engine's networks: on the CPU in float32, the mask is a counter-based hash of
(a seed drawn from PyTorch's generator, element index), computed in C (kernels/dropout.c) and
recomputed in the backward pass, so no mask is stored and no per-element random numbers are drawn.

Why: `nn.Dropout` on the CPU draws one Mersenne-Twister number per element (bernoulli_). On a
Zen 4 EPYC, one thread, a 128 x 128 batch took 109 us per dropout forward against 17 us here
(9 us of it the C loop), and 160 against 92 us forward + backward (`benchmarks/dropout_speed.py`
times both side by side); a training step of SCVI's architecture has two of them. The seed comes from torch's default
generator, so `torch.manual_seed` (and biovae's --seed) fixes the masks: same seed, same
weights. Elsewhere (GPU tensors, other dtypes, BIOVAE_CPU_KERNELS=off, no C compiler) this is
`nn.functional.dropout`. Each element is kept with probability 1 - p to within 2^-32 and scaled
by 1 / (1 - p), as in `nn.Dropout` (tested).
"""

from __future__ import annotations

import ctypes
from functools import cache

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from biovae.engine.kernel_build import kernel


@cache
def _lib():
    lib = kernel("dropout")
    if lib is not None:
        lib.dropout_apply.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_uint64,
                                      ctypes.c_uint32, ctypes.c_float]
        lib.dropout_apply.restype = None
    return lib


def keep_threshold(p: float) -> int:
    """The kernel keeps an element whose 32-bit hash is below this: (1 - p) * 2^32."""
    return min(int(round((1.0 - p) * 2.0**32)), 2**32 - 1)


def draw_seed() -> int:
    """A mask seed from torch's default generator, so seeded runs repeat their masks."""
    return int(torch.randint(0, 2**62, (1,)).item())


def _apply(x: torch.Tensor, seed: int, p: float) -> torch.Tensor:
    y = torch.empty_like(x)
    _lib().dropout_apply(x.data_ptr(), y.data_ptr(), x.numel(), seed, keep_threshold(p), 1.0 / (1.0 - p))
    return y


class _HashDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, seed, p):
        ctx.seed, ctx.p = seed, p
        return _apply(x, seed, p)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        return _apply(grad.contiguous(), ctx.seed, ctx.p), None, None


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """`nn.functional.dropout(x, p, training)`, with the C mask on float32 CPU tensors."""
    if not training or p == 0.0:
        return x
    if not (x.device.type == "cpu" and x.dtype == torch.float32 and 0.0 < p < 1.0 and x.numel() > 0
            and _lib() is not None):
        return nn.functional.dropout(x, p, training)
    return _HashDropout.apply(x.contiguous(), draw_seed(), p)


class Dropout(nn.Dropout):
    """`nn.Dropout` (same arguments, no parameters) computed by `dropout` above."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)
