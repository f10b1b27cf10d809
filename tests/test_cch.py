"""The CCH criterion: its terms agree with the estimators they are built from, known gaps are
recovered, the interval is of the difference, verdicts, representations, PCA, teacher ranking."""

from __future__ import annotations

import json
import math
import re
import sys

import numpy as np
import pytest

import cchmi
from cchmi.data import cch_tasks, gaussian_classes

# Tolerances (reasons):
EXACT = 1e-9  # same neighbours and counts as the standalone estimators: only the summation order differs
KNOWN_BAND = 0.08  # nats; KSG at n=3000 in 1-2 dims: bias ~0.02, sampling s.d. ~0.02


def known_gap_sample(n, rho=0.8, random_state=0):
    """S = (S1, S2): S1 a two-class Gaussian mixture (I(S; Y) known by quadrature), S2 ~ N(0, 1)
    independent of the label; T correlated with S2 only, so I(T; S) = -1/2 log(1 - rho^2)."""
    rng = np.random.default_rng(random_state)
    classes = gaussian_classes(n, 2, separation=2.0, random_state=rng)
    s2 = rng.standard_normal(n)
    t = rho * s2 + math.sqrt(1 - rho * rho) * rng.standard_normal(n)
    return t[:, None], np.column_stack([classes.x[:, 0], s2]), classes.y, -0.5 * math.log1p(-rho * rho), classes.mi


def test_terms_equal_the_standalone_estimators():
    t, s, y, _, _ = known_gap_sample(800)
    r = cchmi.cch(t, s, y, k=4, confidence=None)
    assert r.i_ts == pytest.approx(cchmi.ksg_mi(t, s, k=4).estimate, abs=EXACT)
    assert r.i_sy == pytest.approx(cchmi.mixed_mi(s, y, k=4).estimate, abs=EXACT)
    assert r.gap == pytest.approx(r.i_ts - r.i_sy, abs=1e-12)
    assert r.estimator == "ksg1 + ross" and r.backend == "cpu" and r.dims == (1, 2) and r.n == 800


@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_known_gap_is_recovered(rho):
    t, s, y, i_ts, i_sy = known_gap_sample(3000, rho=rho, random_state=1)
    r = cchmi.cch(t, s, y)
    assert abs(r.i_ts - i_ts) < KNOWN_BAND
    assert abs(r.i_sy - i_sy) < KNOWN_BAND
    assert abs(r.gap - (i_ts - i_sy)) < KNOWN_BAND
    assert r.gap_ci_low < r.gap < r.gap_ci_high


def test_interval_is_of_the_difference():
    # T close to S: both terms move together across half-samples, so the gap's s.e. is below the
    # sum of the two s.e. (it would equal it for independent intervals only in the worst case).
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 1500)
    s = y[:, None] + rng.standard_normal((1500, 2))
    t = s + 0.5 * rng.standard_normal((1500, 2))
    r = cchmi.cch(t, s, y, n_subsamples=30)
    assert r.gap_stderr < r.stderr_ts + r.stderr_sy
    z = (r.gap_ci_high - r.gap) / r.gap_stderr
    assert z == pytest.approx(1.959964, rel=1e-5)
    assert r.n_subsamples == 30 and r.confidence == 0.95


def test_gap_stderr_matches_the_spread_over_independent_samples():
    ses, gaps = [], []
    for seed in range(16):
        t, s, y, _, _ = known_gap_sample(600, rho=0.8, random_state=100 + seed)
        r = cchmi.cch(t, s, y, random_state=seed)
        ses.append(r.gap_stderr)
        gaps.append(r.gap)
    ratio = np.mean(ses) / np.std(gaps, ddof=1)
    assert 0.5 < ratio < 2.0, ratio


