"""The a-priori CCH criterion: the CCH gap of the raw inputs, before any network is trained.

The CCH gap of two variables and a label obeys I(T; S) - I(S; Y) = I(T; S | Y) - I(S; Y | T)
(both sides are I(S; T, Y) - I(S; Y) - I(S; Y | T) by the chain rule). :func:`apriori_terms`
applies the right-hand side to the raw teacher and student inputs X_T, X_S:

* each view is standardised and reduced to its leading principal components, with means, scales
  and components fitted on the fit rows only;
* I(X_T; X_S | Y) is the within-class CCA of the two reductions on the score rows
  (:func:`cchmi.estimators.gaussian.gaussian_conditional_mi`: Gaussian classes with a shared
  covariance);
* I(X_S; Y | X_T) = CE(Y | X_T) - CE(Y | X_T, X_S) and I(X_T; Y | X_S) = CE(Y | X_S) - CE(Y | X_T, X_S),
  cross-entropies on the score rows of three softmax regressions (linear probes, ridge
  :data:`PROBE_RIDGE`, fitted to their optimum on the fit rows: deterministic).

All in nats. The score rows are used only to evaluate; nothing is fitted on them, and a row may not
be both (a predictor scored on the rows it fitted reads its own fit). The interval of each term is
value +- z * se, se the delete-d jackknife over :data:`HALF_SAMPLES` label-stratified half-samples of
the score rows (seeded; the interval path of :func:`cchmi.estimators.label_terms.label_mi_terms`),
with the fitted reductions and probes held fixed: it covers the scoring's sampling error, not the
fit's. Not the percentile bootstrap: resampling with replacement duplicates rows, and duplicates
raise the within-class CCA (its upward bias grows as distinct rows fall); on mfeat pixel -> fourier
the 95% percentile interval of the gap, [0.65, 0.81], missed the estimate 0.59. Half-samples hold
distinct rows, and the jackknife centres the interval on the estimate. The probe terms are
differences of linear-probe bounds: they miss non-linear label information, and overfitting makes
them negative; the CCA term sees only linear dependence, and its plug-in estimate is biased upwards
by about k_t k_s / (2 (m - C)) nats for k_t, k_s components, m score rows and C classes (0.13 nats
at pca=16 on 1,000 score rows): compare gaps of equal components and rows, or mind the offset.
"""

from __future__ import annotations

import numpy as np

from cchmi import _validate as V
from cchmi._scaling import standardise
from cchmi.estimators import interval
from cchmi.estimators.gaussian import gaussian_conditional_mi
from cchmi.estimators.label_terms import interval_entry
from cchmi.estimators.probe import probe_log_likelihoods

PROBE_RIDGE = 1e-3
"""Ridge on the probes' squared weights, added to their mean cross-entropy (standardised inputs)."""

HALF_SAMPLES = 200
"""Label-stratified half-samples of the score rows behind every interval (delete-d jackknife)."""

CONFIDENCE = 0.95

KEYS = ("apriori_gap", "apriori_i_ts_given_y", "apriori_i_sy_given_t", "apriori_i_ty_given_s")


def _rows(rows, name: str, n: int) -> np.ndarray:
    """Sorted unique integer row indices in [0, n), or a ValueError/TypeError naming `name`."""
    arr = np.asarray(rows)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of row indices, got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer row indices, got dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() >= n:
        raise ValueError(f"{name} must index rows 0..{n - 1} of the inputs, got values from {arr.min()} to "
                         f"{arr.max()}")
    unique = np.unique(arr)
    if unique.size != arr.size:
        raise ValueError(f"{name} repeats rows ({arr.size - unique.size} repeated indices)")
    return unique.astype(np.int64)


def _pca_scores(x: np.ndarray, fit_rows: np.ndarray, k: int) -> np.ndarray:
    """Every row's scores on the k leading principal components of the standardised fit rows
    (means, scales and components from `fit_rows` only)."""
    z = standardise(x, fit_rows, np.float64)
    fit = z[fit_rows]
    _, _, vt = np.linalg.svd(fit - fit.mean(axis=0), full_matrices=False)
    return z @ vt[:k].T


