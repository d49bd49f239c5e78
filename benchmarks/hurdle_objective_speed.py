"""hurdle_cell's training objective: the gradient written out (HurdleCellLogProb) against the
autograd reference (the Hurdle distribution's log_prob, what BIOVAE_CPU_KERNELS=off trains with),
forward + backward on one decoder output. Both give the same values and gradients
(tests/test_likelihoods.py; checked again here before timing).

    .venv/bin/python benchmarks/hurdle_objective_speed.py [--cells 128] [--genes 765] [--reps 300] [--threads 1]
    ATEN_CPU_CAPABILITY=avx2 .venv/bin/python benchmarks/hurdle_objective_speed.py   # PyTorch's AVX2 kernels

Prints milliseconds per pass of each (best of 5 interleaved rounds), the ratio reference / written
out, and the instruction set PyTorch's CPU kernels use.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.nn import functional as F

from biovae.engine.likelihoods.hurdle import HURDLE_CELL_MIN_SCALE, Hurdle
from biovae.engine.likelihoods.hurdle_objective import HurdleCellLogProb


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
    raw0 = torch.randn(args.cells, 3 * f, generator=g)

    def reference():
        raw = raw0.clone().requires_grad_(True)
        dist = Hurdle(raw[:, f:2 * f], raw[:, :f], F.softplus(raw[:, 2 * f:]) + HURDLE_CELL_MIN_SCALE)
        dist.log_prob(x).sum().backward()
        return raw.grad

    def written_out():
        raw = raw0.clone().requires_grad_(True)
        HurdleCellLogProb.apply(x, raw, HURDLE_CELL_MIN_SCALE).sum().backward()
        return raw.grad

    assert torch.allclose(reference(), written_out(), atol=1e-4), "the two gradients differ"
    runs = {"reference (autograd)": reference, "written out": written_out}
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
        print(f"{name:22s} {seconds * 1e3:.3f} ms")
    ratio = best["reference (autograd)"] / best["written out"]
    print(f"ratio {ratio:.2f}x ({torch.backends.cpu.get_cpu_capability()}, {args.threads} thread(s), "
          f"{args.cells} x {args.genes})")


if __name__ == "__main__":
    main()
