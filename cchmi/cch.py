"""The Cross-modal Complementarity Hypothesis (CCH) as a decision with uncertainty.

Xie, Xu and Sanguinetti (2025): knowledge distillation (KD) from a teacher representation T into a
student representation S helps when I(T; S) > I(S; Y), Y the label. :func:`cch` estimates both
terms with one estimator family on the same rows, and the interval of their difference from the
same half-samples (so the interval is of the gap itself, not two intervals side by side); the
verdict is "distil" when the whole interval is above 0, "do not distil" when it is below, and
"undecided" when it straddles 0. :func:`rank_teachers` does it for several teacher modalities.

kNN estimates lose accuracy (they shrink towards 0) as the dimension grows, and both terms shrink,
but not equally: I(T; S) lives in dim T + dim S dimensions, I(S; Y) in dim S. Compare gaps computed
with the same settings and, for wide representations, reduce them first (``pca=``, or logits rather
than penultimate features), or use an estimator whose bias vanishes or cancels between the terms:
"ksg-extrapolated" (both terms extrapolated to n -> inf over subsample sizes,
:mod:`cchmi.estimators.extrapolate`) or "neural" (a neural bound of I(T; S) and a probe's bound of
I(S; Y), errors of the same sign, :mod:`cchmi.estimators.probe`); "auto" chooses by the rule table in
:func:`cch`'s docstring and records why.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from cchmi import _validate as V
from cchmi import ops
from cchmi._scaling import standardise
from cchmi.estimators import interval
from cchmi.estimators.extrapolate import (LEVELS, MODEL_SPREAD, bias_exponent, check_levels, extrapolate_nats,
                                         model_stderr)
from cchmi.estimators.ksg import ksg_nats
from cchmi.estimators.mixed import class_sizes, mixed_nats
from cchmi.estimators.options import KnnOptions
from cchmi.estimators.problem import prepare_arrays
from cchmi.ops.knn import check_k

ESTIMATORS = ("ksg", "latent", "ksg-extrapolated", "neural", "auto")
LABEL_KINDS = ("discrete", "continuous")
REPRESENTATIONS = ("features", "logits", "probabilities")
VERDICTS = ("distil", "do not distil", "undecided")


@dataclass(frozen=True)
class CCHResult:
    """I(T; S), I(S; Y), their gap and the verdict of the CCH.

    i_ts, i_sy, gap: estimates in `unit` (gap = i_ts - i_sy). The stderr and interval fields are set
    when an interval was asked for (``confidence``); they come from the same half-samples for all
    three quantities. verdict: "distil" (interval above 0), "do not distil" (below 0) or "undecided";
    without an interval the verdict is the sign of the gap. n: rows the estimates used (fewer than
    given when ``pca`` held some out to fit the projection); dims: (teacher, student) dimensions
    after the representation and PCA. estimator: "<estimator_ts> + <estimator_sy>", the estimator
    of each term (e.g. "ksg1", "ross", "ksg1-extrapolated", "smile/separable", "probe-linear").
    choice_reason: why estimator="auto" chose what it did (None otherwise). bias_ts, bias_sy: the
    bias correction added to each term (extrapolated minus full-sample estimate, in `unit`; None
    for estimators without one). interval_note: what the interval covers.
    """

    i_ts: float
    i_sy: float
    gap: float
    verdict: str
    estimator: str
    n: int
    k: int
    dims: tuple[int, int]
    backend: str
    seconds: float
    unit: str = "nats"
    stderr_ts: float | None = None
    stderr_sy: float | None = None
    gap_stderr: float | None = None
    gap_ci_low: float | None = None
    gap_ci_high: float | None = None
    confidence: float | None = None
    n_subsamples: int | None = None
    representation: tuple[str, str] = ("features", "features")
    pca: int | None = None
    estimator_ts: str = "ksg1"
    estimator_sy: str = "ross"
    choice_reason: str | None = None
    bias_ts: float | None = None
    bias_sy: float | None = None
    interval_note: str | None = None

    def __str__(self) -> str:
        text = f"I(T;S) = {self.i_ts:.4f}, I(S;Y) = {self.i_sy:.4f}, gap = {self.gap:+.4f} {self.unit}"
        if self.gap_stderr is not None:
            text += f" ({100 * self.confidence:g}% CI [{self.gap_ci_low:+.4f}, {self.gap_ci_high:+.4f}])"
        text = (f"{text}: {self.verdict} ({self.estimator}, k={self.k}, n={self.n}, dims {self.dims[0]}+"
                f"{self.dims[1]}, {self.backend}, {self.seconds:.3g} s)")
        if self.choice_reason is not None:
            text += f"\n  estimator='auto': {self.choice_reason}"
        return text

    def as_dict(self) -> dict:
        """Plain JSON-serialisable values."""
        out = asdict(self)
        out["dims"] = list(self.dims)
        out["representation"] = list(self.representation)
        return out


def _verdict(gap: float, lo: float | None, hi: float | None) -> str:
    if lo is None:
        return VERDICTS[0] if gap > 0 else VERDICTS[1]
    if lo > 0:
        return VERDICTS[0]
    if hi < 0:
        return VERDICTS[1]
    return VERDICTS[2]


def _represent(a: np.ndarray, kind: str, name: str) -> np.ndarray:
    """Features and logits are used as given; probabilities (rows on the simplex) become additive
    log-ratios log(p_c / p_C), c < C: an invertible map of the open simplex, so MI is unchanged and
    the redundant coordinate (rows sum to 1) is gone."""
    if kind != "probabilities":
        return a
    if a.shape[1] < 2:
        raise ValueError(f"{name}: probabilities need 2 or more columns (one per class), got {a.shape[1]}")
    if a.min() < 0 or not np.allclose(a.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError(f"{name}: representation 'probabilities' needs non-negative rows that sum to 1")
    logp = np.log(np.clip(a.astype(np.float64), 1e-12, None))
    return logp[:, :-1] - logp[:, -1:]


def _representations(representation) -> tuple[str, str]:
    if isinstance(representation, str):
        representation = (representation, representation)
    if not isinstance(representation, (tuple, list)) or len(representation) != 2:
        raise ValueError(f"representation must be one of {REPRESENTATIONS} or a (teacher, student) pair of them, "
                         f"got {representation!r}")
    return tuple(V.choice(r, "representation", REPRESENTATIONS) for r in representation)


def _stratified_split(codes: np.ndarray, fraction: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, estimate rows): `fraction` of every class (at least one row) goes to the fit part."""
    fit = []
    for c in np.unique(codes):
        members = np.flatnonzero(codes == c)
        take = min(members.size - 1, max(1, round(fraction * members.size)))
        fit.append(rng.choice(members, size=take, replace=False))
    fit = np.sort(np.concatenate(fit))
    rest = np.setdiff1d(np.arange(codes.size), fit)
    return fit, rest


