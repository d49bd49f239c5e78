"""Training throughput: biovae's trainer vs the plain PyTorch DataLoader loop of the seed tutorial.

Same architecture on both sides (1,000 -> 256 -> 128 -> latent 10 -> 128 -> 256 -> 1,000, batch
norm, ReLU, Gaussian likelihood, Adam 1e-3, batch 256), same 20,000 x 1,000 matrix, CPU, same
number of epochs, one process.

  baseline   the tutorial's way (pytorch/examples vae/main.py), written out here: an nn.Module of
             nn.Linear layers with separate mean and log-variance heads, a summed MSE + KL loss,
             TensorDataset + DataLoader(shuffle=True), default Adam, and a `.item()` of the loss
             per batch.
  biovae     `VAE.fit` with its defaults: batches sliced from tensors in memory, fused Adam, and
             its fast operations' C kernels (engine.backends; the instruction set is printed).
Also timed, to show where the difference comes from: biovae with its kernels off
(`BIOVAE_CPU_KERNELS=off`: the PyTorch references), biovae's streaming path (a DataLoader over
row batches), and biovae's module inside the tutorial loop.

    .venv/bin/python benchmarks/train_throughput.py [--n 20000] [--d 1000] [--epochs 3] [--threads 1] [--rounds 3] [--bf16]

Prints samples/s per epoch for each (median over interleaved rounds) and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from biovae import VAE
from biovae.engine import backends


class TutorialVAE(nn.Module):
    """The tutorial's model, in this benchmark's layer sizes (plus the batch norm biovae uses)."""

    def __init__(self, d: int, hidden: list[int], latent: int):
        super().__init__()
        def block(a, b):
            return nn.Sequential(nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU())
        enc = [d] + hidden
        self.enc = nn.Sequential(*[block(a, b) for a, b in zip(enc[:-1], enc[1:])])
        self.fc_mu, self.fc_logvar = nn.Linear(hidden[-1], latent), nn.Linear(hidden[-1], latent)
        dec = [latent] + hidden[::-1]
        self.dec = nn.Sequential(*[block(a, b) for a, b in zip(dec[:-1], dec[1:])], nn.Linear(hidden[0], d))

    def forward(self, x):
        h = self.enc(x)
        mu, logvar = self.fc_mu(h), self.fc_logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.dec(z), mu, logvar


def tutorial_loss(recon, x, mu, logvar):
    mse = 0.5 * nn.functional.mse_loss(recon, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return (mse + kld) / x.shape[0]


def tutorial_loop(model: nn.Module, x: np.ndarray, epochs: int, batch: int, seed: int, loss_of) -> float:
    torch.manual_seed(seed)
    loader = DataLoader(TensorDataset(torch.as_tensor(x)), batch_size=batch, shuffle=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    t0 = time.perf_counter()
    for _ in range(epochs):
        total = 0.0
        for (xb,) in loader:
            opt.zero_grad()
            loss = loss_of(model, xb)
            loss.backward()
            total += loss.item()
            opt.step()
    return x.shape[0] * epochs / (time.perf_counter() - t0)


def baseline(x, epochs, batch, seed) -> float:
    torch.manual_seed(seed)
    model = TutorialVAE(x.shape[1], [256, 128], 10)

    def loss_of(m, xb):
        recon, mu, logvar = m(xb)
        return tutorial_loss(recon, xb, mu, logvar)
    return tutorial_loop(model, x, epochs, batch, seed, loss_of)


def module_in_tutorial_loop(x, epochs, batch, seed) -> float:
    module = VAE(x.shape[1], latent_dim=10, hidden=[256, 128], seed=seed).module
    return tutorial_loop(module, x, epochs, batch, seed, lambda m, xb: m(xb, None, 1.0)["loss"].mean())


def ours(x, epochs, batch, seed, in_memory=True, precision="32-true", kernels=True) -> float:
    before = os.environ.get(backends.ENV_KERNELS)
    os.environ[backends.ENV_KERNELS] = "auto" if kernels else "off"
    try:
        vae = VAE(x.shape[1], latent_dim=10, hidden=[256, 128], seed=seed)
        t0 = time.perf_counter()
        vae.fit(x, epochs=epochs, batch_size=batch, validation_split=0.0, seed=seed, progress=False,
                in_memory=in_memory, precision=precision)
        return x.shape[0] * epochs / (time.perf_counter() - t0)
    finally:
        os.environ.pop(backends.ENV_KERNELS)
        if before is not None:
            os.environ[backends.ENV_KERNELS] = before


KINDS = {
    "biovae": lambda x, a: ours(x, a.epochs, a.batch, a.seed),
    "biovae, kernels off": lambda x, a: ours(x, a.epochs, a.batch, a.seed, kernels=False),
    "biovae, streaming batches": lambda x, a: ours(x, a.epochs, a.batch, a.seed, in_memory=False),
    "biovae module, tutorial loop": lambda x, a: module_in_tutorial_loop(x, a.epochs, a.batch, a.seed),
    "biovae, bf16-mixed": lambda x, a: ours(x, a.epochs, a.batch, a.seed, precision="bf16-mixed"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--d", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds; medians are printed")
    ap.add_argument("--bf16", action="store_true", help="also time biovae with precision='bf16-mixed' (CPU autocast)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x = np.random.default_rng(args.seed).normal(size=(args.n, args.d)).astype(np.float32)
    kinds = [k for k in KINDS if k != "biovae, bf16-mixed" or args.bf16]

    def rounds(matrix: np.ndarray, names: list[str]) -> dict[str, float]:
        """Median samples/s of each kind over --rounds interleaved rounds (load drift on a shared
        machine then hits every kind alike), after one untimed warm-up of each on 2,048 rows."""
        warm = argparse.Namespace(**{**vars(args), "epochs": 1})
        baseline(matrix[:2048], 1, args.batch, args.seed)
        for k in names:
            KINDS[k](matrix[:2048], warm)
        runs = {k: [] for k in ["baseline", *names]}
        for _ in range(args.rounds):
            runs["baseline"].append(baseline(matrix, args.epochs, args.batch, args.seed))
            for k in names:
                runs[k].append(KINDS[k](matrix, args))
        return {k: float(np.median(v)) for k, v in runs.items()}

    r = rounds(x, kinds)
    base = r["baseline"]
    print(f"matrix {args.n} x {args.d}, {args.epochs} epochs, batch {args.batch}, {args.threads} threads, "
          f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"biovae kernels: {backends.isa()}; median of {args.rounds} interleaved rounds")
    print(f"{'baseline (tutorial DataLoader loop)':32s} {base:10.0f} samples/s")
    for k in kinds:
        note = " (bfloat16 autocast; the baseline stays float32)" if k == "biovae, bf16-mixed" else ""
        print(f"{k:32s} {r[k]:10.0f} samples/s   ratio {r[k] / base:.2f}x{note}")
    if args.d > 200:
        # a binning-shaped matrix (k=4 composition 136 + coverage 16): there batching overhead,
        # not matrix products, decides the speed
        rs = rounds(x[:, :152].copy(), ["biovae"])
        print(f"same, {args.n} x 152 (binning-shaped): baseline {rs['baseline']:.0f}, biovae "
              f"{rs['biovae']:.0f} samples/s   ratio {rs['biovae'] / rs['baseline']:.2f}x")


if __name__ == "__main__":
    main()
