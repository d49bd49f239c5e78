"""Time points of a time course: numeric values of their labels, a held-out point's neighbours,
the evaluation space, and the models fitted on the other time points (shared by
biovae.tl.timecourse and biovae.tl.intermediate)."""

from __future__ import annotations

import re

import anndata as ad
import numpy as np

from biovae.errors import BiovaeError, require

BIRTH_DPC = 19.5  # mouse: postnatal day 0 is taken as embryonic day 19.5
DEFAULT_SETTINGS = dict(likelihood="normal", hidden=(128, 64), latent_dim=10, beta=1.0, dropout=0.1,
                        batch_size=32, epochs=400, patience=40, validation_split=0.1, progress=False)
_EMBRYONIC = re.compile(r"^(?:e|embryonic\s+day|embryonic|dpc)\s*(\d+(?:\.\d+)?)$")
_POSTNATAL = re.compile(r"^(?:p|pnd|post\s*-?\s*natal\s+day|postnatal)\s*(\d+(?:\.\d+)?)$")
_NUMBER = re.compile(r"^(?:day\s*)?(-?\d+(?:\.\d+)?)$")


def time_value(label, times: dict | None = None, birth: float = BIRTH_DPC) -> float:
    """Numeric time of a time-point label, in days (post coitum for developmental stages).

    "E14.5" / "Embryonic day 14.5" -> 14.5; "P107" / "post natal day 107" -> birth + 107;
    "3", "day 3" -> 3. `times` maps labels to values and takes precedence. Labels without a
    number ("adult") raise a BiovaeError asking for a `times` entry.
    """
    if times and str(label) in times:
        return float(times[str(label)])
    text = re.sub(r"\s+", " ", str(label).strip().lower())
    for pattern, offset in ((_EMBRYONIC, 0.0), (_POSTNATAL, birth), (_NUMBER, 0.0)):
        m = pattern.match(text)
        if m:
            return offset + float(m.group(1))
    raise BiovaeError(f"time point {label!r} has no numeric value",
                      f"give times={{'{label}': <days>}} (e.g. an adult mouse at P56 is {birth + 56:g} days "
                      "post coitum), or use a column with values like 'E14.5' or 'post natal day 107'")


def neighbours(values: dict[str, float], hold_out: str) -> tuple[str, str, float]:
    """(label before, label after, fraction f of the way from before to after) for hold_out."""
    t = values[hold_out]
    before = [k for k, v in values.items() if v < t]
    after = [k for k, v in values.items() if v > t]
    require(bool(before) and bool(after), f"time point {hold_out!r} ({t:g}) is the "
            f"{'earliest' if not before else 'latest'} one, so it has no neighbour on both sides",
            "hold out a time point between two others")
    b = max(before, key=values.get)
    a = min(after, key=values.get)
    return b, a, (t - values[b]) / (values[a] - values[b])


def log_mode(x, transform: str = "auto") -> str:
    """The log transform for data x, by the rule of biovae.expr.preprocess (transform="auto"):
    integer counts -> 'normalize_log1p', values above 30 -> 'log1p', else 'none' (already log)."""
    if transform != "auto":
        return transform
    if np.all(np.abs(x - np.round(x)) < 1e-6):
        return "normalize_log1p"
    return "log1p" if x.max() > 30 else "none"


def to_log(x, mode: str, normalised: bool = False) -> np.ndarray:
    """x (n, genes) into the evaluation space: counts per 1e4 (unless already `normalised`),
    then log1p, as `mode` says."""
    x = np.asarray(x, dtype=np.float64)
    if mode == "normalize_log1p" and not normalised:
        x = x / np.maximum(x.sum(1, keepdims=True), 1.0) * 1e4
    return np.log1p(x) if mode in ("normalize_log1p", "log1p") else x


def fit_models(work: ad.AnnData, settings: dict | None, n_models: int, seed: int) -> list:
    """n_models expression models fitted on `work` with settings over DEFAULT_SETTINGS (seeds seed, seed+1, ...)."""
    import biovae.expr as ex

    require(n_models >= 1, f"n_models must be >= 1, got {n_models}")
    options = {**DEFAULT_SETTINGS, **(settings or {})}
    options.pop("seed", None)
    require(options["likelihood"] in ("normal", "gaussian", "hurdle", "hurdle_cell"),
            f"time-course prediction decodes log-scale profiles; likelihood {options['likelihood']!r} is not supported",
            "use 'normal', 'gaussian', 'hurdle' or 'hurdle_cell'")
    return [ex.fit(work, **options, seed=seed + i) for i in range(n_models)]
