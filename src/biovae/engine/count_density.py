"""Per-sample log-likelihood of counts under a negative binomial, optionally zero-inflated, as one
autograd function with its gradient written out: the training objective of the `nb` and `zinb`
likelihoods.

For counts x (batch, features), mean mu (batch, features), per-feature inverse dispersion
theta = exp(log_theta) (features,) and, for ZINB, zero logits l (batch, features) (pi = sigmoid(l)):

    nb(x)   = theta log(theta / (theta + mu)) + x log(mu / (theta + mu))
              + lgamma(x + theta) - lgamma(theta) - lgamma(x + 1)
    zinb(x) = log(1 - pi) + nb(x) + [x = 0] softplus(l - nb(0))
              (= log(pi + (1 - pi) NB(0)) at x = 0, = log(1 - pi) + nb(x) elsewhere)

and the result is the sum over features, (batch,). Gradients, with g the upstream (batch,):
    d/d mu        = g w (x / mu - (theta + x) / (theta + mu))
    d/d log_theta = theta sum_batch g w (log(theta / (theta + mu)) + 1 - (theta + x) / (theta + mu))
                    + theta sum_{x > 0} g (digamma(x + theta) - digamma(theta))
    d/d l         = g ([x = 0] s - sigmoid(l)),   s = sigmoid(l - nb(0))
with w = 1 - [x = 0] s for ZINB and w = 1 for NB.

Why one function: the same values through torch.distributions-style code build a graph of about
thirty (batch, features) tensors and kernels per step, and single-cell counts are mostly zeros.
Here the gamma-function terms are evaluated at the non-zero counts only, lgamma(theta) and
digamma(theta) once per feature, and the per-sample sums of the gamma terms are scattered into a
(batch,) vector instead of a dense (batch, features) one. Values and gradients are tested against
torch.distributions (tests/test_likelihoods.py); `benchmarks/likelihood_speed.py` times this
against torch.distributions and the previous graph-built form in one run.

On the CPU in float32 the same function runs as one pass of C (kernels/count_density.c, built on
first use by biovae.engine.kernel_build; _CountLogProbC), and training calls it from the decoder's
raw output with the mean computed inside the kernel too (count_log_prob_raw; _CountLogProbRawC):
4.7x (zinb) to 5.4x (nb) faster than the PyTorch code below on 128 x 765 counts at 38 % non-zero,
3.2-3.5x at 8 %, and 7.5-9.2x faster than torch.distributions, forward + backward, one thread,
Zen 4 EPYC, measured side by side by benchmarks/likelihood_speed.py (which also times the kernel
with the mean outside it and with its scalar gather).
Its values are no further from float64 than the PyTorch code's in float32 (its lgamma differences
run in double; counts up to 8 take exact finite sums), tested.
Other devices and dtypes, machines without a C compiler, and `with pytorch_path():` use the
PyTorch code.
"""

from __future__ import annotations

import ctypes
from contextlib import contextmanager
from functools import cache

import torch
from torch.autograd.function import once_differentiable

from biovae.engine import direct
from biovae.engine.kernel_build import kernel

_EPS = 1e-8  # floor inside log(mu): a decoder mean of exactly zero keeps a finite log-likelihood
_SHIFT = 6  # digamma_shifted: recurrence steps before the asymptotic series


def digamma_shifted(y: torch.Tensor) -> torch.Tensor:
    """digamma(y) for y >= 1 (here y = count + theta at the non-zero counts), from
    psi(y) = psi(y + 6) - sum_{i<6} 1 / (y + i) and the asymptotic series of psi at y + 6 >= 7 up
    to its w^-10 term (truncation error below 4e-11, far under float32 rounding). Same accuracy as
    torch.digamma in float32 (max abs error 5e-7 against float64 on counts 1-20, tested), 2.7x
    faster on 25,000 values, one thread (0.16 vs 0.43 ms, measured side by side): torch's CPU
    digamma is not vectorised, and the backward pass of an NB step evaluates it at every
    non-zero count."""
    acc = torch.reciprocal(y)
    w = y + 1.0
    for _ in range(_SHIFT - 1):
        acc += torch.reciprocal(w)
        w += 1.0
    inv = torch.reciprocal(w)
    inv2 = inv * inv
    series = inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 * (1 / 252 - inv2 * (1 / 240 - inv2 * (1 / 132)))))
    return torch.log(w) - 0.5 * inv - series - acc


