"""The Gaussian/CCA estimates (cchmi.estimators.gaussian) against closed forms, and the a-priori CCH
criterion (cchmi.distill.apriori): its sign on constructions, fit/score separation, refusals, and a
run on the real mfeat views."""

import math
import time

import numpy as np
import pytest

from cchmi.data import correlated_gaussian
from cchmi.data import gaussian_mi as data_gaussian_mi
from cchmi.estimators.gaussian import gaussian_cch, gaussian_conditional_mi, gaussian_label_mi, gaussian_mi

pytest.importorskip("torch")

from cchmi.distill import apriori  # noqa: E402
from cchmi.distill.apriori import KEYS, apriori_terms  # noqa: E402

# A Gaussian class model with a shared covariance (LDA): three equiprobable classes in two dims.
MEANS = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
CHOL = np.array([[1.0, 0.0], [0.5, 1.0]])


def lda_sample(n, rng):
    labels = rng.integers(0, MEANS.shape[0], n)
    return MEANS[labels] + rng.standard_normal((n, 2)) @ CHOL.T, labels


def lda_mi() -> float:
    """1/2 log(det(W + B) / det W) of the population: W = CHOL CHOL^T, B the covariance of the means."""
    within = CHOL @ CHOL.T
    between = np.cov(MEANS.T, bias=True)
    return 0.5 * (np.linalg.slogdet(within + between)[1] - np.linalg.slogdet(within)[1])


@pytest.mark.parametrize("transform", ["none", "rotate"])
def test_gaussian_mi_matches_correlated_gaussian(transform):
    s = correlated_gaussian(100_000, 3, 2, mi=1.0, transform=transform, random_state=1)
    # bias of the plug-in CCA: about d_a d_b / (2n) = 3e-5 nats; sampling s.d. about 0.005
    assert gaussian_mi(s.x, s.y) == pytest.approx(s.mi, abs=0.02)


def test_gaussian_mi_is_the_log_determinant_form_of_the_sample_covariance():
    """-1/2 sum log(1 - rho_i^2) = 1/2 log(det C_aa det C_bb / det C), up to the 1e-8 ridge."""
    s = correlated_gaussian(500, 3, 4, mi=0.8, transform="rotate", random_state=7)
    cov = np.cov(np.hstack([s.x, s.y]).T, bias=True)
    assert gaussian_mi(s.x, s.y) == pytest.approx(data_gaussian_mi(cov, 3), abs=1e-6)


def test_gaussian_terms_of_constant_inputs_are_zero():
    rng = np.random.default_rng(0)
    b, labels = rng.standard_normal((50, 2)), np.arange(50) % 3
    assert gaussian_mi(np.ones((50, 2)), b) == 0.0
    assert gaussian_mi(np.zeros((50, 1)), np.zeros((50, 1))) == 0.0
    assert gaussian_label_mi(np.full((50, 2), 3.0), labels) == 0.0
    assert gaussian_conditional_mi(np.ones((50, 1)), b, labels) == 0.0


def test_gaussian_mi_independent_and_collinear_columns():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((20_000, 3)), rng.standard_normal((20_000, 2))
    assert 0 <= gaussian_mi(a, b) < 0.002
    # a duplicated column: the ridge keeps the covariance invertible and the answer finite
    s = correlated_gaussian(20_000, 2, 2, mi=0.5, random_state=3)
    doubled = np.hstack([s.x, s.x[:, :1]])
    assert gaussian_mi(doubled, s.y) == pytest.approx(gaussian_mi(s.x, s.y), abs=1e-4)


def test_gaussian_label_mi_matches_the_lda_model():
    a, labels = lda_sample(200_000, np.random.default_rng(0))
    assert gaussian_label_mi(a, labels) == pytest.approx(lda_mi(), abs=0.01)
    rng = np.random.default_rng(1)
    assert 0 <= gaussian_label_mi(rng.standard_normal((20_000, 3)), rng.integers(0, 4, 20_000)) < 0.002


def test_gaussian_conditional_mi_of_a_known_construction():
    """A = mu_Y + Z_a, B = 3 mu_Y + Z_b, (Z_a, Z_b) independent of Y with known MI:
    I(A; B | Y) = I(Z_a; Z_b), while I(A; B) is larger (the label is shared)."""
    rng = np.random.default_rng(2)
    n = 100_000
    labels = rng.integers(0, MEANS.shape[0], n)
    z = correlated_gaussian(n, 2, 2, mi=0.7, random_state=4)
    a, b = z.x + MEANS[labels], z.y + 3 * MEANS[labels]
    assert gaussian_conditional_mi(a, b, labels) == pytest.approx(z.mi, abs=0.02)
    assert gaussian_mi(a, b) > z.mi + 0.1