def test_verdicts():
    rng = np.random.default_rng(3)
    n = 1500
    y = rng.integers(0, 3, n)
    s = y[:, None] + rng.standard_normal((n, 2))
    close = s + 0.2 * rng.standard_normal((n, 2))
    # A teacher that knows the sample only through its label: S - Y - T is a Markov chain, so
    # I(T; S) <= I(S; Y) (data processing).
    label_only = y[:, None] + rng.standard_normal((n, 2))
    assert cchmi.cch(close, s, y).verdict == "distil"
    assert cchmi.cch(label_only, s, y).verdict == "do not distil"
    assert cchmi.cch(close, s, y, confidence=None).verdict == "distil"
    # Small n, gap near 0: the interval straddles 0.
    t, s2, y2, _, _ = known_gap_sample(300, rho=math.sqrt(1 - math.exp(-2 * 0.32)), random_state=4)
    assert cchmi.cch(t, s2, y2).verdict == "undecided"


def test_str_and_dict():
    t, s, y, _, _ = known_gap_sample(400)
    r = cchmi.cch(t, s, y)
    text = str(r)
    assert "I(T;S)" in text and r.verdict in text and "95% CI" in text
    d = r.as_dict()
    assert d["gap"] == r.gap and d["dims"] == [1, 2] and d["representation"] == ["features", "features"]


