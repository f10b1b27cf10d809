"""The neural protocol (cchmi.neural.estimator.repeated): repeats over independent splits and
initial weights combined by Rubin's rules, the subsample extrapolation, the default left as the
single run, and argument errors, for neural_mi, latent_mi and diffusion_mi."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cchmi.data import correlated_gaussian  # noqa: E402
from cchmi.neural import DiffusionMIResult, diffusion_mi, latent_mi, neural_mi  # noqa: E402
from cchmi.neural.estimator import REPEAT_STRIDE, RepeatedMIResult, repeated, t_quantile  # noqa: E402
from cchmi.results import MIResult, load_result  # noqa: E402

NEURAL = dict(epochs=3, batch_size=32, hidden=16, embed_dim=8)
LATENT = dict(epochs=3, hidden=16, embed_dim=2)
DIFFUSION = dict(hidden=16, layers=1, epochs=2, patience=1, n_levels=4, batch_size=64)
ESTIMATORS = [(neural_mi, NEURAL), (latent_mi, LATENT), (diffusion_mi, DIFFUSION)]


@pytest.fixture(scope="module")
def sample():
    return correlated_gaussian(800, 3, 2, mi=1.0, random_state=0)


def test_t_quantile():
    for df, q in ((1, 12.706204736), (2, 4.302652730), (10, 2.228138852), (30, 2.042272456)):
        assert t_quantile(0.975, df) == pytest.approx(q, abs=1e-6)
    assert t_quantile(0.95, math.inf) == pytest.approx(1.644853627, abs=1e-9)


def _stub(values, stderrs):
    calls = []

    def fit_once(x, y, seed):
        i = len(calls)
        calls.append((x.shape[0], seed))
        return MIResult(estimate=values[i], n=x.shape[0], k=0, estimator="stub", backend="none", seconds=0.0,
                        stderr=stderrs[i])

    return fit_once, calls


def test_rubins_rules_by_hand():
    values, stderrs = [1.0, 1.3, 0.8], [0.1, 0.2, 0.15]
    fit_once, calls = _stub(values, stderrs)
    x = np.zeros((10, 1))
    r = repeated(fit_once, x, x, repeats=3, extrapolate=False, random_state=5, confidence=0.9)
    w, b = np.mean(np.square(stderrs)), np.var(values, ddof=1)
    total = w + (1 + 1 / 3) * b
    df = 2 * (1 + w / ((1 + 1 / 3) * b)) ** 2
    assert [c[1] for c in calls] == [5, 5 + REPEAT_STRIDE, 5 + 2 * REPEAT_STRIDE]
    assert r.estimate == pytest.approx(np.mean(values)) and r.stderr == pytest.approx(math.sqrt(total))
    assert r.df == pytest.approx(df) and r.n_subsamples == 3 and r.repeat_estimates == tuple(values)
    half = t_quantile(0.95, df) * math.sqrt(total)
    assert (r.ci_low, r.ci_high) == pytest.approx((r.estimate - half, r.estimate + half))


def test_extrapolation_by_hand():
    # per repeat: the full fit, then the half fit
    fit_once, calls = _stub([1.0, 0.8, 1.2, 1.1], [0.1, 0.2, 0.1, 0.2])
    x = np.zeros((11, 1))
    r = repeated(fit_once, x, x, repeats=2, extrapolate=True, random_state=0, confidence=0.95)
    assert [c[0] for c in calls] == [11, 5, 11, 5]
    assert r.half_estimates == (0.8, 1.1) and r.estimate == pytest.approx(np.mean([2 * 1.0 - 0.8, 2 * 1.2 - 1.1]))
    assert r.within_stderr == pytest.approx(math.sqrt(np.mean([4 * 0.01 + 0.04, 4 * 0.01 + 0.04])))


@pytest.mark.parametrize("fn, fast", ESTIMATORS)
def test_default_is_the_single_run_and_repeats_widen(sample, fn, fast):
    single = fn(sample.x, sample.y, **fast)
    assert type(single) is (DiffusionMIResult if fn is diffusion_mi else MIResult)  # diffusion: with its control
    assert fn(sample.x, sample.y, repeats=1, extrapolate=False, **fast).estimate == single.estimate
    r = fn(sample.x, sample.y, repeats=3, **fast)
    assert isinstance(r, RepeatedMIResult) and r.repeats == 3 and r.n_subsamples == 3
    assert r.repeat_estimates[0] == single.estimate and r.repeat_stderrs[0] == single.stderr  # repeat 0 = default
    assert r.estimate == pytest.approx(np.mean(r.repeat_estimates))
    assert r.ci_high - r.ci_low > single.ci_high - single.ci_low
    assert r.between_stderr > 0 and "Rubin" in r.interval_note
    assert load_result(r.to_json()) == r


def test_extrapolate_runs_and_its_half_size_error_says_so(sample):
    r = neural_mi(sample.x, sample.y, extrapolate=True, **NEURAL)
    assert r.repeats == 1 and len(r.half_estimates) == 1 and r.between_stderr is None and r.df == math.inf
    with pytest.raises(ValueError, match=r"extrapolate=True fits on half the rows \(400 of n=800\)"):
        neural_mi(sample.x, sample.y, extrapolate=True, confidence=None, **{**NEURAL, "batch_size": 100})


@pytest.mark.parametrize("fn, fast", ESTIMATORS)
@pytest.mark.parametrize("kwargs, error, message", [
    (dict(repeats=0), ValueError, "repeats"),
    (dict(repeats=2.5), TypeError, "repeats"),
    (dict(extrapolate="yes"), TypeError, "extrapolate"),
])
def test_protocol_argument_errors(sample, fn, fast, kwargs, error, message):
    with pytest.raises(error, match=message):
        fn(sample.x, sample.y, **fast, **kwargs)
