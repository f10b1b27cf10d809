"""Backend registry: who runs the neighbour searches.

A backend provides three primitives on validated, C-contiguous float32/float64 arrays, each for
one problem ``(n, d)`` or for a batch of problems of the same size ``(B, n, d)`` at once:

* ``knn(points, k) -> (dist (..., n, k), idx (..., n, k))``: self excluded, ascending, ties broken by
  the smaller index;
* ``count_within(points, radius, inclusive) -> counts (..., n)``: #{j != i : dist(i, j) < radius[i]}
  (``<=`` when inclusive);
* ``count_pair(x, y, radius_x, radius_y, inclusive) -> (counts_x, counts_y)``: both marginal counts
  of a KSG estimate (the cuda and triton backends, and the cpu backend's brute force, do them in one
  pass).

Host backends (``cpu``, ``numpy``, ``faiss``) take and return NumPy arrays. Device backends
(``cuda``, ``triton``) take and return torch tensors on their device (``be.put`` moves a NumPy
array there once); radii may be given either way. Estimators compose the primitives (cchmi/ksg.py).

``auto`` picks, for inputs that are torch CUDA tensors, ``cuda`` then ``triton`` then ``cpu``; for
host inputs ``cpu``, except that problems of at least ``AUTO_GPU_MIN_N`` points go to ``cuda`` or
``triton`` when a GPU is visible (the copy to the device is negligible at that size). The backend
that ran is recorded in every result.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import warnings

import numpy as np

from cchmi import reference
from cchmi._validate import as_int

KNOWN_BACKENDS = ("auto", "cpu", "cuda", "triton", "faiss", "numpy")
# Host inputs at least this large go to a GPU backend under backend="auto" (when one is usable).
AUTO_GPU_MIN_N = 50_000

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


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


class _HostBackend:
    """Batches on the host run problem by problem."""

    on_device = False
    device = None

    def knn(self, points: np.ndarray, k: int):
        if points.ndim == 3:
            pairs = [self._knn(p, k) for p in points]
            return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
        return self._knn(points, k)

    def count_within(self, points: np.ndarray, radius, inclusive: bool):
        radius = np.ascontiguousarray(np.asarray(radius), dtype=points.dtype)
        if points.ndim == 3:
            return np.stack([self._count(p, r, inclusive) for p, r in zip(points, radius)])
        return self._count(points, radius, inclusive)

    def count_pair(self, x, y, radius_x, radius_y, inclusive: bool):
        rx = np.ascontiguousarray(np.asarray(radius_x), dtype=x.dtype)
        ry = np.ascontiguousarray(np.asarray(radius_y), dtype=y.dtype)
        if x.ndim == 3:
            pairs = [self._count_pair(*args, inclusive) for args in zip(x, y, rx, ry)]
            return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
        return self._count_pair(x, y, rx, ry, inclusive)

    def _count_pair(self, x, y, rx, ry, inclusive):
        return self._count(x, rx, inclusive), self._count(y, ry, inclusive)


class NumpyBackend(_HostBackend):
    """The reference implementation (cchmi.reference): slow, for checking."""

    name = "numpy"

    def _knn(self, points, k):
        return reference.knn(points, k)

    def _count(self, points, radius, inclusive):
        return reference.count_within(points, radius, inclusive)


class CpuBackend(_HostBackend):
    """C++/OpenMP kernels (cchmi._cpu): a k-d tree in low dimension, blocked brute force in high,
    sort + binary search for one-dimensional counts (chosen per call by n and d)."""

    name = "cpu"

    def __init__(self, module):
        self._m = module

    def _knn(self, points, k):
        dist, idx, _ = self._m.knn(points, k, 0, _state["n_threads"])
        return dist, idx

    def _count(self, points, radius, inclusive):
        counts, _ = self._m.count_within(points, radius, bool(inclusive), 0, _state["n_threads"])
        return counts

    def _count_pair(self, x, y, rx, ry, inclusive):
        cx, cy, _ = self._m.count_within_pair(x, y, rx, ry, bool(inclusive), 0, _state["n_threads"])
        return cx, cy


class FaissBackend(_HostBackend):
    """The joint kNN step through a faiss exact index (IndexFlat, METRIC_Linf; on a GPU when
    faiss-gpu sees one), counts by cchmi's own kernels (the cpu backend).

    faiss computes max |x - y| in float32 with one rounding, so distances equal cchmi's. The k-th
    neighbour distance is exact whatever order faiss gives to ties; the neighbours' identities are
    made exact too: a point whose k-th and (k+1)-th other neighbours tie is recomputed by brute
    force, so ties always go to the smaller index (KSG-2 uses the identities).
    """

    name = "faiss"

    def __init__(self, faiss, counter):
        self._faiss = faiss
        self._counter = counter

    def _index(self, d: int):
        index = self._faiss.IndexFlat(d, self._faiss.METRIC_Linf)
        if self._faiss.get_num_gpus() > 0:
            self._resources = getattr(self, "_resources", None) or self._faiss.StandardGpuResources()
            index = self._faiss.index_cpu_to_gpu(self._resources, 0, index)
        return index

    def _knn(self, points, k):
        if points.dtype != np.float32:
            raise ValueError(
                "backend='faiss' computes distances in float32: pass float32 arrays or dtype='float32' "
                f"(the working dtype here is {points.dtype.name})"
            )
        n, d = points.shape
        m = min(k + 2, n)
        index = self._index(d)
        index.add(points)
        dist, idx = index.search(points, m)
        # dist[:, 0] is the point itself (or a duplicate at distance 0): dist[:, k] is the k-th other.
        rows = np.arange(n)
        out_d = np.empty((n, k), dtype=points.dtype)
        out_i = np.empty((n, k), dtype=np.int64)
        tied = np.zeros(n, dtype=bool) if m == n else dist[:, k + 1] == dist[:, k]
        clean = ~tied
        if clean.any():
            cd, ci = dist[clean, : k + 1], idx[clean, : k + 1]
            keep = ci != rows[clean, None]
            cd = cd[keep].reshape(-1, k)
            ci = ci[keep].reshape(-1, k)
            order = _lex_order(cd, ci)
            out_d[clean] = np.take_along_axis(cd, order, 1)
            out_i[clean] = np.take_along_axis(ci, order, 1)
        for i in np.flatnonzero(tied):
            row = np.abs(points - points[i]).max(axis=1)
            row[i] = np.inf
            best = np.lexsort((rows, row))[:k]
            out_d[i], out_i[i] = row[best], best
        return out_d, out_i

    def _count(self, points, radius, inclusive):
        return self._counter._count(points, radius, inclusive)

    def _count_pair(self, x, y, rx, ry, inclusive):
        return self._counter._count_pair(x, y, rx, ry, inclusive)


def _lex_order(dist: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Per-row order by (distance, index)."""
    by_index = np.argsort(idx, axis=1, kind="stable")
    by_dist = np.argsort(np.take_along_axis(dist, by_index, 1), axis=1, kind="stable")
    return np.take_along_axis(by_index, by_dist, 1)


