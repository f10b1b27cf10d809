"""Self-consistency checks of an MI estimate: properties every true I(X; Y) has, tested on the estimator.

An estimator biased low in high dimension (kNN at 64+ columns a side) breaks properties that the
truth cannot break, and the breaks are measurable without knowing the truth. Each check reruns the
estimate (the same estimator, ``estimate(x, y) -> nats``) on transformed rows and compares:

* data processing (:func:`data_processing`): X and Y each multiplied by a random Gaussian matrix to
  half their non-constant columns (at least 1). I(XP; YQ) <= I(X; Y) for any P, Q; an estimator
  that loses more to the dimension than the projection loses in information scores the projection
  higher. Fails when the projection is above the estimate by more than the tolerance.
* additivity (:func:`additivity`): the rows split into two random halves A and B, stacked side by
  side ([X_A, X_B] against [Y_A, Y_B], independent copies at twice the columns): the truth is twice
  I(X; Y). Fails when the stacked estimate is off twice the estimate on half A by more than the
  tolerance (a shortfall the doubled dimension made, or the overshoot of an unstable correction).
* planted signal (:func:`planted`): one column appended to each side, a Gaussian pair with
  :data:`PLANTED_NATS` of MI independent of (X, Y): the truth grows by exactly that. Fails when
  the estimate's response (its growth over PLANTED_NATS) is off 1 by more than
  :data:`PLANTED_TOL`: an estimator blind to a whole nat in one coordinate among the others cannot
  be trusted with the rest (the one check that sees an estimate stuck near 0 where the truth is not).
* extrapolation leap (:func:`leap`, extrapolated estimates only): a correction more than
  :data:`MAX_LEAP` times the plain estimate it was added to (calibration seed 0: where it overshot the
  64-dim suite's truths 1.7-5.5 times, it had added 2.8-11 times the plain value; on the catalogue's
  tasks up to 25 dims a side, within 15% of the truth, at most 4.7 times).
* subsample stability (:func:`stability`): the estimate on a random quarter of the rows against the
  full estimate. A consistent estimator's bias shrinks with n; one that still moves by more than
  the tolerance between n/4 and n is far from its limit. Reuses half A's estimate for the record.

The tolerance of the data-processing, additivity and stability comparisons is
``max(REL_TOL * |I|, ABS_TOL) + 3 s.e.`` (ADDITIVITY_TOL for additivity; s.e. the standard error of
the full estimate when it has one, scaled by sqrt(n / m) for the estimates on m rows); the
constants were chosen on the high-dimensional suite and the low-dimensional catalogue (seed 0)
and measured on another sample (seed 1): bench/bench_flag.py, bench/results/flag_calibration/.

Not checked: agreement with a second family. The Gaussian/CCA estimate is no bound of I(X; Y) off
Gaussian data (it is above the truth for some non-Gaussian pairs and below for others), and the
neural bounds cost minutes where these checks cost seconds and are themselves low in high dimension
(SMILE 26-94% low at 64 columns a side: bench/results/accuracy_hd), so their disagreement would
not say which one is wrong.

:func:`run_checks` runs the four and returns the reasons (for a
:class:`~cchmi.estimators.reliability.Reliability`) and the numbers of each (:data:`CHECK_NAMES`).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable

import numpy as np

from cchmi.estimators.reliability import as_host, informative_dims

CHECKS = ("auto", "all", "none")
"""The values of the ``checks`` option of :func:`cchmi.mi` and :func:`cchmi.cch`: "auto" runs the
checks where a continuous side is wider than :data:`~cchmi.estimators.choice.MEASURED_DIMS`
columns, "all" on every continuous pair, "none" on none (a side wider than MEASURED_DIMS then
marks the result unreliable unchecked)."""

CHECK_NAMES = ("data processing", "additivity", "planted signal", "stability")

REL_TOL = 0.15
"""Relative tolerance of the data-processing and stability checks (a share of the full estimate)."""

ADDITIVITY_TOL = 0.5
"""Relative tolerance of the additivity check (a share of twice one copy's estimate): two copies
giving between 1x and 3x one copy pass."""

ABS_TOL = 0.05
"""Absolute tolerance of every check in nats (small estimates' noise)."""

MAX_LEAP = 5.0
"""The largest extrapolation correction, as a multiple of the plain estimate it was added to
(:func:`leap`)."""

PLANTED_NATS = 1.0
"""MI (nats) of the pair :func:`planted` appends."""

PLANTED_TOL = 0.7
"""How far the response to the planted pair may be from 1 (its share of PLANTED_NATS seen)."""

Estimate = Callable[[np.ndarray, np.ndarray], float]


def tolerance(reference: float, stderr: float | None, rows: int, n: int, relative: float = REL_TOL) -> float:
    """The slack of a comparison with `reference` (nats; `stderr` its standard error at n rows, or
    None) for an estimate on `rows` rows: max(relative * |reference|, ABS_TOL) + 3 s.e. scaled to
    `rows`."""
    noise = 0.0 if stderr is None else 3.0 * stderr * math.sqrt(n / max(rows, 1))
    return max(relative * abs(reference), ABS_TOL) + noise


def _projection(a: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    d = informative_dims(a)
    m = max(1, d // 2)
    return a @ rng.standard_normal((a.shape[1], m)), m


def data_processing(x, y, estimate: Estimate, reference: float, stderr: float | None, rng) -> tuple[str | None, dict]:
    """(reason or None, numbers): the estimate on X and Y projected to half their non-constant
    columns against `reference`, the estimate on all of them."""
    (xp, mx), (yp, my) = _projection(x, rng), _projection(y, rng)
    value = float(estimate(xp, yp))
    n = x.shape[0]
    slack = tolerance(reference, stderr, n, n)
    numbers = dict(projected=value, full=float(reference), dims_x=mx, dims_y=my, tolerance=slack)
    if value <= reference + slack:
        return None, numbers
    return (f"data processing: a random projection to {mx}+{my} dims gave {value:.3g} nats, above the "
            f"{reference:.3g} of all {x.shape[1]}+{y.shape[1]} (tolerance {slack:.2g}): no function of the data "
            f"carries more information, so the estimate is too low"), numbers


def additivity(x, y, estimate: Estimate, halves: tuple[np.ndarray, np.ndarray], stderr: float | None,
               n: int) -> tuple[str | None, dict]:
    """(reason or None, numbers): the estimate on half A of the rows against the estimate on the
    two halves side by side (independent copies: twice the information)."""
    a, b = halves
    one = float(estimate(x[a], y[a]))
    two = float(estimate(np.hstack([x[a], x[b]]), np.hstack([y[a], y[b]])))
    slack = tolerance(2 * one, stderr, a.size, n, ADDITIVITY_TOL)
    ratio = two / one if one > 0 else None
    numbers = dict(one_copy=one, two_copies=two, ratio=ratio, tolerance=slack)
    if abs(two - 2 * one) <= slack:
        return None, numbers
    times = "no multiple" if ratio is None else f"{ratio:.3g}x"
    way = "falls short" if two < 2 * one else "overshoots"
    return (f"additivity: 2 independent copies ({2 * x.shape[1]} columns) gave {two:.3g} nats, {times} of one copy's "
            f"{one:.3g}, expected 2x (tolerance {slack:.2g} nats): the estimate {way} as the dimension "
            f"grows"), numbers


def planted(x, y, estimate: Estimate, reference: float, stderr: float | None, rng) -> tuple[str | None, dict]:
    """(reason or None, numbers): the estimate with a Gaussian pair of :data:`PLANTED_NATS` appended
    (one column a side, independent of the rows) against `reference` + PLANTED_NATS."""
    n = x.shape[0]
    rho = math.sqrt(1.0 - math.exp(-2.0 * PLANTED_NATS))
    u = rng.standard_normal(n)
    v = rho * u + math.sqrt(1.0 - rho**2) * rng.standard_normal(n)
    value = float(estimate(np.hstack([x, u[:, None]]), np.hstack([y, v[:, None]])))
    response = (value - reference) / PLANTED_NATS
    slack = PLANTED_TOL + (0.0 if stderr is None else 3.0 * math.sqrt(2.0) * stderr / PLANTED_NATS)
    numbers = dict(with_pair=value, full=float(reference), response=response, tolerance=slack)
    if abs(response - 1.0) <= slack:
        return None, numbers
    return (f"planted signal: a pair of {PLANTED_NATS:g} nats in one more column a side moved the estimate from "
            f"{reference:.3g} to {value:.3g} nats, {response:.2g} of what it adds (tolerance {slack:.2g}): the "
            f"estimator does not see information at this dimension"), numbers


def leap(reference: float, correction: float) -> tuple[str | None, dict]:
    """(reason or None, numbers): an extrapolated `reference` whose `correction` (extrapolated minus
    plain, nats) is more than :data:`MAX_LEAP` times the plain estimate (at least ABS_TOL)."""
    plain = reference - correction
    times = correction / max(abs(plain), ABS_TOL)
    numbers = dict(plain=plain, correction=correction, times=times)
    if times <= MAX_LEAP:
        return None, numbers
    return (f"extrapolation: the correction of {correction:.3g} nats is {times:.3g} times the plain estimate "
            f"{plain:.3g} (at most {MAX_LEAP:g}): the estimate is a leap beyond what the rows show"), numbers


def stability(x, y, estimate: Estimate, reference: float, half_value: float | None, quarter: np.ndarray,
              stderr: float | None) -> tuple[str | None, dict]:
    """(reason or None, numbers): the estimate on the `quarter` rows against `reference` (all rows)."""
    n = x.shape[0]
    value = float(estimate(x[quarter], y[quarter]))
    slack = tolerance(reference, stderr, quarter.size, n)
    drift = reference - value
    numbers = dict(quarter=value, half=half_value, full=float(reference), tolerance=slack)
    if abs(drift) <= slack:
        return None, numbers
    half = "" if half_value is None else f" to {half_value:.3g} on n/2"
    return (f"stability: the estimate moved from {value:.3g} nats on n/4 = {quarter.size} rows{half} and "
            f"{reference:.3g} on {n} (by more than the tolerance {slack:.2g}): far from its n -> inf "
            f"value"), numbers


def run_checks(x, y, estimate: Estimate, reference: float, stderr: float | None = None, *,
               correction: float | None = None, random_state=0) -> tuple[list[str], dict]:
    """Run :func:`data_processing`, :func:`additivity`, :func:`planted` and :func:`stability` on the
    real (n, d_x), (n, d_y) samples `x`, `y` whose estimate by `estimate` (nats) is `reference` (its
    standard error `stderr`, or None), and for an extrapolated estimate :func:`leap` on its
    `correction` (nats). Returns (reasons of the failed checks, {check name: its numbers, plus
    "seconds"}). A check that cannot run (an estimate that raises ValueError, e.g. too few rows for
    the extrapolation on a quarter) is recorded with its "error" and gives no reason. The standard
    error widens the tolerances (3 s.e.) for a plain estimate only: an extrapolated estimate's (with
    a `correction`) includes the extrapolation's model error, 0.5 nats on a 0.02-nat estimate of the
    64-dim suite, which would pass an estimate 96% low; its checks use the tolerances they were
    calibrated with, as without an interval. The estimates
    inside the checks warn of nothing: the estimate being checked already warned of its data, and
    their transformed copies (projections, stacked halves) would only repeat it in other words."""
    start = time.perf_counter()
    if correction is not None:  # an extrapolated interval holds the model's error too: it would blind the checks
        stderr = None
    x = np.asarray(as_host(x), dtype=np.float64)
    y = np.asarray(as_host(y), dtype=np.float64)
    rng = np.random.default_rng(random_state)
    n = x.shape[0]
    order = rng.permutation(n)
    halves = (np.sort(order[: n // 2]), np.sort(order[n // 2: 2 * (n // 2)]))
    quarter = np.sort(rng.choice(halves[0], size=n // 4, replace=False))
    reasons, record = [], {}
    if correction is not None:
        reason, record["extrapolation"] = leap(reference, correction)
        reasons.extend(filter(None, [reason]))
    for name, run in (
            ("data processing", lambda: data_processing(x, y, estimate, reference, stderr, rng)),
            ("additivity", lambda: additivity(x, y, estimate, halves, stderr, n)),
            ("planted signal", lambda: planted(x, y, estimate, reference, stderr, rng)),
            ("stability", lambda: stability(x, y, estimate, reference, record["additivity"].get("one_copy"),
                                            quarter, stderr))):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                reason, numbers = run()
        except ValueError as exc:
            reason, numbers = None, {"error": str(exc)}
        record[name] = numbers
        if reason is not None:
            reasons.append(reason)
    record["seconds"] = time.perf_counter() - start
    return reasons, record


def knn_estimate(estimator: str, k: int, backend: str, random_state) -> Estimate:
    """The estimate(x, y) -> nats of the kNN `estimator` ("ksg": KSG-1; "ksg-extrapolated": KSG-1
    extrapolated to n -> inf), without an interval, for the checks of a result it produced."""
    from cchmi.estimators.extrapolate import extrapolated_mi
    from cchmi.estimators.ksg import ksg_mi
    from cchmi.estimators.options import KnnOptions

    if estimator == "ksg-extrapolated":
        opts = KnnOptions(k=k, backend=backend, random_state=random_state)
        return lambda a, b: extrapolated_mi(a, b, opts).estimate
    return lambda a, b: ksg_mi(a, b, k=k, backend=backend, random_state=random_state).estimate


def wanted(checks: str, dims: tuple[int, int], measured: int) -> bool:
    """Whether `checks` ("auto", "all" or "none", validated) runs on a pair of `dims` columns:
    "auto" where a side is wider than `measured`."""
    return checks == "all" or (checks == "auto" and max(dims) > measured)
