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


# Inputs that run but look like a mistake (issue 27): they warn, with what to do instead.
WIDE = np.random.default_rng(3).standard_normal((600, 20))
INT_LABELS = np.random.default_rng(4).integers(0, 5, 600)


@pytest.mark.parametrize("call", [
    lambda: cchmi.ksg_mi(WIDE, INT_LABELS),
    lambda: cchmi.mi(WIDE, INT_LABELS, estimator="ksg"),
    lambda: cchmi.mi(WIDE, INT_LABELS.astype(np.float32), estimator="ksg"),
    lambda: cchmi.permutation_test(WIDE[:200, :2], INT_LABELS[:200], n_permutations=3),
], ids=["ksg_mi", "mi", "mi-float-codes", "permutation_test"])
def test_integer_labels_given_as_samples_warn(call):
    """Integer labels without labels=True ran through continuous KSG (-0.040 nats) with no word."""
    with pytest.warns(cchmi.InputWarning, match=r"y is one column of 5 distinct integer values over n=\d+ rows: it "
                                                r"looks like discrete labels.*labels=True"):
        call()


def test_integer_target_with_labels_kind_continuous_points_at_discrete():
    with pytest.warns(cchmi.InputWarning, match="labels is one column of 5 distinct integer values.*"
                                                "pass labels_kind='discrete'"):
        cchmi.cch(WIDE[:, :2], WIDE[:, 2:4], INT_LABELS, labels_kind="continuous", confidence=None)


@pytest.mark.parametrize("call", [
    lambda: cchmi.ksg_mi(WIDE.T, WIDE[:20, :2]),
    lambda: cchmi.mi(WIDE.T, WIDE[:20, :2]),
    lambda: cchmi.entropy(WIDE.T),
    lambda: cchmi.cch(WIDE.T, WIDE[:20, :2], np.arange(20) % 2, confidence=None),
    lambda: cchmi.cch(WIDE.T, WIDE[:20, :2], np.arange(20) % 2, confidence=None, pca=2),
], ids=["ksg_mi", "mi", "entropy", "cch", "cch-pca"])
def test_transposed_samples_warn(call):
    """A transposed 20 x 600 array ran with n = 20."""
    with pytest.warns(cchmi.InputWarning, match=r"(x|teacher) has 20 rows and 600 columns: rows are samples.*n=20 "
                                                r"samples; pass (x|teacher)\.T if each column is a sample"):
        call()


def test_transposed_narrow_sample_error_says_rows_are_samples():
    """A transposed 600 x 3 array: "k must be between 1 and 2 ... n=3" gave no hint."""
    narrow = np.random.default_rng(5).standard_normal((600, 3))
    with pytest.warns(cchmi.InputWarning, match="x has 3 rows and 600 columns"), \
            pytest.raises(ValueError, match=r"k must be between 1 and 2 .*n=3.*; x has 3 rows and 600 columns: rows "
                                            r"are samples .* pass x\.T if each column is a sample"):
        cchmi.ksg_mi(narrow.T, narrow[:3])
    # 3 x 5: not twice as wide, so no warning, but the error still has the hint
    with pytest.raises(ValueError, match=r"k must be .*n=3.*; x has 3 rows and 5 columns: .*pass x\.T"):
        cchmi.ksg_mi(narrow[:5].T, narrow[:5].T)


@pytest.mark.parametrize("call, match", [
    (lambda: cchmi.cch(WIDE[:, :2], WIDE[:, 2:4], WIDE[:, 5]),
     r"labels holds 600 distinct non-integer values in 600 rows: a real-valued target, not classes; pass "
     r"labels_kind='continuous'"),
    (lambda: cchmi.mi(WIDE, WIDE[:, 5], labels=True),
     r"y holds 600 distinct non-integer values in 600 rows: .*leave labels=False"),
], ids=["cch", "mi"])
def test_float_labels_point_at_the_continuous_option(call, match):
    """Float labels in cch said only "labels needs at least two classes"."""
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("call", [
    lambda: cchmi.ksg_mi(WIDE[:150], WIDE[:150, :1]),  # 150 rows, 20 columns
    lambda: cchmi.ksg_mi(np.random.default_rng(6).standard_normal((120, 300)), WIDE[:120, :2]),  # over 100 rows
    lambda: cchmi.ksg_mi(WIDE[:30, :59], WIDE[:30, :2]),  # 30 rows, under twice as many columns
    lambda: cchmi.ksg_mi(WIDE[:, :1], np.round(WIDE[:, 1:2] * 10)),  # integers, but many distinct values
    lambda: cchmi.ksg_mi(WIDE[:, :1], INT_LABELS, ties="exact"),  # repeated values meant
    lambda: cchmi.ksg_mi(WIDE[:20, :1], INT_LABELS[:20]),  # too few rows to tell labels from numbers
    lambda: cchmi.mixed_mi(WIDE, INT_LABELS),
    lambda: cchmi.mi(WIDE, INT_LABELS, labels=True, estimator="ksg"),
    lambda: cchmi.cch(WIDE[:, :2], WIDE[:, 2:4], INT_LABELS, confidence=None),
    lambda: cchmi.cch(WIDE[:, :2], WIDE[:, 2:4], np.clip(np.round(WIDE[:, 5] * 2) / 4, -1, 1)),  # 9 float classes
    lambda: cchmi.cmi(WIDE[:, :1], WIDE[:, 1:2], INT_LABELS.astype(float)),  # a discrete z conditions, as meant
], ids=["150x20", "120x300", "30x59", "integers-many-values", "ties-exact", "20-rows", "mixed_mi", "mi-labels",
        "cch", "cch-rounded-float-labels", "cmi-discrete-z"])
def test_legitimate_inputs_do_not_warn(call):
    call()  # filterwarnings = error: any warning fails


def test_warnings_point_at_the_callers_line():
    with pytest.warns(cchmi.InputWarning) as record:
        cchmi.mi(WIDE, INT_LABELS, estimator="ksg")
    assert len(record) == 1 and record[0].filename == __file__