class _DeviceBackend:
    """Kernels on torch tensors of one device; NumPy inputs are moved there once (``put``).
    ``prune=False`` turns off the spatial sort and tile pruning (brute force, for benchmarks)."""

    on_device = True
    prune = True

    def __init__(self, device):
        import torch

        self._torch = torch
        self.device = device

    def put(self, a):
        """`a` as a contiguous torch tensor on this backend's device (moved once if elsewhere)."""
        return self._torch.as_tensor(a, device=self.device).contiguous()

    def _like(self, radius, points):
        return self._torch.as_tensor(radius, device=self.device).to(points.dtype).contiguous()


class TritonBackend(_DeviceBackend):
    """Triton kernels (cchmi._triton.knn): any GPU Triton supports; the CPU under TRITON_INTERPRET=1."""

    name = "triton"

    def __init__(self, device):
        super().__init__(device)
        from cchmi._triton import knn as kernels

        self._k = kernels

    def _on_device(self):
        """Triton launches on the current CUDA device: make it the tensors' one."""
        if self.device.type == "cuda":
            return self._torch.cuda.device(self.device)
        return contextlib.nullcontext()

    def knn(self, points, k: int):
        with self._on_device():
            return self._k.knn(self.put(points), k, prune=self.prune)

    def count_within(self, points, radius, inclusive: bool):
        points = self.put(points)
        with self._on_device():
            return self._k.count_within(points, self._like(radius, points), inclusive, prune=self.prune)

    def count_pair(self, x, y, radius_x, radius_y, inclusive: bool):
        x, y = self.put(x), self.put(y)
        with self._on_device():
            return self._k.count_within(x, self._like(radius_x, x), inclusive, y, self._like(radius_y, y),
                                        prune=self.prune)


