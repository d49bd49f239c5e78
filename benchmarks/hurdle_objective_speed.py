"""The hurdle likelihoods' training objective: the C kernel (engine.likelihoods.hurdle_kernel)
against the autograd reference (the Hurdle distribution's log_prob, what BIOVAE_CPU_KERNELS=off
trains with), forward + backward on one decoder output, for "hurdle_cell" and "hurdle". Both
give the same values and gradients (tests/test_kernels.py; checked again here before timing).

    .venv/bin/python benchmarks/hurdle_objective_speed.py [--cells 128] [--genes 765] [--reps 300] [--threads 1]
    ATEN_CPU_CAPABILITY=avx2 BIOVAE_KERNEL_ISA=avx2 .venv/bin/python benchmarks/hurdle_objective_speed.py

The second line runs PyTorch's AVX2 kernels against the kernel's AVX2 build (the project's speed
rule asks for >= 1.2x on both AVX2 and AVX-512). Prints milliseconds per pass of each (best of 5
interleaved rounds), the ratio reference / kernel, and both instruction sets.
"""

from __future__ import annotations

import argparse
import time

import torch

from biovae.engine import backends
from biovae.engine.likelihoods import get


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=128)
    ap.add_argument("--genes", type=int, default=765)
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    f, g = args.genes, torch.Generator().manual_seed(0)
    x = torch.randn(args.cells, f, generator=g)
    x[torch.rand(args.cells, f, generator=g) < 0.6] = 0  # about the share of zeros of PBMC values
    runs, check = {}, {}
    for name in ("hurdle_cell", "hurdle"):
        lik = get(name)(f)
        raw0 = torch.randn(args.cells, lik.n_params * f, generator=g)

        def reference(lik=lik, raw0=raw0):
            raw = raw0.clone().requires_grad_(True)
            lik.distribution(raw).log_prob(x).sum().backward()
            return raw.grad

        def kernel(lik=lik, raw0=raw0):
            raw = raw0.clone().requires_grad_(True)
            out = lik.log_prob(x, raw)
            assert out.grad_fn.name() == "HurdleLogProbKernelBackward", "the kernel did not run"
            out.sum().backward()
            return raw.grad

        check[name] = (reference, kernel)
        runs[f"{name} reference (autograd)"], runs[f"{name} kernel"] = reference, kernel
    for name, (reference, kernel) in check.items():
        assert torch.allclose(reference(), kernel(), atol=1e-4, rtol=1e-4), f"{name}: the two gradients differ"
    best = {name: float("inf") for name in runs}
    for _ in range(5):  # interleaved rounds
        for name, fn in runs.items():
            for _ in range(20):
                fn()
            t0 = time.perf_counter()
            for _ in range(args.reps):
                fn()
            best[name] = min(best[name], (time.perf_counter() - t0) / args.reps)
    for name, seconds in best.items():
        print(f"{name:32s} {seconds * 1e3:.3f} ms")
    for name in check:
        ratio = best[f"{name} reference (autograd)"] / best[f"{name} kernel"]
        print(f"{name}: ratio {ratio:.2f}x (PyTorch {torch.backends.cpu.get_cpu_capability()}, kernel "
              f"{backends.isa()}, {args.threads} thread(s), {args.cells} x {args.genes})")


if __name__ == "__main__":
    main()
