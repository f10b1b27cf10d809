"""Bias-aware estimators: the subsample extrapolation of kNN estimates (cchmi.estimators.extrapolate)
and the probe bound of I(X; labels) (cchmi.estimators.probe)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import cchmi
from cchmi.data import correlated_gaussian, gaussian_classes
from cchmi.estimators import extrapolate as E

# Tolerances (reasons):
EXACT = 1e-9  # least squares on noise-free points of the model: rounding only
PROBE_SE = 3.0  # the probe bound within 3 standard errors of the truth, plus PROBE_GAP
PROBE_GAP = 0.03  # nats: a linear probe is the right family for Gaussian classes; what is left is the fit's error
KSG_FAR = 0.5  # nats: plain KSG-1 is at least this far below 2 nats at 8+8 dims, n = 2048 (measured 0.8)


def test_fit_line_recovers_the_model_exactly():
    sizes = np.array([2048.0, 1024.0, 512.0, 256.0])
    exponents = np.array([2 / 16, 2 / 3])
    means = np.column_stack([1.7 - 3.0 * sizes ** -exponents[0], 0.4 + 5.0 * sizes ** -exponents[1]])
    intercepts, lack = E.fit_line(sizes, means, exponents)
    assert intercepts == pytest.approx([1.7, 0.4], abs=EXACT)
    assert lack == pytest.approx([0.0, 0.0], abs=EXACT)
    bent = means.copy()
    bent[1, 0] += 0.05  # off the line: a lack of fit appears
    assert E.fit_line(sizes, bent, exponents)[1][0] > 0.01


@pytest.mark.parametrize("n", [1000, 1037])
def test_level_groups_partition_the_rows_by_class(n):
    rng = np.random.default_rng(0)
    strata = rng.integers(0, 3, n)
    groups = E.level_groups(n, 4, np.random.default_rng(1), strata)
    assert [len(level) for level in groups] == [1, 2, 4, 8]
    for level in groups:
        rows = np.concatenate(level)
        assert np.array_equal(np.sort(rows), np.arange(n))  # disjoint and covering
        for g in level:  # every group keeps the class proportions (round-robin within each class)
            expected = np.bincount(strata, minlength=3) / len(level)
            assert np.all(np.abs(np.bincount(strata[g], minlength=3) - expected) <= 1)


def test_extrapolation_recovers_a_known_power_law():
    # A core whose value at m rows is exactly 2 - 4 m^(-1/2): the intercept is 2.
    fit = E.extrapolate_nats(lambda rows: np.array([2.0 - 4.0 * rows.size ** -0.5]), np.arange(4000), [0.5],
                             np.random.default_rng(0))
    assert fit.sizes.tolist() == [4000, 2000, 1000, 500]
    assert fit.intercepts[0] == pytest.approx(2.0, abs=EXACT)


def test_bias_corrected_knn_moves_towards_the_truth():
    # 8+8 correlated Gaussian dims, 2 nats: KSG-1 is far below; the extrapolated estimate is closer.
    s = correlated_gaussian(2048, 8, 8, mi=2.0, random_state=11)
    plain = cchmi.mi(s.x, s.y, estimator="ksg").estimate
    corrected = cchmi.mi(s.x, s.y, estimator="ksg-extrapolated")
    assert 2.0 - plain > KSG_FAR
    assert abs(corrected.estimate - 2.0) < 0.5 * abs(plain - 2.0)
    assert corrected.bias == pytest.approx(corrected.estimate - plain, abs=1e-9)
    assert corrected.estimator == "ksg1-extrapolated"


def test_extrapolate_estimate_of_a_pair_and_its_difference():
    # Two exact power laws: the intercepts, their difference, corrections of the model, no lack of fit.
    def core(rows):
        m = rows.size
        return np.array([2.0 - 4.0 * m ** -0.5, 0.5 + 3.0 * m ** -1.0])

    with pytest.warns(RuntimeWarning, match="did not vary"):  # exact on every half-sample too
        est = E.extrapolate_estimate(core, 4096, [4, 2], np.random.default_rng(0), confidence=0.95, n_subsamples=4,
                                     difference=True)
    assert est.values == pytest.approx([2.0, 0.5, 1.5], abs=EXACT)
    assert est.bias == pytest.approx([4.0 * 4096 ** -0.5, -3.0 / 4096], abs=EXACT)
    assert est.subsample_sizes == "4096, 2048, 1024, 512" and est.exponents == [0.5, 1.0]
    # The standard error is then the model's term only.
    model = E.MODEL_SPREAD * np.append(np.abs(est.bias), math.hypot(*est.bias))
    assert est.stderr == pytest.approx(model, abs=EXACT)
    with pytest.raises(ValueError, match="each half-sample of the interval has 511 rows, and the extrapolation needs"):
        E.extrapolate_estimate(core, 1023, [4, 2], np.random.default_rng(0), confidence=0.95)


def test_extrapolated_mi_is_what_cchmi_mi_runs():
    from cchmi.estimators.options import KnnOptions

    c = gaussian_classes(1100, 3, dim=5, random_state=4)
    r = E.extrapolated_mi(c.x, c.y, KnnOptions(confidence=0.9, n_subsamples=4, random_state=2), labels=True)
    m = cchmi.mi(c.x, c.y, labels=True, estimator="ksg-extrapolated", confidence=0.9, n_subsamples=4,
                 random_state=2)
    assert isinstance(r, E.ExtrapolatedMIResult) and r.estimator == m.estimator == "ross-extrapolated"
    assert (r.estimate, r.ci_low, r.bias, r.interval_note) == (m.estimate, m.ci_low, m.bias, m.interval_note)


def test_bias_exponent_and_level_checks():
    assert E.bias_exponent(4) == 0.5
    with pytest.raises(ValueError, match="dim must be >= 1"):
        E.bias_exponent(0)
    with pytest.raises(ValueError, match="levels must be >= 2"):
        E.check_levels(1000, 1)
    with pytest.raises(ValueError, match="smallest subsample has n / 2"):
        E.check_levels(511, 4)
    E.check_levels(512, 4)
    with pytest.raises(ValueError, match="the core returns 1 values but 2 exponents"):
        E.extrapolate_nats(lambda rows: 1.0, np.arange(600), [1.0, 2.0], np.random.default_rng(0), 2)


@pytest.mark.parametrize("n_classes,dim", [(2, 1), (5, 4), (10, 8)])
def test_probe_bound_on_gaussian_classes(n_classes, dim):
    pytest.importorskip("torch")
    from cchmi.estimators.probe import probe_mi

    s = gaussian_classes(3000, n_classes, separation=2.0, dim=dim, random_state=21)
    r = probe_mi(s.x, s.y, random_state=3)
    assert abs(r.estimate - s.mi) < PROBE_SE * r.stderr + PROBE_GAP, (r.estimate, s.mi, r.stderr)
    assert r.estimator == "probe-linear" and r.k == 0 and abs(r.n - 1500) <= n_classes  # held out: half of each class
    assert r.ci_low < r.estimate < r.ci_high


def test_probe_is_near_zero_without_information_and_reports_in_bits():
    pytest.importorskip("torch")
    from cchmi.estimators.probe import probe_mi

    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((2000, 3)), rng.integers(0, 4, 2000)
    r = probe_mi(x, y)
    assert abs(r.estimate) < 3 * r.stderr + 0.01
    s = gaussian_classes(2000, 3, dim=2, random_state=5)
    nats, bits = probe_mi(s.x, s.y), probe_mi(s.x, s.y, base=2)
    assert bits.estimate == pytest.approx(nats.estimate / math.log(2), rel=1e-9) and bits.unit == "bits"


def test_probe_bad_input():
    pytest.importorskip("torch")
    from cchmi.estimators.probe import probe_mi

    s = gaussian_classes(300, 3, random_state=6)
    with pytest.raises(ValueError, match="probe must be one of"):
        probe_mi(s.x, s.y, probe="forest")
    with pytest.raises(ValueError, match="fit_fraction"):
        probe_mi(s.x, s.y, fit_fraction=1.0)
    with pytest.raises(ValueError, match="labels has 200 entries"):
        probe_mi(s.x, s.y[:200])
    with pytest.raises(ValueError, match="two classes with 3 or more"):
        probe_mi(s.x[:4], np.array([0, 0, 1, 1]))


def test_mlp_probe_where_the_linear_one_cannot_reach():
    # Two classes with one mean and different spreads (s.d. 1 and 3): the posterior depends on |x|, which no
    # linear probe sees; the MLP's bound approaches the truth (1-D quadrature of the mixture).
    pytest.importorskip("torch")
    from cchmi.estimators.probe import probe_mi

    rng = np.random.default_rng(13)
    y = rng.integers(0, 2, 4000)
    x = rng.standard_normal(4000) * np.where(y == 1, 3.0, 1.0)
    grid = np.linspace(-30, 30, 200_001)
    dens = [np.exp(-0.5 * (grid / sd) ** 2) / (sd * math.sqrt(2 * math.pi)) for sd in (1.0, 3.0)]
    mix = 0.5 * (dens[0] + dens[1])
    truth = float(np.sum(0.5 * sum(d * np.log(np.maximum(d, 1e-300) / np.maximum(mix, 1e-300)) for d in dens))
                  * (grid[1] - grid[0]))
    linear = probe_mi(x, y, probe="linear", random_state=1)
    mlp = probe_mi(x, y, probe="mlp", random_state=1)
    assert linear.estimate < 0.02
    assert mlp.estimator == "probe-mlp"
    assert abs(mlp.estimate - truth) < PROBE_SE * mlp.stderr + PROBE_GAP, (mlp.estimate, truth, mlp.stderr)
