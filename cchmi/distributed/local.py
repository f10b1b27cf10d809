"""``devices=[...]`` in one process: the kNN and counting ops in replicate mode, one thread per device.

:class:`ShardedBackend` is a host backend (NumPy arrays in and out, the host preparation, so the
estimators' formulas run unchanged) whose ops copy the points to every device of the list and
let device i answer the interleaved Morton tiles i, i + D, ... (:func:`passes.replicate_layout`);
the per-query results are put back in row order. Where the device has a compiled backend that
takes a subset of queries (:func:`kernel_backend`: cpu on the CPU, cuda or triton on a GPU), it answers those
rows with the pruned kernels (``ops.knn(be, points, k, queries=rows)``, one device: every row,
the plain call); elsewhere the exact block ops of :mod:`cchmi.ops.blocks` do (brute force). A
device may appear several times (virtual shards, run by concurrent threads): results are the same
as one device's, bit for bit. torch and the cpu kernels release the GIL, so the threads run the
devices concurrently (several "cpu" entries each run the cpu kernels with all their threads).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from cchmi import ops
from cchmi.distributed.passes import count_pass, knn_pass, replicate_layout, tile_rows
from cchmi.ops import registry
from cchmi.ops.base import HostBackend
from cchmi.ops.blocks import Block


def as_devices(devices) -> list[torch.device]:
    """torch devices of a validated `devices` option (ordinals are CUDA devices)."""
    out = []
    for i, spec in enumerate(devices):
        try:
            device = torch.device("cuda", spec) if isinstance(spec, int) else torch.device(spec)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"devices[{i}]={spec!r} is not a torch device ({exc})") from None
        if device.type == "cuda":
            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
            if (device.index or 0) >= count:
                raise ValueError(f"devices[{i}]={spec!r}: this machine has {count} CUDA devices visible to torch")
        out.append(device)
    return out


def kernel_backend(device: torch.device):
    """The compiled ops backend for `device` (each answers a subset of queries, ``takes_queries``),
    or None where there is none (the block ops then do the work): the cpu backend on the CPU; on a
    CUDA device the cuda backend, else triton."""
    if device.type == "cpu" and registry.usable("cpu"):
        return registry.resolve("cpu")
    if device.type == "cuda":
        for name in ("cuda", "triton"):
            if registry.usable(name):
                return registry.resolve(name, device=device)
    return None


class ShardedBackend(HostBackend):
    """The ops of one problem split over `devices` (replicate mode, threads)."""

    takes_queries = False  # the query rows are what it splits

    def __init__(self, devices):
        self.devices = as_devices(devices)
        self.name = "sharded[" + ",".join(str(d) for d in self.devices) + "]"
        self._kernels = [kernel_backend(d) for d in self.devices]

    def _run(self, points: np.ndarray, kernel_work, block_work, k: int | None = None) -> list:
        """On every device, the results of its interleaved Morton tiles: kernel_work(be, rows) with the
        device's kernel backend (rows: int64 NumPy row indices, or None for every row when one device
        takes them all; results as NumPy arrays) if it has one that takes this k, else
        block_work(layout) with the block ops. Returns [(rows, [NumPy results])] per device."""
        host = torch.from_numpy(np.ascontiguousarray(points))
        n, workers = host.shape[0], len(self.devices)

        def one(worker: int):
            device, be = self.devices[worker], self._kernels[worker]
            if be is not None and (k is None or be.max_k is None or k <= be.max_k):
                rows = None if workers == 1 else tile_rows(host, worker, workers).numpy()
                return np.arange(n) if rows is None else rows, list(kernel_work(be, rows))
            everything = Block(host.to(device), torch.arange(n, device=device))
            layout = replicate_layout(everything, worker, workers)
            return layout.queries.index.cpu().numpy(), [t.cpu().numpy() for t in block_work(layout)]

        if workers == 1:
            return [one(0)]
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(one, range(workers)))

    @staticmethod
    def _assemble(parts, n: int, i: int, dtype, tail: tuple) -> np.ndarray:
        out = np.empty((n, *tail), dtype=dtype)
        for rows, results in parts:
            out[rows] = results[i]
        return out

    def _knn(self, points, k, queries):
        def block_work(layout):
            state = knn_pass(layout, k, (points.shape[1],))
            return state.dist, state.index

        parts = self._run(points, lambda be, rows: [be.host(t) for t in ops.knn(be, points, k, queries=rows)],
                          block_work, k)
        n = points.shape[0]
        return self._assemble(parts, n, 0, points.dtype, (k,)), self._assemble(parts, n, 1, np.int64, (k,))

    def _block_counts(self, points, radius, widths, inclusive):
        """(layout -> counts (m, len(widths))) by the block ops: one group per atom of `widths`."""
        groups = tuple(((g,), False) for g in range(len(widths)))
        rad = torch.from_numpy(np.ascontiguousarray(radius, dtype=points.dtype))

        def work(layout):
            return (count_pass(layout, rad[layout.queries.index.cpu()], widths, groups, inclusive),)

        return work

    def _count(self, points, radius, inclusive, queries):
        def kernel_work(be, rows):
            r = radius if rows is None else radius[rows]
            return (be.host(ops.count_within(be, points, r, inclusive, queries=rows))[:, None],)

        block_work = self._block_counts(points, radius[:, None], (points.shape[1],), inclusive)
        return self._assemble(self._run(points, kernel_work, block_work), points.shape[0], 0, np.int64, (1,))[:, 0]

    def _count_pair(self, x, y, rx, ry, inclusive, queries):
        def kernel_work(be, rows):
            pick = (lambda r: r) if rows is None else (lambda r: r[rows])
            counts = ops.count_pair(be, x, y, pick(rx), pick(ry), inclusive, queries=rows)
            return (np.stack([be.host(c) for c in counts], axis=1),)

        both = np.concatenate([x, y], axis=1)
        block_work = self._block_counts(both, np.stack([rx, ry], axis=1), (x.shape[1], y.shape[1]), inclusive)
        counts = self._assemble(self._run(both, kernel_work, block_work), x.shape[0], 0, np.int64, (2,))
        return counts[:, 0], counts[:, 1]
