"""Batch norm, ReLU and dropout as one layer, `BatchNormReluDropout`: a fast operation whose
PyTorch reference is the three layers in a row (`reference`), and whose kernel
(kernels/batch_norm.c) runs both passes in one sweep each while training on the CPU in float32.

Why: as three modules they are six autograd nodes and six passes over the (batch, width)
activations per layer and step; fused, one pass each way, and the backward pass needs no dropout
mask and no ReLU mask (an output above zero is an element both kept and positive).
`benchmarks/dropout_speed.py` times both side by side. The values are those of nn.BatchNorm1d
(batch mean and biased variance to normalise; running mean and unbiased running variance updated
with its momentum, or the cumulative average when momentum is None), ReLU and engine.dropout's
mask, whose seed it draws as `dropout` does, so a seeded fit is the same either way up to float
rounding (tests/test_dropout.py). Eval mode, other devices and dtypes, batches of one row and
machines without the kernel (engine.backends) run the reference.

It is an nn.BatchNorm1d (same parameters, buffers and state-dict keys), so model files do not
depend on it; engine.layers.mlp builds it where the layers are batch norm then ReLU.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from biovae.engine import backends
from biovae.engine.dropout import draw_seed, dropout, keep_threshold


class BatchNormReluDropoutKernel(torch.autograd.Function):
    """The kernel's two passes; `lib` is the batch_norm kernel library (backends.kernel_for)."""

    @staticmethod
    def forward(ctx, lib, h, weight, bias, running_mean, running_var, momentum, eps, seed, p):
        n, c = h.shape
        y = torch.empty_like(h)
        stats = h.new_empty(3, c)  # mean, 1 / sd, biased variance
        scale = 1.0 / (1.0 - p)
        lib.bnrd_forward(h.data_ptr(), weight.data_ptr(), bias.data_ptr(), y.data_ptr(), stats[0].data_ptr(),
                         stats[1].data_ptr(), stats[2].data_ptr(), running_mean.data_ptr(), running_var.data_ptr(),
                         momentum, n, c, eps, seed, keep_threshold(p), scale, int(p == 0.0))
        ctx.save_for_backward(h, weight, y, stats)
        ctx.lib, ctx.scale = lib, scale
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        h, weight, y, stats = ctx.saved_tensors
        n, c = h.shape
        dy = dy.contiguous()
        dh, dgamma, dbeta = torch.empty_like(h), torch.empty_like(weight), torch.empty_like(weight)
        ctx.lib.bnrd_backward(dy.data_ptr(), h.data_ptr(), y.data_ptr(), weight.data_ptr(), stats[0].data_ptr(),
                              stats[1].data_ptr(), dh.data_ptr(), dgamma.data_ptr(), dbeta.data_ptr(), n, c, ctx.scale)
        return None, dh, dgamma, dbeta, None, None, None, None, None, None


class BatchNormReluDropout(nn.BatchNorm1d):
    """dropout(relu(batch_norm(h)), p): an nn.BatchNorm1d followed by ReLU and dropout p."""

    sync_norm: nn.SyncBatchNorm | None = None  # set by sync_batch_norm for multi-GPU runs

    def __init__(self, num_features: int, p: float = 0.0):
        super().__init__(num_features)
        self.p = float(p)

    def _norm(self, h: torch.Tensor) -> torch.Tensor:
        sync = self.sync_norm
        if sync is None:
            return super().forward(h)
        # the synced layer normalises with this layer's own parameters and buffers (which the
        # device move and DDP may have replaced since it was made)
        sync.weight, sync.bias = self.weight, self.bias
        sync.running_mean, sync.running_var = self.running_mean, self.running_var
        sync.num_batches_tracked, sync.momentum, sync.training = self.num_batches_tracked, self.momentum, self.training
        return sync(h)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, relu, dropout p={self.p}"

    def reference(self, h: torch.Tensor) -> torch.Tensor:
        """The three layers in PyTorch (engine.dropout's mask)."""
        return dropout(torch.relu_(self._norm(h)), self.p, self.training)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        lib = None
        if self.training and h.dim() == 2 and h.shape[0] > 1 and self.sync_norm is None:
            lib = backends.kernel_for("batch_norm", h, self.weight, self.running_var)
        if lib is None:
            return self.reference(h)
        seed = draw_seed() if self.p > 0.0 else 0  # as engine.dropout draws it: the same masks
        self.num_batches_tracked.add_(1)
        momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        return BatchNormReluDropoutKernel.apply(lib, h.contiguous(), self.weight, self.bias, self.running_mean,
                                                self.running_var, momentum, self.eps, seed, self.p)


def sync_batch_norm(module: nn.Module) -> Callable[[], None]:
    """Batch statistics over the global batch of a multi-process GPU run: each
    BatchNormReluDropout normalises through an nn.SyncBatchNorm on its own parameters and buffers
    (its ReLU and dropout kept; not a child module, so state-dict keys stay), and every other
    batch norm layer is swapped for nn.SyncBatchNorm (torch's convert_sync_batchnorm, which shares
    parameters and buffers). Returns the function that undoes both."""
    undo = []
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, BatchNormReluDropout):
                object.__setattr__(child, "sync_norm", nn.SyncBatchNorm(child.num_features, child.eps, child.momentum))
                undo.append(lambda c=child: object.__setattr__(c, "sync_norm", None))
            elif isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
                setattr(parent, name, nn.SyncBatchNorm.convert_sync_batchnorm(child))
                undo.append(lambda p=parent, n=name, c=child: setattr(p, n, c))

    def revert() -> None:
        for step in reversed(undo):
            step()

    return revert