def _pca(a: np.ndarray, fit: np.ndarray, rows: np.ndarray, dim: int) -> np.ndarray:
    """Project `rows` onto the top `dim` principal axes of the standardised `fit` rows (a when dim >= d)."""
    if dim >= a.shape[1]:
        return a[rows]
    z = standardise(a, fit, np.float64)
    _, _, vt = np.linalg.svd(z[fit], full_matrices=False)
    return z[rows] @ vt[:dim].T


AUTO_RULES = (
    ("n < 1024 (512 without an interval)", "ksg", "too few rows for the extrapolation (its subsamples of n/8, "
                                                   "n/16 in the half-samples of the interval, need 64 rows)"),
    ("n >= 1024 (512 without an interval)", "ksg-extrapolated",
     "on the rule sweep its gap interval covered the truth in 61 of 62 runs (KSG: 31), with the same or better "
     "sign accuracy at every dimension; the neural estimator lost I(T; S) at 64+64 (0.02 of 1 nat)"),
)
"""The rules of estimator="auto", in order (first match wins): (condition, choice, reason). n is
the number of rows the estimates will use (after ``pca``'s held-out rows)."""


def auto_estimator(n: int, dim_t: int, dim_s: int, interval: bool) -> tuple[str, str]:
    """(estimator, reason) by :data:`AUTO_RULES` for n rows of dim_t + dim_s dimensions, with an
    interval or without."""
    condition, choice, why = AUTO_RULES[0] if n < (1024 if interval else 512) else AUTO_RULES[1]
    return choice, f"{condition} (n={n}, dims {dim_t}+{dim_s}): {why}"