def test_gaussian_cch_is_the_pair_of_terms():
    a, labels = lda_sample(5_000, np.random.default_rng(5))
    teacher = a + 0.5 * np.random.default_rng(6).standard_normal(a.shape)
    i_ts, i_sy = gaussian_cch(teacher, a, labels)
    assert i_ts == gaussian_mi(teacher, a)
    assert i_sy == gaussian_label_mi(a, labels)


def test_gaussian_refusals_name_rows_and_dims():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"a \(3 dims\) and b \(2 dims\).*at least 7 rows.*n=6"):
        gaussian_mi(rng.standard_normal((6, 3)), rng.standard_normal((6, 2)))
    gaussian_mi(rng.standard_normal((7, 3)), rng.standard_normal((7, 2)))
    with pytest.raises(ValueError, match=r"a \(2 dims\) with 3 classes.*at least 6 rows.*n=5"):
        gaussian_label_mi(rng.standard_normal((5, 2)), [0, 1, 2, 0, 1])
    with pytest.raises(ValueError, match=r"with 2 classes.*at least 6 rows.*n=5"):
        gaussian_conditional_mi(rng.standard_normal((5, 2)), rng.standard_normal((5, 1)), [0, 1, 0, 1, 0])
    with pytest.raises(ValueError, match="same number of samples"):
        gaussian_mi(rng.standard_normal((10, 1)), rng.standard_normal((9, 1)))
    with pytest.raises(ValueError, match="labels has a single class"):
        gaussian_label_mi(rng.standard_normal((10, 1)), np.zeros(10))
    with pytest.raises(ValueError, match="teacher contains NaN"):
        gaussian_cch(np.full((10, 1), np.nan), rng.standard_normal((10, 1)), np.arange(10) % 2)


