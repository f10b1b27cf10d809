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

The warnings the estimators raise on these rows (a few held-out rows setting a feature's scale, an
extrapolation outside its measured range, ...) do not escape: :func:`held_out_estimates` records
them, each prefixed by the predictor it came from, for the summary's ``warnings`` and logs them
through the logger "cchmi.distill".
"""

from __future__ import annotations

import contextlib
import logging
import warnings

import numpy as np

from cchmi.cch import cch
from cchmi.distill.summary import PREDICTORS
from cchmi.estimators.label_terms import interval_entry, label_mi_terms

PREDICTOR_PCA = 8  # principal components of the penultimate features for cch_gap_features
# The CCH gap predictors: name -> (representation, PCA components or None).
GAP_PREDICTORS = {"cch_gap_logits": ("logits", None), "cch_gap_features": ("features", PREDICTOR_PCA)}
LABEL_PREDICTORS = ("label_mi_gap", "conditional_mi")  # what label_mi_terms gives
logger = logging.getLogger("cchmi.distill")


@contextlib.contextmanager
def recording(source: str, sink: list):
    """Catches every warning raised inside (whatever the warning filters say, "error" included) and
    appends it to `sink` as "<source>: <message>", once per distinct text, logging each new one as a
    warning of the logger "cchmi.distill"."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for item in caught:
        text = f"{source}: {item.message}"
        if text not in sink:
            sink.append(text)
            logger.warning(text)


def cch_on(teacher: dict, baseline: dict, y, rows, representation: str, pca: int | None, *, k: int, seed: int,
           estimator: str):
    """The CCH (:class:`cchmi.CCHResult`) of `representation` on the rows `rows`; teacher and
    baseline map "logits" and "features" to arrays with a row per sample (the teacher's already
    paired with the student's rows), y holds the labels of `rows`."""
    return cch(teacher[representation][rows], baseline[representation][rows], y, k=k, pca=pca, random_state=seed,
               estimator=estimator)


def cch_gaps(teacher: dict, baseline: dict, y, rows, *, k: int, seed: int, estimator: str, known=None,
             only: str | None = None) -> dict:
    """cch_gap_logits and cch_gap_features (or the one named `only`) as interval entries; `known`: a
    CCHResult already computed as (representation, pca, result), reused where it is one of them."""
    out = {}
    for name, (representation, pca) in GAP_PREDICTORS.items():
        if only is not None and name != only:
            continue
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


# What an estimator raises on held-out rows it cannot take (ties, too few rows, a singular fit, a
# neural bound out of memory): the run keeps its accuracies, the step is recorded as failed.
ESTIMATE_ERRORS = (ValueError, RuntimeError, ArithmeticError)


@contextlib.contextmanager
def _step(source: str, warned: list, failed: dict):
    """One estimation step named `source`: its warnings recorded (:func:`recording`), and an
    ESTIMATE_ERRORS exception recorded in `failed` ({source: "<type>: <message>"}, logged) instead of
    raised."""
    with recording(source, warned):
        try:
            yield
        except ESTIMATE_ERRORS as exc:
            failed[source] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            logger.warning("%s failed: %s", source, failed[source])


def failed_cch(*, k: int, pca: int | None, estimator: str, n: int, error: str) -> dict:
    """The summary's cch entry of a run whose CCH could not be estimated: the numbers null, verdict
    "failed", the settings, the held-out rows n and the error."""
    return {"i_ts": None, "i_sy": None, "gap": None, "gap_ci_low": None, "gap_ci_high": None, "verdict": "failed",
            "estimator": estimator, "n": n, "k": k, "pca": pca, "error": error}


def held_out_estimates(teacher: dict, baseline: dict, labels, rows, *, representation: str, k: int,
                       pca: int | None, seed: int, predictors: bool, estimator: str = "auto"):
    """The CCH of `representation` and (predictors=True) the MI predictors, from the rows `rows`
    only. teacher and baseline map "logits" and "features" to arrays with a row per sample (the
    teacher's already paired with the student's rows); `estimator`: :func:`cchmi.cch`'s, for the
    CCH and the two gap predictors.

    Returns (CCHResult or None, {name: interval dict}, warnings, errors). Each step is named by its
    source: "cch" (the CCH of `representation`), a gap predictor's name, or
    "label_mi_gap/conditional_mi". warnings: the distinct warnings the estimators raised, as
    "<source>: <message>" (:func:`recording`); errors: {source: "<type>: <message>"} of the steps
    that raised (:data:`ESTIMATE_ERRORS`), whose values are then missing (the CCH None), so that a
    run whose training finished keeps its accuracies."""
    y = np.asarray(labels)[rows]
    warned, failed = [], {}
    crit = None
    with _step("cch", warned, failed):
        crit = cch_on(teacher, baseline, y, rows, representation, pca, k=k, seed=seed, estimator=estimator)
    out = {}
    if predictors:
        for name, (rep, components) in GAP_PREDICTORS.items():
            if (rep, components) == (representation, pca):
                if crit is not None:
                    out[name] = interval_entry(crit.gap, crit.gap_ci_low, crit.gap_ci_high)
                continue
            with _step(name, warned, failed):
                out.update(cch_gaps(teacher, baseline, y, rows, k=k, seed=seed, estimator=estimator,
                                    only=name))
        with _step("/".join(LABEL_PREDICTORS), warned, failed):
            out.update(label_mi_terms(teacher["logits"][rows], baseline["logits"][rows], y, k=k, random_state=seed))
    return crit, out, warned, failed


def ordered(values: dict) -> dict:
    """The predictors of `values` in the order of :data:`PREDICTORS` (the summary's order)."""
    return {name: values[name] for name in PREDICTORS if name in values}

