"""biovae.images.fit: object patches -> fitted convolutional VAE; biovae.images.run: the whole
`biovae fit-images` workflow, from TIFF files to a model folder with plots and scores.

Stages of run: read image + mask -> one patch per object -> (optional) hold out objects ->
augment (seeded random rotations and flips) -> fit the conv VAE -> quality (SSIM, Pearson vs the
mean-patch baseline) -> anomaly scores per object -> PNG grids -> one folder, written atomically.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from biovae.engine.vae import VAE
from biovae.errors import BiovaeError, require
from biovae.images.model import ImageModel
from biovae.images.settings import ImageSettings
from biovae.engine.fit_notes import training_notes
from biovae.io.atomic import atomic_dir
from biovae.io.outputs import output_folder
from biovae.io.images import Patches, image_patches, read_image_pair

FILES = {"reconstructions": "reconstructions.png", "interpolation": "interpolation.png",
         "traversal": "traversal.png", "anomalies": "anomalies.png", "scores": "scores.tsv"}


def augment(images: np.ndarray, copies: int, seed: int, fill: float = 0.0) -> np.ndarray:
    """The patches (n, H, W) and copies - 1 transformed versions of each: (n * copies, H, W).

    Each extra copy is rotated about the patch centre by a uniform random angle (bilinear; corners
    that come from outside the patch get `fill`) and mirrored left-right with probability 1/2.
    The originals come first, then one block of n per copy. Seeded: same seed, same copies.
    """
    require(copies >= 1, f"copies must be >= 1, got {copies}")
    rng = np.random.default_rng(seed)
    out = [np.asarray(images, dtype=np.float32)]
    for _ in range(copies - 1):
        angles, flips = rng.uniform(0.0, 360.0, len(images)), rng.random(len(images)) < 0.5
        block = np.empty_like(out[0])
        for i, (img, angle, flip) in enumerate(zip(out[0], angles, flips)):
            turned = ndi.rotate(img, angle, reshape=False, order=1, mode="constant", cval=fill)
            block[i] = turned[:, ::-1] if flip else turned
        out.append(block)
    return np.concatenate(out)


def fit(patches: Patches, settings: ImageSettings | None = None, **changes) -> ImageModel:
    """Fit a convolutional VAE to object patches (from biovae.io.images.image_patches).

    settings: an ImageSettings (its model and training fields are used), with `changes` (any of
    its field names, e.g. epochs=12) applied on top. likelihood: "bernoulli" (default; for
    intensities in [0, 1], -log p is the pixel-wise binary cross-entropy), "normal" (Gaussian
    with a learned per-pixel scale) or "gaussian" (unit variance: squared error). channels: the
    encoder's conv channels, one halving of the patch per entry (the patch size must be divisible
    by 2 ** len(channels)); hidden: dense layers after them. copies: patches per object after
    augmentation (1 = none). Training runs all `epochs` (no validation split: augmented copies
    of one object would leak into it).
    """
    s = (settings or ImageSettings()).changed(**changes)
    require(isinstance(patches, Patches), "fit takes Patches from biovae.io.images.image_patches")
    require(len(patches) >= 2, f"need at least 2 object patches to fit, got {len(patches)}")
    size = patches.size
    step = 2 ** len(s.channels)
    if size % step:
        raise BiovaeError(f"patch size {size} cannot be halved {len(s.channels)} times (one per conv channel entry)",
                          f"use a patch size divisible by {step}, or fewer --channels")
    x = augment(patches.images, s.copies, s.seed, fill=patches.background).reshape(len(patches) * s.copies, -1)
    vae = VAE(size * size, likelihood=s.likelihood, latent_dim=s.latent_dim, hidden=s.hidden, norm=s.norm,
              beta=s.beta, network="conv", image_shape=(size, size), conv_channels=s.channels, seed=s.seed)
    vae.fit(x, epochs=s.epochs, batch_size=s.batch_size, lr=s.lr, validation_split=0.0,
            warmup_fraction=s.warmup_fraction, seed=s.seed, device=s.device, progress=s.progress)
    model = ImageModel(vae, patches.options or {"size": size})
    model.remember_training(patches.flat())
    return model


def split_objects(n: int, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of n objects into (train, held-out) positions; held-out is empty at holdout 0."""
    require(0 <= holdout < 1, f"holdout must be in [0, 1), got {holdout}")
    k = int(round(n * holdout))
    if k == 0:
        return np.arange(n), np.arange(0)
    require(n - k >= 2, f"holding out {k} of {n} objects leaves fewer than 2 to train on", "lower --holdout")
    order = np.random.default_rng([seed, 7]).permutation(n)
    return np.sort(order[k:]), np.sort(order[:k])


def run(image, mask, out, settings: ImageSettings | None = None, *, force: bool = False) -> dict:
    """The `biovae fit-images` workflow: TIFF image + instance mask -> model folder `out`.

    settings: an ImageSettings (defaults when None). out/ holds the model files, summary.json,
    scores.tsv (one row per object: id, centroid, area, split, anomaly scores) and
    reconstructions/interpolation/traversal/anomalies PNGs. Returns the summary (also in
    out/summary.json). `out` is complete or left as it was, and OUT.lock keeps a second run from
    writing to it at the same time. An existing OUT that biovae did not write is refused unless
    `force` (biovae.io.outputs).
    """
    s = settings or ImageSettings()
    with output_folder(out, [image, mask], force) as out:
        return _run(image, mask, out, s, force)


