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

The term estimators (kNN, extrapolated, latent, neural) are strategy objects in
:mod:`cchmi.estimators.cch_terms`, each returning a typed :class:`~cchmi.estimators.cch_terms.CCHTerms`;
this module validates the inputs, picks the strategy, and turns its terms into the verdict.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from cchmi import _validate as V
from cchmi._progress import reporting, stages
from cchmi.estimators import interval
from cchmi.estimators.cch_terms import TERM_ESTIMATORS, CCHSample, CCHStreams, CCHTerms, term_estimator
from cchmi.estimators.choice import AUTO_RULES as AUTO_RULES  # re-exported: the rules' public name
from cchmi.estimators.choice import MEASURED_DIMS as MEASURED_DIMS
from cchmi.estimators.choice import auto_estimator, cch_wants_compression, unchecked_labels_reason, unmeasured_reason
from cchmi.estimators.consistency import CHECKS, knn_estimate, run_checks, wanted
from cchmi.estimators.options import KnnOptions
from cchmi.estimators.reliability import Reliability
from cchmi.estimators.select import low_intrinsic_dimension
from cchmi.results import ResultIO

ESTIMATORS = TERM_ESTIMATORS + ("auto",)
LABEL_KINDS = ("discrete", "continuous")
REPRESENTATIONS = ("features", "logits", "probabilities")
VERDICTS = ("distil", "do not distil", "undecided")


@dataclass(frozen=True)
class CCHResult(ResultIO):
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
    for estimators without one). interval_note: what the interval covers. reliability: a
    :class:`~cchmi.estimators.reliability.Reliability`, unreliable with its reasons when a term is
    impossible (I(S; Y) above H(Y)) or more than 3 standard errors below 0, a self-consistency
    check of a kNN term failed (``checks``; the numbers in ``reliability.checks``), a side is wider
    than the dimensions any estimator here was measured on (:data:`MEASURED_DIMS`) where no check
    covered it (the learned estimators, a labels term, ``checks="none"``), the extrapolation's own
    checks failed, or an interval was asked for and could not be given; the verdict is then
    "undecided".
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
    reliability: Reliability | None = None

    def __str__(self) -> str:
        text = f"I(T;S) = {self.i_ts:.4f}, I(S;Y) = {self.i_sy:.4f}, gap = {self.gap:+.4f} {self.unit}"
        if self.gap_stderr is not None:
            text += f" ({100 * self.confidence:g}% CI [{self.gap_ci_low:+.4f}, {self.gap_ci_high:+.4f}])"
        text = (f"{text}: {self.verdict} ({self.estimator}, k={self.k}, n={self.n}, dims {self.dims[0]}+"
                f"{self.dims[1]}, {self.backend}, {self.seconds:.3g} s)")
        if self.choice_reason is not None:
            text += f"\n  estimator='auto': {self.choice_reason}"
        if self.reliability is not None and not self.reliability.reliable:
            text += f"\n  {self.reliability}"
        return text


def _verdict(gap: float, lo: float | None, hi: float | None, reliable: bool = True) -> str:
    """The CCH's verdict: "undecided" for unreliable terms or an interval that straddles 0, else
    the side of 0 the interval (or, without one, the gap) is on."""
    if not reliable:
        return VERDICTS[2]
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


@dataclass(frozen=True)
class CCHOptions:
    """The options of :func:`cch` and :func:`rank_teachers` (see :func:`cch` for each); their
    keyword signatures are made from these fields (:func:`cch_api`)."""

    estimator: str = "ksg"
    k: int = 3
    representation: object = "features"
    pca: int | None = None
    fit_fraction: float | None = None
    embed_dim: int = 8
    base: float = math.e
    dtype: object = None
    confidence: float | None = 0.95
    n_subsamples: int = 20
    random_state: object = 0
    backend: str = "auto"
    labels_kind: str = "discrete"
    device: object = None
    progress: bool = False
    checks: str = "auto"

    def knn_options(self) -> KnnOptions:
        """The options of the kNN estimates, validated (jittered ties; the seeds are cch's streams)."""
        return KnnOptions(k=self.k, base=self.base, dtype=self.dtype, backend=self.backend,
                          confidence=self.confidence, n_subsamples=self.n_subsamples).validated(("jitter",))


