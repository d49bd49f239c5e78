"""scvi-tools side of the expression benchmarks. Runs ONLY in scvi-tools' own venv:

    benchmarks/.peers/scvi/bin/python benchmarks/scvi_peer.py MODE IN.npz OUT.npz [options]

(set up with `python3 -m venv benchmarks/.peers/scvi && benchmarks/.peers/scvi/bin/pip install
torch==2.13.0 && benchmarks/.peers/scvi/bin/pip install scvi-tools`; torch first, so that the CPU
build is used). biovae's benchmarks (expr_realism.py, expr_throughput.py) write IN.npz, call this
script as a subprocess and read OUT.npz; nothing of scvi-tools is imported into biovae's venv.

IN.npz: counts (cells x genes, whole numbers, float32) and optionally labels (cells,) str.
Modes:
  realism     fit SCVI on the counts, then `posterior_predictive_sample` (n_samples=1 per draw,
              --draws draws, each with its own seed): OUT.npz samples (draws, cells, genes)
              float32 counts, one per input cell, plus seconds_fit.
  throughput  fit SCVI for --epochs epochs with no validation split and no early stopping:
              OUT.npz epoch_seconds (epochs,) from a Lightning callback (train epoch start to
              end), plus seconds_fit (all of model.train).
Options: --hidden 128 --layers 1 --latent 10 --batch-size 128 --epochs (realism: scvi's default
rule), --likelihood zinb, --threads 1, --seed 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["realism", "throughput"])
    ap.add_argument("inp")
    ap.add_argument("out")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--latent", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--likelihood", default="zinb")
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")

    import anndata as ad
    import lightning.pytorch as pl
    import scvi
    import torch

    torch.set_num_threads(args.threads)
    scvi.settings.seed = args.seed
    scvi.settings.num_threads = args.threads
    scvi.settings.dl_num_workers = 0
    scvi.settings.verbosity = 40  # errors only

    data = np.load(args.inp, allow_pickle=False)
    adata = ad.AnnData(X=np.asarray(data["counts"], dtype=np.float32))
    scvi.model.SCVI.setup_anndata(adata)
    model = scvi.model.SCVI(adata, n_hidden=args.hidden, n_latent=args.latent, n_layers=args.layers,
                            gene_likelihood=args.likelihood)

    class EpochTimer(pl.Callback):
        def __init__(self):
            self.seconds, self.t0 = [], 0.0

        def on_train_epoch_start(self, trainer, module):
            self.t0 = time.perf_counter()

        def on_train_epoch_end(self, trainer, module):
            self.seconds.append(time.perf_counter() - self.t0)

    timer = EpochTimer()
    kw = dict(accelerator="cpu", devices=1, batch_size=args.batch_size, callbacks=[timer],
              enable_progress_bar=False, logger=False, enable_model_summary=False,
              enable_checkpointing=False)
    if args.mode == "throughput":
        kw.update(max_epochs=args.epochs or 5, train_size=1.0, early_stopping=False)
    elif args.epochs:
        kw.update(max_epochs=args.epochs)
    t0 = time.perf_counter()
    model.train(**kw)
    seconds_fit = time.perf_counter() - t0
    out = {"seconds_fit": np.float64(seconds_fit), "epoch_seconds": np.asarray(timer.seconds)}
    if args.mode == "realism":
        draws = []
        for d in range(args.draws):
            scvi.settings.seed = args.seed + 1 + d
            s = model.posterior_predictive_sample(n_samples=1)
            s = s.todense() if hasattr(s, "todense") else np.asarray(s)  # sparse.GCXS on 1.4.x
            draws.append(np.asarray(s, dtype=np.float32).reshape(adata.n_obs, adata.n_vars))
        out["samples"] = np.stack(draws)
    np.savez(args.out, **out)
    print(json.dumps({"scvi_version": scvi.__version__, "epochs": len(timer.seconds),
                      "seconds_fit": round(seconds_fit, 2)}), file=sys.stderr)


if __name__ == "__main__":
    main()
