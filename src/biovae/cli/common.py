"""Options every command shares, and the one-line summary every command ends with."""

from __future__ import annotations

import argparse
import os


def add_runtime_options(p: argparse.ArgumentParser, *, device: bool = True) -> None:
    """--seed and --threads for every command; --device where something is trained."""
    g = p.add_argument_group("runtime")
    g.add_argument("--seed", type=int, default=1, help="random seed; same seed, same CPU, same result")
    g.add_argument("--threads", type=int, default=0,
                   help="CPU threads for torch and numerical libraries (0: all cores)")
    if device:
        g.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"],
                       help="where to train (auto picks a GPU when one is visible)")
    g.add_argument("--quiet", action="store_true", help="no progress bars")


def apply_runtime(args: argparse.Namespace) -> None:
    """Set thread counts before the numerical libraries start their pools."""
    threads = getattr(args, "threads", 0) or 0
    if threads > 0:
        for var in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(threads)
        import torch

        torch.set_num_threads(threads)


def summary_line(command: str, text: str) -> None:
    """The last line every command prints."""
    print(f"biovae {command}: {text}", flush=True)


def run_parameters(args: argparse.Namespace) -> dict:
    """The options of this run (given and defaulted), for the run report."""
    return {k: v for k, v in sorted(vars(args).items()) if k not in ("handler", "command") and not callable(v)}
