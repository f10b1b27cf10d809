"""KSG-1, KSG-2 and the exact-ties (Gao et al.) estimator: reference agreement, peers, known MI,
invariances and ties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import make_points
from hypothesis import given, settings
from hypothesis import strategies as st

import cchmi
from cchmi import reference
from cchmi.data import correlated_gaussian

# Tolerances are data: every entry says why it is what it is.
TOL = {
    # Same counts, same float64 digamma sums, different summation order in the reference's loop.
    "reference": 1e-12,
    # scikit-learn draws its own 1e-10 jitter; counts agree, sums differ in rounding only.
    "sklearn": 1e-9,
    # Invariances that change only the rounding of the standardised data (translation, scaling).
    "rounding": 1e-9,
}

# Statistical bounds for closed-form Gaussian MI: |mean over seeds - truth| < bound. KSG's bias
# grows with dimension (it underestimates); the bounds are about 4 standard errors of the mean of
# the seeds plus the known bias at that size.
GAUSSIAN_CASES = [
    # (dim_x, dim_y, true MI, n, seeds, bound)
    (1, 1, 0.5, 2000, 4, 0.04),
    (2, 2, 1.0, 2000, 4, 0.08),
    (4, 4, 1.0, 3000, 3, 0.15),
]


def _prepared(kind, n, dx, dy, dtype=np.float64, seed=0):
    pts = make_points(kind, n, dx + dy, dtype, seed=seed)
    return np.ascontiguousarray(pts[:, :dx]), np.ascontiguousarray(pts[:, dx:])


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
@pytest.mark.parametrize("variant", [1, 2])
@pytest.mark.parametrize("kind,n,dx,dy", [("gauss", 300, 1, 1), ("dup", 257, 2, 3), ("discrete", 400, 3, 1),
                                          ("scaled", 300, 4, 4), ("gauss", 2, 1, 1), ("gauss", 50, 7, 9)])
def test_matches_reference_estimator(kind, n, dx, dy, variant, backend):
    x, y = _prepared(kind, n, dx, dy)
    k = min(3, n - 1)
    got = cchmi.ksg_mi(x, y, k=k, variant=variant, standardize=False, ties="none", backend=backend)
    assert got.backend == backend
    assert got.estimator == f"ksg{variant}"
    want = reference.ksg_mi(x, y, k, variant)
    assert got.estimate == pytest.approx(want, rel=TOL["reference"], abs=TOL["reference"])


@pytest.mark.parametrize("kind", ["gauss", "dup", "grid"])
def test_gao_matches_reference(kind):
    x, y = _prepared(kind, 500, 2, 1)
    got = cchmi.ksg_mi(x, y, k=3, ties="exact", standardize=False)
    assert got.estimator == "gao"
    assert got.estimate == pytest.approx(reference.gao_mi(x, y, 3), rel=TOL["reference"], abs=TOL["reference"])


def test_cpu_and_numpy_backends_agree_exactly_float32():
    s = correlated_gaussian(700, 3, 2, mi=0.8, dtype=np.float32, random_state=3)
    a = cchmi.ksg_mi(s.x, s.y, backend="cpu")
    b = cchmi.ksg_mi(s.x, s.y, backend="numpy")
    assert a.estimate == b.estimate


@pytest.mark.parametrize("k", [1, 3, 7])
def test_agrees_with_sklearn_mutual_info_regression(k):
    feature_selection = pytest.importorskip("sklearn.feature_selection")
    s = correlated_gaussian(1500, 1, 1, mi=0.4, random_state=k)
    ours = cchmi.ksg_mi(s.x, s.y, k=k).estimate
    theirs = feature_selection.mutual_info_regression(s.x, s.y[:, 0], n_neighbors=k, random_state=0)[0]
    assert ours == pytest.approx(theirs, abs=TOL["sklearn"])


@pytest.mark.parametrize("dim_x,dim_y,mi,n,seeds,bound", GAUSSIAN_CASES)
def test_closed_form_gaussian_mi(dim_x, dim_y, mi, n, seeds, bound):
    estimates = [cchmi.ksg_mi(*_xy(correlated_gaussian(n, dim_x, dim_y, mi=mi, random_state=s))).estimate
                 for s in range(seeds)]
    assert abs(np.mean(estimates) - mi) < bound, estimates


def _xy(sample):
    return sample.x, sample.y


@pytest.mark.parametrize("transform", ["asinh", "half_cube", "wiggly", "rotate"])
def test_mi_preserving_transforms_stay_close(transform):
    """KSG is not invariant to the maps, but stays near the truth on these mild ones."""
    s = correlated_gaussian(3000, 2, 2, mi=0.7, transform=transform, random_state=11)
    assert abs(cchmi.ksg_mi(s.x, s.y).estimate - 0.7) < 0.12


def test_independent_variables_give_near_zero_and_no_clipping():
    rng = np.random.default_rng(5)
    estimates = [cchmi.ksg_mi(rng.standard_normal(400), rng.standard_normal(400), random_state=i).estimate
                 for i in range(8)]
    assert all(abs(e) < 0.1 for e in estimates)
    assert min(estimates) < 0, "some estimate of zero MI should be negative: estimates are not clipped"


def test_units_base_2():
    s = correlated_gaussian(500, 1, 1, mi=0.5, random_state=0)
    nats = cchmi.ksg_mi(s.x, s.y)
    bits = cchmi.ksg_mi(s.x, s.y, base=2)
    assert bits.unit == "bits" and nats.unit == "nats"
    assert bits.estimate == pytest.approx(nats.estimate / math.log(2), rel=1e-14)


def test_result_dataclass_fields():
    s = correlated_gaussian(300, 1, 1, mi=0.5, random_state=0)
    r = cchmi.ksg_mi(s.x, s.y, k=4)
    assert float(r) == r.estimate
    assert (r.n, r.k, r.estimator, r.backend) == (300, 4, "ksg1", "cpu")
    assert r.seconds > 0
    assert r.stderr is None and r.ci_low is None
    assert "KSG-1" in str(r)


def test_float32_input_keeps_float32_and_dtype_override():
    s = correlated_gaussian(800, 2, 2, mi=1.0, dtype=np.float32, random_state=1)
    f32 = cchmi.ksg_mi(s.x, s.y).estimate
    assert f32 == cchmi.ksg_mi(s.x, s.y, dtype="float32").estimate
    f64 = cchmi.ksg_mi(s.x, s.y, dtype="float64").estimate
    assert abs(f32 - f64) < 0.02  # same data; the precision and the jitter scale differ


# --- invariances (hypothesis draws the problem; the data stay continuous) ----------------------

problem = st.tuples(st.integers(20, 200), st.integers(1, 3), st.integers(1, 3), st.integers(1, 5),
                    st.integers(0, 2**31 - 1))


def _draw(n, dx, dy, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dx))
    y = x[:, :1] * 0.7 + rng.standard_normal((n, dy))
    return x, y


@settings(max_examples=25, deadline=None)
@given(problem, st.sampled_from([1, 2]))
def test_sample_permutation_invariance(prob, variant):
    n, dx, dy, k, seed = prob
    k = min(k, n - 1)
    x, y = _draw(n, dx, dy, seed)
    perm = np.random.default_rng(seed + 1).permutation(n)
    a = cchmi.ksg_mi(x, y, k=k, variant=variant, ties="none").estimate
    b = cchmi.ksg_mi(x[perm], y[perm], k=k, variant=variant, ties="none").estimate
    assert a == pytest.approx(b, abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(problem, st.sampled_from([1, 2]))
def test_swap_invariance_is_exact(prob, variant):
    n, dx, dy, k, seed = prob
    x, y = _draw(n, dx, dy, seed)
    a = cchmi.ksg_mi(x, y, k=min(k, n - 1), variant=variant, ties="none").estimate
    b = cchmi.ksg_mi(y, x, k=min(k, n - 1), variant=variant, ties="none").estimate
    assert a == b


@settings(max_examples=25, deadline=None)
@given(problem, st.floats(-1e3, 1e3), st.lists(st.floats(1e-3, 1e3), min_size=3, max_size=3))
def test_translation_and_column_scaling_invariance(prob, shift, scales):
    n, dx, dy, k, seed = prob
    x, y = _draw(n, dx, dy, seed)
    a = cchmi.ksg_mi(x, y, k=min(k, n - 1)).estimate
    b = cchmi.ksg_mi(x * np.array(scales[:dx]) + shift, y - shift, k=min(k, n - 1)).estimate
    assert a == pytest.approx(b, abs=TOL["rounding"])


# --- ties ----------------------------------------------------------------------------------------


def _discrete_pair(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 4, n)
    y = (x + (rng.random(n) < 0.3) * rng.integers(0, 4, n)) % 4
    return x.astype(float), y.astype(float)


def _plugin_mi(x, y):
    joint = np.zeros((4, 4))
    np.add.at(joint, (x.astype(int), y.astype(int)), 1)
    p = joint / joint.sum()
    px, py = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
    nz = p > 0
    return float(np.sum(p[nz] * np.log(p[nz] / (px @ py)[nz])))


def test_exact_ties_recover_discrete_mi_without_noise():
    """Gao et al. on purely discrete data approaches the plug-in MI (Gao et al. 2017, Sec. 3)."""
    x, y = _discrete_pair(4000)
    got = cchmi.ksg_mi(x, y, ties="exact")
    assert got.estimate == pytest.approx(_plugin_mi(x, y), abs=0.01)
    # and it is deterministic: no noise is drawn
    assert got.estimate == cchmi.ksg_mi(x, y, ties="exact", random_state=99).estimate


def test_jitter_handles_duplicated_points():
    s = correlated_gaussian(600, 2, 2, mi=0.8, random_state=2)
    x = np.vstack([s.x, s.x[:300]])
    y = np.vstack([s.y, s.y[:300]])
    for variant in (1, 2):
        r = cchmi.ksg_mi(x, y, variant=variant)
        assert np.isfinite(r.estimate)
    # without jitter the duplicates sit at distance 0 and the estimator is biased far upwards
    assert cchmi.ksg_mi(x, y, ties="none").estimate > cchmi.ksg_mi(x, y).estimate


def test_jitter_warns_when_float32_cannot_separate_ties():
    x, y = _discrete_pair(20000, seed=1)
    with pytest.warns(cchmi.InputWarning, match="looks like discrete labels"), \
            pytest.warns(RuntimeWarning, match="distance 0 after jitter"):
        cchmi.ksg_mi(x.astype(np.float32), y.astype(np.float32), noise=1e-9)


def test_ties_exact_rejects_variant_2():
    with pytest.raises(ValueError, match="variant=1"):
        cchmi.ksg_mi(np.arange(10.0), np.arange(10.0), ties="exact", variant=2)


def test_random_state_reproducible_and_effective():
    s = correlated_gaussian(300, 1, 1, mi=0.5, random_state=0)
    a = cchmi.ksg_mi(s.x, s.y, random_state=1).estimate
    assert a == cchmi.ksg_mi(s.x, s.y, random_state=1).estimate
    gen = np.random.default_rng(1)
    assert a == cchmi.ksg_mi(s.x, s.y, random_state=gen).estimate


def test_class_interface():
    s = correlated_gaussian(500, 2, 2, mi=0.6, random_state=0)
    est = cchmi.KSG(k=5, variant=2).fit(s.x, s.y)
    assert est.mi_ == cchmi.ksg_mi(s.x, s.y, k=5, variant=2).estimate
    assert est.result_.estimator == "ksg2"
    assert est.get_params()["k"] == 5
    assert "variant=2" in repr(est)
    with pytest.raises(ValueError, match="no parameter"):
        est.set_params(kk=3)
