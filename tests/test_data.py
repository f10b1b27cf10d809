"""Samplers with known MI and the bundled sample."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cchmi.data import correlated_gaussian, gaussian_classes, gaussian_mi, load_sample


@pytest.mark.parametrize("dx,dy,mi", [(1, 1, 0.3), (3, 2, 1.5), (4, 4, 0.0)])
def test_correlated_gaussian_mi_matches_covariance_formula(dx, dy, mi):
    s = correlated_gaussian(200_000, dx, dy, mi=mi, random_state=0)
    assert s.mi == pytest.approx(mi, abs=1e-12)
    cov = np.cov(np.hstack([s.x, s.y]).T)
    assert gaussian_mi(cov, dx) == pytest.approx(mi, abs=0.01)  # sampling error of the covariance


def test_gaussian_mi_closed_form():
    rho = 0.6
    assert gaussian_mi([[1, rho], [rho, 1]], 1) == pytest.approx(-0.5 * math.log(1 - rho**2), rel=1e-14)
    with pytest.raises(ValueError, match="positive definite"):
        gaussian_mi([[1, 2], [2, 1]], 1)
    with pytest.raises(ValueError, match="square"):
        gaussian_mi(np.ones((2, 3)), 1)


def test_sampler_arguments():
    with pytest.raises(ValueError, match="exactly one of mi"):
        correlated_gaussian(10, 1, 1)
    with pytest.raises(ValueError, match="rho"):
        correlated_gaussian(10, 1, 1, rho=1.0)
    with pytest.raises(ValueError, match="transform"):
        correlated_gaussian(10, 1, 1, rho=0.5, transform="square")
    s = correlated_gaussian(10, 2, 3, rho=0.5, dtype=np.float32, random_state=1)
    assert s.x.shape == (10, 2) and s.y.shape == (10, 3) and s.x.dtype == np.float32
    assert np.array_equal(s.x, correlated_gaussian(10, 2, 3, rho=0.5, dtype=np.float32, random_state=1).x)


def test_gaussian_classes_mi_matches_monte_carlo():
    """Quadrature truth against a Monte Carlo average of log p(l | x) / p(l) on the known density."""
    s = gaussian_classes(400_000, 3, separation=1.2, random_state=0)
    means = 1.2 * np.arange(3)
    logp = -0.5 * (s.x[:, :1] - means) ** 2
    post = np.exp(logp - logp.max(1, keepdims=True))
    post /= post.sum(1, keepdims=True)
    mc = np.mean(np.log(post[np.arange(len(s.y)), s.y] * 3))
    assert s.mi == pytest.approx(mc, abs=0.005)


def test_bundled_sample():
    s = load_sample()
    assert s.x.shape == (2000, 2) and s.y.shape == (2000, 2)
    assert s.mi == pytest.approx(1.0)
    assert gaussian_mi(np.cov(np.hstack([s.x, s.y]).T), 2) == pytest.approx(1.0, abs=0.06)


@pytest.mark.parametrize("seen,decisive,noise,label_noise", [
    (3, 5, 0.5, 0.05), (1, 8, 2.0, 0.2), (4, 4, 1e-4, 0.05), (5, 6, 0.1, 0.0), (2, 2, 3.0, 1.0),
])
def test_binary_label_mi_quadrature_matches_monte_carlo(seen, decisive, noise, label_noise):
    """The quadrature against a Monte Carlo mean of log 2 - h(P(Y=0 | X)) on the model's posterior
    (1 - p) Phi(kappa g) + p/2, g ~ N(0, 1), including a near-deterministic label (noise 1e-4: kappa
    ~ 1e4, a step the grid must resolve) and pure label noise (MI 0)."""
    from cchmi.data.synthetic import binary_label_mi

    kappa = math.sqrt(seen / (decisive - seen + decisive * noise**2))
    g = np.random.default_rng(0).standard_normal(200_000)
    q = (1 - label_noise) * 0.5 * np.vectorize(math.erfc)(-kappa * g / math.sqrt(2)) + label_noise / 2
    q = np.clip(q, 1e-300, 1 - 1e-16)
    mc = np.log(2) + q * np.log(q) + (1 - q) * np.log1p(-q)
    tolerance = 4 * mc.std() / math.sqrt(g.size) + 1e-12  # 4 standard errors
    assert binary_label_mi(seen, decisive, noise, label_noise) == pytest.approx(mc.mean(), abs=tolerance)


def test_binary_closed_forms_at_their_ends():
    """A modality that sees nothing, and one that sees every coordinate through no noise."""
    from cchmi.data.synthetic import binary_bayes_accuracy, binary_label_mi

    assert binary_bayes_accuracy(0, 5, 0.3, 0.1) == pytest.approx(0.5) and binary_label_mi(0, 5, 0.3, 0.1) == 0.0
    assert binary_bayes_accuracy(4, 4, 0.0, 0.0) == 1.0
    assert binary_label_mi(4, 4, 0.0, 0.0) == pytest.approx(math.log(2))
    # Noise 1e-9 (1 - rho^2 underflows; kappa ~ 1e9): the noiseless limit log 2 - h(1 - p/2).
    p = 0.05
    assert binary_label_mi(4, 4, 1e-9, p) == pytest.approx(math.log(2) + (1 - p / 2) * math.log(1 - p / 2)
                                                           + p / 2 * math.log(p / 2), abs=1e-8)


@pytest.mark.parametrize("args,error,message", [
    ((5, 4, 0.5, 0.0), ValueError, "seen must be between 0 and 4"),
    ((1, 0, 0.5, 0.0), ValueError, "decisive must be >= 1"),
    ((1, 4, -0.5, 0.0), ValueError, "noise must be a finite number >= 0"),
    ((1, 4, 0.5, 1.5), ValueError, "label_noise must be a finite number in"),
    ((1.0, 4, 0.5, 0.0), TypeError, "seen must be an integer"),
])
def test_binary_closed_forms_check_their_arguments(args, error, message):
    from cchmi.data.synthetic import binary_bayes_accuracy, binary_label_mi

    for function in (binary_bayes_accuracy, binary_label_mi):
        with pytest.raises(error, match=message):
            function(*args)
