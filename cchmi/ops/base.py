"""The Backend protocol, and the two families of backends: host (NumPy) and device (torch).

Everything that depends on the kind of array lives here and in the backend modules:

* the kernels: ``knn``, ``count_within``, ``count_pair`` (see :mod:`cchmi.ops`); backends with
  ``takes_queries`` also answer a subset of the points' queries (``queries=rows``, one problem);
* ``prepare(a, dtype, standardize, ties, noise, rng)``: a validated sample -> (the array the
  kernels take, in the working dtype, C-contiguous; sum of the log standard deviations);
* ``extent(a, idx)``: per point, the max-norm distance to the farthest of its neighbours idx
  (KSG-2's marginal extents), with the kernels' rounding;
* ``put(a)`` (a host array onto the backend), ``host(a)`` (a NumPy array), ``take(a, rows)``,
  ``stack(arrays)`` (B problems into one (B, n, d) batch) and ``hstack(*arrays)`` (columns).

Preparation (the conventions of :mod:`cchmi.estimators`): columns centred and divided by their
standard deviation (ddof=0; constant columns only centred), or centred on the midpoint of their
quartiles and divided by their interquartile scale IQR / 1.349 where the s.d. is more than 3 times
that (a few rows set it; a RuntimeWarning says so: :func:`cchmi._scaling.robust_sd`; their jitter
has s.d. ``noise``), then seeded Gaussian jitter of s.d.
``noise * max(1, mean |column|)``, then a check that every difference stays finite in the working
dtype. Host data is prepared on the host, in float64, and moved to a device once; a torch CUDA
tensor going to a device backend is prepared there, with the same arithmetic in torch and jitter
from a torch generator seeded by `rng` (so it agrees with the host path statistically, and exactly
when no jitter is drawn).
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from cchmi import _validate as V
from cchmi._scaling import quartile_centre, quartile_ranks, robust_sd


class Backend(Protocol):
    """What the estimators need from a backend."""

    name: str
    on_device: bool  # arrays are torch tensors on `device` (else NumPy arrays)
    max_k: int | None  # largest k the kNN kernel takes (None: no limit)
    takes_queries: bool  # the kernels take queries= (row indices of one problem)

    def knn(self, points, k: int, queries=None): ...
    def extent(self, a, idx) -> np.ndarray: ...
    def count_within(self, points, radius, inclusive: bool, queries=None): ...
    def count_pair(self, x, y, radius_x, radius_y, inclusive: bool, queries=None): ...
    def prepare(self, a, *, name: str, dtype: np.dtype, standardize: bool, ties: str, noise: float, rng): ...
    def put(self, a): ...
    def host(self, a) -> np.ndarray: ...
    def take(self, a, rows): ...
    def stack(self, arrays: list): ...
    def hstack(self, *arrays): ...


# Elements of the (rows, k, d) gather computed at once by `extent`.
EXTENT_CHUNK = 4_000_000


def _extent_chunks(a, idx, reduce) -> list:
    """reduce(|a[idx[rows]] - a[rows]|) over chunks of rows: bounded memory."""
    n, k = idx.shape
    step = max(1, EXTENT_CHUNK // (k * a.shape[1]))
    return [reduce(abs(a[idx[s:s + step]] - a[s:s + step, None, :])) for s in range(0, n, step)]


def query_rows(be: Backend, points, queries) -> np.ndarray:
    """`queries` checked for a query-subset call on `be` with `points` (n, d): a 1-D int64 NumPy array
    of rows in [0, n), in the order given, repeats allowed (each row answered where it stands).
    ValueError/TypeError naming `queries` otherwise, and on a backend without ``takes_queries``."""
    if not be.takes_queries:
        raise ValueError(f"queries= is not supported by the {be.name} backend (it answers every point); use "
                         "backend='cpu', 'numpy', 'faiss', 'triton' or 'cuda'")
    if len(points.shape) != 2:
        raise ValueError(f"queries= takes one problem (n, d), got points of shape {tuple(points.shape)}")
    rows = np.asarray(V.to_host(queries))
    if rows.ndim != 1:
        raise ValueError(f"queries must be 1-D row indices, got shape {rows.shape}")
    if rows.dtype.kind not in "iu" and not (rows.size == 0 and rows.dtype.kind == "f"):
        raise TypeError(f"queries must be integer row indices, got dtype {rows.dtype}")
    n = points.shape[0]
    if rows.size and not (rows.min() >= 0 and rows.max() < n):
        raise ValueError(f"queries must be rows of the points, in [0, {n}); got values from {rows.min()} to "
                         f"{rows.max()}")
    return np.ascontiguousarray(rows, dtype=np.int64)


def range_error(name: str, dtype: np.dtype, standardize: bool) -> ValueError:
    fixes = ([] if standardize else ["standardize=True"]) + (["dtype='float64'"] if dtype == np.float32 else [])
    return ValueError(
        f"{name} spans a range too wide for {dtype.name} distances (differences overflow)"
        + (f": use {' or '.join(fixes)}" if fixes else "")
    )


def prepare_on_host(a, *, name: str, dtype: np.dtype, standardize: bool, ties: str, noise: float, rng):
    """The preparation in NumPy (float64, then cast): (C-contiguous array in `dtype`, sum of the log
    standard deviations removed; -inf when a column is constant).

    Standardisation first scales each column by the power of two of its largest |value|: exact (an
    exponent shift), so data of ordinary scale give the same bits as without it, while data near
    the ends of the float64 range (beyond about 1e154 or below 1e-154, where squares over- or
    underflow) keep their standard deviation instead of losing it to 0 or inf."""
    source = V.to_host(a)
    a = np.array(source, dtype=np.float64, copy=True)
    constant = a.max(axis=0) == a.min(axis=0)
    log_scale = -math.inf if constant.any() else 0.0
    robust = np.zeros(a.shape[1], dtype=bool)
    if standardize:
        exponent = np.frexp(np.abs(a).max(axis=0))[1]
        a = np.ldexp(a, -exponent)  # every |value| now below 1
        ranks = quartile_ranks(a.shape[0])
        order_stats = np.partition(a, np.unique(ranks), axis=0)[ranks]
        at_quartiles = np.stack([np.count_nonzero(a == value, axis=0) for value in order_stats])
        a -= a.mean(axis=0)
        sd = a.std(axis=0)
        sd[constant] = 1.0
        sd, robust = robust_sd(sd, order_stats, at_quartiles, a.shape[0], name)
        a /= sd
        if robust.any():  # those columns again from the data as given, centred on their quartiles
            cols = np.flatnonzero(robust)
            raw = np.ldexp(np.asarray(source[:, cols], dtype=np.float64), -exponent[cols])
            a[:, cols] = (raw - quartile_centre(order_stats, a.shape[0])[cols]) / sd[cols]
        if not constant.any():
            log_scale = float(log_scales(sd, exponent).sum())
    # |values| < max / 2 keeps every difference, hence every distance, finite in `dtype`.
    if not np.abs(a).max() < np.finfo(dtype).max / 2:
        raise range_error(name, dtype, standardize)
    if ties == "jitter" and noise > 0:
        # Columns divided by their s.d. are bounded by sqrt(n): only raw ones need the overflow-safe mean.
        # Columns divided by their interquartile scale have unit scale but a few far rows: noise itself.
        amplitude = noise * np.where(robust, 1.0, np.maximum(1.0, np.abs(a).mean(axis=0) if standardize
                                                             else _mean_abs(a)))
        a += amplitude * rng.standard_normal(a.shape)
    return np.ascontiguousarray(a, dtype=dtype), log_scale


def _mean_abs(a: np.ndarray) -> np.ndarray:
    """mean |column|, summed at a power-of-two scale so that it cannot overflow (exact scaling:
    the same bits as the plain mean wherever that one is finite)."""
    exponent = np.frexp(np.abs(a).max(axis=0))[1]
    return np.ldexp(np.abs(np.ldexp(a, -exponent)).mean(axis=0), exponent)


def log_scales(sd: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """log(sd * 2**exponent) per column: the log of the standard deviation of the data as given,
    computed without forming it where it over- or underflows."""
    with np.errstate(all="ignore"):
        true = np.ldexp(sd, exponent)
        return np.where(np.isfinite(true) & (true > 0), np.log(true), np.log(sd) + exponent * math.log(2.0))


class HostBackend:
    """NumPy arrays in and out; a batch (B, n, d) runs problem by problem. Subclasses implement
    ``_knn(points, k, queries)`` and ``_count(points, radius, inclusive, queries)`` for one problem,
    and may override ``_count_pair``; queries is None (every point) or checked rows (int64, see
    :func:`query_rows`), radius then has one entry per query."""

    on_device = False
    device = None
    max_k = None
    takes_queries = True

    # -- kernels --------------------------------------------------------------------------------
    def knn(self, points: np.ndarray, k: int, queries=None):
        if points.ndim == 3:
            pairs = [self._knn(p, k, None) for p in points]
            return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
        return self._knn(points, k, queries)

    def count_within(self, points: np.ndarray, radius, inclusive: bool, queries=None):
        radius = self._radius(radius, points)
        if points.ndim == 3:
            return np.stack([self._count(p, r, inclusive, None) for p, r in zip(points, radius)])
        return self._count(points, radius, inclusive, queries)

    def count_pair(self, x, y, radius_x, radius_y, inclusive: bool, queries=None):
        rx, ry = self._radius(radius_x, x), self._radius(radius_y, y)
        if x.ndim == 3:
            pairs = [self._count_pair(*args, inclusive, None) for args in zip(x, y, rx, ry)]
            return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
        return self._count_pair(x, y, rx, ry, inclusive, queries)

    def _count_pair(self, x, y, rx, ry, inclusive, queries):
        return self._count(x, rx, inclusive, queries), self._count(y, ry, inclusive, queries)

    @staticmethod
    def _radius(radius, points):
        return np.ascontiguousarray(V.to_host(radius), dtype=points.dtype)

    def extent(self, a, idx) -> np.ndarray:
        return np.concatenate(_extent_chunks(a, idx, lambda diff: diff.max(axis=(1, 2))))

    # -- array work -----------------------------------------------------------------------------
    def prepare(self, a, **options):
        return prepare_on_host(a, **options)

    def put(self, a):
        return np.ascontiguousarray(V.to_host(a))

    def host(self, a) -> np.ndarray:
        return V.to_host(a)

    def take(self, a, rows):
        return a if rows is None else np.ascontiguousarray(a[rows])

    def stack(self, arrays):
        return np.ascontiguousarray(np.stack(arrays))

    def hstack(self, *arrays):
        return arrays[0] if len(arrays) == 1 else np.ascontiguousarray(np.concatenate(arrays, axis=-1))


class DeviceBackend:
    """torch tensors on one device in and out (NumPy inputs are moved there once, ``put``).

    The kernels run on points sorted along a Morton curve with a bounding box per tile of
    ``tile_rows`` points (:mod:`cchmi.ops._spatial`); results come back in the original order.
    Subclasses implement ``_launch_knn(sp, order, lo, hi, k, dist, idx)`` (fills the (B, n, k)
    outputs in sorted order, ascending) and ``_launch_counts(x_space, y_space, inclusive, out_x,
    out_y)``. ``prune=False`` turns off the sort and the pruning (brute force, for benchmarks).

    A subclass whose launchers also take ``blocks=`` (the numbers of the query blocks of
    ``query_block`` sorted rows to answer, int64 on the device) sets ``takes_queries``: a subset of
    queries then launches over the blocks that hold them (after the sort, so a caller passing whole
    Morton tiles gets whole blocks), and their rows are taken from the outputs.
    """

    on_device = True
    prune = True
    tile_rows = 64
    query_block = 64
    takes_queries = False

    def __init__(self, device):
        import torch

        self._torch = torch
        self.device = device

    # -- kernels --------------------------------------------------------------------------------
    def knn(self, points, k: int, queries=None):
        from cchmi.ops import _spatial

        torch = self._torch
        p = self.put(points)
        b = p if p.dim() == 3 else p.unsqueeze(0)
        batch, n, _ = b.shape
        sp, order, lo, hi = _spatial.sorted_with_boxes(b, self.tile_rows, prune=self.prune)
        dist = torch.empty((batch, n, k), dtype=p.dtype, device=p.device)
        idx = torch.empty((batch, n, k), dtype=torch.int64, device=p.device)
        if queries is not None:  # one problem (ops.query_rows)
            at, blocks = self._query_blocks(order[0], queries)
            with self._on_device():
                self._launch_knn(sp, order, lo, hi, k, dist, idx, blocks=blocks)
            return dist[0, at], idx[0, at]
        with self._on_device():
            self._launch_knn(sp, order, lo, hi, k, dist, idx)
        dist, idx = _spatial.from_sorted(dist, order), _spatial.from_sorted(idx, order)
        return (dist, idx) if p.dim() == 3 else (dist[0], idx[0])

    def _query_blocks(self, order, queries):
        """(sorted positions of the query rows, the numbers of the query blocks holding them)."""
        torch = self._torch
        rank = torch.empty_like(order)
        rank[order] = torch.arange(order.numel(), device=order.device)
        at = rank[torch.as_tensor(queries, device=order.device)]
        return at, torch.unique(torch.div(at, self.query_block, rounding_mode="floor"))

    def count_within(self, points, radius, inclusive: bool, queries=None):
        p = self.put(points)
        if queries is not None:
            return self._query_counts(p, self._radius(radius, p, (-1,)), None, None, inclusive, queries)[0]
        return self._counts(p, self._radius(radius, p), None, None, inclusive)[0]

    def count_pair(self, x, y, radius_x, radius_y, inclusive: bool, queries=None):
        x, y = self.put(x), self.put(y)
        if y.dtype != x.dtype:
            raise ValueError(f"x and y need one dtype, got {x.dtype} and {y.dtype}")
        if queries is not None:
            return self._query_counts(x, self._radius(radius_x, x, (-1,)), y, self._radius(radius_y, y, (-1,)),
                                      inclusive, queries)
        return self._counts(x, self._radius(radius_x, x), y, self._radius(radius_y, y), inclusive)

    def _counts(self, x, rx, y, ry, inclusive, queries=None):
        """Counts of every point (queries None), or of the rows `queries` (distinct) with radii rx,
        ry given per point (only those of the query rows matter)."""
        from cchmi.ops import _spatial

        torch = self._torch
        xb = x if x.dim() == 3 else x.unsqueeze(0)
        batch, n, _ = xb.shape
        yb = None if y is None else (y if y.dim() == 3 else y.unsqueeze(0))
        order, spaces = _spatial.sorted_for_counts(xb, rx.reshape(batch, n), yb,
                                                   None if yb is None else ry.reshape(batch, n), self.tile_rows,
                                                   self.prune)
        outs = [torch.empty((batch, n), dtype=torch.int64, device=x.device) for _ in spaces]
        subset = {}  # the launchers' blocks=, only for a subset of queries
        if queries is not None:
            at, subset["blocks"] = self._query_blocks(order[0], queries)
        with self._on_device():
            self._launch_counts(spaces[0], spaces[1] if yb is not None else None, bool(inclusive), outs[0],
                                outs[1] if yb is not None else None, **subset)
        if queries is not None:
            return outs[0][0, at], (outs[1][0, at] if yb is not None else None)
        counts = [_spatial.from_sorted(out, order).reshape(x.shape[:-1]) for out in outs]
        return counts[0], (counts[1] if yb is not None else None)

    def _query_counts(self, x, rx, y, ry, inclusive, queries):
        """Counts of the query rows (repeats allowed) with one radius per query: in rounds of
        distinct rows (a row's radius sits at its place in a per-point array; 0 elsewhere)."""
        torch = self._torch
        out_x = torch.empty(queries.size, dtype=torch.int64, device=x.device)
        out_y = None if y is None else torch.empty_like(out_x)
        remaining = np.arange(queries.size)
        while remaining.size:
            _, first = np.unique(queries[remaining], return_index=True)
            these = remaining[first]
            rows, where = queries[these], torch.as_tensor(these, device=x.device)
            full_x = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
            full_x[torch.as_tensor(rows, device=x.device)] = rx[where]
            full_y = None
            if y is not None:
                full_y = torch.zeros_like(full_x)
                full_y[torch.as_tensor(rows, device=x.device)] = ry[where]
            cx, cy = self._counts(x, full_x, y, full_y, inclusive, rows)
            out_x[where] = cx
            if y is not None:
                out_y[where] = cy
            remaining = np.delete(remaining, first)
        return out_x, out_y

    def extent(self, a, idx) -> np.ndarray:
        return np.concatenate([V.to_host(c) for c in _extent_chunks(a, idx, lambda diff: diff.amax(dim=(1, 2)))])

    def _radius(self, radius, points, shape=None):
        """The radii as a contiguous tensor of the points' dtype on the device, shaped like the
        points' rows (or `shape`: (-1,) for one radius per query)."""
        shape = points.shape[:-1] if shape is None else shape
        return self._torch.as_tensor(radius, device=self.device).to(points.dtype).reshape(shape).contiguous()

    def _on_device(self):
        """Kernels launch on the current CUDA device: make it the tensors' one."""
        import contextlib

        if getattr(self.device, "type", None) == "cuda":
            return self._torch.cuda.device(self.device)
        return contextlib.nullcontext()

    # -- array work -----------------------------------------------------------------------------
    def prepare(self, a, *, name, dtype, standardize, ties, noise, rng):
        if isinstance(a, np.ndarray):
            prepared, log_scale = prepare_on_host(a, name=name, dtype=dtype, standardize=standardize, ties=ties,
                                                  noise=noise, rng=rng)
            return self.put(prepared), log_scale
        # A tensor (validation leaves only CUDA tensors as tensors): prepare_on_host's arithmetic in
        # torch on this device (float64, then cast).
        torch = self._torch
        gen = torch.Generator(device=self.device)
        gen.manual_seed(int(rng.integers(2**63 - 1)))
        source = self.put(a)
        a = source.to(torch.float64, copy=True)
        constant = a.amax(dim=0) == a.amin(dim=0)
        log_scale = -math.inf if bool(constant.any()) else 0.0
        robust = np.zeros(a.shape[1], dtype=bool)
        if standardize:
            exponent = torch.frexp(a.abs().amax(dim=0))[1]
            a = torch.ldexp(a, -exponent)
            ranks = quartile_ranks(a.shape[0])
            order_stats = torch.stack([torch.kthvalue(a, int(r) + 1, dim=0).values for r in ranks])
            at_quartiles = torch.stack([(a == value).sum(dim=0) for value in order_stats])
            a -= a.mean(dim=0)
            sd = a.std(dim=0, correction=0)
            sd[constant] = 1.0
            sd, robust = robust_sd(V.to_host(sd), V.to_host(order_stats), V.to_host(at_quartiles), a.shape[0], name)
            sd = torch.as_tensor(sd, device=a.device)
            a /= sd
            if robust.any():  # as on the host
                cols = torch.as_tensor(np.flatnonzero(robust), device=a.device)
                centre = torch.as_tensor(quartile_centre(V.to_host(order_stats), a.shape[0]), device=a.device)
                raw = torch.ldexp(source[:, cols].to(torch.float64), -exponent[cols])
                a[:, cols] = (raw - centre[cols]) / sd[cols]
            if log_scale == 0.0:
                log_scale = float(log_scales(V.to_host(sd), V.to_host(exponent)).sum())
        if not float(a.abs().max()) < np.finfo(dtype).max / 2:
            raise range_error(name, dtype, standardize)
        if ties == "jitter" and noise > 0:
            exponent = torch.frexp(a.abs().amax(dim=0))[1]
            mean_abs = torch.ldexp(torch.ldexp(a, -exponent).abs().mean(dim=0), exponent)
            amplitude = noise * torch.clamp(mean_abs, min=1.0)
            amplitude[torch.as_tensor(robust, device=a.device)] = noise
            a += amplitude * torch.randn(a.shape, generator=gen, device=a.device, dtype=torch.float64)
        return a.to(torch.float32 if dtype == np.float32 else torch.float64).contiguous(), log_scale

    def put(self, a):
        return self._torch.as_tensor(a, device=self.device).contiguous()

    def host(self, a) -> np.ndarray:
        return V.to_host(a)

    def take(self, a, rows):
        if rows is None:
            return a
        return a[self._torch.as_tensor(np.asarray(rows), device=a.device)].contiguous()

    def stack(self, arrays):
        return self._torch.stack([self.put(a) for a in arrays]).contiguous()

    def hstack(self, *arrays):
        return arrays[0] if len(arrays) == 1 else self._torch.cat(arrays, dim=-1).contiguous()
