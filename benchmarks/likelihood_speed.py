"""NB / ZINB log-likelihood speed: biovae's training objective vs the same densities written with
torch.distributions.NegativeBinomial (and logaddexp for the zero inflation), forward + backward.

All compute the same values and gradients (tests/test_likelihoods.py checks it). Four rows:
  torch.distributions   the textbook form (the reference of the ratio);
  biovae distribution   biovae's distribution objects (likelihood.distribution(...).log_prob):
                        the dispersion per gene (lgamma(theta) once per gene), log(theta + mu)
                        taken directly, the lgamma terms (and digamma in the backward pass) at
                        the non-zero counts only, one softplus instead of logaddexp;
  objective, PyTorch code   what training calls (likelihood.log_prob) where no C compiler is at
                        hand: the same maths as one autograd function with its gradient written
                        out (biovae.engine.count_density);
  objective, C kernel   what training calls on a float32 CPU run: the same function in one pass
                        of C (biovae/engine/kernels/count_density.c, built on first use), the
                        mean (library x softmax of the decoder output) computed inside it.
Two more rows take the C kernel apart, each against the full kernel in the same run:
  C, mean in PyTorch    the softmax and library product in PyTorch, the density in C
                        (count_density.count_log_prob, the kernel's form before the mean moved in);
  C, scalar gather      the kernel with its scalar loop listing each row's non-zero counts in
                        place of the AVX-512 one (count_density.scalar_gather; same on CPUs
                        without AVX-512).

    .venv/bin/python benchmarks/likelihood_speed.py [--cells 128] [--genes 765] [--reps 300] [--threads 1] [--kept 0.5]

Prints milliseconds per forward + backward pass for each (median of 5 interleaved rounds) and the
ratio reference / C kernel, and C kernel against the PyTorch code.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from biovae.engine import likelihoods
from biovae.engine.count_density import count_log_prob, count_mean, kernel_built, pytorch_path, scalar_gather


def reference(name: str, lik, x, raw, lib):
    """The density the textbook way, on torch.distributions."""
    g = lik.n_features
    mean_raw = raw[:, :g]
    mu = lib * torch.softmax(mean_raw, -1)
    theta = torch.exp(lik.log_theta).expand_as(mu)
    base = torch.distributions.NegativeBinomial(theta, logits=torch.log(mu + 1e-8) - torch.log(theta),
                                                validate_args=False).log_prob(x)
    if name == "nb":
        return base.sum(-1)
    zl = raw[:, g:]
    log_pi, log_keep = torch.nn.functional.logsigmoid(zl), torch.nn.functional.logsigmoid(-zl)
    return torch.where(x < 0.5, torch.logaddexp(log_pi, log_keep + base), log_keep + base).sum(-1)


def timed(fn, reps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(reps):
        fn().sum().backward()
    return (time.perf_counter() - t0) / reps * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=128)
    ap.add_argument("--genes", type=int, default=765)
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--kept", type=float, default=0.5,
                    help="share of entries not forced to zero (0.5: ~40 %% non-zero counts; 0.1: ~8 %%)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.poisson(torch.rand(args.cells, args.genes) * 4) * (torch.rand(args.cells, args.genes) < args.kept)
    lib = x.sum(1, keepdim=True).clamp(min=1)
    print(f"{args.cells} cells x {args.genes} genes, {(x > 0).float().mean().item():.0%} non-zero, "
          f"{args.threads} thread(s), torch {torch.__version__}; "
          "ms per forward + backward (median of 5 rounds)")
    for name in ("nb", "zinb"):
        lik = likelihoods.get(name)(args.genes)
        raw = torch.randn(args.cells, lik.n_params * args.genes, requires_grad=True)
        ours = lambda: lik.log_prob(x, raw, lib)  # noqa: E731

        def eager():
            with pytorch_path():
                return lik.log_prob(x, raw, lib)

        def mean_outside():
            g = args.genes
            return count_log_prob(x, count_mean(raw[:, :g], lib), lik.log_theta, raw[:, g:] if name == "zinb" else None)

        def scalar():
            with scalar_gather():
                return lik.log_prob(x, raw, lib)

        dist = lambda: lik.distribution(raw, lib).log_prob(x).sum(-1)  # noqa: E731
        ref = lambda: reference(name, lik, x, raw, lib)  # noqa: E731
        fns = (ref, dist, eager, ours, mean_outside, scalar)
        gap = max((f() - ref()).abs().max().item() for f in fns[1:])
        for f in fns:  # warm-up
            timed(f, 20)
        rounds = [[timed(f, args.reps) for f in fns] for _ in range(5)]
        r, d, e, o, m, s = (float(np.median([row[i] for row in rounds])) for i in range(len(fns)))
        print(f"{name:5s} torch.distributions {r:6.2f}   biovae distribution {d:6.2f} ({r / d:.2f}x)   "
              f"objective, PyTorch code {e:6.2f} ({r / e:.2f}x)   objective, C kernel {o:6.2f}   ratio {r / o:.2f}x   "
              f"(C kernel vs PyTorch code {e / o:.2f}x; max |difference| {gap:.1e} nats per cell)\n"
              f"      C, mean in PyTorch {m:6.2f} (full kernel {m / o:.2f}x faster)   "
              f"C, scalar gather {s:6.2f} (full kernel {s / o:.2f}x faster)")
    if not kernel_built():
        print("note: the C kernel is not built here, so both objective rows ran the PyTorch code")


if __name__ == "__main__":
    main()
