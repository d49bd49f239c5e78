"""Dropout on the CPU: biovae's hashed mask (biovae.engine.dropout, C) vs nn.Dropout, one run.

    .venv/bin/python benchmarks/dropout_speed.py [--rows 128] [--cols 128] [--threads 1]

Times forward and forward + backward of a training-mode dropout (p = 0.1) on a (rows, cols)
float32 batch, best of 5 repeats of 500 calls each, and prints the ratio nn.Dropout / biovae.
Also prints the kept fraction of each (it should be 0.9). Then the three layers `mlp` stacks
after each hidden Linear, batch norm -> ReLU -> dropout, forward + backward in training mode on the
same batch: as modules (nn.BatchNorm1d, nn.ReLU, biovae's Dropout) against one fused node
(biovae.engine.norm_act), 40 interleaved rounds of 100 calls, median and best round of each.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from biovae.engine import backends
from biovae.engine.dropout import Dropout
from biovae.engine.norm_act import BatchNormReluDropout


def best_us(f, n=500, repeats=5) -> float:
    for _ in range(20):
        f()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        times.append((time.perf_counter() - t0) / n * 1e6)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=128)
    ap.add_argument("--cols", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if backends.kernel_for("dropout", torch.zeros(1)) is None:
        raise SystemExit("the C dropout kernel is not built here (no C compiler, or BIOVAE_CPU_KERNELS=off)")
    x = torch.randn(args.rows, args.cols)
    xg = x.clone().requires_grad_(True)
    rows = {}
    for name, layer in [("torch nn.Dropout", nn.Dropout(0.1)), ("biovae Dropout (C hash)", Dropout(0.1))]:
        layer.train()
        fwd = best_us(lambda: layer(x))
        both = best_us(lambda: layer(xg).sum().backward())
        kept = float((layer(torch.ones(1000, 1000)) != 0).float().mean())
        rows[name] = (fwd, both, kept)
    print(f"dropout p=0.1 on {args.rows} x {args.cols} float32, {args.threads} thread(s)")
    print(f"{'':26s} {'forward us':>11s} {'fwd+bwd us':>11s} {'kept':>6s}")
    for name, (fwd, both, kept) in rows.items():
        print(f"{name:26s} {fwd:11.1f} {both:11.1f} {kept:6.3f}")
    (tf, tb, _), (bf, bb, _) = rows.values()
    print(f"ratio nn.Dropout / biovae: forward {tf / bf:.1f}x, forward + backward {tb / bb:.1f}x")
    fused_vs_modules(xg)


def fused_vs_modules(xg: torch.Tensor) -> None:
    layer = BatchNormReluDropout(xg.shape[1], 0.1).train()
    if backends.kernel_for("batch_norm", xg) is None:
        print("batch norm -> ReLU -> dropout: the kernel does not run here")
        return
    ways = {"modules": lambda: layer.reference(xg).sum().backward(),
            "fused (kernel)": lambda: layer(xg).sum().backward()}
    times = {name: [] for name in ways}
    for f in ways.values():
        for _ in range(50):
            f()
    for _ in range(40):
        for name, f in ways.items():
            t0 = time.perf_counter()
            for _ in range(100):
                f()
            times[name].append((time.perf_counter() - t0) / 100 * 1e6)
    med = {name: sorted(v)[len(v) // 2] for name, v in times.items()}
    for name, v in times.items():
        print(f"batch norm -> ReLU -> dropout, {name:17s} fwd+bwd median {med[name]:6.1f} us, best {min(v):6.1f} us")
    print(f"ratio modules / fused: {med['modules'] / med['fused (kernel)']:.2f}x (median), "
          f"{min(times['modules']) / min(times['fused (kernel)']):.2f}x (best)")


if __name__ == "__main__":
    main()