def _zeros(x: torch.Tensor) -> torch.Tensor:
    """1.0 where the count is 0, else 0.0, for whole counts x >= 0 (the count likelihoods check
    their data): two float kernels, 4x faster than (x == 0).to(float) and 10x faster than
    torch.where on a boolean mask (128 x 765, one thread, measured side by side)."""
    return (1.0 - x).clamp_(min=0.0)


class _CountLogProb(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, mu, log_theta, zero_logits):
        theta = torch.exp(log_theta)
        log_sum = torch.log(theta + mu)
        nb = theta * (log_theta - log_sum) + x * (torch.log(mu + _EPS) - log_sum)
        rows, cols = (x > 0).nonzero(as_tuple=True)
        xv = x[rows, cols]
        t = theta[cols]
        gamma = torch.lgamma(xv + t) - torch.lgamma(theta)[cols] - torch.lgamma(xv + 1.0)
        if zero_logits is None:
            elem, shift = nb, None
        else:
            shift = zero_logits - nb  # used at x = 0 only, where nb = nb(0)
            elem = nb - torch.nn.functional.softplus(zero_logits) + torch.nn.functional.softplus(shift) * _zeros(x)
        out = elem.sum(-1).index_add_(0, rows, gamma)
        ctx.save_for_backward(x, mu, log_theta, log_sum, zero_logits, shift, rows, cols, xv)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, mu, log_theta, log_sum, zero_logits, shift, rows, cols, xv = ctx.saved_tensors
        theta = torch.exp(log_theta)
        g = grad[:, None]
        if zero_logits is None:
            w = g.expand_as(mu)
            d_zero = None
        else:
            s = torch.sigmoid(shift) * _zeros(x)
            w = g * (1.0 - s)
            d_zero = g * (s - torch.sigmoid(zero_logits)) if ctx.needs_input_grad[3] else None
        inv_sum = torch.reciprocal(theta + mu)
        d_mu = None
        if ctx.needs_input_grad[1]:
            d_mu = w * (x / (mu + _EPS) - (theta + x) * inv_sum)
        d_log_theta = None
        if ctx.needs_input_grad[2]:
            dense = (w * ((log_theta - log_sum) + 1.0 - (theta + x) * inv_sum)).sum(0)
            t = theta[cols]
            sparse = grad[rows] * (digamma_shifted(xv + t) - torch.digamma(theta)[cols])
            d_log_theta = theta * dense.index_add_(0, cols, sparse)
        return None, d_mu, d_log_theta, d_zero


@cache
def _lib():
    """The C kernel library, or None (not built here)."""
    lib = kernel("count_density")
    if lib is None:
        return None
    lib.count_work_size.restype = ctypes.c_int64  # the library's name hashes its source: never stale
    lib.count_set_gather.restype = None
    return lib


def _work(like: torch.Tensor, f: int) -> torch.Tensor:
    """The kernel's scratch for f features (its count_work_size)."""
    return like.new_empty(_lib().count_work_size(ctypes.c_int64(f)))


def _ptr(t: torch.Tensor | None):
    return None if t is None else ctypes.c_void_p(t.data_ptr())


