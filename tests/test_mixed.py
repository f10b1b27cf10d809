"""The mixed continuous/discrete estimator (Ross 2014) and its exact-ties form."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import make_points
from hypothesis import given, settings
from hypothesis import strategies as st

import cchmi
from cchmi import reference
from cchmi.data import gaussian_classes

TOL = {
    "reference": 1e-12,  # same counts; summation order differs
    "sklearn": 1e-9,  # scikit-learn draws its own 1e-10 jitter
}


def _labelled(kind, n, d, n_classes, seed=0):
    x = make_points(kind, n, d, np.float64, seed=seed)
    labels = np.random.default_rng(seed).integers(0, n_classes, n)
    x[:, 0] += labels  # some dependence
    return x, labels


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
@pytest.mark.parametrize("kind,n,d,n_classes", [("gauss", 300, 1, 2), ("dup", 257, 3, 3), ("discrete", 400, 2, 5),
                                                ("gauss", 40, 7, 6)])
@pytest.mark.parametrize("ties", ["none", "exact"])
def test_matches_reference(kind, n, d, n_classes, ties, backend):
    x, labels = _labelled(kind, n, d, n_classes)
    got = cchmi.mixed_mi(x, labels, k=3, standardize=False, ties=ties, backend=backend)
    want = reference.mixed_mi(x, labels, 3, exact_ties=ties == "exact")
    assert got.estimate == pytest.approx(want, rel=TOL["reference"], abs=TOL["reference"])
    assert got.estimator == ("ross-gao" if ties == "exact" else "ross")


@pytest.mark.parametrize("k", [1, 3, 6])
def test_agrees_with_sklearn_mutual_info_classif(k):
    feature_selection = pytest.importorskip("sklearn.feature_selection")
    s = gaussian_classes(1200, 3, separation=1.0, random_state=k)
    ours = cchmi.mixed_mi(s.x, s.y, k=k).estimate
    theirs = feature_selection.mutual_info_classif(s.x, s.y, n_neighbors=k, random_state=0)[0]
    assert ours == pytest.approx(theirs, abs=TOL["sklearn"])


@pytest.mark.parametrize("n_classes,separation,dim", [(2, 2.0, 1), (4, 1.0, 3)])
def test_known_mixture_mi(n_classes, separation, dim):
    """Quadrature truth; bound = 4 standard errors of the mean over 4 seeds + the small bias."""
    estimates = []
    for seed in range(4):
        s = gaussian_classes(3000, n_classes, separation=separation, dim=dim, random_state=seed)
        estimates.append(cchmi.mixed_mi(s.x, s.y).estimate)
    assert abs(np.mean(estimates) - s.mi) < 0.05, (estimates, s.mi)


def test_any_hashable_labels():
    s = gaussian_classes(600, 3, random_state=0)
    as_int = cchmi.mixed_mi(s.x, s.y).estimate
    names = np.array(["cat", "dog", "emu"])[s.y]
    assert cchmi.mixed_mi(s.x, names).estimate == as_int
    assert cchmi.mixed_mi(s.x, list(names)).estimate == as_int
    objects = np.array([("t", 1), 2.5, frozenset({3})], dtype=object)[s.y]
    assert cchmi.mixed_mi(s.x, objects).estimate == as_int
    assert cchmi.mixed_mi(s.x, s.y.reshape(-1, 1)).estimate == as_int


@pytest.mark.parametrize("missing", [None, float("nan"), np.float32("nan")])
def test_missing_labels_are_refused_not_made_a_class(missing):
    """None or NaN inside an object array is a missing label, not a class (it gave 0.446 instead of
    0.652 when it was one)."""
    s = gaussian_classes(600, 3, random_state=0)
    labels = np.array(["a", "b", "c"], dtype=object)[s.y]
    labels[[5, 9]] = missing
    with pytest.raises(ValueError, match=r"labels has 2 missing labels \(None or NaN; first at row 5\)"):
        cchmi.mixed_mi(s.x, labels)


def test_singleton_classes_are_left_out_with_a_warning():
    s = gaussian_classes(300, 2, random_state=0)
    labels = s.y.copy()
    labels[:2] = [7, 8]
    with pytest.warns(RuntimeWarning, match="2 classes have a single sample"):
        r = cchmi.mixed_mi(s.x, labels)
    expected = cchmi.mixed_mi(s.x[2:], s.y[2:], ties="none", standardize=False)
    assert np.isfinite(r.estimate) and expected.n == 298


def test_small_classes_use_fewer_neighbours():
    x = np.random.default_rng(0).standard_normal(50)
    labels = np.r_[np.zeros(47, int), np.ones(3, int)]
    got = cchmi.mixed_mi(x, labels, k=5, standardize=False, ties="none")
    assert got.estimate == pytest.approx(reference.mixed_mi(x.reshape(-1, 1), labels, 5), rel=1e-12)


def test_exact_ties_on_discrete_x():
    """With x discrete too, the exact form is close to the plug-in MI of the two discrete variables."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 6000)
    x = np.where(rng.random(6000) < 0.8, labels, rng.integers(0, 3, 6000)).astype(float)
    joint = np.zeros((3, 3))
    np.add.at(joint, (x.astype(int), labels), 1)
    p = joint / joint.sum()
    plugin = float(np.sum(p * np.log(p / (p.sum(1, keepdims=True) @ p.sum(0, keepdims=True)))))
    assert cchmi.mixed_mi(x, labels, ties="exact").estimate == pytest.approx(plugin, abs=0.01)


