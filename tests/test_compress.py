"""Compress-then-kNN (cchmi.estimators.compress): a 64-dim embedding of a low-dimensional Gaussian
with known MI, the refusal at full intrinsic dimension, the options and argument errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cchmi.data import correlated_gaussian
from cchmi.data.hd_tasks import gauss_dense
from cchmi.estimators.compress import MAX_INTRINSIC, CompressedMIResult, compressed_mi
from cchmi.results import load_result

# Tolerance (reason): 2+2-dim Gaussian, 1 nat, each side embedded linearly in 64 dims, n = 2000
# (halves of 1000: plain KSG-1, the extrapolation needs 1024): measured 1.006 with s.e. 0.032
# (seed 0); 0.15 nats is about 4.5 standard errors.
EMBED_TOL = 0.15


def embedded_gaussian(n=2000, seed=0):
    g = correlated_gaussian(n, 2, 2, mi=1.0, random_state=seed)
    rng = np.random.default_rng(seed + 1)
    return g.x @ rng.standard_normal((2, 64)), g.y @ rng.standard_normal((2, 64)), g.mi


def test_64_dim_embedding_of_a_2_plus_2_dim_gaussian():
    x, y, truth = embedded_gaussian()
    r = compressed_mi(x, y)
    assert isinstance(r, CompressedMIResult)
    assert abs(r.estimate - truth) < EMBED_TOL and r.ci_low < truth < r.ci_high
    assert abs(r.intrinsic_x.value - 2) < 0.3 and abs(r.intrinsic_y.value - 2) < 0.3
    assert (r.dims_x, r.dims_y, r.bias_dim) == (2, 2, 4)  # the rank caps 3 x 2 components
    assert r.crossfit and len(r.half_estimates) == 2 and r.n == 2000
    assert r.extrapolated is False and "too few rows" in r.interval_note
    assert r.estimate == pytest.approx(np.mean(r.half_estimates))
    assert load_result(r.to_json()) == r


def test_refuses_a_full_rank_64_dim_task():
    s = gauss_dense(64, 2.0).sample(2000, 0)
    with pytest.raises(ValueError, match=rf"intrinsic dimension of x is .* above max_intrinsic={MAX_INTRINSIC:g}"):
        compressed_mi(s.x, s.y)


def test_extrapolates_with_enough_rows_and_units():
    x, y, _ = embedded_gaussian(n=2400)
    r = compressed_mi(x, y, crossfit=False, random_state=1)
    assert r.extrapolated and r.estimator == "pca-ksg1-extrapolated" and len(r.half_estimates) == 1 and r.n == 1200
    bits = compressed_mi(x, y, crossfit=False, random_state=1, base=2)
    assert bits.estimate == pytest.approx(r.estimate / math.log(2)) and bits.unit == "bits"


def test_explicit_dims_and_no_interval():
    x, y, _ = embedded_gaussian(n=600)
    r = compressed_mi(x, y, dims=(1, 2), confidence=None)
    assert (r.dims_x, r.dims_y) == (1, 2) and r.stderr is None and r.ci_low is None


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(method="umap"), ValueError, "method"),
    (dict(dims=0), ValueError, "dims"),
    (dict(dims=(2, 65)), ValueError, r"dims.*y has 64 columns"),
    (dict(dims=(1, 2, 3)), ValueError, "dims"),
    (dict(k=0), ValueError, "k"),
    (dict(max_intrinsic=0), ValueError, "max_intrinsic"),
    (dict(crossfit="yes"), TypeError, "crossfit"),
    (dict(confidence=2), ValueError, "confidence"),
    (dict(random_state=-1), ValueError, "random_state"),
])
def test_argument_errors(kwargs, error, message):
    x, y, _ = embedded_gaussian(n=200)
    with pytest.raises(error, match=message):
        compressed_mi(x, y, **kwargs)


def test_input_errors_name_the_argument():
    x, y, _ = embedded_gaussian(n=200)
    with pytest.raises(ValueError, match="y"):
        compressed_mi(x, y[:100])
    with pytest.raises(ValueError, match="n=20 rows"):
        compressed_mi(x[:20], y[:20])
