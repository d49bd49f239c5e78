"""Shared test set-up: one torch thread (small models run faster, and results are repeatable
whatever else the machine runs), and scanpy's bundled PBMC data. The tests read only what lies in
this repository (tests/data, data/demo) or what they generate, never the shared data beside it."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def pbmc():
    """scanpy's bundled 700 PBMCs; .raw.X is log-normalised, obs['bulk_labels'] has 10 types."""
    sc = pytest.importorskip("scanpy")
    return sc.datasets.pbmc68k_reduced()
