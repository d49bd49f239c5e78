"""The engine's dense layer: `nn.Linear` whose three matrix products run in oneDNN on CPUs where
PyTorch's BLAS leaves the 512-bit units idle.

Why: on x86 CPUs PyTorch's `F.linear` calls MKL's sgemm, and MKL picks its AVX-512 kernels on
Intel CPUs only; on an AMD EPYC (Zen 5) with AVX-512 it runs AVX2 kernels at about 95 GFLOP/s per
core. oneDNN, which PyTorch ships beside MKL, JIT-compiles AVX-512 kernels for any CPU that has
them: the same products (256 x 1,000 -> 256, forward, input gradient and weight gradient) run at
190-215 GFLOP/s there. `benchmarks/train_throughput.py` times both, side by side in one run
(`--backends`), and `tests/test_linear.py` checks values and gradients against `F.linear`.

The backend is a per-process choice, fixed by the CPU (never by a timing), so the same seed on
the same CPU gives the same weights:
  auto    (default) oneDNN on x86-64 CPUs with AVX-512 that are not Intel's; BLAS elsewhere
          (on Intel CPUs MKL already runs AVX-512 kernels).
  onednn  oneDNN for every float32 CPU product, where PyTorch has it.
  blas    PyTorch's own `F.linear` everywhere.
Set it with the environment variable BIOVAE_CPU_MATMUL or `set_backend(name)`. GPU tensors,
non-float32 tensors (bf16 autocast included) and inputs that are not 2-D always take `F.linear`,
and so do small layers (weights under ONEDNN_MIN_WEIGHTS numbers, such as the 128 -> 10 latent
heads): there oneDNN's fixed cost per call outweighs its kernels. On a Zen 4 EPYC, one thread,
batch 128, forward / input-gradient / weight-gradient products of 128 -> 10 took 22 / 20 / 24 us
in oneDNN against 15 / 8 / 8 us in MKL, and of 128 -> 128 55 / 53 / 73 against 46 / 45 / 48 us
(measured side by side); from 128 x 765 up oneDNN is as fast or faster. The rule depends on the
shape only, so it keeps runs deterministic.
The weight gradient dW = dy^T x of a wide layer (out >= WIDE_OUTPUT x in features, such as a
decoder head 128 -> 1,530) takes BLAS too: oneDNN copies dy^T contiguous first, BLAS reads it
transposed in place. Batch 128, one thread, Zen 4: 128 -> 1,530 720 us in oneDNN against 568 in
MKL, 64 -> 2,000 504 against 384, 136 -> 512 (batch 256) 545 against 443; where out < 2 x in
oneDNN was as fast or faster (765 -> 128: 344 against 367 us).
The weights are ordinary `nn.Linear` parameters, so model files do not depend on the backend.
"""

from __future__ import annotations

import functools
import os
import platform

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from biovae.errors import BiovaeError

BACKENDS = ("auto", "onednn", "blas")
ONEDNN_MIN_WEIGHTS = 32768  # smaller weight matrices take F.linear (see the module docstring)
WIDE_OUTPUT = 2  # weight gradients of layers with out >= 2 x in features take BLAS (docstring)
_ENV = "BIOVAE_CPU_MATMUL"
_state: dict[str, str | None] = {"asked": None}


def _onednn_op():
    """oneDNN's inner product as PyTorch registers it (the op its CPU compiler emits), or None."""
    try:
        if not torch.backends.mkldnn.is_available():
            return None
        return torch.ops.mkldnn._linear_pointwise
    except (AttributeError, RuntimeError):
        return None


def _cpu_vendor() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


@functools.lru_cache(maxsize=None)
def _auto_uses_onednn() -> bool:
    if platform.machine().lower() not in ("x86_64", "amd64") or _onednn_op() is None:
        return False
    if not torch.backends.cpu.get_cpu_capability().startswith("AVX512"):
        return False
    return _cpu_vendor() not in ("GenuineIntel", "")


def set_backend(name: str | None) -> None:
    """Choose the CPU matrix-product backend for this process ("auto", "onednn", "blas"; None
    goes back to the environment variable or "auto")."""
    if name is not None and name not in BACKENDS:
        raise BiovaeError(f"unknown CPU matmul backend {name!r}", f"choose one of {', '.join(BACKENDS)}")
    _state["asked"] = name
    _uses_onednn.cache_clear()


def backend() -> str:
    """The backend float32 CPU products take in this process now: "onednn" or "blas"."""
    return "onednn" if _uses_onednn() else "blas"


@functools.lru_cache(maxsize=None)
def _uses_onednn() -> bool:
    asked = _state["asked"] or os.environ.get(_ENV, "auto").strip().lower() or "auto"
    if asked not in BACKENDS:
        raise BiovaeError(f"{_ENV}={asked!r} is not a CPU matmul backend", f"set it to one of {', '.join(BACKENDS)}")
    if asked == "blas":
        return False
    if asked == "onednn":
        return _onednn_op() is not None
    return _auto_uses_onednn()


def _product(a: torch.Tensor, b_t: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """a @ b_t.T (+ bias) in oneDNN; a and b_t may be transposed views (oneDNN reads strides)."""
    return _onednn_op()(a, b_t, bias, "none", [], "")


def onednn_backward(x: torch.Tensor, weight: torch.Tensor, grad: torch.Tensor, need_dx: bool = True,
                    need_dw: bool = True, need_db: bool = True):
    """(dx, dW, db) of y = x W^T + b in oneDNN (None where not needed): dx = dy W, dW = dy^T x,
    db = sum dy. For wide layers dW takes BLAS (see the module docstring)."""
    grad = grad.contiguous()
    dx = _product(grad, weight.t(), None) if need_dx else None
    dw = None
    if need_dw:
        # oneDNN reads the first operand, grad^T, only after copying it contiguous; for wide
        # outputs that copy outweighs its faster kernel, and BLAS's transposed read wins
        wide = weight.shape[0] >= WIDE_OUTPUT * weight.shape[1]
        dw = torch.mm(grad.t(), x) if wide else _product(grad.t(), x.t(), None)
    db = grad.sum(0) if need_db else None
    return dx, dw, db


class _OneDNNLinear(torch.autograd.Function):
    """y = x W^T + b with oneDNN products in both passes (onednn_backward)."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _product(x, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        need = ctx.needs_input_grad
        return onednn_backward(x, weight, grad, need[0], need[1], ctx.has_bias and need[2])


def uses_onednn_for(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether `linear` computes x W^T in oneDNN (else F.linear): by backend, device, dtype, shape."""
    return not (x.dim() != 2 or x.shape[0] == 0 or x.device.type != "cpu" or x.dtype != torch.float32
                or weight.dtype != torch.float32 or weight.numel() < ONEDNN_MIN_WEIGHTS
                or torch.is_autocast_enabled("cpu") or not _uses_onednn())


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """`F.linear(x, weight, bias)`, through oneDNN where the backend says so and the inputs allow."""
    if not uses_onednn_for(x, weight):
        return nn.functional.linear(x, weight, bias)
    x = x.contiguous()
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad
                                    or (bias is not None and bias.requires_grad)):
        return _OneDNNLinear.apply(x, weight, bias)
    return _product(x, weight, bias)


class Linear(nn.Linear):
    """`nn.Linear` (same parameters, same state-dict keys) computed by `linear` above."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)
