"""The counting op: #{j != i : dist(i, j) < radius[i]} (``<=`` when inclusive), on any backend.

Radii may be NumPy arrays or arrays of the backend's kind; backends convert them to the points'
dtype (exactly: radii are distances computed in that dtype).

queries (backends with ``takes_queries``, one problem (n, d)): None (every point) or row indices
(1-D integers in [0, n), any order, repeats allowed): counts for those points only, against all n
points, row t for point queries[t], with one radius per query ((m,)); equal bit for bit to those
rows of the full call with the same radii."""

from __future__ import annotations

import numpy as np

from cchmi.ops.base import Backend, query_rows


def _check_radius(radius, m: int, name: str) -> None:
    shape = tuple(getattr(radius, "shape", None) or np.shape(radius))
    if shape != (m,):
        raise ValueError(f"{name} needs one entry per query ({m}), got shape {shape}")


def count_within(be: Backend, points, radius, inclusive: bool, queries=None):
    """Counts in one space: points (n, d) or (B, n, d), radius (n,) or (B, n); with queries,
    radius (m,) and counts (m,)."""
    if queries is None:
        return be.count_within(points, radius, bool(inclusive))
    rows = query_rows(be, points, queries)
    _check_radius(radius, rows.size, "radius")
    return be.count_within(points, radius, bool(inclusive), rows)


def count_pair(be: Backend, x, y, radius_x, radius_y, inclusive: bool, queries=None):
    """(counts in x, counts in y): both marginal counts of a KSG estimate, in one pass where the
    backend can (cuda, triton, cpu's brute force on all points); with queries, radii (m,) each."""
    if x.shape[:-1] != y.shape[:-1]:
        raise ValueError(f"x and y need the same batch and row sizes, got {tuple(x.shape)} and {tuple(y.shape)}")
    if queries is None:
        return be.count_pair(x, y, radius_x, radius_y, bool(inclusive))
    rows = query_rows(be, x, queries)
    _check_radius(radius_x, rows.size, "radius_x")
    _check_radius(radius_y, rows.size, "radius_y")
    return be.count_pair(x, y, radius_x, radius_y, bool(inclusive), rows)
