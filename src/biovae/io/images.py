"""Microscopy images and instance masks -> one centred, normalised patch per labelled object.

    image, mask = read_image_pair("img2d.tif", "mask2d.tif")
    p = image_patches(image, mask, size=64)
    p.images  # (n, 64, 64) float32 in [0, 1]; p.ids, p.centroids, p.areas, p.masks

An instance mask holds one whole-number label per object and 0 for background (as written by
StarDist, Cellpose or scipy.ndimage.label). Units: pixels throughout; centroids are (row, col).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from biovae.errors import BiovaeError, require

NORMALIZE = ("image", "patch", "none")
EDGES = ("pad", "drop")
ISOLATE = ("object", "others", "none")
MARGIN = 2  # px of the object's surroundings kept with isolate="object": its edge is blurred, not cut


@dataclass
class Patches:
    """Patches of labelled objects, one row per object, in increasing label order.

    images: (n, size, size) float32, the object's centroid at pixel (size // 2, size // 2) (to
      within half a pixel). masks: (n, size, size) bool, the object's own pixels.
    ids: (n,) int64 mask labels. centroids: (n, 2) float64 (row, col) in the full image.
    areas: (n,) int64 object areas in pixels. skipped: label -> why it has no patch.
    background: the value used for padding and for other objects' pixels (same units as images).
    options: the image_patches settings that cut them (size, normalize, percentiles, isolate, edge).
    """

    images: np.ndarray
    masks: np.ndarray
    ids: np.ndarray
    centroids: np.ndarray
    areas: np.ndarray
    background: float
    skipped: dict[int, str] = field(default_factory=dict)
    options: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def size(self) -> int:
        return int(self.images.shape[1])

    def flat(self) -> np.ndarray:
        """Patches as VAE rows: (n, size * size) float32, row-major."""
        return self.images.reshape(len(self.ids), -1)

    def subset(self, index) -> "Patches":
        """The patches at `index` (integer positions or a boolean array)."""
        return Patches(self.images[index], self.masks[index], self.ids[index], self.centroids[index],
                       self.areas[index], self.background, dict(self.skipped), dict(self.options))


def read_tiff(path, what: str = "image") -> np.ndarray:
    """A TIFF as an array with singleton axes removed; BiovaeError naming the file when it is
    missing or cannot be read."""
    import tifffile

    path = Path(path)
    if not path.is_file():
        raise BiovaeError(f"{what} file {path} does not exist", "check the path")
    try:
        arr = tifffile.imread(path)
    except Exception as exc:  # tifffile raises TiffFileError, ValueError, OSError, ... for bad files
        raise BiovaeError(f"cannot read {what} {path} as TIFF ({type(exc).__name__}: {exc})",
                          "give a TIFF file (.tif/.tiff)") from None
    return np.squeeze(np.asarray(arr))


def read_image_pair(image_path, mask_path) -> tuple[np.ndarray, np.ndarray]:
    """Read a 2-D image and its instance mask from TIFF files and check that they belong together."""
    image, mask = read_tiff(image_path, "image"), read_tiff(mask_path, "mask")
    check_pair(image, mask, names=(str(image_path), str(mask_path)))
    return image, mask


def check_pair(image: np.ndarray, mask: np.ndarray, names: tuple[str, str] | None = None) -> np.ndarray:
    """Validate a 2-D image and instance mask (names: their file names, for the messages);
    returns the mask as int64 labels (0 = background)."""
    iname, mname = ("the image", "the mask") if names is None else (f"image {names[0]}", f"mask {names[1]}")
    image, mask = np.asarray(image), np.asarray(mask)
    require(image.ndim == 2, f"{iname} has shape {image.shape}; expected one 2-D grey channel",
            "give a single-channel 2-D image (split channels, or project stacks, first)")
    if mask.shape != image.shape:
        raise BiovaeError(f"mask and image shapes differ: {iname} is {_dims(image.shape)}, "
                          f"{mname} is {_dims(mask.shape)}", "give the mask made for this image")
    require(np.issubdtype(image.dtype, np.number) and not np.issubdtype(image.dtype, np.complexfloating),
            f"{iname} has non-numeric pixels ({image.dtype})")
    require(bool(np.isfinite(image).all()), f"{iname} has NaN or infinite pixels", "fill or crop them")
    if mask.dtype == bool:
        raise BiovaeError(f"{mname} is binary (True/False), not an instance mask",
                          "label each object with its own whole number, e.g. scipy.ndimage.label(mask)")
    if not np.issubdtype(mask.dtype, np.number):
        raise BiovaeError(f"{mname} is {mask.dtype}, not integer instance labels",
                          "label each object with its own whole number, e.g. scipy.ndimage.label(mask)")
    if not np.issubdtype(mask.dtype, np.integer):
        bad = ~np.isfinite(mask) | (mask != np.round(mask))
        if bad.any():
            r, c = (int(i) for i in np.argwhere(bad)[0])
            raise BiovaeError(f"{mname} has non-integer values (e.g. {mask[r, c]} at row {r}, column {c})",
                              "give instance labels: one whole number per object, 0 for background")
    if (mask < 0).any():
        raise BiovaeError(f"{mname} has negative labels", "use 0 for background and 1, 2, ... for objects")
    labels = mask.astype(np.int64)
    if not labels.any():
        raise BiovaeError(f"{mname} has no objects (every pixel is 0)",
                          "give the instance mask of this image, with objects labelled 1, 2, ...")
    if labels.max() == 1 and ndi.label(labels)[1] > 1:
        raise BiovaeError(f"{mname} is binary (all objects share label 1), not an instance mask",
                          "label each object separately, e.g. scipy.ndimage.label(mask)")
    return labels


def _dims(shape) -> str:
    return " x ".join(str(s) for s in shape)


def normalize_image(image: np.ndarray, percentiles=(1.0, 99.8)) -> np.ndarray:
    """Scale intensities so that the low/high percentiles map to 0/1, clipped to [0, 1]: float32."""
    lo, hi = np.percentile(image, percentiles)
    if hi <= lo:
        hi = lo + 1.0  # a flat image: everything 0 rather than a division by zero
    return np.clip((image.astype(np.float64) - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def image_patches(image, mask, size: int = 64, *, normalize: str = "image", percentiles=(1.0, 99.8),
                  isolate: str = "object", edge: str = "pad") -> Patches:
    """One size x size patch per labelled object, centred on its centroid.

    image: (H, W) intensities; mask: (H, W) instance labels, 0 = background.
    normalize: "image" (the image's 1st/99.8th percentiles -> 0/1, so brightness stays comparable
      between objects), "patch" (the same per patch), or "none" (raw intensities as float32).
    isolate: what else the patch shows. "object": only the object and a 2 px rim, the rest set to
      the background value (the median of the normalised background pixels), so the patch varies
      only with the object itself; "others": everything except other objects' pixels, which get
      the background value; "none": the window as it is, neighbours included.
    edge: "pad" keeps objects near the image border (the part outside the image is background);
      "drop" skips objects whose window leaves the image.
    An object is skipped (see .skipped) when its pixels do not all fit in the window.
    """
    require(isinstance(size, (int, np.integer)) and size >= 4, f"patch size must be a whole number >= 4, got {size!r}")
    require(normalize in NORMALIZE, f"unknown normalisation {normalize!r}", f"choose one of {', '.join(NORMALIZE)}")
    require(edge in EDGES, f"unknown edge handling {edge!r}", f"choose one of {', '.join(EDGES)}")
    require(isolate in ISOLATE, f"unknown isolate mode {isolate!r}", f"choose one of {', '.join(ISOLATE)}")
    labels = check_pair(image, mask)
    img = normalize_image(image, percentiles) if normalize == "image" else np.asarray(image, dtype=np.float32)
    background = float(np.median(img[labels == 0])) if (labels == 0).any() else float(img.min())

    half = size // 2
    pad = size  # every window lies inside the padded image
    padded = np.pad(img, pad, constant_values=background)
    padded_labels = np.pad(labels, pad)
    ids = np.unique(labels)
    ids = ids[ids > 0]
    boxes = ndi.find_objects(labels)
    out_img, out_mask, kept, cents, areas, skipped = [], [], [], [], [], {}
    for lab in ids:
        box = boxes[lab - 1]
        rows, cols = np.nonzero(labels[box] == lab)
        rows, cols = rows + box[0].start, cols + box[1].start
        cy, cx = rows.mean(), cols.mean()
        r0, c0 = int(round(cy)) - half, int(round(cx)) - half
        if rows.min() < r0 or rows.max() >= r0 + size or cols.min() < c0 or cols.max() >= c0 + size:
            skipped[int(lab)] = f"larger than the {size} x {size} window"
            continue
        if edge == "drop" and (r0 < 0 or c0 < 0 or r0 + size > img.shape[0] or c0 + size > img.shape[1]):
            skipped[int(lab)] = "its window leaves the image"
            continue
        win = (slice(r0 + pad, r0 + pad + size), slice(c0 + pad, c0 + pad + size))
        patch, own = padded[win].copy(), padded_labels[win] == lab
        if isolate == "object":
            patch[~ndi.binary_dilation(own, iterations=MARGIN)] = background
        elif isolate == "others":
            patch[(padded_labels[win] != lab) & (padded_labels[win] != 0)] = background
        if normalize == "patch":
            patch = normalize_image(patch, percentiles)
        out_img.append(patch)
        out_mask.append(own)
        kept.append(int(lab))
        cents.append((cy, cx))
        areas.append(rows.size)
    if not kept:
        raise BiovaeError(f"none of the {len(ids)} objects fits in a {size} x {size} patch",
                          "use a larger patch size" + (" or edge='pad'" if edge == "drop" else ""))
    if normalize == "patch":
        background = 0.0
    options = {"size": int(size), "normalize": normalize, "percentiles": [float(q) for q in percentiles],
               "isolate": isolate, "edge": edge}
    return Patches(np.stack(out_img).astype(np.float32), np.stack(out_mask), np.asarray(kept, dtype=np.int64),
                   np.asarray(cents, dtype=np.float64), np.asarray(areas, dtype=np.int64), background, skipped,
                   options)
