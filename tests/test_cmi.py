"""Frenzel-Pompe conditional MI."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_points

import cchmi
from cchmi import reference
from cchmi.data import gaussian_mi


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
@pytest.mark.parametrize("kind,n,dims", [("gauss", 300, (1, 1, 1)), ("dup", 200, (2, 1, 2)), ("gauss", 60, (3, 4, 5))])
def test_matches_reference(kind, n, dims, backend):
    pts = make_points(kind, n, sum(dims), np.float64)
    x, y, z = np.split(pts, np.cumsum(dims)[:-1], axis=1)
    got = cchmi.cmi(x, y, z, k=3, standardize=False, ties="none", backend=backend)
    assert got.estimator == "fp"
    assert got.estimate == pytest.approx(reference.cmi(x, y, z, 3), rel=1e-12, abs=1e-12)


def test_gaussian_conditional_mi():
    """I(X;Y|Z) = I(X;(Y,Z)) - I(X;Z) for a Gaussian chain with a direct X-Y link."""
    cov = np.array([[1.0, 0.6, 0.5], [0.6, 1.0, 0.4], [0.5, 0.4, 1.0]])  # order x, y, z
    truth = gaussian_mi(cov, 1) - gaussian_mi(cov[np.ix_([0, 2], [0, 2])], 1)
    est = []
    for seed in range(3):
        s = np.random.default_rng(seed).multivariate_normal(np.zeros(3), cov, size=3000)
        est.append(cchmi.cmi(s[:, 0], s[:, 1], s[:, 2]).estimate)
    assert abs(np.mean(est) - truth) < 0.04, (est, truth)


def test_conditionally_independent_is_near_zero():
    rng = np.random.default_rng(1)
    z = rng.standard_normal(2000)
    x = z + 0.5 * rng.standard_normal(2000)
    y = z + 0.5 * rng.standard_normal(2000)
    assert cchmi.ksg_mi(x, y).estimate > 0.4  # truth: -log(1 - 0.8^2) / 2 = 0.51
    assert abs(cchmi.cmi(x, y, z).estimate) < 0.05


def test_class_interface():
    rng = np.random.default_rng(0)
    x, y, z = rng.standard_normal((3, 200))
    assert cchmi.CMI().fit(x, y, z).mi_ == cchmi.cmi(x, y, z).estimate
