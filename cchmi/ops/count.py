"""The counting op: #{j != i : dist(i, j) < radius[i]} (``<=`` when inclusive), on any backend.

Radii may be NumPy arrays or arrays of the backend's kind; backends convert them to the points'
dtype (exactly: radii are distances computed in that dtype)."""

from __future__ import annotations

from cchmi.ops.base import Backend


def count_within(be: Backend, points, radius, inclusive: bool):
    """Counts in one space: points (n, d) or (B, n, d), radius (n,) or (B, n)."""
    return be.count_within(points, radius, bool(inclusive))


def count_pair(be: Backend, x, y, radius_x, radius_y, inclusive: bool):
    """(counts in x, counts in y): both marginal counts of a KSG estimate, in one pass where the
    backend can (cuda, triton, cpu's brute force)."""
    if x.shape[:-1] != y.shape[:-1]:
        raise ValueError(f"x and y need the same batch and row sizes, got {tuple(x.shape)} and {tuple(y.shape)}")
    return be.count_pair(x, y, radius_x, radius_y, bool(inclusive))
