"""NB / ZINB log-likelihood speed: biovae's training objective vs the same densities written with
torch.distributions.NegativeBinomial (and logaddexp for the zero inflation), forward + backward.

All compute the same values and gradients (tests/test_likelihoods.py, tests/test_kernels.py).
Rows, timed side by side in one run:
  torch.distributions   the textbook form (the reference of the ratios);
  PyTorch reference     biovae's one definition of the density (count_kernel.count_log_density),
                        what training runs with BIOVAE_CPU_KERNELS=off or off the CPU;
  C kernel, ISA         what training calls on a float32 CPU run: the density and the mean
                        (library x softmax of the decoder output) in one pass of C
                        (kernels/count_density.c), once per instruction-set build this CPU runs
                        (engine.backends: avx512, avx2, baseline).

    .venv/bin/python benchmarks/likelihood_speed.py [--cells 128] [--genes 765] [--reps 300] [--threads 1] [--kept 0.5]

Prints milliseconds per forward + backward pass for each (median of 5 interleaved rounds) and the
ratio torch.distributions / each.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from biovae.engine import backends, likelihoods
from biovae.engine.likelihoods.count_kernel import CountLogProbKernel, count_log_density, count_mean


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
        g = args.genes

        def eager():
            return count_log_density(x, count_mean(raw[:, :g], lib), lik.log_theta,
                                     raw[:, g:] if name == "zinb" else None).sum(-1)

        fns = {"torch.distributions": lambda: reference(name, lik, x, raw, lib), "PyTorch reference": eager}
        for isa in backends.supported_isas():
            kernel = backends.library("count_density", isa)
            if kernel is not None:
                fns[f"C kernel, {isa}"] = (lambda k=kernel: CountLogProbKernel.apply(
                    k, x, raw, lik.log_theta, lib.reshape(-1), name == "zinb"))
        ref = fns["torch.distributions"]
        gap = max((f() - ref()).abs().max().item() for f in fns.values())
        for f in fns.values():  # warm-up
            timed(f, 20)
        rounds = [[timed(f, args.reps) for f in fns.values()] for _ in range(5)]
        med = {k: float(np.median([row[i] for row in rounds])) for i, k in enumerate(fns)}
        base = med["torch.distributions"]
        print(f"{name}: " + "   ".join(f"{k} {v:6.2f} ({base / v:.2f}x)" for k, v in med.items())
              + f"   (max |difference| {gap:.1e} nats per cell)")


if __name__ == "__main__":
    main()
