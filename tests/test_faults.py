"""Hostile input that used to give a wrong number, a crash or an unclear error (the hardening
issue): each case failed before its fix. Sweeps, files and the CLI are in test_sweep_faults.py."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import cchmi


def _pair(n=1500, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2))
    y = x[:, :1] + 0.5 * rng.standard_normal((n, 1))
    return x, y, (x[:, 0] > 0).astype(int)


# ---------------------------------------------------------------------------------------------
# Wrong numbers with no warning


@pytest.mark.parametrize("scale", [1e200, 1e-200, 1e300, 1e-300])
def test_extreme_scales_give_the_estimates_of_ordinary_data(scale):
    """The standard deviation used to over/underflow: the columns counted as constant and every
    estimator returned about 0 (the CCH verdict flipped). Scaling by a power of two first is exact,
    so the estimates are those of the unscaled data, bit for bit."""
    x, y, lab = _pair()
    assert cchmi.ksg_mi(x * scale, y * scale).estimate == cchmi.ksg_mi(x, y).estimate
    assert cchmi.ksg_mi(x * scale, y, variant=2).estimate == cchmi.ksg_mi(x, y, variant=2).estimate
    assert cchmi.mixed_mi(x * scale, lab).estimate == cchmi.mixed_mi(x, lab).estimate
    assert cchmi.cmi(x * scale, y, x[:, 1:] * scale).estimate == cchmi.cmi(x, y, x[:, 1:]).estimate
    assert cchmi.cch(x * scale, y * scale, lab, n_subsamples=3).gap == cchmi.cch(x, y, lab, n_subsamples=3).gap
    assert cchmi.cch(x * scale, y, lab, pca=1, confidence=None).gap == cchmi.cch(x, y, lab, pca=1, confidence=None).gap
    # The entropy of scaled data is shifted by d log(scale), as it should be.
    shift = cchmi.entropy(x * scale).estimate - cchmi.entropy(x).estimate
    assert shift == pytest.approx(2 * math.log(scale), rel=1e-12)


def test_extreme_scales_in_the_neural_estimator():
    pytest.importorskip("torch")
    x, y, _ = _pair(n=600)
    kw = dict(epochs=2, batch_size=32, hidden=16, random_state=0)
    assert cchmi.neural_mi(x * 1e200, y * 1e-200, **kw).estimate == cchmi.neural_mi(x, y, **kw).estimate


def test_range_error_suggests_only_what_is_not_in_effect():
    x = np.array([[0.0], [3e38], [-3e38], [1.0]], dtype=np.float32)
    with pytest.raises(ValueError, match=r"differences overflow\): use standardize=True or dtype='float64'"):
        cchmi.entropy(x, standardize=False, k=1)
    with pytest.raises(ValueError, match=r"differences overflow\): use standardize=True$"):
        cchmi.entropy(np.array([[0.0], [1.5e308], [-1.5e308], [1.0]]), standardize=False, k=1)


def test_entropy_of_a_constant_column_is_minus_infinity():
    """It used to be a finite number that depended on the jitter's amplitude."""
    x = np.c_[np.random.default_rng(0).standard_normal(300), np.full(300, 4.0)]
    for noise in (1e-10, 1e-3):
        with pytest.warns(RuntimeWarning, match="constant column.*-inf"):
            r = cchmi.entropy(x, noise=noise, confidence=0.9)
        assert r.estimate == -math.inf
    with pytest.warns(RuntimeWarning, match="constant column"):
        assert cchmi.entropy(x, standardize=False).estimate == -math.inf


def test_interval_that_cannot_vary_is_refused():
    """n=8, k=3 gave the zero-width interval [0.5012, 0.5012]: half-samples of 4 points."""
    x, y, _ = _pair(n=8)
    with pytest.raises(ValueError, match=r"half-samples of at least k \+ 2 = 5 points.*n=8 is too small for k=3"):
        cchmi.ksg_mi(x, y, k=3, confidence=0.95)
    assert cchmi.ksg_mi(x[:8], y[:8], k=2, confidence=0.95).stderr > 0


