"""Backend registry: who runs the neighbour searches.

A backend provides two primitives on validated, C-contiguous float32/float64 arrays:

* ``knn(points, k) -> (dist (n, k), idx (n, k))``: self excluded, ties broken by smaller index;
* ``count_within(points, radius, inclusive) -> counts (n,)``: self excluded;
* ``count_pair(x, y, radius_x, radius_y, inclusive) -> (counts_x, counts_y)``: both marginal
  counts of a KSG estimate (a backend may do them in one pass).

Estimators compose them (cchmi/ksg.py). ``auto`` picks the fastest available backend for the
input; the one that ran is recorded in every result.
"""

from __future__ import annotations

import importlib
import warnings

import numpy as np

from cchmi import reference
from cchmi._validate import as_int

KNOWN_BACKENDS = ("auto", "cpu", "cuda", "triton", "faiss", "numpy")

_state = {"n_threads": 0}


def set_num_threads(n: int) -> None:
    """Threads used by the CPU kernels; 0 restores OpenMP's default (all cores, or OMP_NUM_THREADS)."""
    _state["n_threads"] = as_int(n, "n", 0)


def get_num_threads() -> int:
    """Threads the CPU kernels use (0: OpenMP's default)."""
    return _state["n_threads"]


def _import_compiled(name: str):
    try:
        return importlib.import_module(f"cchmi.{name}")
    except ImportError:
        return None


class NumpyBackend:
    """The reference implementation (cchmi.reference): slow, for checking."""

    name = "numpy"

    def knn(self, points: np.ndarray, k: int):
        return reference.knn(points, k)

    def count_within(self, points: np.ndarray, radius: np.ndarray, inclusive: bool):
        return reference.count_within(points, radius, inclusive)

    def count_pair(self, x, y, radius_x, radius_y, inclusive: bool):
        return reference.count_within(x, radius_x, inclusive), reference.count_within(y, radius_y, inclusive)


class CpuBackend:
    """C++/OpenMP kernels (cchmi._cpu): a k-d tree in low dimension, blocked brute force in high,
    sort + binary search for one-dimensional counts (chosen per call by n and d)."""

    name = "cpu"

    def __init__(self, module):
        self._m = module

    def knn(self, points: np.ndarray, k: int):
        dist, idx, _ = self._m.knn(points, k, 0, _state["n_threads"])
        return dist, idx

    def count_within(self, points: np.ndarray, radius: np.ndarray, inclusive: bool):
        radius = np.ascontiguousarray(radius, dtype=points.dtype)
        counts, _ = self._m.count_within(points, radius, bool(inclusive), 0, _state["n_threads"])
        return counts

    def count_pair(self, x, y, radius_x, radius_y, inclusive: bool):
        rx = np.ascontiguousarray(radius_x, dtype=x.dtype)
        ry = np.ascontiguousarray(radius_y, dtype=y.dtype)
        cx, cy, _ = self._m.count_within_pair(x, y, rx, ry, bool(inclusive), 0, _state["n_threads"])
        return cx, cy


def available_backends() -> list[str]:
    """Names of the backends usable here, fastest first (``auto`` takes the first)."""
    names = []
    if _import_compiled("_cpu") is not None:
        names.append("cpu")
    names.append("numpy")
    return names


def _unavailable_reason(name: str) -> str:
    if name == "cpu":
        return "the compiled module cchmi._cpu is missing (reinstall with `pip install .` from a source checkout)"
    return "it arrives with the GPU kernels (cuda, triton) and the faiss integration; not in this version"


def resolve(name: str):
    """The backend object for `name` (``auto``: the fastest available)."""
    if not isinstance(name, str) or name not in KNOWN_BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, KNOWN_BACKENDS))}; got {name!r}")
    available = available_backends()
    if name == "auto":
        name = available[0]
        if name == "numpy" and not _state.get("warned_fallback"):
            _state["warned_fallback"] = True
            warnings.warn(
                f"backend 'auto' fell back to the slow NumPy reference: {_unavailable_reason('cpu')}. "
                "(Running from a source checkout? `pip install -e .` builds the module in place.)",
                RuntimeWarning,
                stacklevel=3,
            )
    if name not in available:
        raise ValueError(
            f"backend {name!r} is not available: {_unavailable_reason(name)}. "
            f"Available here: {', '.join(available)}"
        )
    if name == "cpu":
        return CpuBackend(_import_compiled("_cpu"))
    return NumpyBackend()