def test_needs_two_classes_with_two_samples():
    with pytest.raises(ValueError, match="single class"):
        cchmi.mixed_mi(np.arange(10.0), np.zeros(10))
    with pytest.raises(ValueError, match="at least two classes with 2 or more"):
        cchmi.mixed_mi(np.arange(10.0), np.r_[np.zeros(9), 1])


def test_class_interface():
    s = gaussian_classes(400, 2, random_state=0)
    est = cchmi.MixedMI(k=4).fit(s.x, s.y)
    assert est.mi_ == cchmi.mixed_mi(s.x, s.y, k=4).estimate


@settings(max_examples=20, deadline=None)
@given(st.integers(30, 300), st.integers(2, 5), st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_relabelling_and_permutation_invariance(n, n_classes, k, seed):
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % n_classes)  # every class has at least 6 samples
    x = rng.standard_normal((n, 2)) + labels[:, None]
    base = cchmi.mixed_mi(x, labels, k=k, ties="none")
    # relabelling (any bijection, any value type) leaves the estimate exactly as it was
    names = np.array([f"class-{c}" for c in rng.permutation(n_classes)])[labels]
    assert cchmi.mixed_mi(x, names, k=k, ties="none").estimate == base.estimate
    perm = rng.permutation(n)
    assert cchmi.mixed_mi(x[perm], labels[perm], k=k, ties="none").estimate == pytest.approx(base.estimate, abs=1e-12)


@pytest.mark.parametrize("kind,truth", [("independent", 0.0), ("sign", math.log(2))])
def test_exact_ties_on_continuous_x_keep_ross(kind, truth):
    """On continuous x (no ties) ties="exact" gives Ross's estimate: Gao's term on every row was
    biased by psi(k) - log(k + 1) (issue 25: -0.215 for independent 3-class labels, 0.22 for sign
    labels of truth 0.69, where the jitter path gave -0.02 and 0.68)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 1))
    labels = rng.integers(0, 3, 3000) if kind == "independent" else (x[:, 0] > 0).astype(int)
    exact = cchmi.mixed_mi(x, labels, ties="exact").estimate
    assert exact == pytest.approx(truth, abs=0.05)
    assert exact == pytest.approx(cchmi.mixed_mi(x, labels, ties="none").estimate, abs=1e-12)


def test_exact_ties_take_gaos_term_on_tied_rows_only():
    """Half the rows continuous, half on three atoms: the exact form equals the reference, which
    gives Gao's term to the atoms' rows and Ross's to the others."""
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 400)
    x = rng.standard_normal(400) + labels
    x[:200] = rng.integers(0, 3, 200) + 10 * labels[:200]
    got = cchmi.mixed_mi(x, labels, ties="exact", standardize=False).estimate
    assert got == pytest.approx(reference.mixed_mi(x.reshape(-1, 1), labels, 3, exact_ties=True), rel=1e-12)
    assert got != pytest.approx(cchmi.mixed_mi(x, labels, ties="none", standardize=False).estimate, abs=1e-3)
