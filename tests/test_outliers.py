"""One far row must not set a column's scale (issue 25): the preparation divides a column by its
interquartile scale IQR / 1.349 when its s.d. is more than ROBUST_FACTOR times that, with a
warning, on the host and device paths alike; ordinary columns keep their s.d., bit for bit.
(The sharded preparation: tests/_dist_worker.py, check_robust_scale.)"""

from __future__ import annotations

import math

import numpy as np
import pytest

import cchmi
from cchmi._scaling import IQR_NORMAL, ROBUST_FACTOR, interquartile_scale, quartile_ranks
from cchmi.ops.base import prepare_on_host

# Tolerances (nats): one far row among 3,000 moves an estimate by at most this (without the rule,
# 0.27 at 1e3 and 0.69 at 1e4 with 2 + 2 columns).
OUTLIER_TOL = 0.05
WARNING = r"x: columns \[0\] have a standard deviation \d+x their interquartile scale: a few rows set it"


def _pair(n=3000, d=2, mi=0.669, seed=0):
    """x, y of d columns each, Gaussian with I(X; Y) = mi nats in total."""
    rng = np.random.default_rng(seed)
    r = math.sqrt(1 - math.exp(-2 * mi / d))
    x = rng.standard_normal((n, d))
    return x, r * x + math.sqrt(1 - r * r) * rng.standard_normal((n, d))


def _sd_only(a):
    """The preparation by the s.d. alone (no jitter): what ordinary data must keep getting."""
    a = np.array(a, dtype=np.float64)
    exponent = np.frexp(np.abs(a).max(axis=0))[1]
    a = np.ldexp(a, -exponent)
    a -= a.mean(axis=0)
    return a / a.std(axis=0)


def _host(a, **options):
    return prepare_on_host(a, name="x", dtype=np.dtype(np.float64), standardize=True, ties="none", noise=0.0,
                           rng=None, **options)


@pytest.mark.parametrize("value", [1e3, 1e4, 1e8, -1e12, 1e16, 1e300])
def test_one_far_row_moves_the_estimates_by_at_most_the_tolerance(value):
    """float64 and float32 (up to 1e30: float32 holds the far row). The far column is centred on
    its quartiles, not on its mean (which the row pulls away: the other rows' differences would
    round away), and its jitter is not scaled up by its mean |value|."""
    x, y = _pair()
    clean = cchmi.ksg_mi(x, y).estimate
    assert abs(clean - 0.669) < 0.05
    x[17, 0] = value
    with pytest.warns(RuntimeWarning, match=WARNING):
        assert abs(cchmi.ksg_mi(x, y).estimate - clean) < OUTLIER_TOL
    with pytest.warns(RuntimeWarning, match=WARNING):
        assert abs(cchmi.mi(x, y, estimator="ksg").estimate - clean) < OUTLIER_TOL
    if abs(value) <= 1e30:
        with pytest.warns(RuntimeWarning, match=WARNING):
            assert abs(cchmi.ksg_mi(x.astype(np.float32), y.astype(np.float32)).estimate - clean) < OUTLIER_TOL


def test_mixed_mi_with_a_far_row():
    x, _ = _pair()
    labels = (x[:, 0] + x[:, 1] > 0).astype(int)
    clean = cchmi.mixed_mi(x, labels).estimate
    x[3, 0] = 1e6
    with pytest.warns(RuntimeWarning, match=WARNING):
        assert abs(cchmi.mixed_mi(x, labels).estimate - clean) < OUTLIER_TOL


def test_the_warning_names_the_argument_the_columns_and_the_ratio():
    x, y = _pair(d=3)
    y[5, 2] = 1e4
    y[6, 0] = -1e4
    with pytest.warns(RuntimeWarning) as record:
        cchmi.ksg_mi(x, y)
    (message,) = [str(w.message) for w in record]
    assert message.startswith("y: columns [0, 2] have a standard deviation up to ")
    assert "scaled by the IQR / 1.349 instead" in message


