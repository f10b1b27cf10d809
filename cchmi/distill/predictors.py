"""The predictors of the KD gain and the CCH estimate of a run, each computed from the VALIDATION
rows only: never from the test rows, which score the gain (a predictor and the gain it predicts
share no noise), and never from rows a network trained on.

The names and their order are :data:`cchmi.distill.summary.PREDICTORS` (the one list, read by the
report too); each value is an interval entry {value, ci_low, ci_high} (ci None where there is
none), in nats for the MI predictors:

* cch_gap_logits, cch_gap_features: I(T;S) - I(S;Y) on the logits, and on the penultimate
  features reduced to :data:`PREDICTOR_PCA` principal components (:func:`cch_gaps`);
* neg_student_label_mi: -I(S;Y) on the baseline student's logits (Ross's estimator,
  :func:`cchmi.mixed_mi`);
* label_mi_gap (I(T;Y) - I(S;Y)) and conditional_mi (I(T;Y|S)) on the logits
  (:func:`cchmi.estimators.label_terms.label_mi_terms`);
* teacher_acc: the teacher's validation accuracy (the report's comparator), and
  teacher_minus_student_acc: validation accuracy, teacher minus baseline student
  (:func:`teacher_minus_student_acc`); both always reported;
* kd_pilot: validation accuracy of a KD student minus a baseline student, both trained from the
  same initial weights for a tenth of the students' length (the trainer computes it);
* apriori_gap: the a-priori criterion on the raw views, no trained network
  (:func:`apriori_gap`, :func:`cchmi.distill.apriori.apriori_terms`);
* random: uniform on [0, 1), seeded by (seed, teacher view, student view) (:func:`random_predictor`),
  always reported: the floor every predictor must beat.

After them, "cch_gap_logits@<estimator>" for each estimator of the KD config's cch.sensitivity:
the logits' CCH gap by that estimator ("gaussian": :func:`cchmi.estimators.gaussian.gaussian_cch`).

The warnings the estimators raise on these rows (a few validation rows setting a feature's scale, an
extrapolation outside its measured range, ...) do not escape: :func:`held_out_estimates` records
them, each prefixed by the predictor it came from, for the summary's ``warnings`` and logs them
through the logger "cchmi.distill".
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import warnings

import numpy as np

from cchmi.cch import cch
from cchmi.distill.summary import PREDICTORS, SENSITIVITY_PREFIX
from cchmi.estimators import mixed_mi
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
    """The teacher-accuracy predictor: accuracy of the teacher minus the baseline student's (no
    interval), from a run's {"teacher", "baseline", ...} VALIDATION accuracies (the run's
    val_accuracy: never the test rows, which score the gain)."""
    return interval_entry(accuracy["teacher"] - accuracy["baseline"])


def random_predictor(seed: int, teacher_view: str, student_view: str) -> dict:
    """The random predictor: one uniform draw on [0, 1) (no interval), seeded by (seed, teacher
    view, student view) through sha256, so it is the same in every run and process of that triple
    and independent between teachers."""
    key = hashlib.sha256(f"{seed}\0{teacher_view}\0{student_view}".encode()).digest()
    return interval_entry(float(np.random.default_rng(int.from_bytes(key[:8], "little")).random()))


def apriori_gap(teacher_x, student_x, labels, fit_rows, score_rows, *, seed: int) -> dict:
    """{"apriori_gap": interval entry}: the a-priori criterion of
    :func:`cchmi.distill.apriori.apriori_terms` on the raw views (no trained network), fitted on
    `fit_rows` (the rows the networks train on) and scored on `score_rows` (the validation rows)."""
    from cchmi.distill.apriori import apriori_terms  # imported here: it is only needed with predictors on

    return {"apriori_gap": apriori_terms(teacher_x, student_x, labels, fit_rows, score_rows, seed=seed)["apriori_gap"]}


# What an estimator raises on held-out rows it cannot take (ties, too few rows, a singular fit, a
# neural bound out of memory): the run keeps its accuracies, the step is recorded as failed.
ESTIMATE_ERRORS = (ValueError, RuntimeError, ArithmeticError)


@contextlib.contextmanager
def estimate_step(source: str, warned: list, failed: dict):
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
    "failed", the settings, the validation rows n and the error."""
    return {"i_ts": None, "i_sy": None, "gap": None, "gap_ci_low": None, "gap_ci_high": None, "verdict": "failed",
            "estimator": estimator, "n": n, "k": k, "pca": pca, "error": error}