class CudaBackend(_DeviceBackend):
    """CUDA C++ kernels (cchmi._cuda), launched on the current torch stream of the tensors' device."""

    name = "cuda"

    def __init__(self, module, device):
        super().__init__(device)
        self._m = module
        self.max_k = int(module.max_k)
        self.tile_rows = int(module.tile_rows)

    def _launch_args(self, a):
        """(double precision, device index, stream handle) for a launch on `a`'s device. CPU tensors
        (the tests' emulated module) get device 0 and stream 0."""
        if a.device.type != "cuda":
            return a.dtype == self._torch.float64, 0, 0
        return a.dtype == self._torch.float64, a.device.index, self._torch.cuda.current_stream(a.device).cuda_stream

    @staticmethod
    def _batched(a):
        return a if a.dim() == 3 else a.unsqueeze(0)

    def knn(self, points, k: int):
        from cchmi import _spatial

        p = self.put(points)
        b = self._batched(p)
        batch, n, d = b.shape
        if not 1 <= k <= n - 1:
            raise ValueError(f"k must satisfy 1 <= k <= n - 1 = {n - 1}; got k={k}")
        if k > self.max_k:
            raise ValueError(f"k={k} is above the cuda backend's limit of {self.max_k} (the k best candidates live "
                             "in registers); use backend='cpu' for larger k")
        sp, order, lo, hi = _spatial.sorted_with_boxes(b, self.tile_rows, prune=self.prune)
        dist = self._torch.empty((batch, n, k), dtype=p.dtype, device=p.device)
        idx = self._torch.empty((batch, n, k), dtype=self._torch.int64, device=p.device)
        self._m.knn(sp.data_ptr(), order.data_ptr(), lo.data_ptr(), hi.data_ptr(), batch, n, d, k, dist.data_ptr(),
                    idx.data_ptr(), *self._launch_args(p))
        dist, idx = _spatial.from_sorted(dist, order), _spatial.from_sorted(idx, order)
        return (dist, idx) if p.dim() == 3 else (dist[0], idx[0])

    def _counts(self, x, rx, y, ry, inclusive):
        from cchmi import _spatial

        xb = self._batched(x)
        batch, n, dx = xb.shape
        yb = None if y is None else self._batched(y)
        if yb is not None and (yb.shape[:2] != (batch, n) or y.dtype != x.dtype):
            raise ValueError("y must have the batch and row sizes and the dtype of x")
        order, spaces = _spatial.sorted_for_counts(xb, rx.reshape(batch, n), yb,
                                                   None if yb is None else ry.reshape(batch, n), self.tile_rows,
                                                   self.prune)
        xs, lox, hix, rxs = spaces[0]
        out_x = self._torch.empty((batch, n), dtype=self._torch.int64, device=x.device)
        y_ptr = loy_ptr = hiy_ptr = ry_ptr = oy_ptr = dy = 0  # no y: the kernel counts in x only
        if yb is not None:
            ys, loy, hiy, rys = spaces[1]
            out_y = self._torch.empty((batch, n), dtype=self._torch.int64, device=x.device)
            y_ptr, loy_ptr, hiy_ptr, ry_ptr, oy_ptr = (t.data_ptr() for t in (ys, loy, hiy, rys, out_y))
            dy = ys.shape[2]
        self._m.count_within_pair(xs.data_ptr(), lox.data_ptr(), hix.data_ptr(), dx, y_ptr, loy_ptr, hiy_ptr, dy,
                                  batch, n, rxs.data_ptr(), ry_ptr, bool(inclusive), out_x.data_ptr(), oy_ptr,
                                  *self._launch_args(x))
        counts_x = _spatial.from_sorted(out_x, order).reshape(rx.shape)
        if yb is None:
            return counts_x, None
        return counts_x, _spatial.from_sorted(out_y, order).reshape(ry.shape)

    def count_within(self, points, radius, inclusive: bool):
        p = self.put(points)
        return self._counts(p, self._like(radius, p).reshape(p.shape[:-1]), None, None, inclusive)[0]

    def count_pair(self, x, y, radius_x, radius_y, inclusive: bool):
        x, y = self.put(x), self.put(y)
        return self._counts(x, self._like(radius_x, x).reshape(x.shape[:-1]), y,
                            self._like(radius_y, y).reshape(y.shape[:-1]), inclusive)