def test_probabilities_are_additive_log_ratios():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, 600)
    logits_t = y[:, None] * np.array([1.0, 0.0, -1.0]) + rng.standard_normal((600, 3))
    logits_s = logits_t + rng.standard_normal((600, 3))

    def softmax(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def alr(z):
        return z[:, :-1] - z[:, -1:]

    by_prob = cchmi.cch(softmax(logits_t), softmax(logits_s), y, representation="probabilities")
    by_alr = cchmi.cch(alr(logits_t), alr(logits_s), y)
    assert by_prob.dims == (2, 2) and by_prob.representation == ("probabilities", "probabilities")
    assert by_prob.gap == pytest.approx(by_alr.gap, abs=1e-6)
    mixed = cchmi.cch(softmax(logits_t), logits_s, y, representation=("probabilities", "logits"))
    assert mixed.dims == (2, 3)


def test_pca_holds_out_its_fitting_rows():
    rng = np.random.default_rng(6)
    y = rng.integers(0, 2, 1000)
    s = np.hstack([y[:, None] + rng.standard_normal((1000, 1)), 0.1 * rng.standard_normal((1000, 9))])
    t = s + 0.3 * rng.standard_normal((1000, 10))
    r = cchmi.cch(t, s, y, pca=2, fit_fraction=0.3)
    assert r.dims == (2, 2) and r.pca == 2
    assert r.n == 1000 - 300
    wide = cchmi.cch(t, s, y, pca=20)  # wider than the data: nothing to reduce, rows still held out
    assert wide.dims == (10, 10) and wide.n == 700


@pytest.mark.slow
def test_latent_estimator():
    pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    n = 1200
    y = rng.integers(0, 3, n)
    s = np.hstack([y[:, None] + rng.standard_normal((n, 1)), rng.standard_normal((n, 5))])
    close = s + 0.2 * rng.standard_normal((n, 6))
    label_only = y[:, None] + rng.standard_normal((n, 6))
    a = cchmi.cch(close, s, y, estimator="latent", embed_dim=3)
    assert a.estimator == "latent-ksg1 + latent-ross" and a.dims == (3, 3) and a.n == n // 2
    assert a.verdict == "distil"
    ranking = cchmi.rank_teachers({"label": label_only, "close": close}, s, y, estimator="latent", embed_dim=3)
    assert ranking.best == "close"
    assert len({r.i_sy for _, r in ranking.rows}) == 1  # the (S, labels) embedding is the same for both


def test_accepts_torch_tensors():
    torch = pytest.importorskip("torch")
    t, s, y, _, _ = known_gap_sample(300)
    a = cchmi.cch(torch.from_numpy(t), torch.from_numpy(s), torch.from_numpy(y))
    b = cchmi.cch(t, s, y)
    assert a.gap == b.gap


def test_rank_teachers_shares_student_rows_and_orders_by_gap():
    rng = np.random.default_rng(7)
    n = 1000
    y = rng.integers(0, 3, n)
    s = y[:, None] + rng.standard_normal((n, 2))
    teachers = {
        "noise": rng.standard_normal((n, 3)),
        "close": s + 0.2 * rng.standard_normal((n, 2)),
        "label": y[:, None] + rng.standard_normal((n, 1)),
    }
    ranking = cchmi.rank_teachers(teachers, s, y)
    assert [name for name, _ in ranking.rows] == ["close", "label", "noise"]
    assert ranking.best == "close"
    i_sy = {r.i_sy for _, r in ranking.rows}
    se_sy = {r.stderr_sy for _, r in ranking.rows}
    assert len(i_sy) == 1 and len(se_sy) == 1  # the same jitter, split and half-samples for the student
    assert "close" in str(ranking) and "verdict" in str(ranking)
    # Reproducible: a Generator seed is drawn once and shared by all teachers.
    again = cchmi.rank_teachers(teachers, s, y, random_state=np.random.default_rng(1))
    assert len({r.i_sy for _, r in again.rows}) == 1


def test_cch_and_rank_teachers_take_the_options_as_keywords():
    import dataclasses
    import inspect

    from cchmi.cch import CCHOptions

    fields = [f.name for f in dataclasses.fields(CCHOptions)]
    for function, data in ((cchmi.cch, ["teacher", "student", "labels"]),
                           (cchmi.rank_teachers, ["teachers", "student", "labels"])):
        params = inspect.signature(function).parameters
        assert list(params) == data + fields
        assert all(params[name].kind == inspect.Parameter.KEYWORD_ONLY for name in fields)
    t, s, y, _, _ = known_gap_sample(300)
    with pytest.raises(TypeError, match="pcaa"):
        cchmi.cch(t, s, y, pcaa=2)
    with pytest.raises(TypeError):
        cchmi.cch(t, s, y, "ksg")  # options are keywords only
    direct = cchmi.cch.with_options(t, s, y, CCHOptions(k=4, confidence=None))
    assert direct == dataclasses.replace(cchmi.cch(t, s, y, k=4, confidence=None), seconds=direct.seconds)


def test_term_estimators_are_strategy_objects():
    from cchmi.estimators import cch_terms
    from cchmi.estimators.options import KnnOptions

    t, s, y, _, _ = known_gap_sample(700, random_state=5)
    strategy = cch_terms.term_estimator("ksg", pca=None, fit_fraction=None, embed_dim=8, device=None, discrete=True)
    assert strategy == cch_terms.KnnTerms(extrapolated=False, pca=None, fit_fraction=0.3)
    terms = strategy.terms(cch_terms.CCHSample(t, s, y), KnnOptions(confidence=None).validated(),
                           cch_terms.CCHStreams.spawn(3))
    r = cchmi.cch(t, s, y, confidence=None, random_state=3)
    assert isinstance(terms, cch_terms.CCHTerms) and terms.stderr is None and terms.bias is None
    assert (terms.i_ts, terms.i_sy, terms.gap) == (r.i_ts, r.i_sy, r.gap)
    assert (terms.names, terms.dims, terms.n, terms.k) == (("ksg1", "ross"), (1, 2), 700, 3)


@pytest.mark.parametrize("kwargs,message", [
    (dict(estimator="mine"), "estimator must be one of"),
    (dict(representation="embeddings"), "representation must be one of"),
    (dict(representation=("features",)), "representation must be one of"),
    (dict(pca=0), "pca must be >= 1"),
    (dict(pca=2, fit_fraction=1.0), "fit_fraction"),
    (dict(estimator="latent", pca=2), "pca applies to the kNN estimators only"),
    (dict(estimator="neural", pca=2), "pca applies to the kNN estimators only"),
    (dict(labels_kind="ordinal"), "labels_kind must be one of"),
    (dict(k=0), "k must be between"),
    (dict(confidence=1.5), "confidence"),
])
def test_bad_options(kwargs, message):
    t, s, y, _, _ = known_gap_sample(200)
    with pytest.raises(ValueError, match=message):
        cchmi.cch(t, s, y, **kwargs)


def test_bad_inputs():
    t, s, y, _, _ = known_gap_sample(200)
    with pytest.raises(ValueError, match="teacher"):
        cchmi.cch(t[:150], s, y)
    bad = s.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="student contains NaN"):
        cchmi.cch(t, bad, y)
    with pytest.raises(ValueError, match="labels has a single class"):
        cchmi.cch(t, s, np.zeros(200, dtype=int))
    with pytest.raises(ValueError, match="labels has 150 entries"):
        cchmi.cch(t, s, y[:150])
    with pytest.raises(ValueError, match="probabilities"):
        cchmi.cch(np.abs(s), s, y, representation="probabilities")
    with pytest.raises(ValueError, match="teachers must be a non-empty mapping"):
        cchmi.rank_teachers({}, s, y)