class _CountLogProbC(torch.autograd.Function):
    """The same function and gradient in one pass of the C kernel (kernels/count_density.c),
    for float32 tensors on the CPU."""

    @staticmethod
    def forward(ctx, x, mu, log_theta, zero_logits):
        lib = _lib()
        b, f = mu.shape
        out, work = mu.new_empty(b), _work(mu, f)
        lib.count_forward(_ptr(x), _ptr(mu), _ptr(log_theta), _ptr(zero_logits), _ptr(out), _ptr(work),
                          ctypes.c_int64(b), ctypes.c_int64(f))
        ctx.save_for_backward(x, mu, log_theta, zero_logits)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, mu, log_theta, zero_logits = ctx.saved_tensors
        lib = _lib()
        b, f = mu.shape
        grad = grad.contiguous()
        d_mu, d_log_theta, work = torch.empty_like(mu), torch.empty_like(log_theta), _work(mu, f)
        d_zero = None if zero_logits is None else torch.empty_like(zero_logits)
        lib.count_backward(_ptr(grad), _ptr(x), _ptr(mu), _ptr(log_theta), _ptr(zero_logits), _ptr(d_mu),
                           _ptr(d_log_theta), _ptr(d_zero), _ptr(work), ctypes.c_int64(b), ctypes.c_int64(f))
        return None, d_mu, d_log_theta, d_zero


_switch = {"kernel": True}


def kernel_built() -> bool:
    """Whether the C kernel is built and loaded in this process."""
    return _lib() is not None


@contextmanager
def pytorch_path():
    """Within this block count_log_prob uses the PyTorch code even where the C kernel is built
    (benchmarks/likelihood_speed.py times both in one run; tests compare them)."""
    before, _switch["kernel"] = _switch["kernel"], False
    try:
        yield
    finally:
        _switch["kernel"] = before


@contextmanager
def scalar_gather():
    """Within this block the C kernel lists each row's non-zero counts with its scalar loop even
    on CPUs with AVX-512 (benchmarks/likelihood_speed.py times both; tests compare them)."""
    lib = _lib()
    if lib is None:
        yield
        return
    lib.count_set_gather(ctypes.c_int64(0))
    try:
        yield
    finally:
        lib.count_set_gather(ctypes.c_int64(1))


def _use_kernel(mu: torch.Tensor) -> bool:
    return (_switch["kernel"] and mu.device.type == "cpu" and mu.dtype == torch.float32 and mu.dim() == 2
            and _lib() is not None)


class _CountLogProbRawC(torch.autograd.Function):
    """count_log_prob(x, count_mean(mean logits, library), log_theta, zero logits) from the
    decoder's raw output in one pass of the C kernel, mean and its gradient included: raw
    (batch, features) for NB, (batch, 2 features) for ZINB, as count_log_prob_raw describes."""

    @staticmethod
    def forward(ctx, x, raw, log_theta, library, zinb):
        lib = _lib()
        b, f = x.shape
        mu, out, work = raw.new_empty(b, f), raw.new_empty(b), _work(raw, f)
        lib.count_forward_raw(_ptr(x), _ptr(raw), _ptr(log_theta), _ptr(library), ctypes.c_int64(zinb), _ptr(mu),
                              _ptr(out), _ptr(work), ctypes.c_int64(b), ctypes.c_int64(f))
        ctx.save_for_backward(x, raw, mu, log_theta, library)
        ctx.zinb = zinb
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, raw, mu, log_theta, library = ctx.saved_tensors
        lib = _lib()
        b, f = x.shape
        grad = grad.contiguous()
        d_raw, d_log_theta, work = torch.empty_like(raw), torch.empty_like(log_theta), _work(raw, f)
        lib.count_backward_raw(_ptr(grad), _ptr(x), _ptr(raw), _ptr(mu), _ptr(log_theta), _ptr(library),
                               ctypes.c_int64(ctx.zinb), _ptr(d_raw), _ptr(d_log_theta), _ptr(work),
                               ctypes.c_int64(b), ctypes.c_int64(f))
        return None, d_raw, d_log_theta, None, None


