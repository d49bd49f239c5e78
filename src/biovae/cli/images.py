"""`biovae fit-images IMAGE MASK -o MODEL`: a skin over biovae.images.run."""

from __future__ import annotations

import argparse

from biovae.cli.common import add_runtime_options, summary_line
from biovae.images.settings import ImageSettings

_FMT = argparse.ArgumentDefaultsHelpFormatter
_D = ImageSettings()


def register(sub) -> None:
    p = sub.add_parser("fit-images", help="fit a convolutional VAE to object patches of a microscopy image",
                       formatter_class=_FMT,
                       description="Cut one centred, normalised patch per labelled object (e.g. nucleus) of a 2-D "
                       "image, fit a convolutional VAE on them with rotation/flip augmentation, and write the model "
                       "with reconstruction, interpolation, traversal and anomaly PNGs, per-object anomaly scores "
                       "(scores.tsv) and summary.json to MODEL (written atomically).")
    p.add_argument("image", help="2-D single-channel TIFF")
    p.add_argument("mask", help="instance-label TIFF of the same shape (0 = background, one number per object)")
    p.add_argument("-o", "--out", required=True, help="model folder (written atomically)")
    g = p.add_argument_group("patches")
    g.add_argument("--size", type=int, default=_D.size, help="patch side in pixels (divisible by 2 ** len(--channels))")
    g.add_argument("--normalize", default=_D.normalize, choices=["image", "patch", "none"],
                   help="percentile scaling to [0, 1] over the whole image or per patch")
    g.add_argument("--isolate", default=_D.isolate, choices=["object", "others", "none"],
                   help="object: blank all but the object; others: blank other objects; none: keep all")
    g.add_argument("--edge", default=_D.edge, choices=["pad", "drop"], help="objects near the border: pad or drop")
    m = p.add_argument_group("model")
    m.add_argument("--latent-dim", type=int, default=_D.latent_dim)
    m.add_argument("--channels", type=int, nargs="+", default=list(_D.channels), help="encoder conv channels")
    m.add_argument("--hidden", type=int, nargs="*", default=list(_D.hidden), help="dense layers after the convolutions")
    m.add_argument("--likelihood", default=_D.likelihood, choices=["bernoulli", "normal", "gaussian"],
                   help="pixel likelihood for intensities in [0, 1]")
    m.add_argument("--beta", type=float, default=_D.beta, help="KL weight in training (scores use 1)")
    m.add_argument("--copies", type=int, default=_D.copies, help="patches per object after rotation/flip augmentation")
    m.add_argument("--epochs", type=int, default=_D.epochs)
    m.add_argument("--batch-size", type=int, default=_D.batch_size)
    m.add_argument("--lr", type=float, default=_D.lr)
    m.add_argument("--holdout", type=float, default=_D.holdout,
                   help="fraction of objects left out of training and scored for reconstruction quality")
    add_runtime_options(p)
    p.set_defaults(handler=_fit_images)


def _fit_images(args) -> None:
    from biovae.images import run
    from biovae.images.fit import headline

    s = ImageSettings(size=args.size, normalize=args.normalize, isolate=args.isolate, edge=args.edge,
                      holdout=args.holdout, latent_dim=args.latent_dim, channels=tuple(args.channels),
                      hidden=tuple(args.hidden), likelihood=args.likelihood, beta=args.beta, copies=args.copies,
                      epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      device=args.device, progress=not args.quiet)
    summary = run(args.image, args.mask, args.out, s, force=args.force)
    summary_line("fit-images", f"{headline(summary)}; model in {args.out}")