# -- bias-aware estimators (issue 14) ------------------------------------------------------------


def test_each_term_records_its_estimator():
    t, s, y, _, _ = known_gap_sample(1200, random_state=9)
    plain = cchmi.cch(t, s, y, confidence=None)
    assert (plain.estimator_ts, plain.estimator_sy) == ("ksg1", "ross") and plain.choice_reason is None
    assert plain.bias_ts is None and plain.bias_sy is None
    ext = cchmi.cch(t, s, y, estimator="ksg-extrapolated", n_subsamples=4)
    assert (ext.estimator_ts, ext.estimator_sy) == ("ksg1-extrapolated", "ross-extrapolated")
    assert ext.estimator == "ksg1-extrapolated + ross-extrapolated"
    # Level 0 of the extrapolation is the plain estimate on the same prepared rows.
    assert ext.i_ts - ext.bias_ts == pytest.approx(plain.i_ts, abs=EXACT)
    assert ext.i_sy - ext.bias_sy == pytest.approx(plain.i_sy, abs=EXACT)
    assert "extrapolated to n -> inf from subsamples of 1200, 600, 300, 150 rows" in ext.interval_note
    assert ext.gap_ci_low < ext.gap < ext.gap_ci_high
    assert "sampling variability only" in cchmi.cch(t, s, y, n_subsamples=4).interval_note
    json.dumps(ext.as_dict())


def test_continuous_target():
    rng = np.random.default_rng(10)
    s = rng.standard_normal((900, 2))
    y = s[:, :1] + rng.standard_normal((900, 1))
    t = s + rng.standard_normal((900, 2))
    r = cchmi.cch(t, s, y, labels_kind="continuous", confidence=None)
    assert (r.estimator_ts, r.estimator_sy) == ("ksg1", "ksg1")
    assert r.i_ts == pytest.approx(cchmi.ksg_mi(t, s).estimate, abs=EXACT)
    assert r.i_sy == pytest.approx(cchmi.ksg_mi(s, y).estimate, abs=EXACT)
    with pytest.raises(ValueError, match="needs discrete labels"):
        cchmi.cch(t, s, y, labels_kind="continuous", estimator="latent")


def test_extrapolation_moves_the_gap_towards_the_truth():
    # T shares 1.5 nats with S over 8 coordinate pairs; Y depends on one coordinate of S: I(S; Y) = 1 nat
    # < I(T; S). Plain KSG-1 shrinks I(T; S) (16 dims) far more than I(S; Y) (9 dims) and the gap comes
    # out below the truth by 0.2+; the extrapolation moves it towards the truth.
    task = next(t for t in cch_tasks() if t.name == "cch-gauss-8x8y1-ts1.5-sy1-k8-p0")
    t, s, y = task.sample(2048, 3)
    plain = cchmi.cch(t, s, y, labels_kind="continuous", confidence=None)
    ext = cchmi.cch(t, s, y, labels_kind="continuous", estimator="ksg-extrapolated", confidence=None)
    assert task.gap - plain.gap > 0.2
    assert abs(ext.gap - task.gap) < abs(plain.gap - task.gap)


