import numpy as np
import pytest

from cchmi._special import digamma, digamma_int


def test_digamma_matches_scipy():
    special = pytest.importorskip("scipy.special")
    x = np.concatenate([np.arange(1, 5000), np.geomspace(1e-3, 1e9, 2000)])
    np.testing.assert_allclose(digamma(x), special.digamma(x), rtol=2e-15, atol=2e-15)


def test_digamma_rejects_non_positive():
    with pytest.raises(ValueError, match="> 0"):
        digamma([1.0, 0.0])


def test_digamma_int_equals_digamma():
    values = np.array([1, 2, 7, 7, 10, 11, 5000, 3, 1])
    np.testing.assert_array_equal(digamma_int(values), digamma(values.astype(float)))
    assert digamma_int(np.array([], dtype=int)).shape == (0,)
    with pytest.raises(ValueError, match="> 0"):
        digamma_int([0, 1])
