"""``devices=[...]`` in one process: the kNN and counting ops in replicate mode, one thread per device.

:class:`ShardedBackend` is a host backend (NumPy arrays in and out, the host preparation, so the
estimators' formulas run unchanged) whose ops copy the points to every device of the list and
let device i answer the interleaved Morton tiles i, i + D, ... (:func:`passes.replicate_layout`)
with the exact block ops of :mod:`cchmi.ops.blocks`; the per-query results are put back in row
order. A device may appear several times (virtual shards, run by concurrent threads): results are
the same as one device's, bit for bit. torch releases the GIL in its kernels, so the threads run
the devices concurrently.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from cchmi.distributed.passes import count_pass, knn_pass, replicate_layout
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


class ShardedBackend(HostBackend):
    """The ops of one problem split over `devices` (replicate mode, threads)."""

    def __init__(self, devices):
        self.devices = as_devices(devices)
        self.name = "sharded[" + ",".join(str(d) for d in self.devices) + "]"

    def _run(self, points: np.ndarray, work) -> list:
        """work(layout) on every device; returns [(rows, result tensors...)] per device (on the host)."""
        host = torch.from_numpy(np.ascontiguousarray(points))
        n = host.shape[0]

        def one(worker: int):
            device = self.devices[worker]
            everything = Block(host.to(device), torch.arange(n, device=device))
            layout = replicate_layout(everything, worker, len(self.devices))
            return layout.queries.index.cpu(), [t.cpu() for t in work(layout)]

        if len(self.devices) == 1:
            return [one(0)]
        with ThreadPoolExecutor(len(self.devices)) as pool:
            return list(pool.map(one, range(len(self.devices))))

    @staticmethod
    def _assemble(parts, n: int, i: int, dtype, tail: tuple) -> np.ndarray:
        out = np.empty((n, *tail), dtype=dtype)
        for rows, results in parts:
            out[rows.numpy()] = results[i].numpy()
        return out

    def _knn(self, points, k):
        def work(layout):
            state = knn_pass(layout, k, (points.shape[1],))
            return state.dist, state.index

        parts = self._run(points, work)
        n = points.shape[0]
        return self._assemble(parts, n, 0, points.dtype, (k,)), self._assemble(parts, n, 1, np.int64, (k,))

    def _counts(self, points, radius, widths, inclusive):
        groups = tuple(((g,), False) for g in range(len(widths)))
        rad = torch.from_numpy(np.ascontiguousarray(radius, dtype=points.dtype))

        def work(layout):
            return (count_pass(layout, rad[layout.queries.index.cpu()], widths, groups, inclusive),)

        return self._assemble(self._run(points, work), points.shape[0], 0, np.int64, (len(widths),))

    def _count(self, points, radius, inclusive):
        return self._counts(points, radius[:, None], (points.shape[1],), inclusive)[:, 0]

    def _count_pair(self, x, y, rx, ry, inclusive):
        counts = self._counts(np.concatenate([x, y], axis=1), np.stack([rx, ry], axis=1), (x.shape[1], y.shape[1]),
                              inclusive)
        return counts[:, 0], counts[:, 1]
