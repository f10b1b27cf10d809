"""Bad input gets a ValueError/TypeError naming the argument and the problem; odd but valid input
(1-D, non-contiguous, Fortran-ordered, integer, float32) is accepted and gives the same answer."""

from __future__ import annotations

import numpy as np
import pytest

import cchmi

rng = np.random.default_rng(0)
X = rng.standard_normal((50, 2))
Y = X[:, :1] + rng.standard_normal((50, 1))
LABELS = rng.integers(0, 2, 50)


def _all_estimators():
    """(name, callable) for each estimator taking x as its first argument."""
    return [
        ("ksg_mi", lambda a: cchmi.ksg_mi(a, Y)),
        ("mixed_mi", lambda a: cchmi.mixed_mi(a, LABELS)),
        ("entropy", lambda a: cchmi.entropy(a)),
        ("cmi", lambda a: cchmi.cmi(a, Y, Y[::-1])),
    ]


BAD_X = [
    (np.where(np.arange(100).reshape(50, 2) == 7, np.nan, X), ValueError, "x contains NaN or infinite"),
    (np.where(np.arange(100).reshape(50, 2) == 9, np.inf, X), ValueError, "x contains NaN or infinite"),
    (np.empty((0, 2)), ValueError, "x is empty"),
    (np.empty((50, 0)), ValueError, "x is empty"),
    (np.float64(3.0), ValueError, "0-d"),
    (X.reshape(50, 2, 1), ValueError, "3-D"),
    (X.astype(complex), TypeError, "complex"),
    (X.astype(object), TypeError, "numeric dtype"),
    (X.astype(str), TypeError, "numeric dtype"),
    ([[1, 2], [3]], TypeError, "could not be converted"),
]


@pytest.mark.parametrize("name_fn", range(4))
@pytest.mark.parametrize("bad,exc,message", BAD_X)
def test_bad_x_is_named(bad, exc, message, name_fn):
    _, fn = _all_estimators()[name_fn]
    with pytest.raises(exc, match=message):
        fn(bad)


def test_mismatched_rows_are_named():
    with pytest.raises(ValueError, match="x has 40, y has 50"):
        cchmi.ksg_mi(X[:40], Y)
    with pytest.raises(ValueError, match="x has 50, y has 50, z has 49"):
        cchmi.cmi(X, Y, Y[:49])
    with pytest.raises(ValueError, match="labels has 50 entries but the samples have n=40"):
        cchmi.mixed_mi(X[:40], LABELS)


@pytest.mark.parametrize("k,exc,message", [(50, ValueError, "k must be between 1 and 49"), (0, ValueError, "k must be"),
                                           (-2, ValueError, "k must be"), (2.5, TypeError, "k must be an integer"),
                                           (True, TypeError, "k must be an integer"), ("3", TypeError, "k must be")])
def test_bad_k(k, exc, message):
    with pytest.raises(exc, match=message):
        cchmi.ksg_mi(X, Y, k=k)


def test_too_few_samples():
    with pytest.raises(ValueError, match="at least 2 samples"):
        cchmi.ksg_mi([1.0], [2.0])
    r = cchmi.ksg_mi([1.0, 2.0], [2.0, 1.0], k=1)  # n = 2, k = n - 1: the smallest valid problem
    assert np.isfinite(r.estimate)


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="variant"):
        cchmi.ksg_mi(X, Y, variant=3)
    with pytest.raises(ValueError, match="ties"):
        cchmi.ksg_mi(X, Y, ties="maybe")
    with pytest.raises(ValueError, match="backend"):
        cchmi.ksg_mi(X, Y, backend="gpu")
    if "cuda" not in cchmi.available_backends():
        with pytest.raises(ValueError, match="backend 'cuda' is not available: .*Available here: .*cpu.*numpy"):
            cchmi.ksg_mi(X, Y, backend="cuda")
    with pytest.raises(ValueError, match="base"):
        cchmi.ksg_mi(X, Y, base=1)
    with pytest.raises(TypeError, match="base"):
        cchmi.ksg_mi(X, Y, base="2")
    with pytest.raises(ValueError, match="dtype"):
        cchmi.ksg_mi(X, Y, dtype="float16")
    with pytest.raises(ValueError, match="noise"):
        cchmi.ksg_mi(X, Y, noise=-1.0)
    with pytest.raises(ValueError, match="confidence"):
        cchmi.ksg_mi(X, Y, confidence=1.5)
    with pytest.raises(ValueError, match="n_subsamples"):
        cchmi.ksg_mi(X, Y, confidence=0.9, n_subsamples=1)