def cch(
    teacher,
    student,
    labels,
    *,
    estimator: str = "ksg",
    k: int = 3,
    representation="features",
    pca: int | None = None,
    fit_fraction: float | None = None,
    embed_dim: int = 8,
    base: float = math.e,
    dtype=None,
    confidence: float | None = 0.95,
    n_subsamples: int = 20,
    random_state=0,
    backend: str = "auto",
    labels_kind: str = "discrete",
    device=None,
) -> CCHResult:
    """Test the CCH, I(T; S) > I(S; Y), on representations a user already has.

    Parameters
    ----------
    teacher, student : (n, d_t) and (n, d_s) representations of the same n samples, row i of each
        from sample i (NumPy arrays or torch tensors).
    labels : (n,) discrete labels of any hashable type, at least two classes; or, with
        ``labels_kind="continuous"``, a real (n,) or (n, d_y) target.
    estimator : the estimator of both terms:

        * "ksg" (default): KSG-1 for I(T; S) and the Ross mixed estimator (the same kNN family and
          max-norm conventions) for I(S; Y) (KSG-1 for a continuous Y). Both shrink with their
          dimension, I(T; S) more (it lives in d_t + d_s dimensions): at 8+ dimensions the sign of the
          gap can be the estimator's.
        * "ksg-extrapolated": the same two estimators, each evaluated on subsamples of n, n/2, n/4
          and n/8 rows and extrapolated to n -> inf along a + b m^(-2/D), D the dimension each
          searches in (d_t + d_s; d_s, or d_s + d_y for a continuous Y): see
          :mod:`cchmi.estimators.extrapolate` for the assumptions. The interval is the half-sample
          jackknife of the whole procedure, widened by the fit's lack of fit and by the power
          law's error (:data:`cchmi.estimators.extrapolate.MODEL_SPREAD` = 0.2 of each correction,
          in quadrature); ``bias_ts`` and ``bias_sy`` hold the corrections. Needs n >= 512 (1024 with an interval).
        * "neural" (torch): I(T; S) by the SMILE bound (:func:`cchmi.neural_mi`, its defaults,
          evaluated on held-out rows) and I(S; Y) by H(Y) minus the held-out cross-entropy of a
          softmax-regression probe (:func:`cchmi.estimators.probe.probe_mi`), trained on a stratified
          ``fit_fraction`` (0.5) of the rows; for a continuous Y, SMILE for both terms. Both are
          learned functions evaluated held out, below the truth by what they miss. The gap's
          standard error is sqrt(se_ts^2 + se_sy^2) (the terms use different splits; conservative
          when their errors are positively correlated).
        * "latent" (torch): the kNN estimators on learned ``embed_dim``-dimensional embeddings
          (:func:`cchmi.latent_mi`'s cross-predictive autoencoders: one model for (T, S), one for
          (S, labels)), trained on a stratified ``fit_fraction`` of the rows (0.5 by default; a fifth
          of them for early stopping) and applied to the others, where both terms and the interval
          are estimated. Discrete labels only.
        * "auto": the first matching row of :data:`AUTO_RULES` (the choice and its reason are in
          ``choice_reason``; n is the rows the estimates use, after ``pca``):

          ======================================  ==================
          condition                               estimator
          ======================================  ==================
          n < 1024 (512 without an interval)      ksg
          n >= 1024 (512 without an interval)     ksg-extrapolated
          ======================================  ==================

          Derived on ``cchmi bench cch --n 4000 --seeds 2 --seed-offset 1000 --estimators ksg
          ksg-extrapolated --timeout 900 --out bench/results/cch_estimators/rules`` (run as one
          command per seed; report and rows: bench/results/cch_estimators/rules/cch.md, cch.csv):
          the 31 tasks of :func:`cchmi.data.cch_tasks` at n = 4000, rule seeds 1000 and 1001
          (in-sample for these rules), git 1a34545, 2-core AMD EPYC VM shared by other jobs (load
          2-5), 2026-11-30. By joint dimension d_t + d_s, the sign of gaps with |gap| >= 0.1 right /
          coverage of the 95% interval (widened by 1.96 times the truth's Monte Carlo error, at
          most 0.0022 nats) / mean absolute error of the gap, "ksg" against "ksg-extrapolated":

          ========  ==========================  ==========================
          d_t+d_s   ksg                         ksg-extrapolated
          ========  ==========================  ==========================
          <= 8      12/12, 0.78, 0.033 nats     12/12, 1.00, 0.019 nats
          9-32      8/8, 0.00, 0.438            8/8, 1.00, 0.121
          33-64     2/2, 0.33, 0.140            2/2, 1.00, 0.221
          > 64      2/8, 0.29, 0.553            4/8, 0.93, 0.710
          ========  ==========================  ==========================

          Past 64 dimensions no estimator here is reliable: the extrapolation's intervals are wide
          (verdict "undecided") and its gap error is the largest (0.710 nats), and "neural" on the
          64+64 Gaussian task returned I(T; S) = 0.02 of 1 nat and I(S; Y) = 0.41 of 1.01 (``cchmi
          bench cch --n 4000 --seeds 1 --seed-offset 1000 --estimators neural --tasks
          cch-gauss-64x64y1-ts1-sy1.01-k64-p0 --timeout 2400 --out
          bench/results/cch_estimators/rules``, 255 s, same VM); reduce the representations
          (``pca``) or give more rows.
    k : neighbours for the kNN terms.
    representation : "features", "logits" (used as given) or "probabilities" (additive log-ratio
        transform), or a (teacher, student) pair of these.
    pca : reduce each representation wider than this to `pca` principal components (after
        standardising), fitted on a stratified `fit_fraction` (0.3 by default) of the rows that the
        estimates then do not use. For the kNN estimators ("ksg", "ksg-extrapolated") only.
    base, dtype, random_state, backend : as in :func:`cchmi.ksg_mi` (jitter ties, standardised columns).
    confidence : interval level for the gap (None: no interval; the verdict is then the gap's sign).
    n_subsamples : half-samples for the kNN intervals, stratified by label and shared by both terms.
    labels_kind : "discrete" (default) or "continuous" (a real target Y).
    device : torch device of the neural and latent estimators (None: CUDA when available).
    """
    start = time.perf_counter()
    ta, sa = V.as_samples(teacher, "teacher"), V.as_samples(student, "student")
    labels_kind = V.choice(labels_kind, "labels_kind", LABEL_KINDS)
    discrete = labels_kind == "discrete"
    if discrete:
        codes, _ = V.as_labels(labels, "labels", sa.shape[0])
        ya = None
    else:
        ya, codes = V.as_samples(labels, "labels"), None
    n = V.same_length(teacher=ta, student=sa, labels=codes if discrete else ya)
    estimator = V.choice(estimator, "estimator", ESTIMATORS)
    reps = _representations(representation)
    ta, sa = _represent(ta, reps[0], "teacher"), _represent(sa, reps[1], "student")
    reason = None
    if fit_fraction is not None:
        fit_fraction = V.as_real(fit_fraction, "fit_fraction", 0, 1, low_open=True, high_open=True)
    if estimator == "auto":
        dims_used, n_used = (ta.shape[1], sa.shape[1]), n
        if pca is not None:
            pca = V.as_int(pca, "pca", 1)
            dims_used = (min(pca, ta.shape[1]), min(pca, sa.shape[1]))
            n_used = n - round((fit_fraction or 0.3) * n)
        estimator, reason = auto_estimator(n_used, *dims_used, confidence is not None)
    opts = KnnOptions(k=k, base=base, dtype=dtype, backend=backend, confidence=confidence,
                      n_subsamples=n_subsamples).validated(("jitter",))
    # Independent streams for the split, the jitter of each variable and the half-samples, so that
    # the same seed gives the same student rows whatever the teacher (rank_teachers relies on it).
    rng_split, rng_student, rng_teacher, rng_sub = np.random.default_rng(random_state).spawn(4)
    if estimator in ("latent", "neural") and pca is not None:
        raise ValueError(f"pca applies to the kNN estimators only (estimator={estimator!r} learns its own functions)")
    if estimator == "latent" and not discrete:
        raise ValueError("estimator='latent' needs discrete labels (labels_kind='discrete')")
    if estimator == "neural":
        terms = _neural_terms(ta, sa, codes, ya, fit_fraction or 0.5, opts, rng_split, device)
        dims = (ta.shape[1], sa.shape[1])
        backend_name, k_used = terms.pop("backend"), 0
    else:
        s_for_labels = None
        if estimator == "latent":
            fit, rows = _stratified_split(codes, fit_fraction or 0.5, rng_split)
            ta, sa, s_for_labels = _latent_embeddings(ta, sa, codes, fit, rows, embed_dim, rng_split, device)
            codes = codes[rows]
            n = rows.size
        elif pca is not None:
            pca = V.as_int(pca, "pca", 1)
            fit, rows = _split(codes, n, fit_fraction or 0.3, rng_split)
            ta, sa = _pca(ta, fit, rows, pca), _pca(sa, fit, rows, pca)
            codes = None if codes is None else codes[rows]
            ya = None if ya is None else ya[rows]
            n = rows.size
        be = ops.resolve(opts.backend, n=n)
        k_used = check_k(be, opts.k, n, "the number of rows used for the estimate")
        terms = _knn_terms(be, ta, sa, s_for_labels, codes, ya, n, k_used, opts, estimator, rng_student, rng_teacher,
                           rng_sub)
        dims, backend_name = terms.pop("dims"), be.name
    scale = 1.0 / math.log(opts.base)
    i_ts, i_sy = terms["values"][0] * scale, terms["values"][1] * scale
    gap = i_ts - i_sy
    se = terms.get("stderr")
    lo = hi = None
    conf = opts.confidence if se is not None else None
    if se is not None:
        se = se * scale
        z = interval.z_value(opts.confidence)
        lo, hi = gap - z * se[2], gap + z * se[2]
    bias = terms.get("bias")
    latent = "latent-" if estimator == "latent" else ""
    est_ts, est_sy = latent + terms["names"][0], latent + terms["names"][1]
    return CCHResult(
        i_ts=float(i_ts),
        i_sy=float(i_sy),
        gap=float(gap),
        verdict=_verdict(gap, lo, hi),
        estimator=f"{est_ts} + {est_sy}",
        n=n,
        k=k_used,
        dims=dims,
        backend=backend_name,
        seconds=time.perf_counter() - start,
        unit=interval.unit_name(opts.base),
        stderr_ts=None if se is None else float(se[0]),
        stderr_sy=None if se is None else float(se[1]),
        gap_stderr=None if se is None else float(se[2]),
        gap_ci_low=None if lo is None else float(lo),
        gap_ci_high=None if hi is None else float(hi),
        confidence=conf,
        n_subsamples=terms.get("n_subsamples") if se is not None else None,
        representation=reps,
        pca=pca,
        estimator_ts=est_ts,
        estimator_sy=est_sy,
        choice_reason=reason,
        bias_ts=None if bias is None else float(bias[0] * scale),
        bias_sy=None if bias is None else float(bias[1] * scale),
        interval_note=terms["note"] if se is not None else None,
    )


