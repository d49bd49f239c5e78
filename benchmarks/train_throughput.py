"""Training throughput: biovae's trainer vs the plain PyTorch DataLoader loop of the seed tutorial.

Both train the same architecture (1,000 -> 256 -> 128 -> latent 10 -> 128 -> 256 -> 1,000,
batch norm, ReLU, Gaussian likelihood, Adam 1e-3, batch 256) on the same 20,000 x 1,000 matrix on
the CPU, for the same number of epochs, in one process. The baseline is the tutorial's way:
TensorDataset + DataLoader(shuffle=True) + a per-batch `.item()` of the loss. Also timed: biovae's
streaming path (a DataLoader over row batches), to show what in-memory slicing buys.

    .venv/bin/python benchmarks/train_throughput.py [--n 20000] [--d 1000] [--epochs 3] [--threads 2] [--rounds 3] [--bf16]

Prints samples/s per epoch for each (median over interleaved rounds) and the ratio biovae / baseline.
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


def ours(x: np.ndarray, epochs: int, batch: int, seed: int, in_memory: bool,
         precision: str = "32-true") -> float:
    vae = VAE(x.shape[1], latent_dim=10, hidden=[256, 128], seed=seed)
    t0 = time.perf_counter()
    vae.fit(x, epochs=epochs, batch_size=batch, validation_split=0.0, seed=seed, progress=False,
            in_memory=in_memory, precision=precision)
    return x.shape[0] * epochs / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--d", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds; medians are printed")
    ap.add_argument("--bf16", action="store_true", help="also time biovae with precision='bf16-mixed' (CPU autocast)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x = np.random.default_rng(args.seed).normal(size=(args.n, args.d)).astype(np.float32)
    # warm both code paths once (imports, allocator) so neither pays start-up costs in the timing
    ours(x[:2048], 1, args.batch, args.seed, True)
    base_module = VAE(args.d, latent_dim=10, hidden=[256, 128], seed=args.seed).module
    baseline(base_module, x[:2048], 1, args.batch, args.seed)

    def rounds(matrix: np.ndarray, kinds: list[str]) -> dict[str, float]:
        """Median samples/s of each kind over --rounds interleaved rounds (load drift on a shared
        machine then hits every kind alike)."""
        runs = {k: [] for k in ["baseline", *kinds]}
        for _ in range(args.rounds):
            module = VAE(matrix.shape[1], latent_dim=10, hidden=[256, 128], seed=args.seed).module
            runs["baseline"].append(baseline(module, matrix, args.epochs, args.batch, args.seed))
            for k in kinds:
                runs[k].append(ours(matrix, args.epochs, args.batch, args.seed, k != "streaming",
                                    "bf16-mixed" if k == "bf16" else "32-true"))
        return {k: float(np.median(v)) for k, v in runs.items()}

    r = rounds(x, ["in-memory", "streaming"] + (["bf16"] if args.bf16 else []))
    base = r["baseline"]
    print(f"matrix {args.n} x {args.d}, {args.epochs} epochs, batch {args.batch}, {args.threads} threads, "
          f"torch {torch.__version__}; median of {args.rounds} interleaved rounds")
    print(f"baseline (tutorial DataLoader loop): {base:10.0f} samples/s")
    print(f"biovae, in-memory batches:          {r['in-memory']:10.0f} samples/s   ratio {r['in-memory'] / base:.2f}x")
    print(f"biovae, streaming batches:          {r['streaming']:10.0f} samples/s   ratio {r['streaming'] / base:.2f}x")
    if args.bf16:  # a different arithmetic, so not the like-for-like figure above
        print(f"biovae, in-memory, bf16-mixed:      {r['bf16']:10.0f} samples/s   ratio {r['bf16'] / base:.2f}x"
              " (bfloat16 autocast; the baseline stays float32)")
    if args.d > 200:
        # a binning-shaped matrix (k=4 composition 136 + coverage 16): there batching overhead,
        # not matrix products, decides the speed
        rs = rounds(x[:, :152].copy(), ["in-memory"])
        print(f"same, {args.n} x 152 (binning-shaped): baseline {rs['baseline']:.0f}, biovae "
              f"{rs['in-memory']:.0f} samples/s   ratio {rs['in-memory'] / rs['baseline']:.2f}x")


if __name__ == "__main__":
    main()
