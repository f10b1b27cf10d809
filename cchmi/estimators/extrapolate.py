"""Bias-corrected kNN estimates: the estimate at several subsample sizes, extrapolated to n -> inf.

kNN estimates of MI shrink towards 0 as the dimension D of the space they search grows (KSG-1
returns about 1.2 of 2 nats at 8+8 dimensions and n = 8000). The bias of a kNN entropy or MI
estimate on a smooth density decays as n^(-2/D) (the second-order term of the local-uniformity
assumption), so the estimate at sample size m is modelled as

    I(m) = a + b * m^(-2/D),

and ``a`` is the bias-corrected estimate. :func:`extrapolate_nats` evaluates a core on disjoint
subsamples of n, n/2, ..., n/2^(levels-1) rows (each level uses every row once: 2^j groups of
n/2^j rows, dealt by class when there are labels, so every group keeps the class proportions),
averages each level and fits the line in m^(-2/D) by least squares. D is the dimension of the
space the estimator's neighbour search runs in: dim x + dim y for KSG, dim x for Ross's
estimator of I(X; labels), counting non-constant columns only (a constant column cannot move a
max-norm search after standardisation; 16 of them had moved the estimate from 1.21 to 2.01 nats).

It does not run (:func:`obstacle`; explicit requests are refused by :func:`refuse`, cchmi.mi and
cch's "auto" fall back to the plain estimate and say why) on tied rows (integer-valued or
duplicated data: every row duplicated gave 2.84 against plain KSG's 2.21, truth 1.53), on fewer
than 512 rows per half-sample of the interval (512 rows without one), or with classes too small to
keep 2 rows in each subsample of n/8.

Assumptions, stated because the correction relies on them: the sample is i.i.d., and the bias
follows the power law over the sizes used, with the nominal dimension. Neither holds exactly, and
the measured deviations (n = 5000, seed 1000, bench/results/accuracy/rules/accuracy.md) are: 7-12%
above the truth at 10-32 dimensions with every coordinate informative, 7% below at 50, 25% below at
100 and 61% at 512, and below where most coordinates are noise (sparse tasks: 0.79 of 1 nat with 1
of 10 pairs informative, 0.53 of 2 with 2 of 50). With small exponents (large
D) the extrapolation multiplies the slope by up to 1 / (1 - 2^(-2(levels-1)/D)): at D = 64 and
4 levels about 16, so its variance grows with D. The interval says so: :func:`model_stderr` combines
the half-sample jackknife of the whole procedure, the fit's lack of fit and the model's error
(:data:`MODEL_SPREAD` of the correction).

Measured on the 22 tasks of ``cchmi.data.tasks.catalogue()`` at n = 5000 (rule seed 1000, 2-core
AMD EPYC VM; ``cchmi bench accuracy --n 5000 --seeds 1 --seed-offset 1000 --methods ...``, the command
and the rows in bench/results/accuracy/rules/, see :func:`cchmi.mi`): mean absolute error 1.400 nats
for KSG-1 / Ross, 0.569 for the extrapolation; at 10+10 dimensions 2.23 of 2 nats against KSG-1's
1.02.

The estimator "ksg-extrapolated" is :func:`extrapolate_estimate` (the extrapolation with its
interval, for one value or a pair of terms and their difference) on a kNN core:
:func:`extrapolated_mi` for one pair of variables (``cchmi.mi``), and
:mod:`cchmi.estimators.cch_terms` for the two terms of ``cchmi.cch``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from cchmi._progress import stages
from cchmi.estimators import interval
from cchmi.estimators.ksg import ksg_nats
from cchmi.estimators.mixed import class_sizes, mixed_nats
from cchmi.estimators.options import KnnOptions
from cchmi.estimators.problem import prepare, validate_samples
from cchmi.estimators.reliability import Reliability, informative_dims, label_ceiling_reason, tie_reason
from cchmi.results import MIResult

LEVELS = 4
"""Subsample sizes n, n/2, n/4, n/8 (the issue's n/8..n)."""

MODEL_SPREAD = 0.2
"""Standard deviation of the power law's error, as a fraction of the correction it makes. The model
is not exact: with 2/D the extrapolation overshoots by 7-12% of the truth at 10-32 dimensions and
undershoots by 7-25% at 50-100 (gauss tasks of cchmi.data.tasks, n = 5000, seed 1000), errors of
10-37% of the correction (1.6 times it at 512 dimensions). Intervals add ``MODEL_SPREAD *
|correction|`` in quadrature to the sampling standard error and the fit's lack of fit.

Calibration: the calibration tables of the rule-derivation runs (bench/results/cch_estimators/rules/
cch.md: ``cchmi bench cch --n 4000 --seeds 2 --seed-offset 1000 --estimators ksg ksg-extrapolated``;
bench/results/accuracy/rules/accuracy.md: ``cchmi bench accuracy --n 5000 --seeds 1 --seed-offset
1000 --methods ...``; 2-core AMD EPYC VM, 2026-11-30) recompute each extrapolated interval with
c * |correction| in place of this term. Coverage of the 95% intervals, c = 0 / 0.1 / 0.15 / 0.2 /
0.25 / 0.3 / 0.4: cch gaps (62 runs, n = 4000, seeds 1000-1001) 0.89 / 0.89 / 0.97 / 0.98 / 1.00 /
1.00 / 1.00; MI (22 tasks, n = 5000, seed 1000) 0.59 / 0.64 / 0.73 / 0.82 / 0.82 / 0.82 / 0.86. The
cch gaps reach 0.90 from c = 0.15; the MI estimates reach it at no c up to 0.4: the tasks still
missed at 0.2 (sparse-2of50-2, 256+256, classes-10-16d, spiral-3x3-1) are off by 0.9 to 3.3 times
the correction, where the power law itself fails, not its spread."""

MIN_ROWS = 64
"""Smallest subsample the extrapolation uses: below it, a kNN estimate's own spread dominates."""


def bias_exponent(dim: int) -> float:
    """The exponent of the bias's decay, 2 / D, for a neighbour search in D dimensions."""
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    return 2.0 / dim


def check_levels(n: int, levels: int) -> None:
    """Refuse an extrapolation whose smallest subsample would hold fewer than MIN_ROWS rows."""
    if levels < 2:
        raise ValueError(f"levels must be >= 2 (a line needs two sizes), got {levels}")
    if n >> (levels - 1) < MIN_ROWS:
        raise ValueError(f"the extrapolation's smallest subsample has n / 2^(levels - 1) = {n >> (levels - 1)} rows "
                         f"(n={n}, levels={levels}); it needs {MIN_ROWS} or more: give more rows or fewer levels")


def obstacle(samples: dict, n: int, strata: np.ndarray | None, with_interval: bool) -> str | None:
    """Why "ksg-extrapolated" cannot run on these rows (None: it can), in terms of what the user
    gives: tied rows in any of `samples` (name -> validated (n, d) sample,
    :func:`cchmi.estimators.reliability.tie_reason`); fewer than MIN_ROWS rows in the smallest
    subsample (n / 8, of the half-samples with an interval: with `strata`, half of every class); a
    class (of 2+ rows) too small to keep 2 rows in every smallest subsample."""
    ties = tie_reason(samples)
    if ties is not None:
        return ties
    shrink = 1 << (LEVELS - 1)
    sizes = None if strata is None else np.bincount(strata)
    rows = n if not with_interval else (n // 2 if sizes is None else int(np.sum(sizes // 2)))
    where = "each half-sample of the interval" if with_interval else "the sample"
    if rows // shrink < MIN_ROWS:
        return (f"{where} has {rows} rows, and the extrapolation needs {MIN_ROWS * shrink} or more (subsamples of "
                f"1/{shrink} of them with {MIN_ROWS} rows or more)")
    if sizes is not None:
        kept = sizes[sizes >= 2] // (2 if with_interval else 1)
        if kept.size and kept.min() < 2 * shrink:
            return (f"the smallest class has {int(sizes[sizes >= 2].min())} rows, and the extrapolation needs "
                    f"{2 * shrink * (2 if with_interval else 1)} or more in each class (2 in each of its subsamples of "
                    f"1/{shrink} of {where.removeprefix('each ')})")
    return None


def refuse(reason: str, with_interval: bool) -> ValueError:
    """The error of an explicit estimator="ksg-extrapolated" that cannot run, for `reason`
    (:func:`obstacle`), naming what the user can change."""
    also = " (or confidence=None, which needs half the rows)" if with_interval and "half-sample" in reason else ""
    return ValueError(f"estimator='ksg-extrapolated' cannot run here: {reason}; use estimator='ksg'{also}")


def level_groups(n: int, levels: int, rng, strata: np.ndarray | None = None) -> list[list[np.ndarray]]:
    """For each level j, 2^j disjoint sorted row sets of about n / 2^j rows covering the rows.

    One random order of the rows (within each stratum when `strata` is given) is dealt round-robin
    into the groups, so every group of every level holds its share of each class.
    """
    if strata is None:
        order = rng.permutation(n)
    else:
        order = np.concatenate([rng.permutation(np.flatnonzero(strata == c)) for c in np.unique(strata)])
    out = []
    for j in range(levels):
        g = 1 << j
        out.append([np.sort(order[i::g]) for i in range(g)])
    return out


@dataclass(frozen=True)
class Extrapolation:
    """The fit behind an extrapolated estimate, for each value of the core (columns).

    sizes: mean rows per subsample at each level (n first); means: (levels, values) the level
    means; intercepts: the extrapolated values; lack_of_fit: standard error of each intercept from
    the fit's residuals (0 with two levels: a line through two points has none).
    """

    sizes: np.ndarray
    means: np.ndarray
    intercepts: np.ndarray
    lack_of_fit: np.ndarray


def fit_line(sizes: np.ndarray, means: np.ndarray, exponents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares intercepts of means[:, v] = a_v + b_v sizes^(-exponents[v]), and their
    residual-based standard errors."""
    levels, values = means.shape
    intercepts, lack = np.empty(values), np.zeros(values)
    for v in range(values):
        design = np.column_stack([np.ones(levels), sizes ** -exponents[v]])
        coef, *_ = np.linalg.lstsq(design, means[:, v], rcond=None)
        intercepts[v] = coef[0]
        if levels > 2:
            resid = means[:, v] - design @ coef
            sigma2 = float(resid @ resid) / (levels - 2)
            lack[v] = np.sqrt(sigma2 * np.linalg.inv(design.T @ design)[0, 0])
    return intercepts, lack


def extrapolate_nats(
    core: Callable[[np.ndarray], np.ndarray],
    rows: np.ndarray,
    exponents,
    rng,
    levels: int = LEVELS,
    strata: np.ndarray | None = None,
) -> Extrapolation:
    """Extrapolate ``core(row subset) -> values`` (one value or an array) over subsamples of `rows`
    to n -> inf, value v with bias exponent ``exponents[v]`` (:func:`bias_exponent`).

    strata: label codes of `rows` (so every subsample keeps the class proportions), or None.
    """
    rows = np.asarray(rows)
    exponents = np.atleast_1d(np.asarray(exponents, dtype=np.float64))
    check_levels(rows.size, levels)
    groups = level_groups(rows.size, levels, rng, strata)
    sizes = np.array([np.mean([g.size for g in level]) for level in groups])
    with stages(levels, "extrapolation level") as stage:
        means = np.array([stage.done(np.mean([np.atleast_1d(core(rows[g])) for g in level], axis=0))
                          for level in groups])
    if means.shape[1] != exponents.size:
        raise ValueError(f"the core returns {means.shape[1]} values but {exponents.size} exponents were given")
    intercepts, lack = fit_line(sizes, means, exponents)
    return Extrapolation(sizes=sizes, means=means, intercepts=intercepts, lack_of_fit=lack)


def model_stderr(jackknife, lack_of_fit, correction):
    """Standard error of an extrapolated estimate: the sampling spread (`jackknife`, the half-sample
    jackknife of the whole extrapolation), the fit's `lack_of_fit` and the power law's own error,
    MODEL_SPREAD * |correction|, in quadrature. Elementwise on arrays."""
    return np.sqrt(np.square(jackknife) + np.square(lack_of_fit) + np.square(MODEL_SPREAD * np.asarray(correction)))


@dataclass(frozen=True)
class Extrapolated:
    """An extrapolated estimate with its interval's parts, in nats.

    values: the extrapolated values of the core's outputs, followed (``difference=True``) by the
    difference of the first two; bias: the corrections, extrapolated minus full-sample estimate, of
    the core's outputs; stderr: the standard errors of ``values`` (None without an interval): the
    half-sample jackknife of the whole extrapolation (``sampling``), the fit's lack of fit and
    :data:`MODEL_SPREAD` times the correction in quadrature (for the difference, the two terms'
    lack of fit and corrections in quadrature); fit: the fit on all rows; exponents: 2 / D of each
    output.
    """

    values: np.ndarray
    bias: np.ndarray
    stderr: np.ndarray | None
    sampling: np.ndarray | None
    fit: Extrapolation
    exponents: list[float]

    @property
    def subsample_sizes(self) -> str:
        """The rows of each level, largest first, as text ("2048, 1024, 512, 256")."""
        return ", ".join(str(round(m)) for m in self.fit.sizes)


def extrapolate_estimate(core: Callable[[np.ndarray], np.ndarray], n: int, dims, rng, *,
                         strata: np.ndarray | None = None, confidence: float | None = None, n_subsamples: int = 20,
                         difference: bool = False) -> Extrapolated:
    """The extrapolation of ``core(rows) -> values`` (nats, one per entry of `dims`, the dimension
    each value's neighbour search runs in) over n rows to n -> inf, with the interval when
    `confidence` is set: the half-sample jackknife (`n_subsamples` half-samples, stratified by
    `strata` when given) of the whole procedure, widened by :func:`model_stderr`.

    rng draws the subsample groups of the full fit first, then the half-samples and their groups.
    difference: the core returns two values and their difference (first minus second) is estimated
    with them, from the same subsamples. Refuses (ValueError) when the smallest subsample, of the
    half-samples with an interval, would hold fewer than MIN_ROWS rows, or a class too few to keep
    2 rows in each (:func:`obstacle`, :func:`refuse`).
    """
    reason = obstacle({}, n, strata, confidence is not None)
    if reason is not None:
        raise refuse(reason, confidence is not None)
    exponents = [bias_exponent(d) for d in dims]

    def extrapolation(rows):
        return extrapolate_nats(core, rows, exponents, rng, LEVELS, None if strata is None else strata[rows])

    def values(fit):
        a = fit.intercepts
        return np.array([a[0], a[1], a[0] - a[1]]) if difference else a

    fit = extrapolation(np.arange(n))
    bias = fit.intercepts - fit.means[0]
    stderr = sampling = None
    if confidence is not None:
        sampling = interval.subsample_spread(lambda rows: values(extrapolation(rows)), n, rng, n_subsamples,
                                             strata=strata)
        interval.warn_if_no_spread(sampling)
        lack, correction = fit.lack_of_fit, bias
        if difference:
            lack, correction = np.append(lack, math.hypot(*lack)), np.append(bias, math.hypot(*bias))
        stderr = model_stderr(sampling, lack, correction)
    return Extrapolated(values=values(fit), bias=bias, stderr=stderr, sampling=sampling, fit=fit, exponents=exponents)


@dataclass(frozen=True)
class ExtrapolatedMIResult(MIResult):
    """The :class:`~cchmi.results.MIResult` of :func:`extrapolated_mi`, with the correction it added.

    bias: the extrapolated minus the full-sample estimate, in ``unit``; interval_note: what the
    interval covers (None without one).
    """

    bias: float | None = None
    interval_note: str | None = None
    reliability: Reliability | None = None


def extrapolated_mi(x, y, opts: KnnOptions, *, labels: bool = False) -> ExtrapolatedMIResult:
    """"ksg-extrapolated" for one pair: KSG-1 of I(X; Y), or Ross's estimate of I(X; labels) with
    ``labels=True`` (y then holds the labels), extrapolated to n -> inf by
    :func:`extrapolate_estimate` (D = d_x + d_y, or d_x for labels), under `opts` (k, ties, base,
    random_state, backend, confidence, n_subsamples; the interval is refused below 1024 rows, the
    estimate below 512). One random stream jitters the samples, then draws the subsamples.

    D counts the non-constant columns only (:func:`~cchmi.estimators.reliability.informative_dims`).
    Refused (ValueError, :func:`refuse`) where :func:`obstacle` says it cannot run (tied rows, too
    few rows, too small classes). ``reliability``: unreliable when an estimate of I(X; labels) is
    above the labels' entropy (:func:`~cchmi.estimators.reliability.label_ceiling_reason`)."""
    start = time.perf_counter()
    samples = validate_samples({"x": x} if labels else {"x": x, "y": y})
    if labels:
        p = prepare(samples, opts, labels=("y", y))
        (xp,), codes, yp = p.arrays, p.codes, None
        class_sizes(codes, "y")
    else:
        p = prepare(samples, opts)
        (xp, yp), codes = p.arrays, None
    dim = sum(informative_dims(a) for a in samples.values())
    be, k, conf = p.be, p.k, p.opts.confidence
    if conf is not None and codes is not None:
        interval.check_interval_classes(np.bincount(codes))
    reason = obstacle(samples, p.n, codes, conf is not None)
    if reason is not None:
        raise refuse(reason, conf is not None)

    def core(rows):
        if yp is None:
            return mixed_nats(be, be.take(xp, rows), codes[rows], k, p.opts.ties)
        return ksg_nats(be, be.take(xp, rows), be.take(yp, rows), k, 1, p.opts.ties)

    est = extrapolate_estimate(core, p.n, [dim], p.rng, strata=codes, confidence=conf,
                               n_subsamples=p.opts.n_subsamples)
    scale = 1.0 / math.log(p.opts.base)
    value = float(est.values[0]) * scale
    se = lo = hi = note = None
    if conf is not None:
        se = float(est.stderr[0]) * scale
        z = interval.z_value(conf)
        lo, hi = value - z * se, value + z * se
        note = (f"extrapolated to n -> inf from subsamples of {est.subsample_sizes} rows (bias exponent 2/D = "
                f"{est.exponents[0]:.3g}); the half-sample jackknife of the extrapolation, widened by the fit's lack "
                f"of fit and by {MODEL_SPREAD:g} times the correction (the power law's error): s.e. {se:.3g}, "
                f"{est.sampling[0] * scale:.3g} of it sampling")
    return ExtrapolatedMIResult(
        estimate=value, n=p.n, k=k, estimator=("ross" if labels else "ksg1") + "-extrapolated", backend=be.name,
        seconds=time.perf_counter() - start, unit=interval.unit_name(p.opts.base), stderr=se, ci_low=lo,
        ci_high=hi, confidence=conf if se is not None else None,
        n_subsamples=p.opts.n_subsamples if se is not None else None,
        bias=float(est.bias[0]) * scale, interval_note=note,
        reliability=Reliability.of([None if codes is None else label_ceiling_reason(
            float(est.values[0]), codes, None if est.stderr is None else float(est.stderr[0]))]))
