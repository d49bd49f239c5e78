"""`biovae fit --devices 2 --strategy ddp` on CPU: Fabric launches a second process (gloo), the
two train data-parallel, and only rank 0 writes: one model folder, one report, one summary line,
no scratch left, and a fit as good as the one-process fit with the same global batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

import biovae.expr as ex

BIOVAE = [sys.executable, "-m", "biovae"]


def _cells(path: Path) -> Path:
    """400 cells of two types over 30 genes, Poisson counts; type B has 5 genes up 4-fold."""
    rng = np.random.default_rng(0)
    mean = rng.gamma(2.0, 2.0, size=30)
    kind = np.where(np.arange(400) % 2, "A", "B")
    lam = np.where((kind == "B")[:, None] & (np.arange(30) < 5)[None, :], 4 * mean, mean)
    a = ad.AnnData(X=rng.poisson(lam).astype(np.float32), obs=pd.DataFrame({"type": kind}, index=[f"c{i}" for i in range(400)]))
    a.write_h5ad(path)
    return path


def _fit(data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = ["fit", str(data), "-o", str(out), "--labels", "type", "--likelihood", "nb", "--epochs", "12",
            "--patience", "12", "--batch-size", "64", "--hidden", "32", "--latent-dim", "3", "--threads", "1",
            "--quiet", "--seed", "3", *extra]
    return subprocess.run([*BIOVAE, *args], env=env, capture_output=True, text=True, timeout=300)


def test_two_cpu_processes_fit_once_and_as_well_as_one(tmp_path):
    data = _cells(tmp_path / "cells.h5ad")
    one = _fit(data, tmp_path / "one")
    two = _fit(data, tmp_path / "two", "--devices", "2", "--strategy", "ddp")
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    assert "Starting with 2 processes" in two.stderr and "GLOBAL_RANK: 1" in two.stderr  # really two
    lines = [ln for ln in two.stdout.splitlines() if ln.startswith("biovae fit:")]
    assert len(lines) == 1, two.stdout  # rank 1 prints no summary
    assert {p.name for p in tmp_path.iterdir()} == {"cells.h5ad", "one", "two"}  # no lock, .partial or temp left
    assert (tmp_path / "two" / "report.html").is_file()

    loss = [json.loads((tmp_path / run / "summary.json").read_text())["final_val_loss"] for run in ("one", "two")]
    assert abs(loss[1] - loss[0]) < 0.1 * abs(loss[0]), loss
    model = ex.load(tmp_path / "two")
    gen = model.generate(labels={"A": 300, "B": 300}, seed=0)
    b_over_a = gen.X[(gen.obs["label"] == "B").to_numpy(), :5].mean() / gen.X[(gen.obs["label"] == "A").to_numpy(), :5].mean()
    assert b_over_a > 2.0, b_over_a  # the DDP-trained decoder kept type B's up-regulated genes


def test_bad_devices_value_is_one_clear_line(tmp_path):
    data = _cells(tmp_path / "cells.h5ad")
    bad = _fit(data, tmp_path / "m", "--devices", "two")
    assert bad.returncode == 2 and "--devices 'two' is not a positive number" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "m").exists()
