"""Kozachenko-Leonenko entropy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import make_points

import cchmi
from cchmi import reference

# Closed-form Gaussian entropies; bound = bias at this n (KL is nearly unbiased in low d) + 4 s.e.
GAUSSIAN_CASES = [(1, 3000, 0.03), (3, 3000, 0.06), (8, 4000, 0.25)]


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
@pytest.mark.parametrize("kind,n,d", [("gauss", 300, 1), ("scaled", 257, 4), ("gauss", 3, 2), ("gauss", 64, 33)])
def test_matches_reference(kind, n, d, backend):
    x = make_points(kind, n, d, np.float64)
    k = min(3, n - 1)
    got = cchmi.entropy(x, k=k, standardize=False, ties="none", backend=backend)
    assert got.estimator == "kl"
    assert got.estimate == pytest.approx(reference.entropy(x, k), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("d,n,bound", GAUSSIAN_CASES)
def test_gaussian_entropy(d, n, bound):
    sd = np.linspace(0.5, 3.0, d)
    x = np.random.default_rng(d).standard_normal((n, d)) * sd
    truth = 0.5 * d * math.log(2 * math.pi * math.e) + float(np.log(sd).sum())
    assert abs(cchmi.entropy(x).estimate - truth) < bound


def test_standardize_estimates_entropy_of_data_as_given():
    x = np.random.default_rng(0).standard_normal((1000, 2))
    h = cchmi.entropy(x).estimate
    assert cchmi.entropy(5.0 * x).estimate == pytest.approx(h + 2 * math.log(5.0), abs=1e-9)
    assert cchmi.entropy(x, standardize=False).estimate == pytest.approx(h, abs=0.05)


def test_duplicates_without_jitter_raise():
    x = np.repeat(np.arange(10.0), 5)
    with pytest.raises(ValueError, match="distance 0"):
        cchmi.entropy(x, ties="none")
    with pytest.warns(cchmi.InputWarning, match="looks like discrete labels"):
        assert np.isfinite(cchmi.entropy(x).estimate)
    with pytest.raises(ValueError, match="ties"):
        cchmi.entropy(x, ties="exact")


def test_bits():
    x = np.random.default_rng(0).standard_normal(500)
    assert cchmi.entropy(x, base=2).estimate == pytest.approx(cchmi.entropy(x).estimate / math.log(2))


def test_class_interface():
    x = np.random.default_rng(0).standard_normal((300, 2))
    assert cchmi.KLEntropy(k=4).fit(x).entropy_ == cchmi.entropy(x, k=4).estimate
