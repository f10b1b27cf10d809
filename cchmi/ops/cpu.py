"""The ``cpu`` backend: the C++/OpenMP kernels of cchmi._cpu (csrc/cpu).

A k-d tree in low dimension, blocked brute force in high dimension, sort + binary search for
one-dimensional counts: chosen per call by n and d (csrc/cpu/method.h). Both marginal counts of a
KSG estimate come from one call (``count_within_pair``). A subset of queries (``queries=``) goes to
the same kernels, which then loop over those rows only (the tree searched per query; the pair
kernel's one pass over each pair applies to all points only)."""

from __future__ import annotations

from cchmi.ops import threads
from cchmi.ops.base import HostBackend

AUTO_METHOD = 0  # the kernels choose tree, brute force or sort by n and d


class CpuBackend(HostBackend):
    name = "cpu"

    def __init__(self, module):
        self._m = module

    @property
    def _threads(self) -> int:
        """cchmi.get_num_threads() at call time: a backend made before set_num_threads, or before a
        fork (the child keeps 1 thread, see cchmi.ops.threads), follows it."""
        return threads.get_num_threads()

    def _knn(self, points, k, queries):
        dist, idx, _ = self._m.knn(points, k, AUTO_METHOD, self._threads, queries)
        return dist, idx

    def _count(self, points, radius, inclusive, queries):
        counts, _ = self._m.count_within(points, radius, bool(inclusive), AUTO_METHOD, self._threads, queries)
        return counts

    def _count_pair(self, x, y, rx, ry, inclusive, queries):
        cx, cy, _ = self._m.count_within_pair(x, y, rx, ry, bool(inclusive), AUTO_METHOD, self._threads, queries)
        return cx, cy
