"""The hurdle likelihoods' training objective in one pass of C (kernels/hurdle_density.c):
`HurdleLogProbKernel` gives the per-sample log-likelihood and, in the same pass, its gradient per
unit of the upstream gradient, so that the backward pass is one product. The reference is the
Hurdle distribution's log_prob through autograd (engine.likelihoods.hurdle), which runs wherever
the kernel does not (BIOVAE_CPU_KERNELS=off, float64, no C compiler; engine.backends).

For x, loc, zero logit l, scale s, nz = [x != 0] and z = (x - loc) / s:

    log p(x)       = -softplus(l) + (1 - nz) l + nz (-z^2 / 2 - log s - log(2 pi) / 2)
    d/d loc        = nz z / s
    d/d l          = (1 - nz) - sigmoid(l)
    hurdle_cell, s = softplus(r) + floor:  d/d r = nz (z^2 - 1) / s * sigmoid(r)
    hurdle,      s = exp(log_scale_j):     d/d log_scale_j = sum over samples of nz (z^2 - 1)

Why a kernel: through autograd "hurdle" builds about twenty (batch, features) tensors a step
(two where's, softplus and its backward, the per-feature scale expanded and reduced back), and
the gradient of hurdle_cell written out in PyTorch still took a dozen passes. One epoch of each
(5,000 pbmc68k_reduced cells, SCVI's layer sizes, one thread, torch profiler, 2026-12-08) spent
about 30 % of its time in the objective. benchmarks/hurdle_objective_speed.py times the kernel
against the reference (figures in docs/generation.md); tests/test_kernels.py and
tests/test_likelihoods.py check values and gradients against the float64 reference on every
instruction-set build this CPU runs.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from biovae.engine import backends


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


class HurdleLogProbKernel(torch.autograd.Function):
    """Per-sample hurdle log-likelihood (batch,) from x (batch, f) and the decoder's raw output:
    (batch, 3 f) of loc, zero logits and raw scale for hurdle_cell (cell=True; log_scale unused,
    pass an empty tensor), (batch, 2 f) of loc and zero logits with log_scale (f,) for hurdle.
    All float32, contiguous, on the CPU. `lib` is the kernel library (backends.kernel_for)."""

    @staticmethod
    def forward(ctx, lib, x, raw, log_scale, floor: float, cell: bool):
        b, f = x.shape
        out = raw.new_empty(b)
        want = ctx.needs_input_grad[2] or ctx.needs_input_grad[3]
        unit = raw.new_empty(b, 3 * f) if want else None
        work = raw.new_empty(lib.hurdle_work_size(f))
        lib.hurdle_forward(_ptr(x), _ptr(raw), _ptr(log_scale), float(floor), int(cell), _ptr(out), _ptr(unit),
                           _ptr(work), b, f)
        ctx.save_for_backward(unit)
        ctx.cell = cell
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        (unit,) = ctx.saved_tensors
        g = grad.reshape(-1, 1)
        if ctx.cell:
            return None, None, unit * g, None, None, None
        f = unit.shape[1] // 3
        return None, None, unit[:, :2 * f] * g, grad.reshape(1, -1).mm(unit[:, 2 * f:]).reshape(-1), None, None


def hurdle_log_prob_raw(x: torch.Tensor, raw: torch.Tensor, log_scale: torch.Tensor | None, floor: float = 0.0):
    """The kernel's per-sample log-likelihood (batch,) where backends allows it (float32 CPU
    tensors, kernels on, a 2-d decoder output of the expected width), else None: the caller then
    runs its distribution's log_prob. log_scale None: hurdle_cell's layout, else hurdle's."""
    f = x.shape[-1]
    cell = log_scale is None
    scale = raw.new_empty(0) if cell else log_scale
    if raw.dim() != 2 or raw.shape != (x.shape[0], (3 if cell else 2) * f) or scale.numel() not in (0, f):
        return None
    lib = backends.kernel_for("hurdle_density", raw, scale)
    if lib is None:
        return None
    return HurdleLogProbKernel.apply(lib, x.to(raw.dtype).contiguous(), raw.contiguous(), scale.contiguous(),
                                     floor, cell)