@pytest.mark.parametrize("n", [100, 1000, 20000])
def test_gaussian_columns_keep_their_sd_bit_for_bit(n):
    """No warning (filterwarnings = error) and the s.d.'s bits on Gaussian columns, even at n = 100
    (their s.d. / interquartile scale reaches 1.49 there, against a threshold of 3)."""
    rng = np.random.default_rng(n)
    for _ in range(20 if n < 20000 else 2):
        a = rng.standard_normal((n, 8)) * rng.uniform(1e-3, 1e3, 8)
        prepared, log_scale = _host(a)
        assert np.array_equal(prepared, _sd_only(a))
        assert log_scale == pytest.approx(np.log(a.std(axis=0)).sum(), rel=1e-12)


def test_columns_without_an_interquartile_spread_keep_their_sd():
    """A mostly constant column (IQR 0) with a few far values: scaled by its s.d., no warning."""
    a = np.zeros((1000, 2))
    a[:, 1] = np.random.default_rng(0).standard_normal(1000)
    a[:5, 0] = 1e6
    prepared, _ = _host(a)
    assert np.array_equal(prepared, _sd_only(a))


@pytest.mark.parametrize("n", [105, 1000])
def test_partly_discrete_columns_keep_their_sd(n):
    """Rectified units with 60-80% zeros (a KD network's features): the interquartile scale measures
    the edge of the zeros (the s.d. reached 3 to 10^5 times it), so they keep their s.d., bit for
    bit and without a warning; a far row in a column with 10% per value still trips the rule."""
    rng = np.random.default_rng(n)
    for shift in (0.3, 0.5, 0.6, 0.7, 0.8):
        a = np.maximum(0.0, rng.standard_normal((n, 6)) - shift)
        prepared, _ = _host(a)
        assert np.array_equal(prepared, _sd_only(a))
    digits = rng.integers(0, 10, (n, 1)).astype(float)
    digits[0] = 1e6
    with pytest.warns(RuntimeWarning, match=WARNING):
        _host(digits)


def test_the_far_column_is_scaled_by_its_interquartile_scale():
    x, _ = _pair(d=1)
    x[0, 0] = 1e4
    with pytest.warns(RuntimeWarning, match=WARNING):
        prepared, log_scale = _host(x)
    q1, q3 = np.quantile(x[:, 0], [0.25, 0.75])
    scale = (q3 - q1) / IQR_NORMAL
    np.testing.assert_allclose(prepared[:, 0], (x[:, 0] - (q1 + q3) / 2) / scale, rtol=1e-12, atol=1e-12)
    assert log_scale == pytest.approx(math.log(scale), rel=1e-12)
    # The entropy adds back the log of the scale it divided by: the far row changes it by little.
    w = np.random.default_rng(1).standard_normal((3000, 1))
    clean = cchmi.entropy(w).estimate
    w[0, 0] = 1e4
    with pytest.warns(RuntimeWarning, match=WARNING):
        assert abs(cchmi.entropy(w).estimate - clean) < OUTLIER_TOL


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 100, 101])
def test_interquartile_scale_is_numpys_linear_quartiles(n):
    a = np.random.default_rng(n).standard_normal((n, 3))
    q1, q3 = np.quantile(a, [0.25, 0.75], axis=0)
    got = interquartile_scale(np.sort(a, axis=0)[quartile_ranks(n)], n)
    np.testing.assert_allclose(got, (q3 - q1) / IQR_NORMAL, rtol=1e-15, atol=1e-16)


def test_the_device_preparation_applies_the_same_rule():
    """The torch path of the preparation (CUDA tensors; here on the CPU) scales like the host."""
    torch = pytest.importorskip("torch")
    from cchmi.ops.base import DeviceBackend

    x, _ = _pair(d=3)
    x[9, 1] = -1e5
    with pytest.warns(RuntimeWarning, match=r"x: columns \[1\]"):
        host, log_host = _host(x)
    with pytest.warns(RuntimeWarning, match=r"x: columns \[1\]"):
        dev, log_dev = DeviceBackend(torch.device("cpu")).prepare(
            torch.from_numpy(x), name="x", dtype=np.dtype(np.float64), standardize=True, ties="none", noise=0.0,
            rng=np.random.default_rng(0))
    np.testing.assert_allclose(dev.numpy(), host, rtol=0, atol=1e-12)
    assert log_dev == pytest.approx(log_host, abs=1e-12)


def test_the_threshold_is_above_gaussian_columns_and_below_one_far_row():
    """ROBUST_FACTOR separates the measured cases (see its comment in cchmi._scaling)."""
    assert 1.5 < ROBUST_FACTOR < 18
