"""Properties that every estimate keeps, checked on generated data (hypothesis) across cchmi.mi, cch
and the kNN estimators (issue 25's guarantees):

* no MI estimate lies more than 3 standard errors below 0 without a warning (and, on results that
  carry one, an unreliable mark);
* a labels term never exceeds the labels' entropy: Ross's estimate is at most its own ceiling,
  and cchmi.mi / cch mark any term above it unreliable;
* one outlier row moves an estimate by at most OUTLIER_TOL;
* a permutation of the rows, and float32 against float64, agree within the interval.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cchmi
from cchmi.estimators.interval import BELOW_ZERO_SE
from cchmi.estimators.reliability import label_entropy_ceiling

# Tolerances (nats), each with its reason:
OUTLIER_TOL = 0.03  # one row's digamma terms out of 600 (~1/n each) plus the IQR-vs-s.d. scale of one column
ORDER_SLACK = 1.0  # a permutation or a dtype changes only the jitter draws and roundings: within the half-width
SETTINGS = settings(max_examples=12, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

KINDS = ("gaussian", "independent", "duplicated", "integer", "mixed")


def _sample(kind: str, seed: int, n: int, d: int):
    """(x, y) of one of KINDS: dependent Gaussian, independent, every row repeated, integer-valued,
    and a continuous column beside an integer one."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = 0.7 * x[:, :1] + 0.7 * rng.standard_normal((n, 1))
    if kind == "independent":
        y = rng.standard_normal((n, 1))
    elif kind == "duplicated":
        x, y = np.repeat(x[: n // 3], 3, axis=0), np.repeat(y[: n // 3], 3, axis=0)
    elif kind == "integer":
        x, y = np.round(2 * x), np.round(2 * y)
    elif kind == "mixed":
        x = np.hstack([x[:, :1], np.round(x[:, 1:] if d > 1 else 3 * x)])
    return x, y


def _labels(seed: int, n: int, classes: int, informative: bool, x: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    if informative:
        return np.digitize(x[:, 0], np.quantile(x[:, 0], np.linspace(0, 1, classes + 1)[1:-1]))
    return rng.integers(0, classes, x.shape[0])


def _recorded(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [str(w.message) for w in caught]


def _below(value, stderr) -> bool:
    return stderr is not None and value < -BELOW_ZERO_SE * stderr


samples = st.tuples(st.sampled_from(KINDS), st.integers(0, 2**16), st.integers(60, 400), st.integers(1, 3))


@SETTINGS
@given(samples)
def test_no_mi_estimate_far_below_zero_without_a_warning(case):
    kind, seed, n, d = case
    x, y = _sample(kind, seed, n, d)
    codes = _labels(seed, x.shape[0], 4, seed % 2 == 0, x)
    for name, call in (("ksg_mi", lambda: cchmi.ksg_mi(x, y, confidence=0.95)),
                       ("mixed_mi", lambda: cchmi.mixed_mi(x, codes, confidence=0.95)),
                       ("mi", lambda: cchmi.mi(x, y, estimator="ksg", confidence=0.95))):
        r, messages = _recorded(call)
        if _below(r.estimate, r.stderr):
            assert any("standard errors below 0" in m for m in messages), (name, kind, r)
    c, messages = _recorded(lambda: cchmi.cch(x, y + x[:, :1], codes, confidence=0.95))
    for value, stderr in ((c.i_ts, c.stderr_ts), (c.i_sy, c.stderr_sy)):
        if _below(value, stderr):
            assert any("standard errors below 0" in m for m in messages)
            assert c.reliability is not None and not c.reliability.reliable and c.verdict == "undecided"


@SETTINGS
@given(samples, st.integers(2, 12))
def test_labels_terms_never_above_the_labels_entropy(case, classes):
    kind, seed, n, d = case
    x, y = _sample(kind, seed, n, d)
    codes = _labels(seed, x.shape[0], classes, True, x)
    if np.bincount(codes).min() < 4:
        return
    ceiling = label_entropy_ceiling(codes)
    r, _ = _recorded(lambda: cchmi.mixed_mi(x, codes))
    assert r.estimate <= ceiling + 1e-9
    auto, _ = _recorded(lambda: cchmi.mi(x, codes, labels=True))
    assert auto.estimate <= ceiling + 1e-9 or not auto.reliability.reliable
    c, _ = _recorded(lambda: cchmi.cch(y + x[:, :1], x, codes, estimator="auto", confidence=None))
    assert c.i_sy <= ceiling + 1e-9 or not c.reliability.reliable


@pytest.mark.parametrize("power", [3, 6, 12, 300])
def test_one_outlier_row_moves_an_estimate_within_tolerance(power):
    rng = np.random.default_rng(power)
    x = rng.standard_normal((600, 2))
    y = 0.8 * x[:, :1] + 0.6 * rng.standard_normal((600, 1))
    codes = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0)
    far = x.copy()
    far[17, 1] = 10.0**power
    for estimate in (lambda a: cchmi.ksg_mi(a, y).estimate, lambda a: cchmi.mixed_mi(a, codes).estimate,
                     lambda a: cchmi.mi(a, y, estimator="ksg").estimate,
                     lambda a: cchmi.cch(a, y, codes, confidence=None).i_ts):
        clean = estimate(x)
        with pytest.warns(RuntimeWarning, match="interquartile scale"):
            moved = estimate(far)
        assert abs(moved - clean) <= OUTLIER_TOL


@SETTINGS
@given(st.integers(0, 2**16), st.integers(100, 500), st.integers(1, 3))
def test_row_order_and_dtype_agree_within_the_interval(seed, n, d):
    x, y = _sample("gaussian", seed, n, d)
    r = cchmi.ksg_mi(x, y, confidence=0.95)
    half = r.ci_high - r.estimate
    order = np.random.default_rng(seed).permutation(n)
    shuffled = cchmi.ksg_mi(x[order], y[order], confidence=0.95)
    single = cchmi.ksg_mi(x.astype(np.float32), y.astype(np.float32), confidence=0.95)
    assert abs(shuffled.estimate - r.estimate) <= ORDER_SLACK * half
    assert abs(single.estimate - r.estimate) <= ORDER_SLACK * half
    codes = _labels(seed, n, 3, True, x)
    c = cchmi.cch(x, y, codes)
    c_shuffled = cchmi.cch(x[order], y[order], codes[order])
    assert abs(c_shuffled.gap - c.gap) <= ORDER_SLACK * (c.gap_ci_high - c.gap)


def test_an_estimate_pushed_below_zero_warns_and_makes_cch_undecided(monkeypatch):
    """The check itself on a formula biased by -1 nat (the data give nothing that far below 0)."""
    from cchmi.estimators import cch_terms, ksg

    real = ksg.ksg_nats
    monkeypatch.setattr(ksg, "ksg_nats", lambda *a: real(*a) - 1.0)
    monkeypatch.setattr(cch_terms, "ksg_nats", lambda *a: real(*a) - 1.0)
    x, y = _sample("gaussian", 0, 400, 2)
    with pytest.warns(RuntimeWarning, match="standard errors below 0"):
        r = cchmi.ksg_mi(x, y, confidence=0.95)
    assert _below(r.estimate, r.stderr)
    with pytest.warns(RuntimeWarning, match=r"I\(T; S\) = .* standard errors below 0"):
        c = cchmi.cch(x, y, (x[:, 0] > 0).astype(int))
    assert c.verdict == "undecided" and any("below 0" in reason for reason in c.reliability.reasons)
