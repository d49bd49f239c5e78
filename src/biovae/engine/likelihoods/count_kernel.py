"""The NB / ZINB density, once: `count_log_density` is the PyTorch definition (every count
likelihood's distribution and the reference of the kernel), `CountLogProbKernel` the same
per-sample sum and its gradient in one pass of C (kernels/count_density.c), and
`count_log_prob_raw` the training objective, which runs the kernel where backends allows it.

For counts x, mean mu, per-feature inverse dispersion theta = exp(log_theta) and, for ZINB, zero
logits l (pi = sigmoid(l)):

    nb(x)   = theta log(theta / (theta + mu)) + x log(mu / (theta + mu))
              + lgamma(x + theta) - lgamma(theta) - lgamma(x + 1)
    zinb(x) = log(1 - pi) + nb(x) + [x = 0] softplus(l - nb(0))
              (= log(pi + (1 - pi) NB(0)) at x = 0, = log(1 - pi) + nb(x) elsewhere)

Gradients (the kernel's backward pass), with g the upstream (batch,):
    d/d mu        = g w (x / mu - (theta + x) / (theta + mu))
    d/d log_theta = theta sum_batch g w (log(theta / (theta + mu)) + 1 - (theta + x) / (theta + mu))
                    + theta sum_{x > 0} g (digamma(x + theta) - digamma(theta))
    d/d l         = g ([x = 0] s - sigmoid(l)),   s = sigmoid(l - nb(0))
with w = 1 - [x = 0] s for ZINB and w = 1 for NB; the mean mu = library * softmax(raw) (or
exp(raw) without a library) and its gradient are computed inside the kernel too.

Why a kernel: through PyTorch the same values build a graph of about thirty (batch, features)
tensors per step, and single-cell counts are mostly zeros; the kernel evaluates the gamma-function
terms at the non-zero counts only, lgamma(theta) once per feature, in one pass each way.
benchmarks/likelihood_speed.py times it against this module's PyTorch reference and
torch.distributions, side by side; tests/test_likelihoods.py checks values and gradients against
float64 references, for every instruction-set build the CPU runs (engine.backends).
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from biovae.engine import backends

EPS = 1e-8  # floor inside log(mu): a decoder mean of exactly zero keeps a finite log-likelihood


def count_mean(raw: torch.Tensor, library: torch.Tensor | None) -> torch.Tensor:
    """Mean counts: library * softmax(raw) when a library size (batch, 1) is given (the decoder
    then models proportions, so sequencing depth does not enter the latent), else exp(raw)."""
    if library is None:
        return torch.exp(raw.clamp(max=20.0))
    return library * torch.softmax(raw, dim=-1)


def count_log_density(x: torch.Tensor, mu: torch.Tensor, log_theta: torch.Tensor,
                      zero_logits: torch.Tensor | None = None) -> torch.Tensor:
    """Elementwise NB (zero_logits None) or ZINB log-density of counts x at mean mu, log inverse
    dispersion log_theta (per feature, broadcast) and zero logits: the shape of x and mu."""
    x = x.to(mu.dtype)
    theta = torch.exp(log_theta)
    log_sum = torch.log(theta + mu)  # theta > 0: no floor needed
    nb = (theta * (log_theta - log_sum) + x * (torch.log(mu + EPS) - log_sum)
          + torch.lgamma(x + theta) - torch.lgamma(theta) - torch.lgamma(x + 1.0))
    if zero_logits is None:
        return nb
    # log(1 - pi) + nb, plus at x = 0: log(pi + (1 - pi) NB(0)) - log((1 - pi) NB(0)) = softplus(l - nb(0))
    extra = torch.nn.functional.softplus(zero_logits - nb)
    return nb - torch.nn.functional.softplus(zero_logits) + torch.where(x < 0.5, extra, torch.zeros_like(extra))


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


class CountLogProbKernel(torch.autograd.Function):
    """count_log_density(x, count_mean(mean logits, library), log_theta, zero logits).sum(-1) from
    the decoder's raw output in one pass of the C kernel, the mean and its gradient included: raw
    is (batch, features) for NB, (batch, 2 features) of mean then zero logits for ZINB; x
    (batch, features), log_theta (features,), library (batch,) or None, all float32 and
    contiguous. `lib` is the kernel library (backends.kernel_for)."""

    @staticmethod
    def forward(ctx, lib, x, raw, log_theta, library, zinb: bool):
        b, f = x.shape
        mu, out = raw.new_empty(b, f), raw.new_empty(b)
        work = raw.new_empty(lib.count_work_size(f))
        lib.count_forward_raw(_ptr(x), _ptr(raw), _ptr(log_theta), _ptr(library), int(zinb), _ptr(mu), _ptr(out),
                              _ptr(work), b, f)
        ctx.save_for_backward(x, raw, mu, log_theta, library)
        ctx.lib, ctx.zinb = lib, zinb
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, raw, mu, log_theta, library = ctx.saved_tensors
        b, f = x.shape
        grad = grad.contiguous()
        d_raw, d_log_theta = torch.empty_like(raw), torch.empty_like(log_theta)
        work = raw.new_empty(ctx.lib.count_work_size(f))
        ctx.lib.count_backward_raw(_ptr(grad), _ptr(x), _ptr(raw), _ptr(mu), _ptr(log_theta), _ptr(library),
                                   int(ctx.zinb), _ptr(d_raw), _ptr(d_log_theta), _ptr(work), b, f)
        return None, None, d_raw, d_log_theta, None, None


def count_log_prob_raw(x: torch.Tensor, raw: torch.Tensor, log_theta: torch.Tensor,
                       library: torch.Tensor | None = None, zero_inflated: bool = False) -> torch.Tensor:
    """Per-sample NB / ZINB log-likelihood (batch,) from the decoder's raw output (mean logits,
    then zero logits for ZINB; see CountLogProbKernel): the kernel where backends allows it (float32
    CPU tensors, kernels on) and the library is data, not learned; else the PyTorch reference."""
    f = x.shape[-1]
    width = (2 if zero_inflated else 1) * f
    learned_library = library is not None and library.requires_grad
    lib = None if learned_library else backends.kernel_for("count_density", raw, log_theta)
    if lib is not None and raw.dim() == 2 and raw.shape == (x.shape[0], width) and log_theta.numel() in (1, f):
        library = None if library is None else library.reshape(-1).to(raw.dtype).contiguous()
        return CountLogProbKernel.apply(lib, x.to(raw.dtype).contiguous(), raw.contiguous(),
                                        log_theta.expand(f).contiguous(), library, zero_inflated)
    mu = count_mean(raw[..., :f], library)
    return count_log_density(x, mu, log_theta, raw[..., f:width] if zero_inflated else None).sum(-1)
