"""Training data: validation, the train/validation split, and batches.

Two ways to batch, same order of samples for the same seed and epoch:
- InMemoryBatches: the whole matrix is one tensor on the training device and each batch is an
  index-select from it. No DataLoader, no per-sample __getitem__ or collate.
- StreamingBatches: a DataLoader over row batches of a matrix that stays where it is (numpy,
  np.memmap, scipy sparse, h5py, ChunkedRows), for data larger than the device's memory.
ChunkedRows is a matrix read from disk in chunks of consecutive rows (see biovae.io.backed) and
transformed on the fly; training on it shuffles by windows of chunks (window_order), so that
each chunk is read once per epoch instead of once per batch.
benchmarks/train_throughput.py measures both against a plain per-sample DataLoader loop.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Callable

import numpy as np
import psutil
import scipy.sparse as sp
import torch
from torch.utils.data import DataLoader, Dataset, SequentialSampler

from biovae.engine import likelihoods
from biovae.engine.config import ModelConfig
from biovae.errors import BiovaeError


class ChunkedRows:
    """A (n, n_features) matrix read in chunks of `chunk_rows` consecutive rows.

    read(start, stop) gives raw rows (dense or CSR); transform(rows) maps any subset of them to
    dense float32 model input (n_features columns). Up to 2 * window raw chunks stay cached, so a
    batch of window_order touches only cached chunks. Indexing: a slice, or increasing row
    indices (as the engine reads batches); both give dense float32 rows. The values are the
    reader's to validate (check_matrix checks only the shape).
    """

    def __init__(self, read: Callable, shape: tuple[int, int], chunk_rows: int,
                 transform: Callable | None = None, window: int = 4):
        self.read, self.shape, self.chunk_rows = read, (int(shape[0]), int(shape[1])), max(1, int(chunk_rows))
        self.transform, self.window = transform, max(1, int(window))
        self.ndim, self.dtype = 2, np.dtype(np.float32)
        self._cache: OrderedDict[int, object] = OrderedDict()

    def __len__(self) -> int:
        return self.shape[0]

    def _chunk(self, c: int):
        if c in self._cache:
            self._cache.move_to_end(c)
            return self._cache[c]
        a = c * self.chunk_rows
        rows = self.read(a, min(a + self.chunk_rows, self.shape[0]))
        self._cache[c] = rows
        while len(self._cache) > 2 * self.window:
            self._cache.popitem(last=False)
        return rows

    def __getitem__(self, index) -> np.ndarray:
        if isinstance(index, slice):
            index = np.arange(*index.indices(self.shape[0]))
        index = np.asarray(index, dtype=np.int64)
        chunk_of = index // self.chunk_rows
        parts = []
        for c in np.unique(chunk_of):
            rows = self._chunk(int(c))[index[chunk_of == c] - c * self.chunk_rows]
            rows = self.transform(rows) if self.transform is not None else rows
            parts.append(rows.toarray() if sp.issparse(rows) else np.asarray(rows))
        if not parts:
            return np.zeros((0, self.shape[1]), dtype=np.float32)
        out = np.concatenate(parts) if len(parts) > 1 else parts[0]
        order = np.argsort(index, kind="stable")
        if np.any(order != np.arange(len(index))):  # parts came in chunk order; put rows back
            out = out[np.argsort(order, kind="stable")]
        return np.ascontiguousarray(out, dtype=np.float32)


def eval_rows(n_features: int, values: int = 1 << 20) -> int:
    """Rows per batch when encoding, decoding or scoring without gradients: up to 4096, fewer
    for wide data so that each (rows, n_features) tensor holds about `values` numbers (4 MiB in
    float32; a likelihood's loss holds several at once)."""
    return int(max(64, min(4096, values // max(1, n_features))))


def row_blocks(x, rows: int = 4096):
    """Yield (start, rows) of x in blocks of consecutive rows: dense arrays, or CSR for sparse x."""
    for a in range(0, x.shape[0], rows):
        yield a, x[a:a + rows]


def check_matrix(x, cfg: ModelConfig, where: str = "input data"):
    """Validate a (n, n_features) matrix for `cfg`; returns it as float32 (dense or CSR), or a
    ChunkedRows unchanged after checking its shape."""
    if isinstance(x, ChunkedRows):
        if x.shape[1] != cfg.n_features:
            raise BiovaeError(f"{where} has {x.shape[1]} features but the model expects {cfg.n_features}",
                              "use the same features (genes, k-mers) the model was fitted on")
        return x
    if sp.issparse(x):
        x = sp.csr_matrix(x, dtype=np.float32)
        values = x.data
    else:
        x = np.asarray(x, dtype=np.float32) if not isinstance(x, np.memmap) else x
        values = x
    if x.ndim != 2:
        raise BiovaeError(f"{where} must be a 2-D matrix (samples x features), got {x.ndim} dimensions")
    n, d = x.shape
    if n == 0 or d == 0:
        raise BiovaeError(f"{where} is empty ({n} samples x {d} features)", "give at least one sample and feature")
    if d != cfg.n_features:
        raise BiovaeError(f"{where} has {d} features but the model expects {cfg.n_features}",
                          "use the same features (genes, k-mers) the model was fitted on")
    bad = ~np.isfinite(values)
    if bad.any():
        if sp.issparse(x):
            row = int(np.searchsorted(x.indptr, np.flatnonzero(bad)[0], side="right") - 1)
            col = int(x.indices[np.flatnonzero(bad)[0]])
        else:
            row, col = (int(i) for i in np.argwhere(bad)[0])
        raise BiovaeError(f"{where} has NaN or infinite values (first at sample {row}, feature {col})",
                          "remove or impute them before fitting")
    start = 0
    for block in cfg.blocks:
        part = x[:, start:start + block.size]
        part = part.data if sp.issparse(part) else part
        likelihoods.get(block.likelihood)(block.size).check(np.asarray(part), f"{where} (block {block.name!r})")
        start += block.size
    return x


def fingerprint(x) -> str:
    """A short hash of shape and a sample of rows, to refuse resuming on different data."""
    h = hashlib.sha1(str(x.shape).encode())
    rows = x[:: max(1, x.shape[0] // 256)]
    rows = rows.toarray() if sp.issparse(rows) else np.asarray(rows)
    h.update(np.ascontiguousarray(rows, dtype=np.float32).tobytes())
    return h.hexdigest()[:16]


def split_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/validation split. No validation set when it would hold fewer than 2 samples
    or leave fewer than 2 for training."""
    n_val = int(round(n * fraction))
    if n_val < 2 or n - n_val < 2:
        return np.arange(n), np.arange(0)
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled order of the n training samples in one epoch; the same for the same seed and
    epoch however training was interrupted and resumed."""
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    return torch.randperm(n, generator=g)


def window_order(index: np.ndarray, chunk_rows: int, window: int, seed: int, epoch: int) -> torch.Tensor:
    """An epoch's order of the rows `index` for data read in chunks of chunk_rows consecutive
    rows: the chunks in a seeded random order, taken `window` at a time, and the rows of each
    window shuffled together. Same seed and epoch, same order (as epoch_order)."""
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    index = torch.as_tensor(np.asarray(index, dtype=np.int64))
    chunk_of = index // chunk_rows
    chunks = torch.unique(chunk_of)
    chunks = chunks[torch.randperm(len(chunks), generator=g)]
    out = []
    for w in range(0, len(chunks), window):
        rows = index[torch.isin(chunk_of, chunks[w:w + window])]
        out.append(rows[torch.randperm(len(rows), generator=g)])
    return torch.cat(out) if out else index


def batch_slices(order: torch.Tensor, batch_size: int, drop_single: bool, rank=0, world=1):
    """Split an epoch's order into batches of the global batch size, each shared out over `world`
    processes. A trailing batch of one sample is dropped when batch norm is on (it cannot
    normalise one sample); every other sample is used, however small the data set."""
    n = order.shape[0]
    out = []
    for a in range(0, n, batch_size):
        idx = order[a:a + batch_size]
        if drop_single and idx.shape[0] < 2 and n > 1:
            continue
        out.append(idx[rank::world])
    return out


def fits_in_memory(x, device: torch.device) -> bool:
    """True when a dense float32 copy of x takes under a quarter of the free memory of `device`;
    never for ChunkedRows (data read in chunks stay on disk)."""
    if isinstance(x, ChunkedRows):
        return False
    nbytes = x.shape[0] * x.shape[1] * 4
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return nbytes < free / 4
    return nbytes < psutil.virtual_memory().available / 4


class InMemoryBatches:
    """Batches sliced from tensors already on the device."""

    def __init__(self, x, codes: np.ndarray | None, device: torch.device):
        dense = x.toarray() if sp.issparse(x) else np.asarray(x)
        self.x = torch.as_tensor(dense, dtype=torch.float32).to(device)
        self.codes = None if codes is None else torch.as_tensor(codes, dtype=torch.long).to(device)

    def __call__(self, index: torch.Tensor):
        # index_select, not x[index]: the same rows, in 68 against 169 us for 128 x 765 floats
        # out of 20,000 (one CPU thread; advanced indexing goes through a generic gather)
        index = index.to(self.x.device)
        return (torch.index_select(self.x, 0, index),
                None if self.codes is None else torch.index_select(self.codes, 0, index))


class _RowBatches(Dataset):
    def __init__(self, x, codes, batches):
        self.x, self.codes, self.batches = x, codes, batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, i):
        idx = self.batches[i].numpy()
        order = np.argsort(idx, kind="stable")  # read in sorted order (fast on disk-backed arrays)...
        rows = self.x[idx[order]]
        rows = rows.toarray() if sp.issparse(rows) else np.asarray(rows)
        rows = rows[np.argsort(order)]  # ...and hand them back in the batch's own order
        codes = None if self.codes is None else torch.as_tensor(self.codes[idx], dtype=torch.long)
        return torch.as_tensor(rows, dtype=torch.float32), codes


class StreamingBatches:
    """Row batches read from a matrix that stays in host memory or on disk, in worker processes."""

    def __init__(self, x, codes, device: torch.device, num_workers: int = 0):
        self.x, self.codes, self.device, self.num_workers = x, codes, device, num_workers

    def loader(self, batches: list[torch.Tensor]):
        ds = _RowBatches(self.x, self.codes, batches)
        # its own generator: a DataLoader otherwise draws a seed from the global one on each
        # pass, which would shift the reparameterisation noise against the in-memory path
        dl = DataLoader(ds, batch_size=None, sampler=SequentialSampler(ds), num_workers=self.num_workers,
                        pin_memory=self.device.type == "cuda", generator=torch.Generator().manual_seed(0))
        for xb, cb in dl:
            yield xb.to(self.device, non_blocking=True), None if cb is None else cb.to(self.device)


def iterate(batcher, batches: list[torch.Tensor]):
    """Yield (x, codes) for each batch of indices, whichever batcher is in use."""
    if isinstance(batcher, InMemoryBatches):
        for idx in batches:
            yield batcher(idx)
    else:
        yield from batcher.loader(batches)


__all__ = ["check_matrix", "split_indices", "epoch_order", "window_order", "batch_slices", "fits_in_memory",
           "eval_rows", "InMemoryBatches", "StreamingBatches", "ChunkedRows", "row_blocks", "iterate", "fingerprint"]
