"""The training loop, on Lightning Fabric: one code path for CPU, one GPU, or DDP over several
devices and nodes, with mixed precision where the device supports it.

Per epoch: shuffle (seeded by seed and epoch), step Adam on each batch of the negative ELBO,
score the validation split with the posterior mean, record the history, stop early when the
validation loss has not improved for `patience` epochs after the beta warm-up, and checkpoint.
A resumed run restores weights, optimizer moments, random state and bookkeeping, so it reaches
the same weights as an uninterrupted run.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
from tqdm.auto import tqdm

from biovae.engine import checkpoint, data, norm_act
from biovae.engine.config import TrainConfig
from biovae.engine.module import VAEModule
from biovae.errors import BiovaeError

for _name in ("lightning.fabric", "lightning_fabric", "lightning.fabric.utilities.rank_zero"):
    logging.getLogger(_name).setLevel(logging.WARNING)

_ACCELERATOR = {"auto": "auto", "cpu": "cpu", "cuda": "cuda", "gpu": "cuda", "mps": "mps"}


def make_fabric(cfg: TrainConfig):
    """A launched Fabric for the device, device count, strategy, nodes and precision asked for."""
    from lightning_fabric import Fabric

    accelerator = _ACCELERATOR[cfg.device]
    if accelerator == "cuda" and not torch.cuda.is_available():
        raise BiovaeError("device 'cuda' was asked for but no CUDA GPU is visible", "use --device cpu or auto")
    fabric = Fabric(accelerator=accelerator, devices=cfg.devices, strategy=cfg.strategy,
                    num_nodes=cfg.num_nodes, precision=cfg.precision)
    fabric.launch()
    return fabric


def beta_at(epoch: int, beta: float, cfg: TrainConfig) -> float:
    """KL weight in `epoch` (0-based): linear warm-up over warmup_fraction of the epochs."""
    warm = int(round(cfg.warmup_fraction * cfg.epochs))
    return beta if warm <= 0 else beta * min(1.0, (epoch + 1) / warm)


def fit(module: VAEModule, x, codes: np.ndarray | None, cfg: TrainConfig, resume: bool = False) -> list[dict]:
    """Train `module` in place on x (n, n_features) with condition codes (n, n_covariates).

    Returns the per-epoch history: dicts with epoch, beta, train_loss, train_recon, train_kl,
    val_loss, val_recon, val_kl (mean per sample; val_* None without a validation split), seconds.
    """
    cfg.validate()
    fabric = make_fabric(cfg)
    devices = [fabric.device.index or 0] if fabric.device.type == "cuda" else []
    # Several GPU processes: batch norm over the whole global batch, as one process would see it
    # (torch syncs batch norm on GPUs only; on CPU each process normalises its own share).
    sync = fabric.world_size > 1 and fabric.device.type == "cuda"
    revert = norm_act.sync_batch_norm(module) if sync else None
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(cfg.seed)
            return _Loop(module, x, codes, cfg, fabric).run(resume)
    finally:
        if revert is not None:
            revert()  # the caller's module keeps its own batch norm layers


def _adam(module, cfg: TrainConfig, device: torch.device) -> torch.optim.Adam:
    """Adam, its update fused into one kernel per step where torch supports it (torch's public
    fused=True); plain Adam elsewhere."""
    try:
        return torch.optim.Adam(module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                fused=device.type in ("cpu", "cuda"))
    except (RuntimeError, TypeError):
        return torch.optim.Adam(module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


class _Loop:
    def __init__(self, module, x, codes, cfg, fabric):
        self.module, self.cfg, self.fabric = module, cfg, fabric
        self.train_idx, self.val_idx = data.split_indices(x.shape[0], cfg.validation_split, cfg.seed)
        in_mem = cfg.in_memory if cfg.in_memory != "auto" else data.fits_in_memory(x, fabric.device)
        self.batcher = (data.InMemoryBatches(x, codes, fabric.device) if in_mem
                        else data.StreamingBatches(x, codes, fabric.device, cfg.num_workers))
        optimizer = _adam(module, cfg, fabric.device)
        self.model, self.optimizer = fabric.setup(module, optimizer)
        self.drop_single = module.cfg.norm == "batch"
        # data read in chunks: shuffle by windows of chunks, so each chunk is read once an epoch
        self.chunks = (x.chunk_rows, x.window) if isinstance(x, data.ChunkedRows) else None
        self.loop = {"epoch": -1, "history": [], "best": None, "bad_epochs": 0, "stopped": False,
                     "fingerprint": data.fingerprint(x), "model_config": module.cfg.to_dict()}
        self.best_state = None

    # -- bookkeeping --------------------------------------------------------------------------
    def _restore(self):
        ck = checkpoint.load(self.cfg.checkpoint_dir)
        if ck is None:
            return
        loop = ck["loop"]
        if loop["fingerprint"] != self.loop["fingerprint"] or loop["model_config"] != self.loop["model_config"]:
            raise BiovaeError(f"the checkpoint in {self.cfg.checkpoint_dir} was made with other data or settings",
                              "resume with the same input and options, or delete the checkpoint")
        self.module.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.best_state = ck["best"]
        checkpoint.restore_rng(ck["rng"])
        self.loop = loop

    def _save(self):
        if self.cfg.checkpoint_dir and self.fabric.global_rank == 0:
            checkpoint.save(self.cfg.checkpoint_dir, model=self.module.state_dict(),
                            optimizer=self.optimizer.state_dict(), best=self.best_state, loop=self.loop)

    # -- one epoch ---------------------------------------------------------------------------
    def _train_epoch(self, epoch: int, beta: float) -> dict:
        self.model.train()
        if self.chunks:
            order = data.window_order(self.train_idx, *self.chunks, self.cfg.seed, epoch)
        else:
            order = torch.as_tensor(self.train_idx)[data.epoch_order(len(self.train_idx), self.cfg.seed, epoch)]
        world, rank = self.fabric.world_size, self.fabric.global_rank
        whole = data.batch_slices(order, self.cfg.batch_size, self.drop_single)  # global batches
        if world > 1 and self.drop_single and self.fabric.device.type != "cuda":
            # unsynced batch norm needs 2 samples in each process's share of a batch
            whole = [b for b in whole if len(b) >= 2 * world]
        batches = [b[rank::world] for b in whole]  # this process's share of each batch
        # DDP averages gradients over processes; scaling each share's sum by world / (global batch
        # size) makes that average the gradient of the global batch mean, as with one process,
        # also when the global batch does not split evenly.
        scales = [world / len(b) for b in whole]
        sums = torch.zeros(3, device=self.fabric.device)  # summed on device: no sync per batch
        rows = 0
        for (xb, cb), scale in zip(data.iterate(self.batcher, batches), scales):
            self.optimizer.zero_grad(set_to_none=True)
            out = self.model(xb, cb, beta)
            self.fabric.backward(out["loss"].mean() if world == 1 else out["loss"].sum() * scale)
            if self.cfg.grad_clip:
                self.fabric.clip_gradients(self.model, self.optimizer, max_norm=self.cfg.grad_clip)
            self.optimizer.step()
            with torch.no_grad():
                sums += torch.stack([out["loss"], out["recon"], out["kl"]]).sum(1, dtype=torch.float32)
            rows += xb.shape[0]
        both = torch.cat([sums, torch.tensor([float(rows)], device=sums.device)])
        both = self.fabric.all_reduce(both, reduce_op="sum") if self.fabric.world_size > 1 else both
        s = both.tolist()
        return {"train_loss": s[0] / max(s[3], 1), "train_recon": s[1] / max(s[3], 1), "train_kl": s[2] / max(s[3], 1)}

    @torch.no_grad()
    def _validate(self, beta: float) -> dict:
        if len(self.val_idx) == 0:
            return {"val_loss": None, "val_recon": None, "val_kl": None}
        self.model.eval()
        idx = torch.as_tensor(self.val_idx)
        step = max(self.cfg.batch_size, data.eval_rows(self.module.cfg.n_features))
        sums = torch.zeros(3, device=self.fabric.device)
        for xb, cb in data.iterate(self.batcher, [idx[a:a + step] for a in range(0, len(idx), step)]):
            out = self.model(xb, cb, beta, sample=False)
            sums += torch.stack([out["loss"].sum(), out["recon"].sum(), out["kl"].sum()]).float()
        s = (sums / len(idx)).tolist()
        return {"val_loss": s[0], "val_recon": s[1], "val_kl": s[2]}

    def _early_stop(self, epoch: int, val_loss: float | None) -> bool:
        warm_end = int(round(self.cfg.warmup_fraction * self.cfg.epochs))
        if val_loss is None or epoch + 1 < warm_end:
            return False  # the loss is not comparable while beta still rises
        best = self.loop["best"]
        if best is None or val_loss < best - self.cfg.min_delta:
            self.loop["best"], self.loop["bad_epochs"] = val_loss, 0
            if self.cfg.restore_best:
                self.best_state = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
            return False
        self.loop["bad_epochs"] += 1
        return self.loop["bad_epochs"] >= self.cfg.patience

    def run(self, resume: bool) -> list[dict]:
        if resume and self.cfg.checkpoint_dir:
            self._restore()
        start = self.loop["epoch"] + 1
        bar = tqdm(range(start, self.cfg.epochs), initial=start, total=self.cfg.epochs, desc="training",
                   unit="epoch", disable=not self.cfg.progress or self.fabric.global_rank != 0, leave=False)
        pause = self.cfg.epochs if self.cfg.stop_after is None else self.cfg.stop_after
        for epoch in bar:
            if self.loop["stopped"] or epoch >= pause:
                break
            t0 = time.perf_counter()
            beta = beta_at(epoch, self.module.cfg.beta, self.cfg)
            row = {"epoch": epoch, "beta": beta, **self._train_epoch(epoch, beta), **self._validate(beta)}
            row["seconds"] = round(time.perf_counter() - t0, 4)
            self.loop["history"].append(row)
            self.loop["stopped"] = self._early_stop(epoch, row["val_loss"])
            self.loop["epoch"] = epoch
            bar.set_postfix(loss=f"{row['train_loss']:.4g}",
                            val="-" if row["val_loss"] is None else f"{row['val_loss']:.4g}")
            last = self.loop["stopped"] or epoch + 1 in (self.cfg.epochs, pause)
            if last or (epoch + 1) % self.cfg.checkpoint_every == 0:
                self._save()
        bar.close()
        if self.cfg.restore_best and self.best_state is not None:
            self.module.load_state_dict(self.best_state)
        return self.loop["history"]
