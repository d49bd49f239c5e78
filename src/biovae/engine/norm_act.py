"""Batch norm, ReLU and dropout as one autograd node: the three layers `networks.mlp` stacks after
each hidden Linear, fused on the CPU in float32 while training (kernels/dropout.c, bnrd_*).

Why: as three modules they are six autograd nodes and six passes over the (batch, width)
activations per layer and step; fused, one pass each way, and the backward pass needs no
dropout mask and no ReLU mask (an output above zero is an element both kept and positive).
Forward + backward on 128 x 128, one thread, Zen 4 EPYC: 176 us against 241 us for the modules
(1.37x, medians of 40 interleaved rounds; `benchmarks/dropout_speed.py` times both side by side),
of which the C passes are about 20 us: the rest is autograd and call overhead. The values are
those of nn.BatchNorm1d (batch mean and biased variance to normalise; running mean and unbiased
running variance updated with its momentum, or the cumulative average when momentum is None),
nn.ReLU and engine.dropout's mask, which draws its seed as `dropout` does, so a seeded fit is the
same whether or not the layers are fused up to float rounding (tests/test_dropout.py). Eval mode,
other devices and dtypes, batches of one row, and machines without the C kernel run the modules.
"""

from __future__ import annotations

import ctypes

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from biovae.engine import dropout as _dropout


def _p(t: torch.Tensor) -> ctypes.c_void_p:
    return ctypes.c_void_p(t.data_ptr())


class _BatchNormReluDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, weight, bias, running_mean, running_var, momentum, eps, seed, p):
        n, c = h.shape
        y = torch.empty_like(h)
        stats = h.new_empty(3, c)  # mean, 1 / sd, biased variance
        scale = 1.0 / (1.0 - p)
        threshold = _dropout.keep_threshold(p)
        _dropout._lib().bnrd_forward(_p(h), _p(weight), _p(bias), _p(y), _p(stats[0]), _p(stats[1]), _p(stats[2]),
                                     _p(running_mean), _p(running_var), ctypes.c_float(momentum),
                                     ctypes.c_int64(n), ctypes.c_int64(c), ctypes.c_float(eps),
                                     ctypes.c_uint64(seed), ctypes.c_uint32(threshold), ctypes.c_float(scale),
                                     ctypes.c_int64(p == 0.0))
        ctx.save_for_backward(h, weight, y, stats)
        ctx.scale = scale
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        h, weight, y, stats = ctx.saved_tensors
        n, c = h.shape
        dy = dy.contiguous()
        dh, dgamma, dbeta = torch.empty_like(h), torch.empty_like(weight), torch.empty_like(weight)
        _dropout._lib().bnrd_backward(_p(dy), _p(h), _p(y), _p(weight), _p(stats[0]), _p(stats[1]), _p(dh), _p(dgamma),
                                      _p(dbeta), ctypes.c_int64(n), ctypes.c_int64(c),
                                      ctypes.c_float(ctx.scale))
        return dh, dgamma, dbeta, None, None, None, None, None, None


def fusable(h: torch.Tensor, norm: nn.Module) -> bool:
    """Whether batch_norm_relu_dropout runs fused here (else the caller runs the modules)."""
    return (norm.training and type(norm) is nn.BatchNorm1d and norm.affine and norm.track_running_stats
            and h.dim() == 2 and h.shape[0] > 1 and h.device.type == "cpu" and h.dtype == torch.float32
            and norm.weight.dtype == torch.float32 and norm.running_var.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu")
            and _dropout._lib() is not None)


def batch_norm_relu_dropout(h: torch.Tensor, norm: nn.BatchNorm1d, p: float) -> torch.Tensor:
    """dropout(relu(norm(h)), p) in training mode, fused (check `fusable` first)."""
    seed = _dropout.draw_seed() if p > 0.0 else 0  # as engine.dropout draws it: the same masks
    norm.num_batches_tracked.add_(1)
    momentum = norm.momentum if norm.momentum is not None else 1.0 / float(norm.num_batches_tracked)
    return _BatchNormReluDropout.apply(h.contiguous(), norm.weight, norm.bias, norm.running_mean, norm.running_var,
                                       momentum, norm.eps, seed, p)
