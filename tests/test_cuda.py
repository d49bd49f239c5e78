"""The CUDA path: a fit, a save/load round trip and a DDP smoke test on the GPU. Marked `cuda`;
skipped where no CUDA GPU is visible (run them with `pytest -m cuda` on a GPU machine)."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from biovae import VAE

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible")]


def _counts(n=600, f=50):
    rng = np.random.default_rng(0)
    rates = rng.gamma(2.0, 1.0, size=(3, f))
    return rng.poisson(rates[rng.integers(0, 3, n)]).astype(np.float32)


@pytest.fixture(scope="module")
def fitted():
    x = _counts()
    vae = VAE(x.shape[1], likelihood="zinb", latent_dim=4, hidden=[64], dropout=0.1, seed=0)
    vae.fit(x, epochs=5, batch_size=128, seed=1, progress=False, device="cuda")
    return vae, x


def test_fit_on_cuda_learns(fitted):
    vae, x = fitted
    losses = [h["train_loss"] for h in vae.history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert all(p.device.type == "cpu" for p in vae.module.parameters())  # back on the CPU for inference
    mean, _ = vae.encode(x)
    assert np.isfinite(mean).all()


def test_cuda_model_saves_and_loads(fitted, tmp_path):
    vae, x = fitted
    vae.save(tmp_path / "model")
    again = VAE.load(tmp_path / "model")
    assert np.array_equal(again.encode(x)[0], vae.encode(x)[0])
    assert np.allclose(again.decode(vae.encode(x)[0][:10]), vae.decode(vae.encode(x)[0][:10]))


SCRIPT = textwrap.dedent('''
    import json, sys
    import numpy as np, torch
    import torch.distributed as dist
    from biovae.engine import train
    from biovae.engine.config import Block, ModelConfig, TrainConfig
    from biovae.engine.module import VAEModule

    x = np.random.default_rng(0).normal(size=(500, 20)).astype(np.float32)
    cfg = ModelConfig(blocks=[Block("x", 20)], latent_dim=3, hidden=[32]).validate()
    torch.manual_seed(1)
    module = VAEModule(cfg)
    n = torch.cuda.device_count()
    tc = TrainConfig(epochs=3, batch_size=64, seed=2, device="cuda", devices=n, strategy="ddp",
                     validation_split=0.1, progress=False)
    history = train.fit(module, x, None, tc)
    if not dist.is_initialized() or dist.get_rank() == 0:
        json.dump({"history": history, "world": dist.get_world_size() if dist.is_initialized() else 1},
                  open(sys.argv[1], "w"))
''')


def test_ddp_smoke_on_cuda(tmp_path):
    script, out = tmp_path / "ddp_cuda.py", tmp_path / "out.json"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT")}
    proc = subprocess.run([sys.executable, str(script), str(out)], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    doc = json.loads(out.read_text())
    assert doc["world"] == torch.cuda.device_count()
    assert all(np.isfinite(h["train_loss"]) for h in doc["history"])
