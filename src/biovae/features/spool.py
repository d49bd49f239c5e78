"""Per-read features written to disk chunk by chunk and read back as memory maps.

For 10^6+ reads the feature matrices must not be held twice (a list of per-chunk arrays, then
their concatenation) nor as per-read Python objects. A Spool appends each chunk's rows to a
raw file; `finish()` opens the whole as a read-only np.memmap (pages stay on disk until they
are read, and the kernel may drop them again). Ids are spooled as UTF-8 lines.

    comp = Spool(folder / "composition.f32", np.float32, width=136)
    for chunk in chunks:
        comp.append(freqs)          # (rows, 136)
    matrix = comp.finish()          # (n, 136) memmap
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class Spool:
    """Rows of one dtype (and width, for matrices) appended to `path`, then memory-mapped."""

    def __init__(self, path: str | os.PathLike, dtype, width: int | None = None):
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.width = width
        self.rows = 0
        self._fh = open(self.path, "wb")

    def append(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if self.width is not None and (rows.ndim != 2 or rows.shape[1] != self.width):
            raise ValueError(f"rows of shape {rows.shape} appended to a spool of width {self.width}")
        self._fh.write(rows.tobytes())
        self.rows += len(rows)

    def finish(self) -> np.ndarray:
        """The spooled rows as a read-only memmap ((n,) or (n, width)); empty array when none."""
        self._fh.close()
        shape = (self.rows,) if self.width is None else (self.rows, self.width)
        if self.rows == 0:
            return np.zeros(shape, self.dtype)
        return np.memmap(self.path, dtype=self.dtype, mode="r", shape=shape)


class IdSpool:
    """Record ids, one per line; read back as one numpy str array (no per-read objects kept)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._fh = open(self.path, "w", encoding="utf-8", newline="\n")

    def append(self, ids: list[str]) -> None:
        if ids:
            self._fh.write("\n".join(ids) + "\n")

    def finish(self) -> np.ndarray:
        self._fh.close()
        return read_ids(self.path)


def read_ids(path: str | os.PathLike) -> np.ndarray:
    """Ids written by IdSpool, as a numpy str array (ids hold no whitespace: first header word)."""
    text = Path(path).read_text(encoding="utf-8")
    return np.array(text.split("\n")[:-1], dtype=str) if text else np.zeros(0, dtype=str)
