"""A torch.autograd.Function's forward and backward called directly, outside autograd: for code
that chains a training step's gradients itself (engine.fused_step), so the Functions' own passes
serve both paths."""

from __future__ import annotations


class Ctx:
    """Stands in for autograd's ctx: keeps what forward saves and sets, for backward."""

    def save_for_backward(self, *tensors):
        self.saved_tensors = tensors


def forward(fn, *args):
    """(ctx, fn.forward(ctx, *args)) without recording a graph node."""
    ctx = Ctx()
    return ctx, fn.forward(ctx, *args)


def backward(fn, ctx, *grads):
    """fn's backward for a ctx from `forward` (the function under once_differentiable's wrapper)."""
    return getattr(fn.backward, "__wrapped__", fn.backward)(ctx, *grads)