def _run(image, mask, out: Path, s: ImageSettings, force: bool) -> dict:
    img, labels = read_image_pair(image, mask)
    patches = image_patches(img, labels, s.size, normalize=s.normalize, isolate=s.isolate, edge=s.edge)
    train_idx, held_idx = split_objects(len(patches), s.holdout, s.seed)
    train = patches.subset(train_idx)

    t0 = time.perf_counter()
    model = fit(train, s)
    seconds = time.perf_counter() - t0

    quality = {"train": model.quality(train)}
    if len(held_idx):
        quality["held_out"] = model.quality(patches.subset(held_idx))
    scores = model.scores(patches, seed=s.seed)
    scores.insert(4, "split", np.where(np.isin(np.arange(len(patches)), held_idx), "held_out", "train"))
    h = model.vae.history
    summary = {
        "image": str(image), "mask": str(mask), "image_shape": list(img.shape),
        "objects": int(len(np.unique(labels)) - 1), "patches": len(patches), "skipped": len(patches.skipped),
        "skipped_objects": {str(k): v for k, v in patches.skipped.items()},
        "train_objects": len(train_idx), "held_out_objects": len(held_idx),
        "patch": patches.options, "model": s.model_dict(),
        "epochs_trained": len(h), "final_train_loss": h[-1]["train_loss"], "fit_seconds": round(seconds, 2),
        "quality": quality, "seed": s.seed, "files": dict(FILES),
        "notes": training_notes(h, s.beta),
    }
    with atomic_dir(out, force=force) as tmp:
        model.save(tmp, summary=summary)
        scores.to_csv(tmp / FILES["scores"], sep="\t", index=False, float_format="%.6g")
        _plots(model, patches, held_idx, scores, tmp, s.seed)
        _report(tmp, summary, h)
    return summary


def headline(summary: dict) -> str:
    """The run in one line (the CLI's summary line and the report's lead)."""
    q = summary["quality"].get("held_out", summary["quality"]["train"])
    which = "held-out" if "held_out" in summary["quality"] else "training"
    return (f"{summary['patches']} objects ({summary['skipped']} skipped), {summary['epochs_trained']} epochs in "
            f"{summary['fit_seconds']:.0f} s; {which} SSIM {q['ssim']:.3f} (mean patch {q['baseline_ssim']:.3f}), "
            f"r {q['corr']:.3f} (mean patch {q['baseline_corr']:.3f})"
            + "".join(f"; WARNING: {note}" for note in summary.get("notes", [])))


def _report(folder: Path, summary: dict, history: list[dict]) -> None:
    """MODEL/report.html: quality figures, training curves and the four image grids."""
    from biovae.report import write_report

    captions = {"reconstructions": "objects (top) and their reconstructions (bottom)",
                "interpolation": "decoded path from the smallest to the largest object",
                "traversal": "latent traversal of the most used dimensions",
                "anomalies": "least typical objects (highest reconstruction error)"}
    shown = {k: v for k, v in summary.items() if k not in ("model", "patch", "files", "skipped_objects")}
    write_report(folder / "report.html", "biovae fit-images", lead=headline(summary), summary=shown, history=history,
                 images=[(captions[k], folder / FILES[k]) for k in captions],
                 parameters={"patch": summary["patch"], "model": summary["model"], "seed": summary["seed"]},
                 outputs=sorted([*FILES.values(), "summary.json"]), base=folder)


def _plots(model: ImageModel, patches: Patches, held_idx: np.ndarray, scores, folder: Path, seed: int) -> None:
    """The four PNG grids of a fitted model over the object patches."""
    from biovae.pl import images as pli

    rng = np.random.default_rng([seed, 11])
    pool = held_idx if len(held_idx) >= 8 else np.arange(len(patches))
    pick = np.sort(rng.choice(pool, size=min(16, len(pool)), replace=False))
    shown = patches.subset(pick)
    pli.reconstructions(shown.images, model.reconstruct(shown), [f"#{i}" for i in shown.ids],
                        save=folder / FILES["reconstructions"])

    # between the smallest and the largest object: the path shows how size and shape change
    a, b = int(np.argmin(patches.areas)), int(np.argmax(patches.areas))
    means, _ = model.encode(patches)
    fractions = np.linspace(0, 1, 10)[1:-1]
    path = model.decode(means[a] + fractions[:, None] * (means[b] - means[a]))
    pli.interpolation(path, patches.images[a], patches.images[b], fractions,
                      (f"#{patches.ids[a]}", f"#{patches.ids[b]}"), save=folder / FILES["interpolation"])

    # the most used latent dimensions (largest spread of posterior means), others at their mean
    order = np.argsort(-means.var(0), kind="stable")[: min(6, means.shape[1])]
    values = np.linspace(-3, 3, 7)
    z = np.repeat(means.mean(0)[None], len(order) * len(values), axis=0)
    for r, d in enumerate(order):
        z[r * len(values):(r + 1) * len(values), d] = values
    pli.traversal(model.decode(z).reshape(len(order), len(values), *model.shape), order, values,
                  save=folder / FILES["traversal"])

    # ranked by reconstruction error: under the Bernoulli likelihood the negative ELBO mostly
    # tracks object area (each mid-grey pixel carries irreducible cross-entropy)
    top = np.argsort(-scores["recon_error"].to_numpy(), kind="stable")[:8]
    odd = patches.subset(top)
    pli.reconstructions(odd.images, model.reconstruct(odd), [f"#{i}" for i in odd.ids],
                        title="highest reconstruction error (least typical objects)", save=folder / FILES["anomalies"])