def views(n, *, nuisance=0.0, teacher_noise_only=False, seed=0):
    """Labels of 3 classes; both views carry the class mean in 2 of 6 dims plus noise, and
    `nuisance` times one label-free Gaussian factor shared by both views; with teacher_noise_only the
    teacher is pure noise (no label, no nuisance)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    signal = np.zeros((n, 6))
    signal[:, :2] = 1.5 * MEANS[labels]
    shared = rng.standard_normal((n, 1)) * nuisance
    load_t, load_s = rng.standard_normal((1, 6)), rng.standard_normal((1, 6))
    teacher = signal + shared @ load_t + rng.standard_normal((n, 6))
    student = signal + shared @ load_s + rng.standard_normal((n, 6))
    if teacher_noise_only:
        teacher = rng.standard_normal((n, 6))
    return teacher, student, labels


FIT, SCORE = np.arange(0, 600), np.arange(600, 1200)


def test_apriori_entries_and_identity():
    t, s, y = views(1200, nuisance=1.0)
    out = apriori_terms(t, s, y, FIT, SCORE, pca=4)
    assert tuple(out) == KEYS
    for entry in out.values():
        assert set(entry) == {"value", "ci_low", "ci_high"}
        assert entry["ci_low"] < entry["value"] < entry["ci_high"]
    gap = out["apriori_i_ts_given_y"]["value"] - out["apriori_i_sy_given_t"]["value"]
    assert out["apriori_gap"]["value"] == pytest.approx(gap, abs=1e-12)
    assert apriori_terms(t, s, y, FIT, SCORE, pca=4) == out  # deterministic
    other = apriori_terms(t, s, y, FIT, SCORE, pca=4, seed=1)  # the seed moves the intervals only
    assert other["apriori_gap"]["value"] == out["apriori_gap"]["value"]
    assert other["apriori_gap"]["ci_low"] != out["apriori_gap"]["ci_low"]


def test_apriori_gap_rises_with_a_shared_label_free_nuisance():
    gaps = [apriori_terms(*views(1200, nuisance=v), FIT, SCORE, pca=6)["apriori_gap"] for v in (0.0, 1.0, 3.0)]
    values = [g["value"] for g in gaps]
    assert values[0] < values[1] < values[2]
    assert gaps[2]["ci_low"] > 0
    assert gaps[0]["ci_high"] < gaps[2]["ci_low"]


def test_apriori_gap_negative_for_a_noise_teacher():
    out = apriori_terms(*views(1200, teacher_noise_only=True), FIT, SCORE, pca=6)
    assert out["apriori_gap"]["ci_high"] < 0
    # no dependence beyond the plug-in CCA's upward bias, about 6 * 6 / (2 * 597) = 0.03 nats
    assert abs(out["apriori_i_ts_given_y"]["value"]) < 0.1
    assert out["apriori_i_sy_given_t"]["value"] > 0.3


def test_apriori_fits_only_on_fit_rows(monkeypatch):
    """A spy on every fit (the reductions and the probes): each is given the fit rows and nothing
    else; the score rows only evaluate."""
    seen = []
    pca_scores, probe = apriori._pca_scores, apriori.probe_log_likelihoods

    def spy_pca(x, fit_rows, k):
        seen.append(("pca", fit_rows.copy()))
        return pca_scores(x, fit_rows, k)

    def spy_probe(x, codes, train, val, rows, **kw):
        seen.append(("probe", train.copy()))
        seen.append(("probe-val", val.copy()))
        seen.append(("scored", rows.copy()))
        return probe(x, codes, train, val, rows, **kw)

    monkeypatch.setattr(apriori, "_pca_scores", spy_pca)
    monkeypatch.setattr(apriori, "probe_log_likelihoods", spy_probe)
    fit, score = np.arange(100, 700), np.arange(700, 1200)
    apriori_terms(*views(1200), fit, score, pca=3)
    assert [k for k, _ in seen].count("pca") == 2 and [k for k, _ in seen].count("probe") == 3
    for kind, rows in seen:
        np.testing.assert_array_equal(rows, score if kind == "scored" else fit)
    # rows in neither set are never read: changing them changes nothing
    t, s, y = views(1200)
    t2, s2, y2 = t.copy(), s.copy(), y.copy()
    t2[:100], s2[:100], y2[:100] = 1e3, -1e3, 0
    monkeypatch.undo()
    assert apriori_terms(t, s, y, fit, score, pca=3) == apriori_terms(t2, s2, y2, fit, score, pca=3)


def test_apriori_refusals():
    t, s, y = views(300)
    fit, score = np.arange(150), np.arange(150, 300)
    with pytest.raises(ValueError, match=r"fit_rows and score_rows share 10 rows \(first 140\)"):
        apriori_terms(t, s, y, fit, np.arange(140, 300))
    with pytest.raises(ValueError, match="score_rows repeats rows"):
        apriori_terms(t, s, y, fit, np.r_[score, 160])
    with pytest.raises(ValueError, match=r"fit_rows must index rows 0..299.*to 300"):
        apriori_terms(t, s, y, np.arange(151, 301), np.arange(150))
    with pytest.raises(TypeError, match="score_rows must hold integer row indices"):
        apriori_terms(t, s, y, fit, score.astype(float))
    with pytest.raises(ValueError, match="fit_rows must be a non-empty 1-D array"):
        apriori_terms(t, s, y, np.array([], dtype=int), score)
    labels = y.copy()
    labels[score[:5]] = 7
    with pytest.raises(ValueError, match=r"score_rows hold 1 classes that fit_rows lack"):
        apriori_terms(t, s, labels, fit, score)
    with pytest.raises(ValueError, match="too few rows: fit_rows has 5 and score_rows 150"):
        apriori_terms(t, s, y, np.arange(5), score)
    with pytest.raises(ValueError, match="pca must be >= 1"):
        apriori_terms(t, s, y, fit, score, pca=0)
    with pytest.raises(ValueError, match="student_x has 299"):
        apriori_terms(t, s[:-1], y, fit, score)


def test_apriori_on_mfeat_pixel_fourier():
    """The real case the KD runs use: 2,000 rows, pixel (240 dims) -> fourier (76 dims), half to fit,
    half to score, in seconds (measured about 0.4 s on 2 shared cores, 2 s with torch's import)."""
    from cchmi.data.multiview import load_mfeat

    mv = load_mfeat(["pixel", "fourier"])
    perm = np.random.default_rng(0).permutation(2000)
    start = time.perf_counter()
    out = apriori_terms(mv.views["pixel"], mv.views["fourier"], mv.labels, perm[:1000], perm[1000:])
    assert time.perf_counter() - start < 30
    assert all(math.isfinite(e["value"]) for e in out.values())
    # both views predict the digit well and share much of their within-class variation
    assert out["apriori_i_ts_given_y"]["ci_low"] > 0.3
    assert out["apriori_i_sy_given_t"]["value"] > 0
