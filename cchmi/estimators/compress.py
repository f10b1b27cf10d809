"""Compress-then-kNN: I(X; Y) from KSG on a few principal components of each side, where the
intrinsic-dimension diagnostic says that kNN can work.

Procedure (:func:`compressed_mi`). The rows are split (seeded) into two halves. On the fitting half
each side is standardised and its TwoNN intrinsic dimension measured
(:mod:`cchmi.estimators.intrinsic`); a side whose intrinsic dimension is above ``max_intrinsic`` is
refused (ValueError naming the side, its value and the threshold), since no compression that keeps
the MI can bring the kNN search below it. Otherwise PCA is fitted on the fitting half and the other
half's rows are projected on ``dims`` components per side (default: 3 x the rounded intrinsic
dimension, at most the components that hold 99.9% of the side's variance: a linear subspace keeps
its rank, a curved manifold keeps the components its curvature spreads over), and KSG-1 (k
neighbours) of the projected rows is extrapolated to n -> inf (:mod:`cchmi.estimators.extrapolate`)
with the bias exponent 2 / D, D the sum of the two sides' rounded intrinsic dimensions (the
dimension of the joint sample when neither side is a function of the other, not the nominal
number of components, which overstates it). With ``crossfit`` the halves swap roles and the two
estimates are averaged (their standard errors combined as of independent halves). A half too small
for the extrapolation (fewer than 1024 rows with an interval, 512 without) gets plain KSG-1 with its
half-sample interval, and the result says so (``extrapolated``).

The threshold, :data:`MAX_INTRINSIC` = 8 per side, from the hd suite's low-intrinsic-dimension
tasks (``cchmi.data.hd_tasks.embedded``, 64 dims per side, truth 2 nats, n = 5000, seed 0; 2-core
AMD EPYC VM, 2026-12-07). compressed_mi's defaults: intrinsic dimension 1 (TwoNN 1.0) 2.045, 95%
interval [2.006, 2.083], 3+3 components; 4 (TwoNN 3.9) 1.876 [1.695, 2.056], 12+12 components
(single runs of neural_mi 1.55 and latent_mi 1.50 on the same sample). One half fitting, the other
estimating, other component counts: 1.61-1.88 at 4-12 components for dimension 4; dimension 16 (TwoNN
12.5-12.7) 0.84-1.21 at 13-40 components, 40-58% low. The threshold sits between the dimension that
works (4) and the one that fails (12.5 as TwoNN reads it; TwoNN reads low at high dimension: 37-46
for the suite's full-rank 64-dim tasks, 18 for its 8x8 random fields, all refused). Latent MI's
authors (Gowri et al., NeurIPS 2024) report the same wall: errors of 0.03-0.14 bits at intrinsic
dimension 1 and 0.65-0.74 at 9.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from cchmi import _validate as V
from cchmi._scaling import standardise
from cchmi.estimators import interval
from cchmi.estimators.extrapolate import ExtrapolatedMIResult, extrapolate_estimate, obstacle
from cchmi.estimators.intrinsic import IntrinsicDimension, intrinsic_dimension
from cchmi.estimators.ksg import ksg_mi, ksg_nats
from cchmi.estimators.options import KnnOptions
from cchmi.estimators.problem import prepare

MAX_INTRINSIC = 8.0
"""Largest TwoNN intrinsic dimension of a side that compressed_mi accepts (module docstring: the
measurements behind it)."""

VARIANCE_KEPT = 0.999
"""The default ``dims`` never exceeds the components that hold this share of a side's variance."""

METHODS = ("pca",)


@dataclass(frozen=True)
class CompressedMIResult(ExtrapolatedMIResult):
    """The result of :func:`compressed_mi` (an :class:`~cchmi.estimators.extrapolate.ExtrapolatedMIResult`;
    ``n`` the rows estimated on, summed over the halves with crossfit).

    intrinsic_x, intrinsic_y: the diagnostic of each side (on the fitting half; the first half's
    with crossfit); dims_x, dims_y: the components kept; bias_dim: D of the bias exponent 2 / D;
    extrapolated: whether the KSG estimate was extrapolated (False: plain KSG-1, too few rows);
    crossfit: whether the halves swapped roles; half_estimates: each half's estimate.
    """

    intrinsic_x: IntrinsicDimension | None = None
    intrinsic_y: IntrinsicDimension | None = None
    dims_x: int | None = None
    dims_y: int | None = None
    bias_dim: int | None = None
    extrapolated: bool | None = None
    crossfit: bool | None = None
    half_estimates: tuple[float, ...] | None = None