def count_mean(raw: torch.Tensor, library: torch.Tensor | None) -> torch.Tensor:
    """Mean counts: library * softmax(raw) when a library size (batch, 1) is given (the decoder
    then models proportions, so sequencing depth does not enter the latent), else exp(raw)."""
    if library is None:
        return torch.exp(raw.clamp(max=20.0))
    return library * torch.softmax(raw, dim=-1)


def count_log_prob_raw(x: torch.Tensor, raw: torch.Tensor, log_theta: torch.Tensor,
                       library: torch.Tensor | None = None, zero_inflated: bool = False) -> torch.Tensor:
    """count_log_prob with the mean and zero logits read from the decoder's raw output: raw is
    (batch, features) of mean logits for NB, (batch, 2 features) of mean logits then zero logits
    for ZINB; mu = count_mean(mean logits, library). (batch,).

    Where the C kernel runs, the mean is computed inside it, in place of a softmax, a product
    with the library, contiguous copies of raw's two halves and a stack of their gradients:
    forward + backward 1.44x (zinb) and 1.10x (nb) faster than the kernel fed a mean computed in
    PyTorch, 128 x 765 counts at 38 % non-zero, one thread (benchmarks/likelihood_speed.py)."""
    learned_library = library is not None and library.requires_grad
    inputs = None if learned_library else _raw_kernel_inputs(x, raw, log_theta, library, zero_inflated)
    if inputs is not None:
        return _CountLogProbRawC.apply(*inputs)
    f = x.shape[-1]
    mu = count_mean(raw[..., :f], library)
    return count_log_prob(x, mu, log_theta, raw[..., f:2 * f] if zero_inflated else None)


def _raw_kernel_inputs(x, raw, log_theta, library, zero_inflated: bool):
    """_CountLogProbRawC's arguments from count_log_prob_raw's, or None where the kernel does not run."""
    f = x.shape[-1]
    if not (_use_kernel(raw) and raw.shape == (x.shape[0], (2 if zero_inflated else 1) * f)):
        return None
    library = None if library is None else library.reshape(-1).to(raw.dtype).contiguous()
    return (x.to(raw.dtype).contiguous(), raw.contiguous(), log_theta.expand(f).contiguous(), library,
            int(zero_inflated))


def count_log_prob_raw_direct(x: torch.Tensor, raw: torch.Tensor, log_theta: torch.Tensor,
                              library: torch.Tensor | None = None, zero_inflated: bool = False):
    """count_log_prob_raw's value (batch,) and a function grad (batch,) -> (d raw, d log_theta),
    outside autograd (engine.direct), or None where the C kernel does not run (then use
    count_log_prob_raw). log_theta is (features,)."""
    if log_theta.shape != (x.shape[-1],):
        return None
    with torch.no_grad():
        inputs = _raw_kernel_inputs(x, raw, log_theta, library, zero_inflated)
        if inputs is None:
            return None
        ctx, out = direct.forward(_CountLogProbRawC, *inputs)

    def backward(grad: torch.Tensor):
        return direct.backward(_CountLogProbRawC, ctx, grad.contiguous())[1:3]

    return out, backward


def count_log_prob(x: torch.Tensor, mu: torch.Tensor, log_theta: torch.Tensor,
                   zero_logits: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample NB (zero_logits None) or ZINB log-likelihood summed over features: (batch,).
    x and mu (batch, features), log_theta (features,), zero_logits (batch, features) or None.
    float32 on the CPU runs the C kernel where it builds (biovae.engine.kernel_build), else the
    PyTorch code above."""
    x = x.to(mu.dtype)
    if _use_kernel(mu):
        log_theta = log_theta.expand(mu.shape[-1]).contiguous()
        zero_logits = None if zero_logits is None else zero_logits.expand_as(mu).contiguous()
        return _CountLogProbC.apply(x.contiguous(), mu.contiguous(), log_theta, zero_logits)
    return _CountLogProb.apply(x, mu, log_theta, zero_logits)
