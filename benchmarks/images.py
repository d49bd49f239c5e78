"""Benchmark: the convolutional VAE on real nuclei (img2d.tif + mask2d.tif), on the CPU.

Run by hand (not part of the test suite):
    nice .venv/bin/python benchmarks/images.py [--threads 1] [--seed 1] [--epochs 60]

Two fits with the `biovae fit-images` defaults (64 x 64 patches, isolate="object", 8 copies per
nucleus by rotation/flip, Bernoulli likelihood, beta 0.1, 60 epochs):
  1. held-out: train on 80% of the nuclei (seeded split), report SSIM and Pearson correlation of
     the reconstructions of the other 20% against the baseline "every nucleus is the mean
     training patch" (same metric, same patches, same run);
  2. full: `biovae.images.run` on all nuclei, as the CLI runs it (fit + scores + plots + files),
     timed end to end; the acceptance is < 5 min on the CPU.
Wall time and this process's CPU time are both recorded: on a shared machine wall time also
counts other people's load (the 1-minute load average is written too).
Writes benchmarks/out/images.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT.parent / "shared" / "data" / "images"
OUT = ROOT / "benchmarks" / "out" / "images.json"
LIMIT_S = 300.0


def _timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - w0, time.process_time() - c0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=None, help="default: the CLI's")
    ap.add_argument("--holdout", type=float, default=0.2)
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from biovae.images import ImageSettings, fit, run
    from biovae.images.fit import split_objects
    from biovae.io.images import image_patches, read_image_pair

    settings = ImageSettings(seed=args.seed, progress=False)
    if args.epochs:
        settings.epochs = args.epochs
    options = settings.model_dict()
    image, mask = IMAGES / "img2d.tif", IMAGES / "mask2d.tif"
    patches = image_patches(*read_image_pair(image, mask), size=64)
    train_idx, held_idx = split_objects(len(patches), args.holdout, args.seed)
    train, held = patches.subset(train_idx), patches.subset(held_idx)

    model, wall1, cpu1 = _timed(lambda: fit(train, settings))
    held_q, train_q = model.quality(held), model.quality(train)

    with tempfile.TemporaryDirectory() as tmp:
        summary, wall2, cpu2 = _timed(lambda: run(image, mask, Path(tmp) / "model", settings))
    full_q = summary["quality"]["train"]

    result = {
        "data": {"image": str(image), "mask": str(mask), "nuclei": len(patches),
                 "train": len(train_idx), "held_out": len(held_idx)},
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in options.items()},
        "threads": args.threads, "cpus": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2),
        "seed": args.seed, "torch": torch.__version__, "python": sys.version.split()[0],
        "held_out_fit": {"fit_wall_s": round(wall1, 1), "fit_cpu_s": round(cpu1, 1),
                         "held_out": held_q, "train": train_q},
        "full_run": {"wall_s": round(wall2, 1), "cpu_s": round(cpu2, 1), "fit_wall_s": summary["fit_seconds"],
                     "quality_train": full_q, "under_5_min": wall2 < LIMIT_S},
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")

    print(f"nuclei {len(patches)} (64 x 64), {options['epochs']} epochs x {options['copies']} copies, "
          f"{args.threads} thread(s), load average {result['load_average_1min']}")
    print(f"{'patches':<30}{'n':>4}{'SSIM VAE':>10}{'SSIM mean':>11}{'r VAE':>8}{'r mean':>8}")
    for name, q in (("held-out (fit on 80%)", held_q), ("training (fit on 80%)", train_q),
                    ("all (full run)", full_q)):
        print(f"{name:<30}{q['patches']:>4}{q['ssim']:>10.3f}{q['baseline_ssim']:>11.3f}"
              f"{q['corr']:>8.3f}{q['baseline_corr']:>8.3f}")
    print(f"full run (fit + scores + plots + files): {wall2:.0f} s wall, {cpu2:.0f} s CPU "
          f"({'under' if wall2 < LIMIT_S else 'OVER'} the 5 min limit); fit on 80%: {wall1:.0f} s wall")
    print(f"written to {OUT}")
    return 0 if wall2 < LIMIT_S else 1


if __name__ == "__main__":
    sys.exit(main())