# ---------------------------------------------------------------------------------------------
# Availability and resolution.


def _cuda_module():
    """cchmi._cuda when it was built and sees a GPU, else None."""
    m = _import_compiled("_cuda")
    return m if m is not None and m.device_count() > 0 else None


def _torch_sees_gpu() -> bool:
    m = _import_compiled("_cuda")
    if m is not None and m.device_count() == 0:
        return False  # answered without importing torch
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def _triton_usable() -> bool:
    if importlib.util.find_spec("triton") is None or importlib.util.find_spec("torch") is None:
        return False
    return _interpreting() or _torch_sees_gpu()


def _faiss():
    try:
        return importlib.import_module("faiss")
    except ImportError:
        return None


def _usable(name: str) -> bool:
    if name == "cuda":
        return _cuda_module() is not None and _torch_sees_gpu()
    if name == "triton":
        return _triton_usable()
    if name == "cpu":
        return _import_compiled("_cpu") is not None
    if name == "faiss":
        return _faiss() is not None
    return name == "numpy"


def available_backends() -> list[str]:
    """Names of the backends usable here (GPU backends first; see the module doc for ``auto``)."""
    return [name for name in ("cuda", "triton", "cpu", "faiss", "numpy") if _usable(name)]


def _unavailable_reason(name: str) -> str:
    if name == "cpu":
        return "the compiled module cchmi._cpu is missing (reinstall with `pip install .` from a source checkout)"
    if name == "cuda":
        if _import_compiled("_cuda") is None:
            return ("cchmi._cuda was not built (install on a machine with nvcc, or force it with "
                    "`CCHMI_CUDA=ON pip install .`)")
        return "no CUDA GPU is visible (cchmi._cuda and torch must both see one)"
    if name == "triton":
        if importlib.util.find_spec("triton") is None:
            return "Triton is not installed (`pip install triton`)"
        return "Triton needs a CUDA GPU (or TRITON_INTERPRET=1 to run its kernels on the CPU, slowly)"
    if name == "faiss":
        return "faiss is not installed: `pip install cchmi[faiss]` (faiss-cpu), or install faiss-gpu"
    return ""


def input_device(*arrays):
    """The torch CUDA device of the first input that is a CUDA tensor, else None (host data)."""
    for a in arrays:
        dev = getattr(a, "device", None)
        if dev is not None and getattr(dev, "type", None) == "cuda":
            return dev
    return None


def _gpu_device(device):
    if device is not None:
        return device
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")  # the Triton interpreter


def _auto(device, n: int) -> str:
    gpu_first = device is not None or (n >= AUTO_GPU_MIN_N and _torch_sees_gpu())
    order = ("cuda", "triton", "cpu") if gpu_first else ("cpu",)
    for name in order:
        if name == "triton" and not _torch_sees_gpu():
            continue  # the interpreter is for tests, never an automatic choice
        if _usable(name):
            return name
    return "numpy"


def resolve(name: str, *, device=None, n: int = 0):
    """The backend object for `name`. `device`: the torch CUDA device holding the inputs, if any;
    `n`: the number of points (``auto`` sends large host problems to a GPU)."""
    if not isinstance(name, str) or name not in KNOWN_BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, KNOWN_BACKENDS))}; got {name!r}")
    if name == "auto":
        name = _auto(device, n)
        if name == "numpy" and not _state.get("warned_fallback"):
            _state["warned_fallback"] = True
            warnings.warn(
                f"backend 'auto' fell back to the slow NumPy reference: {_unavailable_reason('cpu')}. "
                "(Running from a source checkout? `pip install -e .` builds the module in place.)",
                RuntimeWarning,
                stacklevel=3,
            )
    if not _usable(name):
        raise ValueError(
            f"backend {name!r} is not available: {_unavailable_reason(name)}. "
            f"Available here: {', '.join(available_backends())}"
        )
    if name == "cuda":
        dev = _gpu_device(device)
        return CudaBackend(_cuda_module(), dev)
    if name == "triton":
        return TritonBackend(_gpu_device(device))
    cpu = _import_compiled("_cpu")
    if name == "cpu":
        return CpuBackend(cpu)
    if name == "faiss":
        return FaissBackend(_faiss(), CpuBackend(cpu) if cpu is not None else NumpyBackend())
    return NumpyBackend()
