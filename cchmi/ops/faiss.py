"""The ``faiss`` backend: the joint kNN step through a faiss exact index (IndexFlat, METRIC_Linf;
on a GPU when faiss-gpu sees one); counts by cchmi's own kernels (the cpu backend).

faiss computes max |x - y| in float32 with one rounding, so its distances equal cchmi's. The k-th
neighbour distance is exact whatever order faiss gives to ties; the neighbours' identities are made
exact too: a point whose k-th and (k+1)-th other neighbours tie is recomputed by brute force, so ties
always go to the smaller index (KSG-2 uses the identities). A subset of queries (``queries=``)
searches those rows only against the index of all points.
"""

from __future__ import annotations

import numpy as np

from cchmi.ops.base import HostBackend


class FaissBackend(HostBackend):
    name = "faiss"

    def __init__(self, faiss, counter: HostBackend):
        self._faiss = faiss
        self._counter = counter
        self._resources = None

    def _index(self, d: int):
        index = self._faiss.IndexFlat(d, self._faiss.METRIC_Linf)
        if self._faiss.get_num_gpus() > 0:
            self._resources = self._resources or self._faiss.StandardGpuResources()
            index = self._faiss.index_cpu_to_gpu(self._resources, 0, index)
        return index

    def _knn(self, points, k, queries):
        if points.dtype != np.float32:
            raise ValueError(
                "backend='faiss' computes distances in float32: pass float32 arrays or dtype='float32' "
                f"(the working dtype here is {points.dtype.name})"
            )
        n, d = points.shape
        m = min(k + 2, n)
        rows = np.arange(n) if queries is None else queries
        out_d = np.empty((rows.size, k), dtype=points.dtype)
        out_i = np.empty((rows.size, k), dtype=np.int64)
        if rows.size == 0:
            return out_d, out_i
        index = self._index(d)
        index.add(points)
        dist, idx = index.search(points if queries is None else np.ascontiguousarray(points[rows]), m)
        # dist[:, 0] is the point itself (or a duplicate at distance 0): dist[:, k] is the k-th other.
        tied = np.zeros(rows.size, dtype=bool) if m == n else dist[:, k + 1] == dist[:, k]
        clean = ~tied
        if clean.any():
            cd, ci = dist[clean, : k + 1], idx[clean, : k + 1]
            keep = ci != rows[clean, None]
            cd = cd[keep].reshape(-1, k)
            ci = ci[keep].reshape(-1, k)
            order = _lex_order(cd, ci)
            out_d[clean] = np.take_along_axis(cd, order, 1)
            out_i[clean] = np.take_along_axis(ci, order, 1)
        everything = np.arange(n)
        for t in np.flatnonzero(tied):
            i = rows[t]
            row = np.abs(points - points[i]).max(axis=1)
            row[i] = np.inf
            best = np.lexsort((everything, row))[:k]
            out_d[t], out_i[t] = row[best], best
        return out_d, out_i

    def _count(self, points, radius, inclusive, queries):
        return self._counter._count(points, radius, inclusive, queries)

    def _count_pair(self, x, y, rx, ry, inclusive, queries):
        return self._counter._count_pair(x, y, rx, ry, inclusive, queries)


def _lex_order(dist: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Per-row order by (distance, index)."""
    by_index = np.argsort(idx, axis=1, kind="stable")
    by_dist = np.argsort(np.take_along_axis(dist, by_index, 1), axis=1, kind="stable")
    return np.take_along_axis(by_index, by_dist, 1)
