"""kill -9 of `biovae fit` during training: OUT stays absent, and --resume finishes the job with
bit-identical model files to a run that was never interrupted (training checkpoint in
OUT.partial/checkpoint)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ARGS = ["--layer", "raw", "--labels", "bulk_labels", "--epochs", "40", "--patience", "40", "--hidden", "64",
        "--latent-dim", "8", "--quiet", "--threads", "1", "--seed", "3"]


def _fit(data: Path, out: Path, *extra: str) -> subprocess.Popen:
    code = "import sys; from biovae.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", code, "fit", str(data), "-o", str(out), *ARGS, *extra],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture
def pbmc_file(pbmc, tmp_path) -> Path:
    path = tmp_path / "pbmc.h5ad"
    pbmc.write_h5ad(path)
    return path


def test_kill_during_training_then_resume_gives_the_same_model(pbmc_file, tmp_path):
    whole = tmp_path / "whole"
    straight = _fit(pbmc_file, whole)
    assert straight.wait(timeout=300) == 0, straight.stderr.read().decode()

    out = tmp_path / "out"
    proc = _fit(pbmc_file, out)
    checkpoint = tmp_path / "out.partial" / "checkpoint"
    deadline = time.time() + 240
    while not (checkpoint.exists() and any(checkpoint.iterdir())):
        assert proc.poll() is None, "the fit ended before a checkpoint was seen: " + proc.stderr.read().decode()
        assert time.time() < deadline, "no checkpoint was written"
        time.sleep(0.02)
    time.sleep(0.5)  # a few more epochs, so that the resumed run starts mid-way
    assert proc.poll() is None, "the fit ended before it could be killed; make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()  # nothing half-written

    resumed = _fit(pbmc_file, out, "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()
    # weights and all fitted state (preprocessing, samplers) in one file
    assert (out / "model.safetensors").read_bytes() == (whole / "model.safetensors").read_bytes()
    losses = [[(h["train_loss"], h["val_loss"]) for h in json.loads((m / "history.json").read_text())]
              for m in (whole, out)]
    assert losses[0] == losses[1]
    assert {p.name for p in out.iterdir()} == {p.name for p in whole.iterdir()}
    assert not (tmp_path / "out.partial").exists() and not (tmp_path / "out.lock").exists()
