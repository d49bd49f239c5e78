"""Shared test set-up: one torch thread (small models run faster, and results are repeatable
whatever else the machine runs), and paths to the shared real data."""

import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATA = SHARED / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"shared data not found at {DATA}")
    return DATA


@pytest.fixture(scope="session")
def pbmc():
    """scanpy's bundled 700 PBMCs; .raw.X is log-normalised, obs['bulk_labels'] has 10 types."""
    sc = pytest.importorskip("scanpy")
    return sc.datasets.pbmc68k_reduced()