def test_bad_labels():
    with pytest.raises(ValueError, match="single class"):
        cchmi.mixed_mi(X, np.ones(50))
    with pytest.raises(ValueError, match="labels has 49 entries"):
        cchmi.mixed_mi(X, LABELS[:49])
    with pytest.raises(ValueError, match="labels must be 1-D"):
        cchmi.mixed_mi(X, np.ones((50, 2)))
    with pytest.raises(ValueError, match="labels contains NaN"):
        cchmi.mixed_mi(X, np.where(LABELS == 0, np.nan, 1.0))
    unhashable = np.empty(50, dtype=object)
    unhashable[:] = [{"class": i % 2} for i in range(50)]
    with pytest.raises(TypeError, match="hashable"):
        cchmi.mixed_mi(X, unhashable)


def test_huge_float32_range_is_refused_not_overflowed():
    big = np.array([[-3e38], [3e38], [0.0], [1.0]], dtype=np.float32)
    with pytest.raises(ValueError, match="too wide for float32"):
        cchmi.entropy(big, k=1, standardize=False)
    assert np.isfinite(cchmi.entropy(big.astype(np.float64), k=1, standardize=False).estimate)
    constant_huge = np.c_[np.full(4, 1e39), np.arange(4.0)]
    with pytest.raises(ValueError, match="too wide for float32"):
        cchmi.entropy(constant_huge, k=1, standardize=False, dtype="float32")


def test_layouts_and_dtypes_give_the_same_answer():
    base = cchmi.ksg_mi(X, Y).estimate
    assert cchmi.ksg_mi(np.asfortranarray(X), Y).estimate == base
    wide = np.zeros((50, 4))
    wide[:, ::2] = X
    assert cchmi.ksg_mi(wide[:, ::2], Y).estimate == base  # non-contiguous view
    assert cchmi.ksg_mi(X.tolist(), Y.tolist()).estimate == base
    one = cchmi.ksg_mi(X[:, 0], Y[:, 0]).estimate
    assert cchmi.ksg_mi(X[:, :1], Y).estimate == one  # 1-D is one column
    ints = rng.integers(0, 100, (50, 2))
    assert cchmi.ksg_mi(ints, Y).estimate == cchmi.ksg_mi(ints.astype(float), Y).estimate
    assert np.isfinite(cchmi.ksg_mi(X.astype(np.float16), Y.astype(np.float32)).estimate)


def test_constant_column_is_accepted():
    x = np.c_[X, np.ones(50)]
    assert cchmi.ksg_mi(x, Y).estimate == pytest.approx(cchmi.ksg_mi(X, Y).estimate, abs=0.05)


def test_set_num_threads():
    before = cchmi.get_num_threads()
    try:
        cchmi.set_num_threads(1)
        one = cchmi.ksg_mi(X, Y).estimate
        cchmi.set_num_threads(0)
        assert cchmi.ksg_mi(X, Y).estimate == one
        with pytest.raises(ValueError, match="n must be >= 0"):
            cchmi.set_num_threads(-1)
    finally:
        cchmi.set_num_threads(before)


def test_auto_falls_back_to_numpy_with_a_warning(monkeypatch):
    from cchmi.ops import registry

    monkeypatch.setattr(registry, "import_compiled", lambda name: None)
    monkeypatch.setitem(registry._state, "warned_fallback", False)
    with pytest.warns(RuntimeWarning, match="fell back to the slow NumPy reference"):
        r = cchmi.ksg_mi(X, Y)
    assert r.backend == "numpy"
    with pytest.raises(ValueError, match="backend 'cpu' is not available: the compiled module"):
        cchmi.ksg_mi(X, Y, backend="cpu")


@pytest.mark.parametrize(("seed", "error"), [(-1, ValueError), ("abc", TypeError), (1.5, TypeError), (True, TypeError),
                                             (np.int64(-3), ValueError)])
def test_random_state_errors_name_the_argument(seed, error):
    """The rng helper and every kNN estimator name random_state and the value (issue 25)."""
    from cchmi import _validate as V

    with pytest.raises(error, match=r"random_state must be an integer seed >= 0, None or a numpy Generator, got"):
        V.as_rng(seed)
    with pytest.raises(error, match=r"seed must be an integer seed >= 0"):
        V.as_rng(seed, "seed")
    x = np.random.default_rng(0).standard_normal((40, 2))
    for call in (lambda: cchmi.ksg_mi(x, x[:, ::-1], random_state=seed), lambda: cchmi.entropy(x, random_state=seed),
                 lambda: cchmi.mixed_mi(x, np.arange(40) % 2, random_state=seed),
                 lambda: cchmi.mi(x, x[:, ::-1], random_state=seed)):
        with pytest.raises(error, match="random_state must be"):
            call()


def test_rng_helper_takes_seeds_generators_and_none():
    from cchmi import _validate as V

    g = np.random.default_rng(5)
    assert V.as_rng(g) is g
    assert V.as_rng(7).integers(1 << 30) == np.random.default_rng(7).integers(1 << 30)
    assert isinstance(V.as_rng(None), np.random.Generator)
    assert isinstance(V.as_rng(np.random.SeedSequence(3)), np.random.Generator)
