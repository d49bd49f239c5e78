"""Model files round-trip exactly and refuse damaged, altered or newer files; training resumes
after kill -9 to the same weights as an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
from safetensors import safe_open

from biovae import VAE, BiovaeError
from biovae.engine import checkpoint

rng = np.random.default_rng(0)
X = rng.normal(size=(600, 12)).astype(np.float32)
LABELS = np.where(np.arange(600) % 3 == 0, "ctrl", "treated")


def fitted(**kw):
    vae = VAE(12, latent_dim=3, hidden=[16], conditions={"state": LABELS}, seed=2, **kw)
    return vae.fit(X, {"state": LABELS}, epochs=3, batch_size=64, progress=False, seed=2)


def test_save_load_round_trip_is_exact(tmp_path):
    vae = fitted(likelihood="gaussian")
    vae.metadata = {"genes": ["g1", "g2"]}
    vae.state["scale"] = np.arange(12, dtype=np.float32)
    vae.save(tmp_path / "m")
    back = VAE.load(tmp_path / "m")
    cond = {"state": LABELS}
    for a, b in zip(vae.encode(X, cond), back.encode(X, cond)):
        assert np.array_equal(a, b)
    assert np.array_equal(vae.sample(50, {"state": "ctrl"}, seed=3), back.sample(50, {"state": "ctrl"}, seed=3))
    assert back.metadata == {"genes": ["g1", "g2"]} and np.array_equal(back.state["scale"], vae.state["scale"])
    assert back.history == json.loads(json.dumps(vae.history))
    assert back.train_config.epochs == 3
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [".biovae-output", "config.json", "history.json", "model.safetensors"]


def test_loading_refuses_missing_newer_tampered_and_mismatched_files(tmp_path):
    vae = fitted()
    vae.save(tmp_path / "m")
    with pytest.raises(BiovaeError, match="does not exist"):
        VAE.load(tmp_path / "nope")

    cfg_path = tmp_path / "m" / "config.json"
    doc = json.loads(cfg_path.read_text())
    cfg_path.write_text(json.dumps({**doc, "format_version": 99}))
    with pytest.raises(BiovaeError, match="format 99.*upgrade biovae"):
        VAE.load(tmp_path / "m")
    cfg_path.write_text(json.dumps(doc))

    weights = tmp_path / "m" / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-5] ^= 0xFF  # flip bits inside a tensor
    weights.write_bytes(bytes(raw))
    with pytest.raises(BiovaeError, match="changed or swapped"):
        VAE.load(tmp_path / "m")

    other = VAE(12, latent_dim=5, hidden=[16], conditions={"state": LABELS})  # a different architecture
    other.save(tmp_path / "o")
    (tmp_path / "m" / "model.safetensors").write_bytes((tmp_path / "o" / "model.safetensors").read_bytes())
    from biovae.engine.files import sha256
    cfg_path.write_text(json.dumps({**doc, "weights_sha256": sha256(weights)}))
    with pytest.raises(BiovaeError, match="do not fit its config"):
        VAE.load(tmp_path / "m")

    (tmp_path / "m" / "config.json").unlink()
    with pytest.raises(BiovaeError, match="config.json is missing"):
        VAE.load(tmp_path / "m")


def test_bad_settings_and_data_each_raise_one_clear_error():
    with pytest.raises(BiovaeError, match="unknown likelihood 'zip'"):
        VAE(5, likelihood="zip")
    with pytest.raises(BiovaeError, match="latent_dim must be"):
        VAE(5, latent_dim=0)
    with pytest.raises(BiovaeError, match="negative values.*'nb'"):
        VAE(3, likelihood="nb").fit(np.array([[1, 2, -1]] * 10, dtype=float), epochs=1, progress=False)
    with pytest.raises(BiovaeError, match="outside"):
        VAE(3, likelihood="bernoulli").fit(np.full((10, 3), 2.0), epochs=1, progress=False)
    bad = np.ones((10, 3))
    bad[4, 1] = np.nan
    with pytest.raises(BiovaeError, match="NaN or infinite values.*sample 4, feature 1"):
        VAE(3).fit(bad, epochs=1, progress=False)
    bad[4, 1] = np.inf
    with pytest.raises(BiovaeError, match="NaN or infinite"):
        VAE(3).encode(bad)
    with pytest.raises(BiovaeError, match="has 4 features but the model expects 3"):
        VAE(3).encode(np.ones((2, 4)))
    vae = VAE(12, conditions={"state": LABELS})
    with pytest.raises(BiovaeError, match="'mutant'.*not seen"):
        vae.sample(3, {"state": "mutant"})
    with pytest.raises(BiovaeError, match="no 'state' labels"):
        vae.encode(X)


def _resumable_script(ckdir, epochs):
    return textwrap.dedent(f"""
        import numpy as np, torch
        torch.set_num_threads(1)
        from biovae import VAE
        x = np.random.default_rng(0).normal(size=(3000, 40)).astype(np.float32)
        vae = VAE(40, latent_dim=4, hidden=[64, 32], dropout=0.1, seed=4)
        vae.fit(x, epochs={epochs}, batch_size=32, seed=4, progress=False, warmup_fraction=0.3,
                checkpoint_dir={str(ckdir)!r}, checkpoint_every=1, resume=True)
        vae.save({str(ckdir / "model")!r})
    """)


def _epoch_of(ckdir):
    path = ckdir / checkpoint.FILE
    if not path.exists():
        return -1
    try:
        with safe_open(str(path), framework="pt") as f:
            return json.loads(f.metadata()["loop"])["epoch"]
    except Exception:
        return -1


def test_resume_after_kill_9_reaches_the_uninterrupted_weights(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    epochs = 12
    straight = tmp_path / "straight"
    subprocess.run([sys.executable, "-c", _resumable_script(straight, epochs)], check=True, env=env)

    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", _resumable_script(killed, epochs)], env=env)
    deadline = time.time() + 120
    while _epoch_of(killed) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "training finished before it could be killed; make it longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stopped_at = _epoch_of(killed)
    assert 2 <= stopped_at < epochs - 1
    assert not (killed / "model").exists()

    subprocess.run([sys.executable, "-c", _resumable_script(killed, epochs)], check=True, env=env)
    a, b = VAE.load(straight / "model"), VAE.load(killed / "model")
    for k, v in a.module.state_dict().items():
        assert torch.equal(v, b.module.state_dict()[k]), k
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]


def test_model_written_before_the_layer_rebuild_still_loads_and_gives_the_same_numbers():
    """A model folder from the earlier engine (tests/fixtures/engine_model_v1, see its README)
    loads, and encodes and decodes its rows as that engine did."""
    from pathlib import Path

    here = Path(__file__).parent / "fixtures" / "engine_model_v1"
    want = np.load(here / "expected.npz")
    vae = VAE.load(here / "model")
    cond = {"c": want["labels"]}
    mean, _ = vae.encode(want["x"], cond)
    assert np.allclose(mean, want["mean"], atol=1e-5)
    assert np.allclose(vae.decode(mean, cond), want["decoded"], rtol=1e-4, atol=1e-5)


def test_typed_state_records_round_trip_under_their_namespace(tmp_path):
    """engine.state: a record is stored under its own namespace (replacing only that), saved in
    the model file, and read back typed; the engine's LibrarySizes is one per count block."""
    from biovae.engine import state

    x = np.random.default_rng(0).poisson(3, (80, 6)).astype(np.float32)
    vae = VAE(6, likelihood="nb", hidden=[8], latent_dim=2, conditions={"c": ["a", "b"] * 40})
    vae.fit(x, {"c": ["a", "b"] * 40}, epochs=1, progress=False)
    vae.state["other.thing"] = np.ones(3)
    lib = state.get(vae.state, state.LibrarySizes)
    assert set(lib.blocks) == {"x"} and lib.blocks["x"].shape == (3, 4)
    vae.save(tmp_path / "m")
    again = VAE.load(tmp_path / "m")
    assert np.array_equal(state.get(again.state, state.LibrarySizes).blocks["x"], lib.blocks["x"])
    state.put(again.state, state.LibrarySizes({"y": np.zeros((1, 2))}))
    assert sorted(again.state) == ["library.y", "other.thing"]
    assert state.get({}, state.LibrarySizes) is None