def too_high(name: str, diagnostic: IntrinsicDimension, max_intrinsic: float) -> str | None:
    """Why compress-then-kNN cannot work on side `name` (its intrinsic dimension above
    `max_intrinsic`), or None."""
    if diagnostic.value <= max_intrinsic:
        return None
    return (f"the intrinsic dimension of {name} is {diagnostic.value:.2f} (TwoNN, {diagnostic.confidence:.0%} "
            f"interval [{diagnostic.ci_low:.3g}, {diagnostic.ci_high:.3g}], {diagnostic.n} rows of "
            f"{diagnostic.columns} columns), above max_intrinsic={max_intrinsic:g}")


def pca_basis(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(components (d, d) as rows, variance share of each) of the centred rows `a`."""
    centred = a - a.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    var = s**2
    return vt, var / var.sum() if var.sum() > 0 else var


def default_dims(diagnostic: IntrinsicDimension, share: np.ndarray) -> int:
    """3 x round(intrinsic dimension), at most the components holding VARIANCE_KEPT of the variance."""
    cap = int(np.searchsorted(np.cumsum(share), VARIANCE_KEPT) + 1)
    return max(1, min(3 * max(1, round(diagnostic.value)), cap, share.size))


def _check_dims(dims, dx: int, dy: int) -> tuple[int, int] | None:
    if dims is None:
        return None
    pair = (dims, dims) if not isinstance(dims, (tuple, list)) else tuple(dims)
    if len(pair) != 2:
        raise ValueError(f"dims must be None, an int or a pair (dims of x, dims of y), got {dims!r}")
    return V.as_int(pair[0], "dims", 1, dx, f" (x has {dx} columns)"), V.as_int(pair[1], "dims", 1, dy,
                                                                                  f" (y has {dy} columns)")


def _half(xs: np.ndarray, ys: np.ndarray, fit: np.ndarray, score: np.ndarray, *, dims, k: int,
          max_intrinsic: float, confidence, n_subsamples: int, seed: int) -> dict:
    """One direction: diagnostic and PCA on `fit`, KSG (extrapolated when the rows allow) on `score`;
    nats."""
    sides = {}
    for name, a in (("x", xs), ("y", ys)):
        z = standardise(a, fit, dtype=np.float64)
        diag = intrinsic_dimension(z[fit], random_state=seed, name=name)
        reason = too_high(name, diag, max_intrinsic)
        if reason is not None:
            raise ValueError(f"compressed_mi refuses: {reason}; kNN after compression is biased there (module "
                             "docstring of cchmi.estimators.compress: the measurements). Use "
                             "cchmi.neural.diffusion_mi, or raise max_intrinsic at your own risk")
        basis, share = pca_basis(z[fit])
        m = default_dims(diag, share) if dims is None else dims[0 if name == "x" else 1]
        sides[name] = (z[score] @ basis[:m].T, diag, m)
    (zx, dx_, mx), (zy, dy_, my) = sides["x"], sides["y"]
    bias_dim = max(1, round(dx_.value)) + max(1, round(dy_.value))
    with_interval = confidence is not None
    extrapolated = obstacle({}, score.size, None, with_interval) is None
    if extrapolated:
        opts = KnnOptions(k=k, random_state=seed, confidence=confidence, n_subsamples=n_subsamples)
        p = prepare({"x": zx, "y": zy}, opts)
        (xp, yp), be = p.arrays, p.be

        def core(rows):
            return ksg_nats(be, be.take(xp, rows), be.take(yp, rows), p.k, 1, p.opts.ties)

        est = extrapolate_estimate(core, p.n, [bias_dim], p.rng, confidence=confidence, n_subsamples=n_subsamples)
        value, bias = float(est.values[0]), float(est.bias[0])
        se = None if est.stderr is None else float(est.stderr[0])
        backend, sizes = be.name, est.subsample_sizes
    else:
        r = ksg_mi(zx, zy, k=k, confidence=confidence, random_state=seed, n_subsamples=n_subsamples)
        value, bias, se, backend, sizes = r.estimate, 0.0, r.stderr, r.backend, None
    return dict(value=value, bias=bias, se=se, diag=(dx_, dy_), dims=(mx, my), bias_dim=bias_dim,
                extrapolated=extrapolated, backend=backend, sizes=sizes, rows=int(score.size))


def compressed_mi(x, y, *, method: str = "pca", dims=None, k: int = 3, max_intrinsic: float = MAX_INTRINSIC,
                  crossfit: bool = True, confidence: float | None = 0.95, n_subsamples: int = 20,
                  base: float = math.e, random_state: int = 0) -> CompressedMIResult:
    """I(X; Y) by compress-then-kNN (module docstring: the procedure, the threshold and its numbers).

    method : "pca" (principal components fitted on the other half of the rows).
    dims : components per side: None (3 x the rounded intrinsic dimension, capped by 99.9% of the
        variance), an int for both sides, or a pair (x's, y's).
    k : neighbours of KSG-1.
    max_intrinsic : a side whose TwoNN intrinsic dimension exceeds it is refused (ValueError).
    crossfit : swap the halves and average the two estimates (False: one half fits, the other scores).
    confidence, n_subsamples : the interval (the extrapolation's, or KSG's half-sample jackknife).
    base : e for nats, 2 for bits. random_state : seed of the split, the diagnostic's subsample and
        the kNN jitter and subsamples (an int).
    Returns a :class:`CompressedMIResult` with the diagnostic of each side.
    """
    start = time.perf_counter()
    xa, ya = V.as_samples(x, "x"), V.as_samples(y, "y")
    n = V.same_length(x=xa, y=ya)
    V.choice(method, "method", METHODS)
    dims = _check_dims(dims, xa.shape[1], ya.shape[1])
    k = V.as_int(k, "k", 1)
    max_intrinsic = V.as_real(max_intrinsic, "max_intrinsic", 0, low_open=True)
    if not isinstance(crossfit, (bool, np.bool_)):
        raise TypeError(f"crossfit must be True or False, got {crossfit!r}")
    confidence, base = V.check_confidence(confidence), V.check_base(base)
    n_subsamples = V.as_int(n_subsamples, "n_subsamples", 2)
    random_state = V.as_int(random_state, "random_state", 0)
    if n < 8 * (k + 1):
        raise ValueError(f"x and y have n={n} rows; compressed_mi needs at least {8 * (k + 1)} (two halves, each with "
                         f"room for k={k} neighbours and an interval)")
    order = np.random.default_rng(random_state).permutation(n)
    a, b = np.sort(order[: n // 2]), np.sort(order[n // 2 :])
    directions = [(a, b), (b, a)] if crossfit else [(a, b)]
    halves = [_half(xa, ya, fit, score, dims=dims, k=k, max_intrinsic=max_intrinsic, confidence=confidence,
                    n_subsamples=n_subsamples, seed=random_state + i) for i, (fit, score) in enumerate(directions)]
    scale = 1.0 / math.log(base)
    value = float(np.mean([h["value"] for h in halves])) * scale
    bias = float(np.mean([h["bias"] for h in halves])) * scale
    se = lo = hi = note = None
    if confidence is not None:
        se = math.sqrt(sum(h["se"] ** 2 for h in halves)) / len(halves) * scale
        z = interval.z_value(confidence)
        lo, hi = value - z * se, value + z * se
        first = halves[0]
        how = (f"KSG-1 extrapolated to n -> inf from subsamples of {first['sizes']} rows (bias exponent 2/D, D = "
               f"{first['bias_dim']}, the sides' rounded intrinsic dimensions)" if first["extrapolated"] else
               "plain KSG-1 (too few rows for the extrapolation), half-sample jackknife")
        note = (f"{how} on {first['dims'][0]}+{first['dims'][1]} principal components fitted on the other half"
                + ("; the two halves' estimates averaged" if crossfit else "") + f": s.e. {se:.3g}")
    first = halves[0]
    return CompressedMIResult(
        estimate=value, n=sum(h["rows"] for h in halves), k=k, estimator="pca-ksg1" + (
            "-extrapolated" if first["extrapolated"] else ""), backend=first["backend"],
        seconds=time.perf_counter() - start, unit=interval.unit_name(base), stderr=se, ci_low=lo, ci_high=hi,
        confidence=confidence if se is not None else None, n_subsamples=n_subsamples if se is not None else None,
        bias=bias, interval_note=note, intrinsic_x=first["diag"][0], intrinsic_y=first["diag"][1],
        dims_x=first["dims"][0], dims_y=first["dims"][1], bias_dim=first["bias_dim"],
        extrapolated=first["extrapolated"], crossfit=crossfit,
        half_estimates=tuple(h["value"] * scale for h in halves))