def sensitivity_gap(teacher: dict, baseline: dict, y, rows, estimator: str, *, k: int, seed: int) -> dict:
    """The interval entry of the logits' CCH gap by `estimator` (a name of :func:`cchmi.cch`, or
    "gaussian": :func:`cchmi.estimators.gaussian.gaussian_cch`, no interval) on the rows `rows`."""
    if estimator == "gaussian":
        from cchmi.estimators.gaussian import gaussian_cch  # only needed when the sensitivity set names it

        i_ts, i_sy = gaussian_cch(teacher["logits"][rows], baseline["logits"][rows], y)
        return interval_entry(i_ts - i_sy)
    result = cch_on(teacher, baseline, y, rows, "logits", None, k=k, seed=seed, estimator=estimator)
    return interval_entry(result.gap, result.gap_ci_low, result.gap_ci_high)


def held_out_estimates(teacher: dict, baseline: dict, labels, rows, *, representation: str, k: int,
                       pca: int | None, seed: int, predictors: bool, estimator: str = "auto",
                       sensitivity: tuple[str, ...] = ()):
    """The CCH of `representation` and (predictors=True) the MI predictors and the sensitivity
    entries, from the rows `rows` only (the trainer passes its validation rows). teacher and
    baseline map "logits" and "features" to arrays with a row per sample (the teacher's already
    paired with the student's rows); `estimator`: :func:`cchmi.cch`'s, for the CCH and the two gap
    predictors; `sensitivity`: the estimators of the "cch_gap_logits@<estimator>" entries.

    Returns (CCHResult or None, {name: interval dict}, warnings, errors). Each step is named by its
    source: "cch" (the CCH of `representation`), a gap predictor's name, "neg_student_label_mi",
    "label_mi_gap/conditional_mi" or a sensitivity entry's name (which names its estimator).
    warnings: the distinct warnings the estimators raised, as
    "<source>: <message>" (:func:`recording`); errors: {source: "<type>: <message>"} of the steps
    that raised (:data:`ESTIMATE_ERRORS`), whose values are then missing (the CCH None), so that a
    run whose training finished keeps its accuracies."""
    y = np.asarray(labels)[rows]
    warned, failed = [], {}
    crit = None
    with estimate_step("cch", warned, failed):
        crit = cch_on(teacher, baseline, y, rows, representation, pca, k=k, seed=seed, estimator=estimator)
    out = {}
    if predictors:
        for name, (rep, components) in GAP_PREDICTORS.items():
            if (rep, components) == (representation, pca):
                if crit is not None:
                    out[name] = interval_entry(crit.gap, crit.gap_ci_low, crit.gap_ci_high)
                continue
            with estimate_step(name, warned, failed):
                out.update(cch_gaps(teacher, baseline, y, rows, k=k, seed=seed, estimator=estimator,
                                    only=name))
        with estimate_step("neg_student_label_mi", warned, failed):
            i_sy = mixed_mi(baseline["logits"][rows], y, k=k, random_state=seed, confidence=0.95)
            out["neg_student_label_mi"] = interval_entry(-i_sy.estimate, -i_sy.ci_high, -i_sy.ci_low)
        with estimate_step("/".join(LABEL_PREDICTORS), warned, failed):
            out.update(label_mi_terms(teacher["logits"][rows], baseline["logits"][rows], y, k=k, random_state=seed))
        for name in sensitivity:
            with estimate_step(SENSITIVITY_PREFIX + name, warned, failed):
                out[SENSITIVITY_PREFIX + name] = sensitivity_gap(teacher, baseline, y, rows, name, k=k, seed=seed)
    return crit, out, warned, failed


def ordered(values: dict, sensitivity: tuple[str, ...] = ()) -> dict:
    """The predictors of `values` in the order of :data:`PREDICTORS` (the summary's order), then
    the sensitivity entries of `sensitivity`'s estimators, in its order."""
    names = (*PREDICTORS, *(SENSITIVITY_PREFIX + name for name in sensitivity))
    return {name: values[name] for name in names if name in values}

