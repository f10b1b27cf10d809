"""The kNN op: one dispatcher over every backend, with the one check of k."""

from __future__ import annotations

from cchmi import _validate as V
from cchmi.ops.base import Backend, query_rows


def check_k(be: Backend, k: int, n: int, what: str = "the number of samples") -> int:
    """k for a search among n points (`what` they are) on `be`: 1 <= k <= n - 1, and at most the
    backend's capacity (the GPU kernels keep the k best candidates in registers)."""
    k = V.check_k(k, n, what)
    if be.max_k is not None and k > be.max_k:
        raise ValueError(f"k={k} is above the {be.name} backend's limit of {be.max_k} (the k best candidates live "
                         "in registers); use backend='cpu' for larger k")
    return k


def knn(be: Backend, points, k: int, queries=None):
    """(dist, idx) of the k nearest other points of every point of `points` ((n, d) or (B, n, d)),
    ascending by (distance, index); arrays of `be`'s kind, idx int64.

    queries: None (every point), or row indices of one problem (n, d) (1-D integers in [0, n), any
    order, repeats allowed; backends with ``takes_queries``): the results (m, k) of those points
    only, row t for point queries[t], equal bit for bit to those rows of the full call. The search
    is still among all n points."""
    check_k(be, k, points.shape[-2])
    if queries is None:
        return be.knn(points, k)
    return be.knn(points, k, query_rows(be, points, queries))
