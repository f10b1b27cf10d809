"""The predictors of the KD gain, each a named function over held-out rows (validation + test: rows
that never score the outcome's training), and the CCH estimate of a run.

The names and their order are :data:`cchmi.distill.summary.PREDICTORS` (the one list, read by the
report too); each value is an interval entry {value, ci_low, ci_high} in nats (accuracy points for
teacher_minus_student_acc):

* cch_gap_logits, cch_gap_features: I(T;S) - I(S;Y) on the logits, and on the penultimate
  features reduced to :data:`PREDICTOR_PCA` principal components (:func:`cch_gaps`);
* label_mi_gap (I(T;Y) - I(S;Y)) and conditional_mi (I(T;Y|S)) on the logits
  (:func:`cchmi.estimators.label_terms.label_mi_terms`);
* teacher_minus_student_acc: test accuracy, teacher minus baseline student
  (:func:`teacher_minus_student_acc`), always reported: the simplest competing predictor.
"""

from __future__ import annotations

import numpy as np

from cchmi.cch import cch
from cchmi.distill.summary import PREDICTORS
from cchmi.estimators.label_terms import interval_entry, label_mi_terms

PREDICTOR_PCA = 8  # principal components of the penultimate features for cch_gap_features
# The CCH gap predictors: name -> (representation, PCA components or None).
GAP_PREDICTORS = {"cch_gap_logits": ("logits", None), "cch_gap_features": ("features", PREDICTOR_PCA)}
LABEL_PREDICTORS = ("label_mi_gap", "conditional_mi")  # what label_mi_terms gives


def cch_on(teacher: dict, baseline: dict, y, rows, representation: str, pca: int | None, *, k: int, seed: int,
           estimator: str):
    """The CCH (:class:`cchmi.CCHResult`) of `representation` on the rows `rows`; teacher and
    baseline map "logits" and "features" to arrays with a row per sample (the teacher's already
    paired with the student's rows), y holds the labels of `rows`."""
    return cch(teacher[representation][rows], baseline[representation][rows], y, k=k, pca=pca, random_state=seed,
               estimator=estimator)


def cch_gaps(teacher: dict, baseline: dict, y, rows, *, k: int, seed: int, estimator: str, known=None) -> dict:
    """cch_gap_logits and cch_gap_features as interval entries; `known`: a CCHResult already
    computed as (representation, pca, result), reused where it is one of them."""
    out = {}
    for name, (representation, pca) in GAP_PREDICTORS.items():
        if known is not None and known[:2] == (representation, pca):
            result = known[2]
        else:
            result = cch_on(teacher, baseline, y, rows, representation, pca, k=k, seed=seed, estimator=estimator)
        out[name] = interval_entry(result.gap, result.gap_ci_low, result.gap_ci_high)
    return out


def teacher_minus_student_acc(accuracy: dict) -> dict:
    """The teacher-accuracy predictor: test accuracy of the teacher minus the baseline student's
    (no interval), from a run's {"teacher", "baseline", ...} test accuracies."""
    return interval_entry(accuracy["teacher"] - accuracy["baseline"])


def held_out_estimates(teacher: dict, baseline: dict, labels, rows, *, representation: str, k: int,
                       pca: int | None, seed: int, predictors: bool, estimator: str = "auto"):
    """The CCH of `representation` and (predictors=True) the MI predictors, from the rows `rows`
    only. teacher and baseline map "logits" and "features" to arrays with a row per sample (the
    teacher's already paired with the student's rows); `estimator`: :func:`cchmi.cch`'s, for the
    CCH and the two gap predictors. Returns (CCHResult, {name: interval dict})."""
    y = np.asarray(labels)[rows]
    crit = cch_on(teacher, baseline, y, rows, representation, pca, k=k, seed=seed, estimator=estimator)
    out = {}
    if predictors:
        out.update(cch_gaps(teacher, baseline, y, rows, k=k, seed=seed, estimator=estimator,
                            known=(representation, pca, crit)))
        out.update(label_mi_terms(teacher["logits"][rows], baseline["logits"][rows], y, k=k, random_state=seed))
    return crit, out


def ordered(values: dict) -> dict:
    """The predictors of `values` in the order of :data:`PREDICTORS` (the summary's order)."""
    return {name: values[name] for name in PREDICTORS if name in values}

