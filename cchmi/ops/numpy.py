"""The ``numpy`` backend: the slow reference (cchmi.reference), for checking.

A subset of queries is answered here by the same brute force on those rows only (the reference
answers every point): distances max_c |fl(x_jc - x_ic)| from each query i to every point j, self
excluded, neighbours by a stable sort (ties: the smaller index)."""

from __future__ import annotations

import numpy as np

from cchmi import reference
from cchmi.ops.base import HostBackend

# Entries of the (queries, points) distance matrix computed at once.
CHUNK_ELEMENTS = 4_000_000


def _query_chunks(points: np.ndarray, queries: np.ndarray):
    """(slice of query rows, their distances to every point with self at +inf), chunk by chunk."""
    n, d = points.shape
    step = max(1, CHUNK_ELEMENTS // max(1, n))
    for start in range(0, queries.size, step):
        q = queries[start:start + step]
        rows = np.abs(points[None, :, 0] - points[q, 0, None])
        for c in range(1, d):
            np.maximum(rows, np.abs(points[None, :, c] - points[q, c, None]), out=rows)
        rows[np.arange(q.size), q] = np.inf
        yield slice(start, start + q.size), rows


class NumpyBackend(HostBackend):
    name = "numpy"

    def _knn(self, points, k, queries):
        if queries is None:
            return reference.knn(points, k)
        dist = np.empty((queries.size, k), dtype=points.dtype)
        idx = np.empty((queries.size, k), dtype=np.int64)
        for rows, d in _query_chunks(points, queries):
            order = np.argsort(d, axis=1, kind="stable")[:, :k]
            idx[rows] = order
            dist[rows] = np.take_along_axis(d, order, axis=1)
        return dist, idx

    def _count(self, points, radius, inclusive, queries):
        if queries is None:
            return reference.count_within(points, radius, inclusive)
        counts = np.empty(queries.size, dtype=np.int64)
        for rows, d in _query_chunks(points, queries):
            r = radius[rows, None]
            counts[rows] = (d <= r if inclusive else d < r).sum(axis=1)  # self: +inf, never inside
        return counts