def _split(codes: np.ndarray | None, n: int, fraction: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, estimate rows): stratified by label when there are labels."""
    if codes is not None:
        return _stratified_split(codes, fraction, rng)
    order = rng.permutation(n)
    take = min(n - 1, max(1, round(fraction * n)))
    return np.sort(order[:take]), np.sort(order[take:])


def _knn_terms(be, ta, sa, s_for_labels, codes, ya, n, k, opts, estimator, rng_student, rng_teacher, rng_sub) -> dict:
    """The kNN estimates (nats) of I(T; S), I(S; Y) and, with an interval, their standard errors
    [ts, sy, gap]; with "ksg-extrapolated", the extrapolated values and the corrections."""
    if codes is not None:
        sizes = class_sizes(codes, "labels")
    extrapolated = estimator == "ksg-extrapolated"
    if opts.confidence is not None:
        if codes is not None:
            interval.check_interval_classes(sizes)
        interval.check_interval_size(n, k)
    if extrapolated:
        check_levels(n // 2 if opts.confidence is not None else n, LEVELS)
    arrays = [ta, sa] + ([] if ya is None else [ya])
    dt = V.working_dtype(opts.dtype, *arrays)
    # Prepared on the host, then (GPU backends) moved to the device once for every estimate below.
    (sp,), _ = prepare_arrays(be, {"student": sa}, opts, dt, rng_student)
    (tp,), _ = prepare_arrays(be, {"teacher": ta}, opts, dt, rng_teacher)
    sp_labels = sp
    if s_for_labels is not None:
        (sp_labels,), _ = prepare_arrays(be, {"student": s_for_labels}, opts, dt, rng_student)
    yp = None
    if ya is not None:
        (yp,), _ = prepare_arrays(be, {"labels": ya}, opts, dt, rng_student)

    def core(rows):
        i_ts = ksg_nats(be, be.take(tp, rows), be.take(sp, rows), k, 1, "jitter")
        if yp is None:
            i_sy = mixed_nats(be, be.take(sp_labels, rows), codes if rows is None else codes[rows], k, "jitter")
        else:
            i_sy = ksg_nats(be, be.take(sp_labels, rows), be.take(yp, rows), k, 1, "jitter")
        return np.array([i_ts, i_sy, i_ts - i_sy])

    names = ["ksg1", "ross" if yp is None else "ksg1"]
    if not extrapolated:
        out = {"values": core(None), "names": names, "dims": (tp.shape[1], sp.shape[1]),
               "note": "half-sample jackknife: sampling variability only, not the estimators' bias"}
        if opts.confidence is not None:
            out["stderr"] = interval.subsample_spread(core, n, rng_sub, opts.n_subsamples, strata=codes)
            out["n_subsamples"] = opts.n_subsamples
            interval.warn_if_no_spread(out["stderr"])
        return out

    dim_sy = sp.shape[1] + (0 if yp is None else yp.shape[1])
    exponents = [bias_exponent(tp.shape[1] + sp.shape[1]), bias_exponent(dim_sy)]

    def extrapolation(rows):
        fit = extrapolate_nats(lambda r: core(r)[:2], rows, exponents, rng_sub, LEVELS,
                               None if codes is None else codes[rows])
        a = fit.intercepts
        return fit, np.array([a[0], a[1], a[0] - a[1]])

    fit, values = extrapolation(np.arange(n))
    out = {"values": values, "names": [name + "-extrapolated" for name in names],
           "dims": (tp.shape[1], sp.shape[1]), "bias": values[:2] - fit.means[0]}
    if opts.confidence is not None:
        jack = interval.subsample_spread(lambda rows: extrapolation(rows)[1], n, rng_sub, opts.n_subsamples,
                                         strata=codes)
        lack = np.append(fit.lack_of_fit, math.hypot(*fit.lack_of_fit))
        bias = out["bias"]
        out["stderr"] = model_stderr(jack, lack, np.append(bias, math.hypot(*bias)))
        out["n_subsamples"] = opts.n_subsamples
        interval.warn_if_no_spread(jack)
        out["note"] = (f"extrapolated to n -> inf from subsamples of {', '.join(str(round(m)) for m in fit.sizes)} "
                       f"rows (bias exponents 2/D = {exponents[0]:.3g}, {exponents[1]:.3g}); the estimates were "
                       f"shifted by the corrections bias_ts, bias_sy, and the interval is the half-sample "
                       f"jackknife of the extrapolation widened by the fit's lack of fit and by {MODEL_SPREAD:g} "
                       f"times the corrections (the power law's error): gap s.e. {out['stderr'][2]:.3g} nats, "
                       f"{jack[2]:.3g} of it sampling")
    return out


def _neural_terms(ta, sa, codes, ya, fit_fraction, opts, rng, device) -> dict:
    """SMILE for I(T; S); the probe bound (discrete labels) or SMILE (continuous Y) for I(S; Y)."""
    from cchmi._extras import require

    require("torch", "torch", "cch(estimator='neural')")
    from cchmi.estimators.probe import probe_mi
    from cchmi.neural import neural_mi

    seed_ts, seed_sy = (int(v) for v in rng.integers(2**31, size=2))
    ts = neural_mi(ta, sa, bound="smile", confidence=opts.confidence, random_state=seed_ts, device=device)
    if ya is None:
        sy = probe_mi(sa, codes, probe="linear", fit_fraction=fit_fraction, confidence=opts.confidence,
                      random_state=seed_sy, device=device)
    else:
        sy = neural_mi(sa, ya, bound="smile", confidence=opts.confidence, random_state=seed_sy, device=device)
    out = {"values": np.array([ts.estimate, sy.estimate]), "names": [ts.estimator, sy.estimator],
           "backend": ts.backend,
           "note": "held-out spread of each bound, combined as sqrt(se_ts^2 + se_sy^2) (separate splits); "
                   "covers the evaluation's sampling error, not what the learned functions miss (which "
                   "lowers both terms)"}
    if ts.stderr is not None and sy.stderr is not None:
        out["stderr"] = np.array([ts.stderr, sy.stderr, math.hypot(ts.stderr, sy.stderr)])
        out["n_subsamples"] = ts.n_subsamples
    return out


def _latent_embeddings(ta, sa, codes, fit, rows, embed_dim, rng, device):
    """Embeddings of `rows`: (z_T, z_S) from a (T, S) cross-predictive model and z_S from an
    (S, labels) one, both trained on `fit` (a fifth of it for early stopping)."""
    from cchmi._extras import require

    require("torch", "torch", "cch(estimator='latent')")
    from cchmi.neural.latent import embed

    embed_dim = V.as_int(embed_dim, "embed_dim", 1)
    order = rng.permutation(fit)
    n_val = max(1, fit.size // 5)
    val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
    seed = int(rng.integers(2**31))
    options = dict(embed_dim=embed_dim, hidden=128, layers=2, reconstruction_weight=1.0, cross_weight=1.0,
                   batch_size=min(128, train.size), epochs=200, lr=1e-3, patience=15, device=device, seed=seed)
    zt, zs = embed(ta, sa, train, val, rows, n_classes=0, **options)
    zs_labels, _ = embed(sa, codes, train, val, rows, n_classes=int(codes.max()) + 1, **options)
    return zt, zs, zs_labels


@dataclass(frozen=True)
class TeacherRanking:
    """Teacher modalities sorted by CCH gap, largest first: ``rows`` is a list of (name, CCHResult)."""

    rows: list

    @property
    def best(self) -> str:
        """The teacher with the largest gap."""
        return self.rows[0][0]

    def __str__(self) -> str:
        width = max(7, *(len(name) for name, _ in self.rows))
        lines = [f"{'teacher':<{width}} {'I(T;S)':>8} {'I(S;Y)':>8} {'gap':>8} {'interval':>20}  verdict"]
        for name, r in self.rows:
            ci = "" if r.gap_ci_low is None else f"[{r.gap_ci_low:+.3f}, {r.gap_ci_high:+.3f}]"
            lines.append(f"{name:<{width}} {r.i_ts:>8.4f} {r.i_sy:>8.4f} {r.gap:>+8.4f} {ci:>20}  {r.verdict}")
        return "\n".join(lines)


def rank_teachers(
    teachers: Mapping[str, object],
    student,
    labels,
    *,
    estimator: str = "ksg",
    k: int = 3,
    representation="features",
    pca: int | None = None,
    fit_fraction: float | None = None,
    embed_dim: int = 8,
    base: float = math.e,
    dtype=None,
    confidence: float | None = 0.95,
    n_subsamples: int = 20,
    random_state=0,
    backend: str = "auto",
    labels_kind: str = "discrete",
    device=None,
) -> TeacherRanking:
    """Rank teacher modalities for one student by the CCH gap I(T; S) - I(S; Y).

    `teachers` maps a name to a representation of the same n samples. Every teacher is evaluated
    with the same seed, hence the same jitter of the student, the same PCA split and the same
    half-samples, so the gaps differ only through I(T; S). Parameters as in :func:`cch`.
    """
    if not isinstance(teachers, Mapping) or not teachers:
        raise ValueError("teachers must be a non-empty mapping of name -> representation")
    if not isinstance(random_state, (int, np.integer)):  # None or a Generator: one seed for all teachers
        random_state = int(np.random.default_rng(random_state).integers(2**62))
    rows = []
    for name, rep in teachers.items():
        result = cch(rep, student, labels, estimator=estimator, k=k, representation=representation, pca=pca,
                     fit_fraction=fit_fraction, embed_dim=embed_dim, base=base, dtype=dtype, confidence=confidence,
                     n_subsamples=n_subsamples, random_state=random_state, backend=backend,
                     labels_kind=labels_kind, device=device)
        rows.append((str(name), result))
    rows.sort(key=lambda row: -row[1].gap)
    return TeacherRanking(rows)
