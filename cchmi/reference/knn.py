"""Brute-force max-norm neighbour search: the oracle of the compiled kernels."""

from __future__ import annotations

import numpy as np

# Entries of the distance matrix computed at once (about 32 MB in float64).
_CHUNK_ELEMENTS = 4_000_000


def _distance_rows(points: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Max-norm distances from points[start:stop] to every point, in the points' dtype:
    max over coordinates c of |fl(x_jc - x_ic)| (one rounding per coordinate, exact abs and max)."""
    rows = np.abs(points[None, :, 0] - points[start:stop, 0, None])
    for c in range(1, points.shape[1]):
        np.maximum(rows, np.abs(points[None, :, c] - points[start:stop, c, None]), out=rows)
    return rows


def _chunks(n: int, d: int):
    step = max(1, _CHUNK_ELEMENTS // max(1, n))
    for start in range(0, n, step):
        yield start, min(n, start + step)


def knn(points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest other points of every point: (distances (n, k) ascending, indices (n, k)).

    Neighbours are ordered by (distance, index): among equal distances the smaller index is nearer.
    """
    n, d = points.shape
    if not 1 <= k <= n - 1:
        raise ValueError(f"k must satisfy 1 <= k <= n - 1, got k={k}, n={n}")
    dist = np.empty((n, k), dtype=points.dtype)
    idx = np.empty((n, k), dtype=np.int64)
    for start, stop in _chunks(n, d):
        rows = _distance_rows(points, start, stop)
        rows[np.arange(stop - start), np.arange(start, stop)] = np.inf  # exclude self
        order = np.argsort(rows, axis=1, kind="stable")[:, :k]  # stable: ties by index
        idx[start:stop] = order
        dist[start:stop] = np.take_along_axis(rows, order, axis=1)
    return dist, idx


def count_within(points: np.ndarray, radius: np.ndarray, inclusive: bool) -> np.ndarray:
    """#{j != i : dist(i, j) < radius[i]} for every i (<= when inclusive), as int64."""
    n, d = points.shape
    radius = np.asarray(radius, dtype=points.dtype)
    counts = np.empty(n, dtype=np.int64)
    for start, stop in _chunks(n, d):
        rows = _distance_rows(points, start, stop)
        r = radius[start:stop, None]
        inside = rows <= r if inclusive else rows < r
        inside[np.arange(stop - start), np.arange(start, stop)] = False  # exclude self
        counts[start:stop] = inside.sum(axis=1)
    return counts