def test_zero_spread_is_warned_about():
    from cchmi.estimators.interval import warn_if_no_spread

    with pytest.warns(RuntimeWarning, match="did not vary"):
        warn_if_no_spread(np.array([0.1, 0.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_no_spread(0.2)


# ---------------------------------------------------------------------------------------------
# The neural estimators


def test_a_diverging_critic_is_refused_not_reported():
    """lr=1.0 gave 2336 nats (SMILE) or -353 (InfoNCE)."""
    pytest.importorskip("torch")
    x, y, _ = _pair(n=600)
    for bound in ("smile", "infonce", "nwj"):
        with pytest.raises(FloatingPointError, match=rf"{bound} (critic diverged|objective became non-finite)"):
            cchmi.neural_mi(x, y, bound=bound, lr=1e3, epochs=3, batch_size=32, patience=5, random_state=0)


def test_neural_options_are_checked():
    pytest.importorskip("torch")
    x, y, _ = _pair(n=300)
    with pytest.raises(TypeError, match="lr must be a finite number > 0, got True"):
        cchmi.neural_mi(x, y, lr=True)
    with pytest.raises(ValueError, match="device must be .*got 'foo'"):
        cchmi.neural_mi(x, y, device="foo")
    x, y, _ = _pair(n=600)
    with pytest.warns(RuntimeWarning, match="no interval: confidence needs at least two test batches"):
        r = cchmi.neural_mi(x, y, batch_size=64, test_fraction=0.15, confidence=0.95, epochs=1)
    assert r.stderr is None and r.confidence is None


# ---------------------------------------------------------------------------------------------
# Clear errors naming the argument


@pytest.mark.parametrize("bad,error,match", [
    ({"random_state": -1}, ValueError, "random_state must be an integer seed >= 0"),
    ({"random_state": "abc"}, TypeError, "random_state must be an integer seed >= 0"),
    ({"dtype": 5}, ValueError, "dtype must be 'float32', 'float64' or None"),
    ({"variant": True}, TypeError, "variant must be 1 or 2, got True"),
    ({"standardize": "yes"}, TypeError, "standardize must be True or False"),
    ({"k": 2.0}, TypeError, "k must be an integer"),
    ({"backend": 3}, TypeError, "backend must be a string"),
    ({"n_subsamples": 1}, ValueError, "n_subsamples must be >= 2"),
])
def test_bad_options_name_the_argument(bad, error, match):
    x, y, _ = _pair(n=100)
    with pytest.raises(error, match=match):
        cchmi.ksg_mi(x, y, **bad)


def test_odd_tensors_are_converted_or_refused_by_name():
    torch = pytest.importorskip("torch")
    x, y, _ = _pair(n=200)
    want = cchmi.ksg_mi(x.astype(np.float32), y).estimate
    assert cchmi.ksg_mi(torch.from_numpy(x).to(torch.bfloat16), y).estimate == pytest.approx(want, abs=0.05)
    assert cchmi.ksg_mi(torch.from_numpy(-x)._neg_view(), y).estimate == cchmi.ksg_mi(x, y).estimate
    with pytest.raises(TypeError, match="x is a sparse_coo tensor: pass a dense one"):
        cchmi.ksg_mi(torch.from_numpy(x).to_sparse(), y)
    with pytest.raises(ValueError, match="y is on the meta device"):
        cchmi.ksg_mi(x, torch.empty((200, 1), device="meta"))


def test_thread_counts_are_capped_not_passed_to_openmp():
    """set_num_threads(5000) aborted the process inside libgomp; 2**40 broke every later call."""
    before = cchmi.get_num_threads()
    try:
        for bad in (5000, 2**40):
            with pytest.raises(ValueError, match=r"n must be at most \d+ \(4 threads per CPU"):
                cchmi.set_num_threads(bad)
        x, y, _ = _pair(n=100)
        assert math.isfinite(cchmi.ksg_mi(x, y).estimate)
    finally:
        cchmi.set_num_threads(before)


def test_thread_counts_are_validated_by_the_bindings_too():
    from cchmi import _cpu

    pts = np.random.default_rng(0).standard_normal((50, 2))
    for bad in (5000, 2**40, -1):
        with pytest.raises(ValueError, match="n_threads"):
            _cpu.knn(pts, 3, 0, bad)


def test_a_huge_omp_num_threads_does_not_abort():
    import os
    import subprocess
    import sys

    code = ("import numpy as np, cchmi; x = np.random.default_rng(0).standard_normal((3000, 2)); "
            "print(cchmi.ksg_mi(x[:, :1], x[:, 1:]).estimate)")
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "OMP_NUM_THREADS": "5000"},
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert math.isfinite(float(done.stdout.strip()))


FORK_AFTER_THREADS = """
import os, sys, warnings
import numpy as np, cchmi
cchmi.set_num_threads(2)
x = np.random.default_rng(0).standard_normal((3000, 2))
parent = cchmi.ksg_mi(x[:, :1], x[:, 1:]).estimate       # starts the OpenMP threads
be = cchmi.ops.resolve("cpu")                            # a backend object made before the fork
parent_knn = cchmi.ops.knn(be, x, 3)[0]
pid = os.fork()
if pid == 0:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cchmi.set_num_threads(2)
    ok = cchmi.get_num_threads() == 1 and "forked" in str(caught[0].message)
    ok = ok and cchmi.ksg_mi(x[:, :1], x[:, 1:]).estimate == parent
    ok = ok and np.array_equal(cchmi.ops.knn(be, x, 3)[0], parent_knn)
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""


def test_a_child_forked_after_the_threads_started_runs_on_one_thread():
    """libgomp's pool does not survive fork(): the child hung in its first parallel region (also
    through a cpu backend object resolved before the fork)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", FORK_AFTER_THREADS], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "0"


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "soon"])
def test_bench_timeout_must_be_positive_seconds(value, capsys):
    from cchmi.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["bench", "speed", "--timeout", value])
    assert stop.value.code == 2
    assert "--timeout" in capsys.readouterr().err
