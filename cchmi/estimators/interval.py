"""From a prepared problem and its formula to a result: the delete-d jackknife interval over
half-samples, the permutation null, units, and the assembly of :class:`~cchmi.results.MIResult`.

A *core* is the estimator's formula on the problem's prepared arrays restricted to some rows:
``core(rows) -> nats`` (rows None: all of them). Cores may return several values at once (an
array, e.g. cch's I(T;S), I(S;Y) and their gap from the same rows); a *batch core* returns the
estimates of many row sets at once (batched launches on a GPU backend).
"""

from __future__ import annotations

import math
import time
import warnings
from statistics import NormalDist
from typing import Callable

import numpy as np

from cchmi import _validate as V
from cchmi._progress import stages
from cchmi.results import MIResult


def unit_name(base: float) -> str:
    if base == math.e:
        return "nats"
    if base == 2:
        return "bits"
    if base == 10:
        return "hartleys"
    return f"log{base:g} units"


def half_samples(n: int, rng, n_subsamples: int, strata: np.ndarray | None = None) -> list[np.ndarray]:
    """`n_subsamples` sorted row sets of n // 2 rows drawn without replacement; with strata (label
    codes), half of every stratum, so every class stays represented."""
    subsets = []
    for _ in range(n_subsamples):
        if strata is None:
            idx = rng.choice(n, size=n // 2, replace=False)
        else:
            parts = []
            for c in np.unique(strata):
                members = np.flatnonzero(strata == c)
                parts.append(rng.choice(members, size=members.size // 2, replace=False))
            idx = np.concatenate(parts)
        subsets.append(np.sort(idx))
    return subsets


def subsample_spread(
    core: Callable[[np.ndarray], float | np.ndarray],
    n: int,
    rng,
    n_subsamples: int,
    strata: np.ndarray | None = None,
    batch_core: Callable[[list[np.ndarray]], np.ndarray] | None = None,
) -> float | np.ndarray:
    """Delete-d jackknife standard error of `core` from `n_subsamples` half-samples (Shao & Wu
    1989): with m rows per half-sample, sqrt(m / (n - m) * mean((theta_s - mean theta)^2)). A core
    that returns several values gets one standard error per value, all from the same half-samples."""
    subsets = half_samples(n, rng, n_subsamples, strata)
    m = subsets[0].size
    if batch_core is not None:
        estimates = batch_core(subsets)
    else:
        with stages(len(subsets), "half-sample") as stage:
            estimates = [stage.done(core(idx)) for idx in subsets]
    theta = np.asarray(estimates, dtype=np.float64)
    se = np.sqrt(m / (n - m) * np.mean((theta - theta.mean(axis=0)) ** 2, axis=0))
    return float(se) if se.ndim == 0 else se


def check_interval_size(n: int, k: int) -> None:
    """Half-samples of k + 1 points or fewer cannot vary (every point's neighbours are all the
    others): refuse the interval rather than report one of zero width."""
    if n // 2 < k + 2:
        raise ValueError(
            f"an interval needs half-samples of at least k + 2 = {k + 2} points (with fewer, every point's k "
            f"neighbours are all the others and the half-sample estimates cannot vary); n={n} is too small for "
            f"k={k}: lower k or drop confidence"
        )


def warn_if_no_spread(stderr) -> None:
    if np.any(np.asarray(stderr) == 0):
        warnings.warn("the half-sample estimates did not vary, so the interval has zero width and says nothing about "
                      "the sampling error: use more samples or a smaller k", RuntimeWarning, stacklevel=4)


BELOW_ZERO_SE = 3.0
"""An MI estimate more than this many standard errors below 0 is reported (mutual information is
never negative: the estimator's bias, not sampling, put it there)."""


def below_zero_reason(value: float, stderr: float | None, what: str = "the estimate") -> str | None:
    """Why `value` (an estimate of a mutual information, with its standard error) cannot be
    trusted, when it lies more than :data:`BELOW_ZERO_SE` standard errors below 0; None otherwise
    (and without a standard error)."""
    if stderr is None or not stderr > 0 or value >= -BELOW_ZERO_SE * stderr:
        return None
    return (f"{what} = {value:.4g} is {-value / stderr:.1f} standard errors below 0, where no mutual information "
            f"lies: the estimator's bias dominates on these data (tied or discrete values, few rows per class, "
            f"or too few rows for the dimension)")


def warn_if_below_zero(value: float, stderr: float | None, what: str = "the estimate", stacklevel: int = 3) -> None:
    """RuntimeWarning with :func:`below_zero_reason` when there is one."""
    reason = below_zero_reason(value, stderr, what)
    if reason is not None:
        warnings.warn(reason, RuntimeWarning, stacklevel=stacklevel)


def check_interval_classes(sizes: np.ndarray) -> None:
    """Refuse an interval whose label-stratified half-samples would hold fewer than two classes of
    2 or more rows, naming what the user can change."""
    if np.count_nonzero(sizes >= 4) < 2:
        big = int(np.count_nonzero(sizes >= 4))
        raise ValueError(f"an interval needs at least two classes with 4 or more samples (half-samples keep half of "
                         f"each); {big} of the {int(np.count_nonzero(sizes))} classes have that many (sizes "
                         f"{', '.join(str(int(s)) for s in sorted(sizes[sizes > 0], reverse=True)[:6])}"
                         f"{', ...' if np.count_nonzero(sizes) > 6 else ''}): pass confidence=None (no interval) or "
                         f"give more rows per class")


def z_value(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def estimate(
    estimator: str,
    core: Callable[[np.ndarray | None], float],
    problem,
    *,
    start: float,
    strata: np.ndarray | None = None,
    offset: float = 0.0,
    batch_core=None,
) -> MIResult:
    """The estimate of `core` on all rows (+ `offset`, in nats) in the problem's unit, with the
    interval when ``opts.confidence`` is set."""
    opts = problem.opts
    scale = 1.0 / math.log(opts.base)
    value = (core(None) + offset) * scale
    stderr = lo = hi = None
    if opts.confidence is not None:
        if strata is None:
            check_interval_size(problem.n, problem.k)
        stderr = subsample_spread(core, problem.n, problem.rng, opts.n_subsamples, strata, batch_core) * scale
        warn_if_no_spread(stderr)
        z = z_value(opts.confidence)
        lo, hi = value - z * stderr, value + z * stderr
        if estimator != "kl":  # a differential entropy may be negative; an MI or a CMI may not
            warn_if_below_zero(value, stderr, f"the {estimator} estimate", stacklevel=4)
    return MIResult(
        estimate=float(value),
        n=problem.n,
        k=problem.k,
        estimator=estimator,
        backend=problem.be.name,
        seconds=time.perf_counter() - start,
        unit=unit_name(opts.base),
        stderr=stderr,
        ci_low=lo,
        ci_high=hi,
        confidence=opts.confidence if stderr is not None else None,
        n_subsamples=opts.n_subsamples if stderr is not None else None,
    )


def permutation_null(core: Callable, n: int, rng, n_permutations: int, batch=None) -> np.ndarray:
    """Estimates of `core(perm)` for `n_permutations` random permutations of the n rows."""
    n_permutations = V.as_int(n_permutations, "n_permutations", 1)
    perms = [rng.permutation(n) for _ in range(n_permutations)]
    return np.asarray(batch(perms) if batch is not None else [core(p) for p in perms], dtype=np.float64)
