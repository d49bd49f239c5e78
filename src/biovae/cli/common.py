"""Options every command shares, and the one-line summary every command ends with."""

from __future__ import annotations

import argparse
import os
import sys


def add_runtime_options(p: argparse.ArgumentParser, *, device: bool = True, distributed: bool = False) -> None:
    """--seed, --threads and --force for every command; --device where something is trained;
    --devices, --strategy, --num-nodes and --precision where training can span processes (Fabric)."""
    g = p.add_argument_group("runtime")
    g.add_argument("--force", action="store_true",
                   help="replace an existing output that biovae did not write (it is deleted); without it such "
                   "an output is refused. An output holding one of the inputs is refused regardless")
    g.add_argument("--seed", type=int, default=1, help="random seed; same seed, same CPU, same result")
    g.add_argument("--threads", type=int, default=0,
                   help="CPU threads for torch and numerical libraries (0: all cores)")
    if device:
        g.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"],
                       help="where to train (auto picks a GPU when one is visible)")
    if distributed:
        g.add_argument("--devices", default="1",
                       help="processes (one per GPU, or CPU processes) to train with: a number, or 'auto'")
        g.add_argument("--strategy", default="auto", choices=["auto", "ddp", "ddp_spawn"],
                       help="ddp: data-parallel over --devices (gradients averaged over the global batch)")
        g.add_argument("--num-nodes", type=int, default=1, help="machines, each launched with torchrun")
        g.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed", "16-mixed"],
                       help="mixed precision on a GPU")
    g.add_argument("--quiet", action="store_true", help="no progress bars")


def apply_runtime(args: argparse.Namespace) -> None:
    """Set thread counts before the numerical libraries start their pools."""
    threads = getattr(args, "threads", 0) or 0
    if threads > 0:
        for var in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(threads)
        # torch takes OMP_NUM_THREADS when it is first imported; importing it here only to set
        # the count would put its ~180 MiB under every stage, also those that never use it
        # (biovae bin's k-mer counting: docs/binning.md, memory)
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.set_num_threads(threads)


def summary_line(command: str, text: str) -> None:
    """The last line every command prints (by rank 0 alone in a distributed run)."""
    from biovae.io.atomic import is_main_process

    if is_main_process():
        print(f"biovae {command}: {text}", flush=True)


def distributed_options(args: argparse.Namespace) -> dict:
    """TrainConfig fields of --devices/--strategy/--num-nodes/--precision."""
    devices = args.devices if args.devices == "auto" else _positive_int(args.devices, "--devices")
    return {"devices": devices, "strategy": args.strategy, "num_nodes": args.num_nodes, "precision": args.precision}


def _positive_int(text: str, flag: str) -> int:
    from biovae.errors import BiovaeError

    if not text.isdigit() or int(text) < 1:
        raise BiovaeError(f"{flag} {text!r} is not a positive number", f"give e.g. {flag} 2, or {flag} auto")
    return int(text)


def run_parameters(args: argparse.Namespace) -> dict:
    """The options of this run (given and defaulted), for the run report."""
    return {k: v for k, v in sorted(vars(args).items()) if k not in ("handler", "command") and not callable(v)}


def finish_file_output(command: str, out, summary: dict, lead: str, args: argparse.Namespace,
                       title: str | None = None, **report_parts) -> None:
    """The end of every command whose output is one file OUT: OUT.summary.json (with the record
    by which a later run knows OUT as biovae's, biovae.io.outputs), the run report
    OUT.report.html (`report_parts`: images, tables, outputs; see biovae.report) and the
    summary line `lead`."""
    from pathlib import Path

    from biovae.io.outputs import write_file_summary
    from biovae.report import report_path, write_report

    write_file_summary(out, summary)
    report_parts.setdefault("outputs", [Path(out).name, Path(out).name + ".summary.json"])
    write_report(report_path(out), title or f"biovae {command}", lead=lead, summary=summary,
                 parameters=run_parameters(args), **report_parts)
    summary_line(command, lead)
