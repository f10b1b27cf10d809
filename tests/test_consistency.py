"""The unreliability flag of issue 24: cchmi.mi's and cch's self-consistency checks
(cchmi.estimators.consistency) in place of the blanket rule past 32 dimensions a side."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import cchmi
from cchmi.data import correlated_gaussian
from cchmi.estimators import consistency
from cchmi.estimators.choice import unmeasured_reason
from cchmi.estimators.reliability import Reliability


def _wide(n=2000, dim=64, mi=5.0, seed=0):
    g = correlated_gaussian(n, dim, dim, mi=mi, random_state=seed)
    return g.x, g.y


def test_flag_raised_on_a_constructed_failure():
    # 64+64 Gaussian, 5 nats, n = 2000: KSG-1 is far low (0.3 nats); the checks say so.
    x, y = _wide()
    r = cchmi.mi(x, y, estimator="ksg")
    assert r.estimate < 1.0 and not r.reliability.reliable
    assert not any("outside the dimensions" in reason for reason in r.reliability.reasons)  # measured, not ruled
    assert set(r.reliability.checks["I(X; Y)"]) == {*consistency.CHECK_NAMES, "seconds"}
    assert any(reason.startswith("additivity: 2 independent copies") for reason in r.reliability.reasons)
    assert cchmi.load_result(r.to_json()) == r


def test_flag_not_raised_on_an_easy_case():
    g = correlated_gaussian(2000, 2, 2, mi=0.5, random_state=1)
    r = cchmi.mi(g.x, g.y, estimator="ksg", checks="all")
    assert abs(r.estimate - 0.5) < 0.1
    assert r.reliability.reliable and r.reliability.reasons == ()
    assert set(r.reliability.checks["I(X; Y)"]) == {*consistency.CHECK_NAMES, "seconds"}


def _spy(monkeypatch):
    calls = []

    def spy(*args, **kwargs):
        calls.append(args)
        return [], {}

    monkeypatch.setattr(sys.modules["cchmi.estimators.select"], "run_checks", spy)
    monkeypatch.setattr(sys.modules["cchmi.cch"], "run_checks", spy)
    return calls


def test_checks_none_runs_none_and_auto_runs_only_past_the_measured_dimensions(monkeypatch):
    calls = _spy(monkeypatch)
    x, y = _wide(n=600, dim=40, mi=1.0)
    r = cchmi.mi(x, y, estimator="ksg", checks="none")
    assert calls == [] and r.reliability.reasons == (unmeasured_reason((40, 40)),) and r.reliability.checks is None
    labels = (y[:, 0] > 0).astype(int)
    c = cchmi.cch(x, y[:, :8], labels, checks="none", confidence=None)
    assert calls == [] and c.verdict == "undecided" and c.reliability.reasons == (unmeasured_reason((40, 8)),)
    narrow = cchmi.mi(x[:, :4], y[:, :4], estimator="ksg")  # "auto": not past 32 columns, nothing run
    assert calls == [] and narrow.reliability.reliable and narrow.reliability.checks is None
    cchmi.mi(x, y, estimator="ksg")
    cchmi.mi(x[:, :4], y[:, :4], estimator="ksg", checks="all")
    assert len(calls) == 2


def test_bad_checks_values_are_refused_by_name():
    x, y = _wide(n=200, dim=2, mi=0.5)
    labels = (y[:, 0] > 0).astype(int)
    for bad in ("some", None, 1):
        with pytest.raises((ValueError, TypeError), match="checks"):
            cchmi.mi(x, y, checks=bad)
        with pytest.raises((ValueError, TypeError), match="checks"):
            cchmi.cch(x, y, labels, checks=bad)


def test_cch_auto_is_undecided_when_a_checked_term_fails():
    # A 64-column teacher carrying 5 nats about an 8-column student: I(T; S) by plain KSG-1 is far low;
    # the labels term is on 8 columns. Before, the width rule alone said "undecided"; now the checks do.
    rng = np.random.default_rng(3)
    x, y = _wide(n=2000, dim=64, mi=5.0, seed=3)
    student = y[:, :8] + 0.1 * rng.standard_normal((2000, 8))
    labels = (student[:, 0] > 0).astype(int)
    r = cchmi.cch(x, student, labels, estimator="auto", confidence=None)
    assert r.estimator_ts == "ksg1" and r.verdict == "undecided" and not r.reliability.reliable
    assert all(reason.startswith("I(T; S): ") for reason in r.reliability.reasons)
    assert set(r.reliability.checks) == {"I(T; S)"} and cchmi.load_result(r.to_json()) == r


def test_cch_wide_labels_term_stays_unreliable_unchecked():
    x, y = _wide(n=800, dim=40, mi=1.0)
    labels = (y[:, 0] > 0).astype(int)
    r = cchmi.cch(x[:, :4], y, labels, confidence=None, checks="all")
    assert not r.reliability.reliable and "outside the dimensions" in r.reliability.reasons[0]
    assert "checks cover continuous pairs only" in r.reliability.reasons[0]


def test_each_check_on_a_fake_estimator():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((400, 8)), rng.standard_normal((400, 8))
    width = lambda a, b: 0.1 * (a.shape[1] + b.shape[1])  # noqa: E731 - "information" shrinking with nothing

    # More for a projection than for the whole: data processing fails.
    reason, numbers = consistency.data_processing(x, y, lambda a, b: 2.0 - width(a, b), 0.4, None, rng)
    assert reason.startswith("data processing:") and numbers["projected"] == pytest.approx(1.2)
    assert consistency.data_processing(x, y, width, 1.6, None, rng)[0] is None
    # An estimate that does not double on two copies: additivity fails; one that does passes.
    halves = (np.arange(200), np.arange(200, 400))
    reason, numbers = consistency.additivity(x, y, lambda a, b: 8 / a.shape[1], halves, None, 400)
    assert "gave 0.5 nats, 0.5x of one copy's 1, expected 2x" in reason and numbers["ratio"] == 0.5
    assert "falls short" in reason
    assert consistency.additivity(x, y, lambda a, b: a.shape[1] / 8, halves, None, 400)[0] is None
    # Blind to a planted pair of 1 nat (one more column a side): fails; seeing it passes.
    reason, numbers = consistency.planted(x, y, lambda a, b: 0.3, 0.3, None, rng)
    assert reason.startswith("planted signal:") and numbers["response"] == 0.0
    assert consistency.planted(x, y, lambda a, b: 0.3 + (a.shape[1] - 8), 0.3, None, rng)[0] is None
    # An extrapolation that added more than MAX_LEAP times its plain estimate.
    assert consistency.leap(3.0, 2.9)[0].startswith("extrapolation: the correction of 2.9 nats is 29 times")
    assert consistency.leap(3.0, 1.5)[0] is None
    # An estimate growing with the rows: stability fails.
    reason, _ = consistency.stability(x, y, lambda a, b: a.shape[0] / 400, 1.0, 0.5, np.arange(100), None)
    assert reason.startswith("stability: the estimate moved from 0.25 nats on n/4 = 100 rows to 0.5 on n/2")
    # A check whose estimate cannot run is recorded, not failed.

    def refuses(a, b):
        raise ValueError("too few rows")

    reasons, record = consistency.run_checks(x, y, refuses, 1.0)
    assert reasons == [] and record["additivity"] == {"error": "too few rows"}


def test_reliability_keeps_the_checks_numbers():
    r = Reliability.of(["additivity: ..."], {"I(X; Y)": {"additivity": {"ratio": 1.3}}})
    assert not r.reliable and r.checks["I(X; Y)"]["additivity"]["ratio"] == 1.3
    assert cchmi.load_result(r.to_json()) == r and Reliability.of([], {}).checks is None


def test_cch_checks_both_terms_for_a_continuous_target():
    x, y = _wide(n=800, dim=6, mi=1.0)
    r = cchmi.cch(x[:, :3], x[:, 3:], y, labels_kind="continuous", confidence=None, checks="all")
    assert set(r.reliability.checks) == {"I(T; S)", "I(S; Y)"}
    for term in ("I(T; S)", "I(S; Y)"):
        assert set(r.reliability.checks[term]) == {*consistency.CHECK_NAMES, "seconds"}
    assert all(reason.startswith(("I(T; S): ", "I(S; Y): ")) for reason in r.reliability.reasons)


def test_the_flag_does_not_depend_on_asking_for_an_interval():
    """hd-gauss-dense-64-0.5 (truth 0.5) at n = 5000: the extrapolation gave 0.02, flagged without an
    interval and "reliable" with confidence=0.9, whose interval (the model's error included) was
    +/- 0.86 wide and widened every check's tolerance."""
    from cchmi.data.hd_tasks import gauss_dense

    s = gauss_dense(64, 0.5).sample(5000, 0)
    plain = cchmi.mi(s.x, s.y, estimator="ksg-extrapolated")
    interval = cchmi.mi(s.x, s.y, estimator="ksg-extrapolated", confidence=0.9)
    assert plain.estimate == interval.estimate < 0.1
    assert not plain.reliability.reliable and not interval.reliability.reliable
