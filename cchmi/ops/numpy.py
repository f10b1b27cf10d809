"""The ``numpy`` backend: the slow reference (cchmi.reference), for checking."""

from __future__ import annotations

from cchmi import reference
from cchmi.ops.base import HostBackend


class NumpyBackend(HostBackend):
    name = "numpy"

    def _knn(self, points, k):
        return reference.knn(points, k)

    def _count(self, points, radius, inclusive):
        return reference.count_within(points, radius, inclusive)
