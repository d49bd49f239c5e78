"""Multi-process training through Lightning Fabric's DDP: 2 CPU processes (gloo) reach the
weights and losses of 1 process with the same global batch.

Each run is a script in a subprocess (Fabric's launcher re-runs the script for rank 1, so pytest
itself is never forked). Two models:
- "exact": the posterior mean instead of a sample and layer norm, so training is deterministic;
  the 2-process weights must equal the 1-process ones up to float rounding. This checks the data
  sharding, the gradient averaging (including a last batch that does not split evenly) and the
  reduction of the recorded losses.
- "vae": the real stochastic VAE with batch norm. Each process draws its own noise and, on CPU,
  normalises its own half batch, so only the losses are compared, within a few percent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from safetensors.numpy import load_file

SCRIPT = textwrap.dedent('''
    """Train two small models with N CPU processes; rank 0 writes weights and histories."""
    import json, sys
    import numpy as np, torch
    import torch.distributed as dist
    from safetensors.torch import save_file
    from biovae.engine import train
    from biovae.engine.config import Block, ModelConfig, TrainConfig
    from biovae.engine.module import VAEModule

    torch.set_num_threads(1)

    class PosteriorMean(VAEModule):
        """The VAE loss at z = posterior mean: deterministic, to compare runs exactly."""
        def forward(self, *args, **kwargs):
            kwargs["sample"] = False
            return super().forward(*args, **kwargs)

    n, out = int(sys.argv[1]), sys.argv[2]
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(601, 20)) @ rng.normal(size=(20, 20))).astype(np.float32)
    tensors, doc = {}, {}
    for name, norm, cls in [("exact", "layer", PosteriorMean), ("vae", "batch", VAEModule)]:
        cfg = ModelConfig(blocks=[Block("x", 20)], latent_dim=3, hidden=[32, 16], norm=norm).validate()
        torch.manual_seed(1)
        module = cls(cfg)
        tc = TrainConfig(epochs=8, batch_size=64, lr=3e-3, seed=2, device="cpu", devices=n,
                         strategy="ddp" if n > 1 else "auto", validation_split=0.1, patience=100,
                         progress=False, in_memory=True)
        history = train.fit(module, x, None, tc)
        tensors.update({f"{name}.{k}": v.detach().clone() for k, v in module.state_dict().items()})
        doc[name] = history
    world = dist.get_world_size() if dist.is_initialized() else 1
    if not dist.is_initialized() or dist.get_rank() == 0:
        doc["world_size"] = world
        save_file(tensors, out + ".safetensors")
        with open(out + ".json", "w") as fh:
            json.dump(doc, fh)
''')


def _train(tmp_path, n: int) -> tuple[dict, dict]:
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    out = tmp_path / f"run{n}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "NODE_RANK", "MASTER_PORT", "MASTER_ADDR"):
        env.pop(key, None)  # a clean launch, whatever launched pytest
    proc = subprocess.run([sys.executable, str(script), str(n), str(out)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return load_file(str(out) + ".safetensors"), json.loads((tmp_path / f"run{n}.json").read_text())


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


def test_two_processes_match_one(tmp_path):
    t0 = time.perf_counter()
    w1, h1 = _train(tmp_path, 1)
    w2, h2 = _train(tmp_path, 2)
    assert h1["world_size"] == 1 and h2["world_size"] == 2
    assert w1.keys() == w2.keys()

    # deterministic model: the same weights and losses up to float rounding
    exact = [k for k in w1 if k.startswith("exact.")]
    worst = max(_rel(w2[k], w1[k]) for k in exact)
    assert worst < 1e-4, worst
    for key in ("train_loss", "val_loss"):
        assert _rel([r[key] for r in h2["exact"]], [r[key] for r in h1["exact"]]) < 1e-4, key
    first, last = h1["exact"][0]["train_loss"], h1["exact"][-1]["train_loss"]
    assert last < 0.8 * first  # it did learn: the comparison is not between two untrained models

    # stochastic VAE with per-process batch norm: the same learning curve within tolerance
    v1, v2 = [r["val_loss"] for r in h1["vae"]], [r["val_loss"] for r in h2["vae"]]
    assert abs(v2[-1] - v1[-1]) / abs(v1[-1]) < 0.05, (v1, v2)
    assert v2[-1] < v2[0] and v1[-1] < v1[0]
    print(f"\nDDP check: max relative weight difference {worst:.2e} (exact model); final val loss "
          f"{v1[-1]:.4f} (1 process) vs {v2[-1]:.4f} (2 processes); {time.perf_counter() - t0:.1f} s")