@pytest.mark.parametrize("n,dim_t,dim_s,with_interval,expected", [
    (1023, 4, 4, True, "ksg"),
    (1023, 4, 4, False, "ksg-extrapolated"),
    (511, 4, 4, False, "ksg"),
    (1024, 32, 32, True, "ksg-extrapolated"),
    (10_000, 64, 64, True, "ksg"),  # outside the measured dimensions: plain, marked unreliable (issue 25)
    (10_000, 33, 4, False, "ksg"),
    ((1500, True), 64, 4, True, "compressed"),  # (n, low intrinsic dimension)
    ((1499, True), 64, 4, True, "ksg"),  # too few rows for the fit part and the extrapolation
    ((750, True), 33, 33, False, "compressed"),
    ((10_000, True), 32, 32, True, "ksg-extrapolated"),  # not wide: the diagnostic does not matter
])
def test_auto_rules_follow_the_table(n, dim_t, dim_s, with_interval, expected):
    module = sys.modules["cchmi.cch"]  # the module: the name cchmi.cch is the function
    n, low = n if isinstance(n, tuple) else (n, False)
    choice, reason = module.auto_estimator(n, dim_t, dim_s, with_interval, low_intrinsic=low)
    assert choice == expected and f"{n:,} rows of {dim_t}+{dim_s} dimensions" in reason
    lines = [line.strip() for line in module.cch.__doc__.splitlines()]
    for condition, estimator, _ in module.AUTO_RULES:
        (line,) = [line for line in lines if line.startswith(condition + "  ")]
        assert line.split()[-1] == estimator


def test_auto_records_choice_and_reason():
    t, s, y, _, _ = known_gap_sample(1100, random_state=11)
    r = cchmi.cch(t, s, y, estimator="auto", n_subsamples=4)
    assert r.estimator_ts == "ksg1-extrapolated" and "[rule 'n >= 1024" in r.choice_reason
    small = cchmi.cch(t[:500], s[:500], y[:500], estimator="auto")
    assert small.estimator_ts == "ksg1" and "[rule 'n < 1024 (512 without an interval)'" in small.choice_reason
    # With pca, the rule sees the rows and dimensions the estimates will use: 1100 - 330 rows.
    reduced = cchmi.cch(t, s, y, estimator="auto", pca=1)
    assert reduced.estimator_ts == "ksg1" and "770 rows of 1+1 dimensions" in reduced.choice_reason and reduced.n == 770


@pytest.mark.slow
def test_neural_estimator_records_both_bounds():
    pytest.importorskip("torch")
    t, s, y, i_ts, i_sy = known_gap_sample(3000, rho=0.9, random_state=12)
    r = cchmi.cch(t, s, y, estimator="neural")
    assert (r.estimator_ts, r.estimator_sy) == ("smile/separable", "probe-linear") and r.k == 0
    assert r.gap_stderr == pytest.approx(math.hypot(r.stderr_ts, r.stderr_sy), rel=1e-12)
    assert abs(r.i_sy - i_sy) < 0.1 and abs(r.i_ts - i_ts) < 0.2 and r.verdict == "distil"


def test_rank_teachers_puts_unreliable_results_after_the_reliable_ones():
    rng = np.random.default_rng(0)
    s = rng.standard_normal((600, 3))
    y = (s[:, 0] > 0).astype(int)
    wide = np.hstack([s + 0.1 * rng.standard_normal((600, 3)), rng.standard_normal((600, 40))])  # past 32 dims
    ranking = cchmi.rank_teachers({"wide": wide, "weak": rng.standard_normal((600, 3)) + 0.2 * s}, s, y)
    (first, r_first), (second, r_second) = ranking.rows
    assert r_second.gap > r_first.gap  # the wide teacher's gap is larger, but it cannot be trusted
    assert (first, second) == ("weak", "wide") and ranking.best == "weak"
    assert r_first.reliability.reliable and not r_second.reliability.reliable and r_second.verdict == "undecided"


# -- compress-then-kNN (issue 24) ------------------------------------------------------------------


