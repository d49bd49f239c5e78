"""Numeric state saved with a model, as typed records. Each owner (the engine, a workflow) keeps
a small record class under its own namespace; `put` stores it in a VAE's `state` (the arrays the
model file holds as "state.<namespace>.<key>"), `get` reads it back, typed, or None where the
model has none. The file layout is the flat one earlier versions wrote, so their files still load.

    @dataclass
    class Mine(Record):
        namespace: ClassVar[str] = "mine"
        centre: np.ndarray
        def to_arrays(self): return {"centre": self.centre}
        @classmethod
        def from_arrays(cls, arrays): return cls(arrays["centre"])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

import numpy as np

R = TypeVar("R", bound="Record")


class Record:
    """Base of a typed state record: `namespace` and its arrays by key."""

    namespace: ClassVar[str]

    def to_arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    @classmethod
    def from_arrays(cls: type[R], arrays: dict[str, np.ndarray]) -> R:
        raise NotImplementedError


def put(state: dict[str, np.ndarray], record: Record) -> None:
    """Store `record` in `state`, replacing what its namespace held."""
    prefix = record.namespace + "."
    for key in [k for k in state if k.startswith(prefix)]:
        del state[key]
    state.update({prefix + k: np.asarray(v) for k, v in record.to_arrays().items()})


def get(state: dict[str, np.ndarray], cls: type[R]) -> R | None:
    """The record of type `cls` in `state`, or None where its namespace is empty."""
    prefix = cls.namespace + "."
    arrays = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return cls.from_arrays(arrays) if arrays else None


@dataclass
class LibrarySizes(Record):
    """The model of library sizes (per-sample totals), for decoding without observed data:
    log-normal, with the mean, sd, minimum and maximum of the log totals overall (row 0) and per
    category of the first covariate (row 1 + category); draws are kept within the training range.
    One (1 + categories, 4) array per block (files written before the range was kept have 2
    columns: not clipped). The engine keeps one for each count block; workflows that model other
    totals subclass it under a namespace of their own."""

    namespace: ClassVar[str] = "library"
    blocks: dict[str, np.ndarray] = field(default_factory=dict)

    @staticmethod
    def fit(log_totals: np.ndarray, categories: np.ndarray | None, n_categories: int) -> np.ndarray:
        """The (1 + n_categories, 4) table of one block from its log totals (n,) and the first
        covariate's codes (n,) or None; a category without samples takes the overall row."""
        def row(v):
            return v.mean(), v.std(), v.min(), v.max()

        stats = np.zeros((1 + n_categories, 4))
        stats[0] = row(log_totals)
        for c in range(n_categories):
            sel = log_totals[categories == c]
            stats[1 + c] = row(sel) if sel.size else stats[0]
        return stats

    def draw(self, block: str, categories: np.ndarray | None, n: int, rng: np.random.Generator | None):
        """Library sizes (n,) of `block`: drawn (rng given) or the median (rng None); None where the
        block has no library model."""
        stats = self.blocks.get(block)
        if stats is None:
            return None
        row = np.zeros(n, dtype=int) if categories is None else categories + 1
        mu, sd = stats[row, 0], stats[row, 1]
        logs = mu if rng is None else rng.normal(mu, sd)
        if stats.shape[1] >= 4:
            logs = np.clip(logs, stats[row, 2], stats[row, 3])
        return np.exp(logs)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {name: stats.astype(np.float64) for name, stats in self.blocks.items()}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "LibrarySizes":
        return cls(dict(arrays))