def apriori_terms(teacher_x, student_x, labels, fit_rows, score_rows, *, pca: int = 16, seed: int = 0) -> dict:
    """The a-priori CCH gap I(X_T; X_S | Y) - I(X_S; Y | X_T) of the raw inputs and its parts (module).

    teacher_x (n, d_t), student_x (n, d_s): the two views, row i of each the same object;
    labels (n,) discrete; fit_rows, score_rows: disjoint integer row indices, the first to fit the
    reductions and probes, the second to score them (every class of the score rows must have fit
    rows). pca: principal components kept per view, capped by the view's dims and so that the
    within-class CCA and the joint probe have more rows than parameters' dims. seed: the half-samples'.

    Returns {"apriori_gap", "apriori_i_ts_given_y", "apriori_i_sy_given_t", "apriori_i_ty_given_s"},
    each ``interval_entry(value, ci_low, ci_high)`` in nats, the 95% interval from half-samples of the
    score rows (fitted maps fixed)."""
    t = V.as_samples(teacher_x, "teacher_x")
    s = V.as_samples(student_x, "student_x")
    n = V.same_length(teacher_x=t, student_x=s)
    codes, _ = V.as_labels(labels, "labels", n)
    pca = V.as_int(pca, "pca", 1)
    seed = V.as_int(seed, "seed", 0)
    fit = _rows(fit_rows, "fit_rows", n)
    score = _rows(score_rows, "score_rows", n)
    both = np.intersect1d(fit, score)
    if both.size:
        raise ValueError(f"fit_rows and score_rows share {both.size} rows (first {both[0]}): the criterion must not "
                         f"score rows it was fitted on")
    fit_classes, score_classes = np.unique(codes[fit]), np.unique(codes[score])
    if fit_classes.size < 2:
        raise ValueError(f"the labels of fit_rows hold {fit_classes.size} class; the probes need 2 or more")
    unseen = np.setdiff1d(score_classes, fit_classes)
    if unseen.size:
        raise ValueError(f"score_rows hold {unseen.size} classes that fit_rows lack (codes {unseen[:5].tolist()}): "
                         f"the probes cannot score a class they never saw")
    n_classes = score_classes.size
    room = (min(fit.size - fit_classes.size, score.size // 2 - 2 * n_classes) - 1) // 2
    if room < 1:
        raise ValueError(f"too few rows: fit_rows has {fit.size} and score_rows {score.size} for "
                         f"{max(fit_classes.size, n_classes)} classes; the joint probe needs more than 2 + (classes) "
                         f"fit rows, and the within-class CCA of half of score_rows more than 2 + 2 * (classes) in "
                         f"that half")
    k_t, k_s = min(pca, t.shape[1], room), min(pca, s.shape[1], room)
    pt, ps = _pca_scores(t, fit, k_t), _pca_scores(s, fit, k_s)

    def logq(x):
        return probe_log_likelihoods(x, codes, fit, fit, score, probe="linear", ridge=PROBE_RIDGE, device="cpu")[0]

    log_t, log_s, log_ts = logq(pt), logq(ps), logq(np.hstack([pt, ps]))
    sy_given_t, ty_given_s = log_ts - log_t, log_ts - log_s
    st, ss, sc = pt[score], ps[score], codes[score]

    def terms(idx):
        i_ts_y = gaussian_conditional_mi(st[idx], ss[idx], sc[idx])
        i_sy_t, i_ty_s = sy_given_t[idx].mean(), ty_given_s[idx].mean()
        return np.array([i_ts_y - i_sy_t, i_ts_y, i_sy_t, i_ty_s])

    value = terms(np.arange(score.size))
    se = interval.subsample_spread(terms, score.size, np.random.default_rng(seed), HALF_SAMPLES, strata=sc)
    z = interval.z_value(CONFIDENCE)
    return {key: interval_entry(value[i], value[i] - z * se[i], value[i] + z * se[i]) for i, key in enumerate(KEYS)}
