"""The kNN and counting ops, and the backends that run them.

Two ops, one dispatcher each:

* :func:`knn` (``knn.py``): ``knn(be, points, k) -> (dist, idx)`` of shape (..., n, k), self
  excluded, ascending by (distance, index) (ties: the smaller index is nearer);
* :func:`count_within` / :func:`count_pair` (``count.py``): the number of other points strictly
  within a per-point radius (``<=`` when ``inclusive``), in one space or in the two marginal
  spaces of a KSG estimate at once.

Each takes one problem ``(n, d)`` or a batch of problems of one size ``(B, n, d)``. A backend is
resolved once per problem by :func:`resolve` (``registry.py``: availability, the ``auto`` policy,
the thread count) and implements :class:`~cchmi.ops.base.Backend`: the two kernels, and the array
work around them (``prepare``, ``put``, ``take``, ``stack``, ``hstack``, ``host``). Only backends
know whether arrays are NumPy arrays (cpu, numpy, faiss) or torch tensors (cuda, triton); the
estimators above never ask. One module per backend holds its marshalling: ``cpu.py``,
``numpy.py`` (the slow reference), ``faiss.py``, ``cuda.py``, ``triton.py``.
"""

from cchmi.ops.base import Backend
from cchmi.ops.count import count_pair, count_within
from cchmi.ops.knn import knn
from cchmi.ops.registry import (
    AUTO_GPU_MIN_N,
    KNOWN_BACKENDS,
    available_backends,
    input_device,
    resolve,
)
from cchmi.ops.threads import get_num_threads, set_num_threads

__all__ = [
    "Backend",
    "knn",
    "count_within",
    "count_pair",
    "resolve",
    "available_backends",
    "input_device",
    "KNOWN_BACKENDS",
    "AUTO_GPU_MIN_N",
    "set_num_threads",
    "get_num_threads",
]