def lifted_sample(n, dim, random_state=0):
    """The catalogue's 1+1-dimensional Gaussian task with gap +1 nat (I(T; S) 1.2, I(S; Y) 0.2,
    Y continuous), each side lifted injectively to `dim` columns (the hd suite's Lift), and the
    same task's sides padded with independent noise to `dim` columns and rotated: the same truths,
    intrinsic dimension 1 against `dim`."""
    from cchmi.data.hd_tasks import Lift, _rotation

    task = next(t for t in cch_tasks() if t.name == "cch-gauss-1x1y1-ts1.2-sy0.2-k1-p0")
    t, s, y = task.sample(n, random_state)
    rng = np.random.default_rng(1)
    lifted = Lift.draw(1, dim, rng)(t), Lift.draw(1, dim, rng)(s)
    padded = tuple(np.hstack([a, rng.standard_normal((n, dim - 1))]) @ _rotation(dim, rng).T for a in (t, s))
    return lifted, padded, y, task.truth()


def test_compressed_terms_recover_a_gap_on_wide_sides_of_low_intrinsic_dimension():
    (t, s), _, y, truth = lifted_sample(1600, 48)
    r = cchmi.cch(t, s, y, labels_kind="continuous", estimator="compressed", n_subsamples=6)
    assert (r.estimator_ts, r.estimator_sy) == ("pca-ksg1-extrapolated", "pca-ksg1-extrapolated")
    assert r.n == 1600 - 480 and r.dims == (3, 3)  # 30% of the rows fit the PCA; 3 x intrinsic dimension 1
    assert "on 3+3 principal components (teacher + student; TwoNN intrinsic dimension 1.0 and 1.0)" in r.interval_note
    assert r.gap_ci_low < truth.gap < r.gap_ci_high and r.verdict == "distil" and r.reliability.reliable


def test_compressed_refuses_a_side_of_high_intrinsic_dimension_and_pca():
    _, (t, s), y, _ = lifted_sample(1600, 40)
    with pytest.raises(ValueError, match=r"estimator='compressed' refuses: the intrinsic dimension of teacher is"):
        cchmi.cch(t, s, y, labels_kind="continuous", estimator="compressed")
    with pytest.raises(ValueError, match="pca does not apply to estimator='compressed'"):
        cchmi.cch(t, s, y, labels_kind="continuous", estimator="compressed", pca=4)


def test_auto_compresses_wide_sides_of_low_intrinsic_dimension_only():
    (t, s), (tp, sp), y, truth = lifted_sample(1600, 40)
    low = cchmi.cch(t, s, y, labels_kind="continuous", estimator="auto", n_subsamples=6)
    assert low.estimator_ts == "pca-ksg1-extrapolated" and "[rule 'd_t > 32 or d_s > 32, TwoNN" in low.choice_reason
    assert re.search(r"\(TwoNN intrinsic dimension teacher 1\.\d, student 1\.\d\)$", low.choice_reason)
    high = cchmi.cch(tp, sp, y, labels_kind="continuous", estimator="auto", n_subsamples=6)
    assert high.estimator_ts == "ksg1" and "[rule 'd_t > 32 or d_s > 32' of" in high.choice_reason
    assert high.verdict == "undecided" and not high.reliability.reliable  # the checks catch the lost I(T; S)
    few = cchmi.cch(t[:1000], s[:1000], y[:1000], labels_kind="continuous", estimator="auto", n_subsamples=6)
    assert few.estimator_ts == "ksg1" and "TwoNN" not in few.choice_reason  # below 1500 rows: not measured


def test_compressed_under_auto_falls_back_to_the_checked_plain_terms_when_the_fit_rows_refuse():
    from cchmi.estimators import cch_terms
    from cchmi.estimators.options import KnnOptions

    (t, s), _, y, _ = lifted_sample(1600, 40)
    sample, opts = cch_terms.CCHSample(t, s, y=y), KnnOptions(confidence=None).validated(("jitter",))
    refused = cch_terms.CompressedTerms(max_intrinsic=0.5, fallback=True).terms(sample, opts,
                                                                                 cch_terms.CCHStreams.spawn(0))
    assert refused.names == ("ksg1", "ksg1") and refused.dims == (40, 40) and refused.sides[0] is t
    assert refused.fallback.startswith("the compression was refused on the fit rows, so the plain kNN terms ran")
    with pytest.raises(ValueError, match="estimator='compressed' refuses"):
        cch_terms.CompressedTerms(max_intrinsic=0.5).terms(sample, opts, cch_terms.CCHStreams.spawn(0))
