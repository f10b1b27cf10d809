"""cchmi.mi: the auto rules pick what their table says, the choice and its reason are recorded, and
each named estimator is the one it says it is."""

from __future__ import annotations

import numpy as np
import pytest

import cchmi
from cchmi.data import correlated_gaussian, gaussian_classes
from cchmi.estimators import select

# Tolerances (reasons):
EXACT = 1e-12  # the same estimator on the same prepared arrays: identical numbers


@pytest.mark.parametrize("n,dim_x,dim_y,labels,torch_ok,with_interval,expected", [
    (300, 16, 0, True, True, False, "ksg"),  # labels: Ross, never the probe (issue 25)
    (5000, 16, 0, True, True, False, "ksg-extrapolated"),  # labels: dim Y counts 0
    (50_000, 16, 0, True, True, True, "ksg-extrapolated"),  # the SMILE row is for two continuous samples only
    (5000, 16, 0, True, False, False, "ksg-extrapolated"),
    (5000, 3, 0, True, False, False, "ksg"),
    (511, 16, 16, False, True, False, "ksg"),  # too few rows for the extrapolation
    (1023, 16, 16, False, True, True, "ksg"),  # too few for the extrapolation's half-samples
    (1024, 16, 16, False, True, True, "ksg-extrapolated"),
    (5000, 1, 1, False, True, False, "ksg"),
    (5000, 2, 2, False, False, True, "ksg"),
    (5000, 3, 2, False, True, False, "ksg-extrapolated"),  # first size past the low-dimension rule
    (5000, 256, 256, False, True, False, "ksg-extrapolated"),
    (50_000, 16, 16, False, True, True, "neural"),  # many rows, at most 32 dims: SMILE
    (49_999, 16, 16, False, True, True, "ksg-extrapolated"),
    (50_000, 16, 17, False, True, True, "ksg-extrapolated"),
    (50_000, 16, 16, False, False, True, "ksg-extrapolated"),  # no torch
    (50_000, 2, 2, False, True, True, "ksg"),
    (10_000, 64, 64, False, True, True, "diffusion"),  # wide, at most 64 a side, many rows: the diffusion estimate
    (10_000, 33, 2, False, True, False, "diffusion"),
    (9_999, 64, 64, False, True, True, "ksg-extrapolated"),  # its floor is too high below 10,000 rows
    (10_000, 65, 64, False, True, True, "ksg-extrapolated"),  # and past 64 columns
    (10_000, 32, 32, False, True, True, "ksg-extrapolated"),  # not wide
    (10_000, 64, 64, False, False, True, "ksg-extrapolated"),  # no torch
    (10_000, 64, 0, True, True, True, "ksg-extrapolated"),  # labels
])
def test_auto_rules_follow_the_table(n, dim_x, dim_y, labels, torch_ok, with_interval, expected):
    choice, reason = select.mi_auto_estimator(n, dim_x, dim_y, labels, torch_ok, with_interval)
    rule = next(r for r in select.MI_AUTO_RULES if f"[rule '{r[0]}'" in reason)
    assert rule[1] == choice and rule[2] in reason and reason.startswith(f"{n:,} rows")


@pytest.mark.parametrize("n,dim_x,dim_y,labels,expected", [
    (2048, 64, 64, False, "compressed"),
    (2048, 33, 2, False, "compressed"),
    (2047, 64, 64, False, "ksg-extrapolated"),  # halves of 1024 rows, the extrapolation's minimum
    (5000, 32, 32, False, "ksg-extrapolated"),  # not wide
    (5000, 64, 0, True, "ksg-extrapolated"),  # labels
    (10_000, 64, 64, False, "compressed"),  # before the diffusion rule
])
def test_auto_rules_with_low_intrinsic_dimension(n, dim_x, dim_y, labels, expected):
    choice, reason = select.mi_auto_estimator(n, dim_x, dim_y, labels, True, True, low_intrinsic=True)
    rule = next(r for r in select.MI_AUTO_RULES if f"[rule '{r[0]}'" in reason)
    assert rule[1] == choice and rule[2] in reason and reason.startswith(f"{n:,} rows")


def test_auto_compresses_wide_samples_of_low_intrinsic_dimension_only():
    """A 2+2-dim Gaussian (1 nat) embedded linearly in 64 + 64 columns: compress-then-kNN, with the
    measured intrinsic dimensions in the reason; a full-rank 64+64 Gaussian goes on to the
    extrapolation and its self-consistency checks."""
    from cchmi.data.hd_tasks import gauss_dense

    g = correlated_gaussian(2400, 2, 2, mi=1.0, random_state=3)
    rng = np.random.default_rng(4)
    r = cchmi.mi(g.x @ rng.standard_normal((2, 64)), g.y @ rng.standard_normal((2, 64)), confidence=0.9)
    assert r.estimator.startswith("pca-ksg1") and "(TwoNN intrinsic dimension x 1.9, y 2.1)" in r.choice_reason
    assert abs(r.estimate - g.mi) < 0.2 and r.reliability.reliable  # measured 1.046 (halves of 1200 rows)
    full = gauss_dense(64, 2.0).sample(2400, 0)
    r = cchmi.mi(full.x, full.y)
    assert r.estimator == "ksg1-extrapolated" and "[rule 'otherwise'" in r.choice_reason
    assert "intrinsic dimension x" in r.choice_reason and r.reliability.checks is not None
    with pytest.raises(ValueError, match="for labels use 'ksg'"):
        cchmi.mi(full.x, np.arange(2400) % 3, labels=True, estimator="compressed")


