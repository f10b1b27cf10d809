"""Uncertainty: the subsampling standard error / interval, and the permutation test."""

from __future__ import annotations

import numpy as np
import pytest

import cchmi
from cchmi.data import correlated_gaussian, gaussian_classes


def test_interval_fields_and_coverage_shape():
    s = correlated_gaussian(1000, 1, 1, mi=0.5, random_state=0)
    r = cchmi.ksg_mi(s.x, s.y, confidence=0.9, n_subsamples=10)
    assert r.confidence == 0.9 and r.n_subsamples == 10
    assert r.ci_low < r.estimate < r.ci_high
    assert r.ci_high - r.estimate == pytest.approx(r.estimate - r.ci_low)
    assert "90% CI" in str(r)


def test_standard_error_matches_spread_over_independent_samples():
    """The half-sample (delete-d jackknife) s.e. should be the sampling s.d. of the estimator:
    compare its mean to the s.d. over 30 independent samples. With 30 replicates the s.d. itself
    is uncertain by about 13%, so the accepted ratio is [0.6, 1.6]."""
    estimates, stderrs = [], []
    for seed in range(30):
        s = correlated_gaussian(800, 1, 1, mi=0.5, random_state=seed)
        r = cchmi.ksg_mi(s.x, s.y, confidence=0.95, n_subsamples=16, random_state=seed)
        estimates.append(r.estimate)
        stderrs.append(r.stderr)
    ratio = np.mean(stderrs) / np.std(estimates, ddof=1)
    assert 0.6 < ratio < 1.6, ratio


def test_interval_for_every_estimator():
    s = correlated_gaussian(400, 2, 2, mi=0.5, random_state=0)
    c = gaussian_classes(400, 3, random_state=0)
    for r in (cchmi.ksg_mi(s.x, s.y, variant=2, confidence=0.95, n_subsamples=5),
              cchmi.mixed_mi(c.x, c.y, confidence=0.95, n_subsamples=5),
              cchmi.entropy(s.x, confidence=0.95, n_subsamples=5),
              cchmi.cmi(s.x[:, :1], s.y, s.x[:, 1:], confidence=0.95, n_subsamples=5)):
        assert r.stderr > 0 and r.ci_low < r.estimate < r.ci_high


def test_interval_needs_enough_points():
    x = np.arange(8.0)
    with pytest.raises(ValueError, match="half-samples"):
        cchmi.ksg_mi(x, x[::-1], k=5, confidence=0.95)
    with pytest.raises(ValueError, match="4 or more samples"):
        cchmi.mixed_mi(np.arange(10.0), np.r_[np.zeros(7), np.ones(3)], confidence=0.95)


def test_permutation_test_dependent_and_independent():
    s = correlated_gaussian(300, 1, 1, mi=0.5, random_state=0)
    dep = cchmi.permutation_test(s.x, s.y, n_permutations=49)
    assert dep.p_value == pytest.approx(1 / 50)
    assert dep.null.shape == (49,) and np.all(dep.null < dep.estimate)
    assert dep.estimate == cchmi.ksg_mi(s.x, s.y).estimate  # same preparation, same seed
    rng = np.random.default_rng(3)
    ind = cchmi.permutation_test(rng.standard_normal(300), rng.standard_normal(300), n_permutations=49)
    assert ind.p_value > 0.05
    assert "permutations" in str(ind)


def test_permutation_test_mixed():
    c = gaussian_classes(300, 2, separation=1.5, random_state=0)
    r = cchmi.permutation_test(c.x, c.y, estimator="mixed", n_permutations=19)
    assert r.p_value == pytest.approx(1 / 20)
    assert r.estimator == "ross"
    with pytest.raises(ValueError, match="estimator"):
        cchmi.permutation_test(c.x, c.y, estimator="neural")
    with pytest.raises(ValueError, match="n_permutations"):
        cchmi.permutation_test(c.x, c.y, n_permutations=0)


def test_permutation_test_mixed_warns_about_singleton_classes():
    c = gaussian_classes(200, 2, random_state=0)
    labels = c.y.copy()
    labels[0] = 9
    with pytest.warns(RuntimeWarning, match="1 classes have a single sample"):
        cchmi.permutation_test(c.x, labels, estimator="mixed", n_permutations=5)
