import numpy as np
import pytest

from cchmi._special import digamma


def test_digamma_matches_scipy():
    special = pytest.importorskip("scipy.special")
    x = np.concatenate([np.arange(1, 5000), np.geomspace(1e-3, 1e9, 2000)])
    np.testing.assert_allclose(digamma(x), special.digamma(x), rtol=2e-15, atol=2e-15)


def test_digamma_rejects_non_positive():
    with pytest.raises(ValueError, match="> 0"):
        digamma([1.0, 0.0])
