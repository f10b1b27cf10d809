"""Label MI predictors of a KD gain from two representations and a discrete label:
I(T; Y) - I(S; Y) and I(T; Y | S), Ross's mixed estimator on one preparation, with intervals."""

from __future__ import annotations

import math

import numpy as np

from cchmi.estimators import interval
from cchmi.estimators.mixed import class_sizes, mixed_nats
from cchmi.estimators.options import KnnOptions
from cchmi.estimators.problem import prepare


def interval_entry(value, lo=None, hi=None) -> dict:
    """{"value", "ci_low", "ci_high"} as plain floats, None where not finite (strict JSON)."""
    def plain(v):
        return None if v is None or not math.isfinite(v) else float(v)

    return {"value": plain(value), "ci_low": plain(lo), "ci_high": plain(hi)}


def label_mi_terms(teacher, student, labels, *, k: int = 3, confidence: float = 0.95, n_subsamples: int = 20,
                   random_state=0) -> dict:
    """label_mi_gap = I(T; Y) - I(S; Y) and conditional_mi = I(T; Y | S) in nats, with intervals.

    Every term is Ross's mixed estimator (:func:`cchmi.mixed_mi`; continuous representation,
    discrete label); the conditional MI comes from the chain rule I(T; Y | S) = I(T, S; Y) - I(S; Y)
    (Frenzel-Pompe's :func:`cchmi.cmi` needs a continuous Y). The intervals are the delete-d
    jackknife over the same label-stratified half-samples for every term, so each difference has
    the interval of the difference. Representations are prepared as in cch (one random stream for
    the teacher's jitter, one for the student's, one for the half-samples)."""
    rng_t, rng_s, rng_sub = np.random.default_rng(random_state).spawn(3)
    opts = KnnOptions(k=k, confidence=confidence, n_subsamples=n_subsamples, random_state=rng_sub)
    p = prepare({"teacher": teacher, "student": student}, opts, labels=("labels", labels), ties_allowed=("jitter",),
                streams={"teacher": rng_t, "student": rng_s}, rows="the number of held-out rows")
    (tp, sp), codes, be, k, n = p.arrays, p.codes, p.be, p.k, p.n
    class_sizes(codes, "labels")
    interval.check_interval_classes(np.bincount(codes))
    joint = be.hstack(tp, sp)

    def core(rows):
        c = codes if rows is None else codes[rows]
        i_ty, i_sy, i_tsy = (mixed_nats(be, be.take(a, rows), c, k, "jitter") for a in (tp, sp, joint))
        return np.array([i_ty - i_sy, i_tsy - i_sy])

    value = core(None)
    se = interval.subsample_spread(core, n, p.rng, p.opts.n_subsamples, strata=codes)
    interval.warn_if_no_spread(se)
    z = interval.z_value(p.opts.confidence)
    return {name: interval_entry(value[i], value[i] - z * se[i], value[i] + z * se[i])
            for i, name in enumerate(("label_mi_gap", "conditional_mi"))}
