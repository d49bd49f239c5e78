"""Training throughput: biovae's trainer vs the plain PyTorch DataLoader loop of the seed tutorial.

Both train the same architecture (1,000 -> 256 -> 128 -> latent 10 -> 128 -> 256 -> 1,000,
batch norm, ReLU, Gaussian likelihood, Adam 1e-3, batch 256) on the same 20,000 x 1,000 matrix on
the CPU, for the same number of epochs, in one process. The baseline is the tutorial's way:
TensorDataset + DataLoader(shuffle=True) + a per-batch `.item()` of the loss. Also timed: biovae's
streaming path (a DataLoader over row batches), to show what in-memory slicing buys.

    .venv/bin/python benchmarks/train_throughput.py [--n 20000] [--d 1000] [--epochs 3] [--threads 2]

Prints samples/s per epoch for each and the ratio biovae / baseline.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from biovae import VAE
from biovae.engine.module import VAEModule


def baseline(module: VAEModule, x: np.ndarray, epochs: int, batch: int, seed: int) -> float:
    torch.manual_seed(seed)
    loader = DataLoader(TensorDataset(torch.as_tensor(x)), batch_size=batch, shuffle=True)
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)
    module.train()
    t0 = time.perf_counter()
    for _ in range(epochs):
        total = 0.0
        for (xb,) in loader:
            loss = module(xb, None, 1.0)["loss"].mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
    return x.shape[0] * epochs / (time.perf_counter() - t0)


def ours(x: np.ndarray, epochs: int, batch: int, seed: int, in_memory: bool) -> float:
    vae = VAE(x.shape[1], latent_dim=10, hidden=[256, 128], seed=seed)
    t0 = time.perf_counter()
    vae.fit(x, epochs=epochs, batch_size=batch, validation_split=0.0, seed=seed, progress=False,
            in_memory=in_memory)
    return x.shape[0] * epochs / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--d", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x = np.random.default_rng(args.seed).normal(size=(args.n, args.d)).astype(np.float32)
    # warm both code paths once (imports, allocator) so neither pays start-up costs in the timing
    ours(x[:2048], 1, args.batch, args.seed, True)
    base_module = VAE(args.d, latent_dim=10, hidden=[256, 128], seed=args.seed).module
    baseline(base_module, x[:2048], 1, args.batch, args.seed)

    base = baseline(VAE(args.d, latent_dim=10, hidden=[256, 128], seed=args.seed).module, x, args.epochs,
                    args.batch, args.seed)
    mem = ours(x, args.epochs, args.batch, args.seed, True)
    stream = ours(x, args.epochs, args.batch, args.seed, False)
    print(f"matrix {args.n} x {args.d}, {args.epochs} epochs, batch {args.batch}, {args.threads} threads, "
          f"torch {torch.__version__}")
    print(f"baseline (tutorial DataLoader loop): {base:10.0f} samples/s")
    print(f"biovae, in-memory batches:          {mem:10.0f} samples/s   ratio {mem / base:.2f}x")
    print(f"biovae, streaming batches:          {stream:10.0f} samples/s   ratio {stream / base:.2f}x")
    if args.d > 200:
        # a binning-shaped matrix (k=4 composition 136 + coverage 16): there batching overhead,
        # not matrix products, decides the speed
        xs = x[:, :152].copy()
        base_s = baseline(VAE(152, latent_dim=10, hidden=[256, 128], seed=args.seed).module, xs, args.epochs,
                          args.batch, args.seed)
        mem_s = ours(xs, args.epochs, args.batch, args.seed, True)
        print(f"same, {args.n} x 152 (binning-shaped): baseline {base_s:.0f}, biovae {mem_s:.0f} samples/s"
              f"   ratio {mem_s / base_s:.2f}x")


if __name__ == "__main__":
    main()