def test_auto_takes_the_diffusion_estimate_with_its_control(monkeypatch):
    """10,000 rows of a full-rank 40+40-dim Gaussian: the diffusion rule (after the intrinsic dimension
    ruled compression out), diffusion_mi with its control, whose floor is recorded and decides the
    flag; the kNN checks do not run. diffusion_mi is shrunk to a few seconds (its defaults take minutes)."""
    import cchmi.neural
    from cchmi.neural.diffusion import floor_reason

    real = cchmi.neural.diffusion_mi
    calls = []

    def small(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **{**kwargs, "hidden": 16, "layers": 1, "epochs": 2, "patience": 1, "n_levels": 4})

    monkeypatch.setattr(cchmi.neural, "diffusion_mi", small)
    s = correlated_gaussian(10_000, 40, 40, mi=1.0, transform="rotate", random_state=0)
    r = cchmi.mi(s.x, s.y, confidence=0.9)
    assert r.estimator == "diffusion" and "[rule 'widest side 33-64" in r.choice_reason
    assert "intrinsic dimension x" in r.choice_reason and calls[0]["control"] is True
    floor = r.reliability.checks["permuted-Y control"]["floor"]
    assert list(r.reliability.reasons) == [x for x in [floor_reason(r.estimate, floor, "nats")] if x]
    assert r.ci_low < r.estimate < r.ci_high and "test rows" in r.interval_note
    with pytest.raises(ValueError, match="for labels use 'ksg'"):
        cchmi.mi(s.x, np.arange(10_000) % 3, labels=True, estimator="diffusion")


def test_docstring_table_is_the_rules_table():
    lines = [line.strip() for line in select.mi.__doc__.splitlines()]
    for condition, estimator, _ in select.MI_AUTO_RULES:
        written = condition.replace("dim X", "d_x").replace("dim Y", "d_y")
        (line,) = [line for line in lines if line.startswith(written + "  ")]
        assert line.split()[-1] == estimator


def test_auto_records_the_choice():
    s = correlated_gaussian(1024, 4, 4, mi=1.0, random_state=1)
    r = cchmi.mi(s.x, s.y)
    assert isinstance(r, cchmi.AutoMIResult) and isinstance(r, cchmi.MIResult)
    assert r.estimator == "ksg1-extrapolated" and "[rule 'otherwise'" in r.choice_reason
    assert r.bias is not None and r.interval_note is None  # no interval asked for
    low = correlated_gaussian(600, 1, 1, mi=0.5, random_state=2)
    r = cchmi.mi(low.x, low.y)
    assert r.estimator == "ksg1" and "[rule 'dim X + dim Y <= 4'" in r.choice_reason and r.bias is None
    assert cchmi.mi(low.x, low.y, estimator="ksg").choice_reason is None


def test_named_estimators_are_the_standalone_ones():
    s = correlated_gaussian(700, 2, 3, mi=0.8, random_state=3)
    r = cchmi.mi(s.x, s.y, estimator="ksg", k=4, confidence=0.9, random_state=5)
    ref = cchmi.ksg_mi(s.x, s.y, k=4, confidence=0.9, random_state=5)
    assert r.estimate == pytest.approx(ref.estimate, abs=EXACT) and r.ci_low == pytest.approx(ref.ci_low, abs=EXACT)
    c = gaussian_classes(700, 3, dim=2, random_state=4)
    r = cchmi.mi(c.x, c.y, labels=True, estimator="ksg")
    assert r.estimator == "ross" and r.estimate == pytest.approx(cchmi.mixed_mi(c.x, c.y).estimate, abs=EXACT)


def test_extrapolated_interval_and_labels():
    c = gaussian_classes(2048, 4, dim=6, random_state=7)
    r = cchmi.mi(c.x, c.y, labels=True, estimator="ksg-extrapolated", confidence=0.95, n_subsamples=6)
    plain = cchmi.mi(c.x, c.y, labels=True, estimator="ksg")
    assert r.estimator == "ross-extrapolated" and r.k == 3 and r.n == 2048
    assert r.ci_low < r.estimate < r.ci_high and r.n_subsamples == 6
    assert "extrapolated to n -> inf from subsamples of 2048, 1024, 512, 256 rows" in r.interval_note
    assert r.bias == pytest.approx(r.estimate - plain.estimate, abs=1e-9)
    # Ross shrinks in 6 dimensions; the correction moves towards the truth.
    assert abs(r.estimate - c.mi) < abs(plain.estimate - c.mi)


def test_neural_for_labels_is_the_probe():
    pytest.importorskip("torch")
    c = gaussian_classes(1500, 3, dim=2, random_state=8)
    r = cchmi.mi(c.x, c.y, labels=True, estimator="neural", confidence=0.95)
    assert r.estimator == "probe-linear" and r.k == 0 and "held-out rows" in r.interval_note
    assert abs(r.estimate - c.mi) < 0.1


@pytest.mark.parametrize("kwargs,error,message", [
    (dict(estimator="kde"), ValueError, "estimator must be one of"),
    (dict(labels=1), TypeError, "labels must be True or False"),
    (dict(estimator="ksg-extrapolated", confidence=0.95), ValueError,
     r"each half-sample of the interval has 300 rows.*use estimator='ksg' \(or confidence=None"),
    (dict(k=0), ValueError, "k must be between"),
])
def test_bad_options(kwargs, error, message):
    s = correlated_gaussian(600, 2, 2, mi=0.5, random_state=9)
    with pytest.raises(error, match=message):
        cchmi.mi(s.x, s.y, **kwargs)


def test_bad_inputs():
    s = correlated_gaussian(600, 2, 2, mi=0.5, random_state=9)
    with pytest.raises(ValueError, match="y has 500 rows|x has 600 rows|500"):
        cchmi.mi(s.x, s.y[:500])
    with pytest.raises(ValueError, match="y has a single class"):
        cchmi.mi(s.x, np.zeros(600, dtype=int), labels=True)
