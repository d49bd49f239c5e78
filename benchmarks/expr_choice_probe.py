"""How long the probe fits of likelihood="auto" must be to pick what full fits pick.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/expr_choice_probe.py [--splits 3] [--data pbmc68k_reduced,pbmc68k_counts]

likelihood="auto" (biovae.expr.choose) fits each candidate for PROBE_EPOCHS epochs only, compares
their validation losses at that epoch, and trains the winner on to its stopping point. This
script fits every candidate fully instead (likelihood set, so no choice: the engine's history
holds the validation loss of every epoch) on the 80 % of each 80/20 split (seeds
0..splits-1, as benchmarks/expr_choice_dev.py), and reports, for each probe length, which
candidate the probe would pick and whether that is the full fits' pick (lowest best validation
loss), with the epochs the full fits ran (the probe's extra cost is about probe / epochs of the
winner's fit). Run on the DEVELOPMENT sets (the default) to choose PROBE_EPOCHS; any other
--data is a confirmation of that choice and is labelled so. Writes benchmarks/out/expr_choice_probe.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import expr_datasets  # noqa: E402

import biovae.expr as ex  # noqa: E402
from biovae.evaluate.generation import split_cells  # noqa: E402
from biovae.expr import choose  # noqa: E402

HERE = Path(__file__).resolve().parent
PROBES = (3, 5, 10, 15, 20, 30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splits", type=int, default=3)
    ap.add_argument("--data", default=",".join(expr_datasets.DEVELOPMENT))
    ap.add_argument("--out", default=str(HERE / "out" / "expr_choice_probe.json"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    rows = []
    for name in args.data.split(","):
        label = expr_datasets.DATASETS[name][1]
        real = expr_datasets.load(name)
        role = "development" if name in expr_datasets.DEVELOPMENT else "confirmation"
        for seed in range(args.splits):
            train, _ = split_cells(real, 0.2, label_key=label, seed=seed)
            fits = {}
            for likelihood, _ in choose.CANDIDATES["counts"]:
                t0 = time.perf_counter()
                model = ex.fit(train, labels=label, seed=seed, progress=False, likelihood=likelihood)
                fits[likelihood] = ([h["val_loss"] for h in model.vae.history], time.perf_counter() - t0)
            full = min(fits, key=lambda k: min(fits[k][0]))
            row = {"dataset": name, "role": role, "split": seed, "full_pick": full,
                   "best_loss": {k: round(min(v[0]), 3) for k, v in fits.items()},
                   "epochs": {k: len(v[0]) for k, v in fits.items()},
                   "seconds": {k: round(v[1], 1) for k, v in fits.items()}, "probe": {}}
            for p in PROBES:
                at = {k: v[0][min(p, len(v[0])) - 1] for k, v in fits.items()}
                pick = min(at, key=at.get)
                row["probe"][p] = {"pick": pick, "same": pick == full, "loss": {k: round(v, 3) for k, v in at.items()}}
            rows.append(row)
            print(json.dumps(row), flush=True)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=1))
    for p in PROBES:
        same = [r["probe"][p]["same"] for r in rows]
        extra = [p / r["epochs"][r["full_pick"]] for r in rows]
        print(f"probe {p:2d} epochs: picks what the full fits pick in {sum(same)} of {len(same)} fits; "
              f"probe / winner's epochs {min(extra):.2f}-{max(extra):.2f}")


if __name__ == "__main__":
    main()
