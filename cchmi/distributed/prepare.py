"""The preparation of sharded samples: :func:`cchmi.ops.base.prepare_on_host` with global statistics.

Each rank prepares its own rows. Column minima, maxima and |max| come from all-reduces (exact);
the quartiles that decide between the s.d. and the interquartile scale
(:func:`cchmi._scaling.robust_sd`) from exact global order statistics (:func:`order_statistics`);
column means and standard deviations from :meth:`Comm.ordered_sum` (rows added in global order:
the same arithmetic as NumPy's sums over the whole array); the jitter of global row i is the
i-th row of the one-process normal stream: each rank draws and discards the draws of the rows
before its own and after them (the stream cannot skip ahead: NumPy's normal sampler uses a
variable number of bits per draw). The result equals the one-process preparation bit for bit
when each sample is C-ordered with 2+ columns (NumPy then sums rows in order, as here), and when it
is neither standardised nor jittered. A single column (or a Fortran-ordered sample) NumPy sums
pairwise, so its mean, standard deviation and jitter amplitude may differ from the one-process
ones in the last bit: the estimate then agrees to rounding, and is still independent of the
number of ranks and of the split.

Cost: the jitter costs every rank O(N d) normal draws (the discarded ones included), a few
seconds per 10^8 draws: small next to the O(N^2 d / P) neighbour search. The ordered sums are a
scan along the ranks (P sequential steps of O(N d / P)).
"""

from __future__ import annotations

import math

import numpy as np

from cchmi._scaling import quartile_centre, quartile_ranks, robust_sd
from cchmi.distributed.comm import Comm
from cchmi.ops.base import log_scales, range_error

# Normals drawn at once while skipping other ranks' rows (bounded memory).
_SKIP_CHUNK = 1 << 20
_SIGN = np.uint64(1 << 63)


def _skip(rng, count: int) -> None:
    while count > 0:
        step = min(count, _SKIP_CHUNK)
        rng.standard_normal(step)
        count -= step


def _keys(values: np.ndarray) -> np.ndarray:
    """float64 -> uint64 keys in the same order (sign bit set for positives, all bits flipped for
    negatives; -0.0 just below 0.0)."""
    bits = values.view(np.uint64)
    return np.where(bits & _SIGN, ~bits, bits | _SIGN)


def _values(keys: np.ndarray) -> np.ndarray:
    return np.where(keys & _SIGN, keys & ~_SIGN, ~keys).view(np.float64)


def order_statistics(a: np.ndarray, comm: Comm, ranks: np.ndarray, col_min: np.ndarray,
                     col_max: np.ndarray) -> np.ndarray:
    """The order statistics at the 0-based `ranks` of every column of the whole sample (the
    shards of all ranks), exactly: (len(ranks), d) float64, values of the sample. A bisection on
    the float64 values' bit patterns between the global column minima and maxima, each step one
    all-reduce of how many values lie at or below the midpoints (at most 64 steps). Collective."""
    d = a.shape[1]
    local = np.sort(_keys(np.ascontiguousarray(a)), axis=0)
    lo = np.repeat(_keys(col_min)[None, :], ranks.size, axis=0)
    hi = np.repeat(_keys(col_max)[None, :], ranks.size, axis=0)
    need = ranks[:, None] + 1
    while (lo < hi).any():
        mid = lo + (hi - lo) // np.uint64(2)
        at_or_below = np.stack([np.searchsorted(local[:, j], mid[:, j], side="right") for j in range(d)], axis=1)
        enough = comm.all_reduce(at_or_below.astype(np.int64)) >= need
        lo, hi = np.where(enough, lo, mid + np.uint64(1)), np.where(enough, mid, hi)
    return _values(lo)


def prepare_shard(a: np.ndarray, comm: Comm, *, n: int, offset: int, name: str, dtype: np.dtype, standardize: bool,
                  ties: str, noise: float, rng) -> tuple[np.ndarray, float]:
    """This rank's rows `a` (global rows offset .. offset + len(a) of an n-row sample) prepared
    as ``prepare_on_host`` prepares the whole sample: (C-contiguous rows in `dtype`, sum of the
    log standard deviations; -inf when a column is constant). Collective; `rng` is advanced as
    the one-process preparation advances it."""
    source = a
    a = np.array(source, dtype=np.float64, copy=True)
    d = a.shape[1]
    empty = a.shape[0] == 0
    col_max = comm.all_reduce(np.full(d, -np.inf) if empty else a.max(axis=0), "max")
    col_min = comm.all_reduce(np.full(d, np.inf) if empty else a.min(axis=0), "min")
    constant = col_max == col_min
    log_scale = -math.inf if constant.any() else 0.0
    robust = np.zeros(d, dtype=bool)
    if standardize:
        exponent = np.frexp(np.maximum(np.abs(col_max), np.abs(col_min)))[1]
        # ldexp is non-decreasing: the order statistics of the shifted columns are the shifted ones.
        order_stats = np.ldexp(order_statistics(a, comm, quartile_ranks(n), col_min, col_max), -exponent)
        a = np.ldexp(a, -exponent)
        at_quartiles = comm.all_reduce(np.stack([np.count_nonzero(a == value, axis=0) for value in order_stats]))
        a -= comm.ordered_sum(a) / n
        centred = a - comm.ordered_sum(a) / n
        sd = np.sqrt(comm.ordered_sum(centred * centred) / n)
        sd[constant] = 1.0
        sd, robust = robust_sd(sd, order_stats, at_quartiles, n, name)
        a /= sd
        if robust.any():  # as cchmi.ops.base does
            cols = np.flatnonzero(robust)
            raw = np.ldexp(np.asarray(source[:, cols], dtype=np.float64), -exponent[cols])
            a[:, cols] = (raw - quartile_centre(order_stats, n)[cols]) / sd[cols]
        if not constant.any():
            log_scale = float(log_scales(sd, exponent).sum())
    abs_max = comm.all_reduce(np.zeros(d) if empty else np.abs(a).max(axis=0), "max")
    if not abs_max.max() < np.finfo(dtype).max / 2:
        raise range_error(name, dtype, standardize)
    if ties == "jitter" and noise > 0:
        if standardize:
            mean_abs = comm.ordered_sum(np.abs(a)) / n
        else:  # cchmi.ops.base's overflow-safe mean |column|
            exponent = np.frexp(abs_max)[1]
            mean_abs = np.ldexp(comm.ordered_sum(np.abs(np.ldexp(a, -exponent))) / n, exponent)
        amplitude = noise * np.where(robust, 1.0, np.maximum(1.0, mean_abs))
        _skip(rng, offset * d)
        a += amplitude * rng.standard_normal(a.shape)
        _skip(rng, (n - offset - a.shape[0]) * d)
    return np.ascontiguousarray(a, dtype=dtype), log_scale