def cch_api(body):
    """Decorator: ``body(*data, opts: CCHOptions)`` -> the public function ``f(*data, *, <every
    CCHOptions field with its default>)`` with that explicit signature (shown by ``help`` and
    ``inspect.signature``, enforced on every call); ``f.with_options`` is `body`."""
    data = list(inspect.signature(body).parameters.values())[:-1]
    options = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default)
               for f in dataclasses.fields(CCHOptions)]
    signature = inspect.Signature(data + options, return_annotation=inspect.signature(body).return_annotation)

    @functools.wraps(body)
    def api(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)  # TypeError for unknown or missing arguments
        bound.apply_defaults()
        values = bound.arguments
        return body(*(values[p.name] for p in data), CCHOptions(**{p.name: values[p.name] for p in options}))

    api.__signature__ = signature
    api.with_options = body
    return api


@cch_api
def cch(teacher, student, labels, opts: CCHOptions) -> CCHResult:
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
          :mod:`cchmi.estimators.extrapolate` for the assumptions; D counts non-constant columns. The
          interval is the half-sample
          jackknife of the whole procedure, widened by the fit's lack of fit and by the power
          law's error (:data:`cchmi.estimators.extrapolate.MODEL_SPREAD` = 0.2 of each correction,
          in quadrature); ``bias_ts`` and ``bias_sy`` hold the corrections. Needs n >= 512 (1024 with an interval).
        * "neural" (torch): I(T; S) by the SMILE bound (:func:`cchmi.neural_mi`, its defaults,
          evaluated on held-out rows) and I(S; Y) by H(Y) minus the held-out cross-entropy of a
          softmax-regression probe (:func:`cchmi.estimators.probe.probe_mi`), trained on a stratified
          ``fit_fraction`` (0.5) of the rows; for a continuous Y, SMILE for both terms. Both are
          learned functions evaluated held out, below the truth by what they miss. With an
          interval, each term's standard error is widened by the same bound on row-permuted
          pairs (its error at independence, in quadrature), and the gap's standard error is
          sqrt(se_ts^2 + se_sy^2) (the terms use different splits; conservative when their errors
          are positively correlated); SMILE's batch is lowered below 1,280 rows to fit two test
          batches (:func:`cchmi.estimators.cch_terms.neural_batch_size`).
        * "latent" (torch): the kNN estimators on learned ``embed_dim``-dimensional embeddings
          (:func:`cchmi.latent_mi`'s cross-predictive autoencoders: one model for (T, S), one for
          (S, labels)), trained on a stratified ``fit_fraction`` of the rows (0.5 by default; a fifth
          of them for early stopping) and applied to the others, where both terms and the interval
          are estimated. Discrete labels only.
        * "compressed": compress-then-kNN (:class:`cchmi.estimators.cch_terms.CompressedTerms`): on a
          stratified ``fit_fraction`` (0.3) of the rows each side is standardised, its TwoNN
          intrinsic dimension measured (:func:`cchmi.intrinsic_dimension`; a side above
          :data:`cchmi.estimators.compress.MAX_INTRINSIC` = 8 is refused by name) and its principal
          axes fitted; on the other rows both terms are the "ksg-extrapolated" terms of 3 x the
          rounded intrinsic dimension components per side, with the bias exponents of the intrinsic
          dimensions. For wide representations that lie near a low-dimensional manifold.
        * "auto": the first matching row of :data:`AUTO_RULES` (the choice and its reason are in
          ``choice_reason``; n is the rows the estimates use, after ``pca``; the TwoNN intrinsic
          dimension is measured on at most 5,000 rows of each side, standardised, only where the
          first rule's other conditions hold, and written in ``choice_reason``):

          ============================================================================  ================
          condition                                                                     estimator
          ============================================================================  ================
          d_t > 32 or d_s > 32, TwoNN dims <= 8, n >= 1500 (750 without an interval)    compressed
          d_t > 32 or d_s > 32                                                          ksg
          n < 1024 (512 without an interval)                                            ksg
          n >= 1024 (512 without an interval)                                           ksg-extrapolated
          ============================================================================  ================

          The first rule applies without ``pca`` only; "TwoNN dims" is each side's.

          If the compression is refused on the fit rows (their TwoNN reading above 8 where all
          the rows' was not), the plain kNN terms run on every column with the checks below, and
          ``choice_reason`` says so.

          Past 32 dimensions a side (:data:`MEASURED_DIMS`; see the table below: no estimator
          here was reliable there) the kNN terms between continuous sides are checked for
          self-consistency (``checks``) and a failed check marks the result unreliable
          (``reliability``) with the verdict "undecided"; a labels term on a wider student, which
          no check covers, does so unchecked; so it is for "ksg-extrapolated" asked for by name. Where the
          extrapolation cannot run on the rows it gets (tied rows, fewer than 512 rows per
          half-sample, classes of fewer than 32 rows, 16 without an interval), "auto" runs the
          plain kNN terms and ``choice_reason`` says why; asked for by name, it is refused with
          the reason. An I(S; Y) above the labels' entropy H(Y) marks the result unreliable.

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
    confidence : interval level for the gap (None: no interval; the verdict is then the gap's sign;
        an interval asked for that the estimator cannot give makes the verdict "undecided").
    n_subsamples : half-samples for the kNN intervals, stratified by label and shared by both terms.
    labels_kind : "discrete" (default) or "continuous" (a real target Y).
    device : torch device of the neural and latent estimators (None: CUDA when available).
    progress : True: a progress bar on stderr, per stage ("extrapolation levels", "half-samples", the
        neural estimators' epochs; in :func:`rank_teachers`, "teachers"); off by default, on in the CLI.
    checks : the self-consistency checks of the kNN terms between continuous sides (I(T; S), and
        I(S; Y) for a continuous target; :mod:`cchmi.estimators.consistency`: data processing on a
        random projection, additivity on two independent copies, a planted pair of known MI, the
        extrapolation's leap, stability from n/4 to n rows; 2-3 times the term's own time), each
        failure a reason in ``reliability`` and the verdict "undecided": "auto" (default)
        where a side of the term is wider than :data:`MEASURED_DIMS` columns, "all" always, "none"
        never. A term wider than MEASURED_DIMS that no check covers (a labels term, the learned
        estimators, ``checks="none"``) marks the result unreliable unchecked.
    """
    start = time.perf_counter()
    ta, sa = V.as_samples(teacher, "teacher"), V.as_samples(student, "student")
    discrete = V.choice(opts.labels_kind, "labels_kind", LABEL_KINDS) == "discrete"
    if discrete:
        codes, _ = V.as_labels(labels, "labels", sa.shape[0],
                               continuous_hint="pass labels_kind='continuous' for a real-valued target")
        ya = None
    else:
        ya, codes = V.as_samples(labels, "labels"), None
    n = V.same_length(teacher=ta, student=sa, labels=codes if discrete else ya)
    V.warn_about_samples(dict(teacher=ta, student=sa, **({} if discrete else {"labels": ya})),
                         {"labels": "pass labels_kind='discrete' (the default) for class labels"})
    estimator = V.choice(opts.estimator, "estimator", ESTIMATORS)
    checks = V.choice(opts.checks, "checks", CHECKS)
    reps = _representations(opts.representation)
    ta, sa = _represent(ta, reps[0], "teacher"), _represent(sa, reps[1], "student")
    pca, fit_fraction, reason = opts.pca, opts.fit_fraction, None
    if fit_fraction is not None:
        fit_fraction = V.as_real(fit_fraction, "fit_fraction", 0, 1, low_open=True, high_open=True)
    if pca is not None:
        pca = V.as_int(pca, "pca", 1)
    if estimator == "auto":
        dims_used, n_used = (ta.shape[1], sa.shape[1]), n
        if pca is not None:
            dims_used = (min(pca, ta.shape[1]), min(pca, sa.shape[1]))
            n_used = n - round((fit_fraction or 0.3) * n)
        low, measured = False, None
        if pca is None and cch_wants_compression(n, *dims_used, opts.confidence is not None):
            low, measured = low_intrinsic_dimension(ta, sa, opts.random_state, names=("teacher", "student"))
        estimator, reason = auto_estimator(n_used, *dims_used, opts.confidence is not None, low_intrinsic=low)
        if measured is not None:
            reason = f"{reason} ({measured})"
    knn = opts.knn_options()
    streams = CCHStreams.spawn(opts.random_state)
    strategy = term_estimator(estimator, pca=pca, fit_fraction=fit_fraction, embed_dim=opts.embed_dim,
                              device=opts.device, discrete=discrete, fallback=reason is not None)
    with V.inputs_checked(), reporting(opts.progress, "cch"):  # warned above about the arrays as given
        terms = strategy.terms(CCHSample(ta, sa, codes, ya), knn, streams)
        checked = _consistency(terms, checks, knn, int(streams.split.integers(2**31)))
    return _result(terms, knn, reps=reps, pca=pca, reason=reason, seconds=time.perf_counter() - start,
                   checked=checked)


def _consistency(terms: CCHTerms, checks: str, opts: KnnOptions, seed: int) -> tuple[list, dict | None]:
    """(reasons, numbers by term or None) of the self-consistency checks `checks` asks for on the
    kNN terms between continuous sides (:func:`cchmi.estimators.consistency.run_checks`, the
    estimator of the terms, seeded by `seed`), and the width reasons of the terms no check covered."""
    if terms.sides is None:
        return [unmeasured_reason(terms.dims)], None
    teacher, student, y = terms.sides
    estimate = knn_estimate("ksg-extrapolated" if terms.names[0].endswith("-extrapolated") else "ksg", opts.k,
                            opts.backend, seed)
    stderr = (None, None) if terms.stderr is None else terms.stderr[:2]
    bias = (None, None) if terms.bias is None else terms.bias
    pairs = [("I(T; S)", teacher, student, terms.i_ts, stderr[0], bias[0])]
    if y is not None:
        pairs.append(("I(S; Y)", student, y, terms.i_sy, stderr[1], bias[1]))
    reasons, record = [], {}
    if y is None and student.shape[1] > MEASURED_DIMS:
        reasons.append(unchecked_labels_reason(student.shape[1]))
    for what, a, b, value, se, correction in pairs:
        if wanted(checks, (a.shape[1], b.shape[1]), MEASURED_DIMS):
            failed, record[what] = run_checks(a, b, estimate, value, se, correction=correction, random_state=seed)
            reasons.extend(f"{what}: {reason}" for reason in failed)
        else:
            reasons.append(unmeasured_reason((a.shape[1], b.shape[1])))
    return reasons, record or None


def _result(terms: CCHTerms, opts: KnnOptions, *, reps, pca, reason, seconds,
            checked: tuple[list, dict | None] | None = None) -> CCHResult:
    """The CCHResult of `terms` (nats) in the unit of ``opts.base``, with the gap's interval, the
    reliability (the terms' own reasons; `checked`, the reasons and numbers of :func:`_consistency`,
    or without it the terms outside :data:`MEASURED_DIMS`; an interval asked for and not given) and
    the verdict."""
    scale = 1.0 / math.log(opts.base)
    i_ts, i_sy = terms.i_ts * scale, terms.i_sy * scale
    gap = i_ts - i_sy
    se = lo = hi = None
    if terms.stderr is not None:
        se = terms.stderr * scale
        z = interval.z_value(opts.confidence)
        lo, hi = gap - z * se[2], gap + z * se[2]
    bias = terms.bias
    if terms.fallback is not None:
        reason += f"; {terms.fallback}"
    dropped = None
    if opts.confidence is not None and se is None:
        dropped = (f"an interval was asked for (confidence={opts.confidence:g}) and the estimators could not give "
                   f"one, so no verdict is possible")
    below = [] if se is None else [interval.below_zero_reason(v, s, what)
                                   for v, s, what in ((i_ts, se[0], "I(T; S)"), (i_sy, se[1], "I(S; Y)"))]
    for reason_below in filter(None, below):
        warnings.warn(reason_below, RuntimeWarning, stacklevel=4)
    consistency, record = ([unmeasured_reason(terms.dims)], None) if checked is None else checked
    reliability = Reliability.of([*terms.unreliable, *consistency, dropped, *below], record)
    return CCHResult(
        i_ts=float(i_ts),
        i_sy=float(i_sy),
        gap=float(gap),
        verdict=_verdict(gap, lo, hi, reliability.reliable),
        estimator=f"{terms.names[0]} + {terms.names[1]}",
        n=terms.n,
        k=terms.k,
        dims=terms.dims,
        backend=terms.backend,
        seconds=seconds,
        unit=interval.unit_name(opts.base),
        stderr_ts=None if se is None else float(se[0]),
        stderr_sy=None if se is None else float(se[1]),
        gap_stderr=None if se is None else float(se[2]),
        gap_ci_low=None if lo is None else float(lo),
        gap_ci_high=None if hi is None else float(hi),
        confidence=opts.confidence if se is not None else None,
        n_subsamples=terms.n_subsamples if se is not None else None,
        representation=reps,
        pca=pca,
        estimator_ts=terms.names[0],
        estimator_sy=terms.names[1],
        choice_reason=reason,
        bias_ts=None if bias is None else float(bias[0] * scale),
        bias_sy=None if bias is None else float(bias[1] * scale),
        interval_note=terms.note if se is not None else None,
        reliability=reliability,
    )


@dataclass(frozen=True)
class TeacherRanking(ResultIO):
    """Teacher modalities sorted by CCH gap, largest first, those whose result is unreliable after
    all the reliable ones: ``rows`` is a list of (name, CCHResult). Saved as JSON
    (:class:`~cchmi.results.ResultIO`) with each row a [name, CCHResult.as_dict()] pair."""

    rows: list

    @classmethod
    def from_dict(cls, values: dict) -> TeacherRanking:
        """The ranking whose :meth:`as_dict` is `values` (its rows rebuilt as (name, CCHResult))."""
        if not isinstance(values, dict) or set(values) - {"result_type"} != {"rows"}:
            raise ValueError(f"TeacherRanking.from_dict needs a dict with exactly the key 'rows', got {values!r:.200}")
        return cls([(str(name), CCHResult.from_dict(result)) for name, result in values["rows"]])

    @property
    def best(self) -> str:
        """The teacher with the largest gap among the reliable results (the first row)."""
        return self.rows[0][0]

    def __str__(self) -> str:
        width = max(7, *(len(name) for name, _ in self.rows))
        lines = [f"{'teacher':<{width}} {'I(T;S)':>8} {'I(S;Y)':>8} {'gap':>8} {'interval':>20}  verdict"]
        for name, r in self.rows:
            ci = "" if r.gap_ci_low is None else f"[{r.gap_ci_low:+.3f}, {r.gap_ci_high:+.3f}]"
            lines.append(f"{name:<{width}} {r.i_ts:>8.4f} {r.i_sy:>8.4f} {r.gap:>+8.4f} {ci:>20}  {r.verdict}")
        return "\n".join(lines)


@cch_api
def rank_teachers(teachers: Mapping[str, object], student, labels, opts: CCHOptions) -> TeacherRanking:
    """Rank teacher modalities for one student by the CCH gap I(T; S) - I(S; Y).

    `teachers` maps a name to a representation of the same n samples. Every teacher is evaluated
    with the same seed, hence the same jitter of the student, the same PCA split and the same
    half-samples, so the gaps differ only through I(T; S). Unreliable results (their reasons in
    ``reliability``) rank after every reliable one. Parameters as in :func:`cch`.
    """
    if not isinstance(teachers, Mapping) or not teachers:
        raise ValueError("teachers must be a non-empty mapping of name -> representation")
    if not isinstance(opts.random_state, (int, np.integer)):  # None or a Generator: one seed for all teachers
        opts = dataclasses.replace(opts, random_state=int(np.random.default_rng(opts.random_state).integers(2**62)))
    with reporting(opts.progress, "rank_teachers"), stages(len(teachers), "teacher") as stage:
        rows = [(str(name), stage.done(cch.with_options(rep, student, labels, opts))) for name, rep in teachers.items()]
    rows.sort(key=lambda row: (row[1].reliability is not None and not row[1].reliability.reliable, -row[1].gap))
    return TeacherRanking(rows)
