"""``cchmi.mi``: I(X; Y) or I(X; labels) by the estimator that suits the shapes, with the choice
recorded: the selection among the estimators of this package (the module is
``cchmi.estimators.select``; ``cchmi.auto``, its former name, re-exports it for one release).

kNN estimates shrink with the dimension (KSG-1 returns 1.02 of 2 nats at 10+10 dimensions,
n = 5000, seed 1000: bench/results/accuracy/rules/accuracy.md); which estimator to trust depends on n
and the dimensions. :func:`mi` chooses by the rule
table in its docstring (measured, not guessed) and returns an :class:`AutoMIResult`, an
:class:`~cchmi.results.MIResult` that also says which estimator ran, why, and what its interval
covers.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from cchmi import _validate as V
from cchmi._progress import reports
from cchmi.estimators import interval
from cchmi.estimators.cch_terms import neural_batch_size
from cchmi.estimators.choice import MEASURED_DIMS, explain_choice, unmeasured_reason
from cchmi.estimators.compress import MAX_INTRINSIC, compressed_mi
from cchmi.estimators.consistency import CHECKS, knn_estimate, run_checks, wanted
from cchmi.estimators.extrapolate import extrapolated_mi, obstacle
from cchmi.estimators.ksg import ksg_mi
from cchmi.estimators.mixed import mixed_mi
from cchmi.estimators.options import KnnOptions
from cchmi.estimators.probe import probe_mi
from cchmi.estimators.problem import LABELS_HINT
from cchmi.estimators.reliability import Reliability, label_ceiling_reason
from cchmi.results import MIResult

MI_ESTIMATORS = ("auto", "ksg", "ksg-extrapolated", "neural", "compressed", "diffusion")

LARGE_N = 50_000
"""Rows from which estimator="auto" takes SMILE over the extrapolated kNN estimate in 5-32 dimensions."""

COMPRESSED_MIN_N = 2048
"""Rows from which estimator="auto" considers compress-then-kNN for wide samples (each half of the
rows then has 1024, what the extrapolation needs with an interval)."""

DIFFUSION_ROWS, DIFFUSION_DIMS = 10_000, 64
"""estimator="auto" takes the diffusion estimate for samples wider than MEASURED_DIMS columns and at
most DIFFUSION_DIMS a side, from DIFFUSION_ROWS rows: where it was measured ahead (its permuted-Y
control's floor 0.14-0.28 nats on the hd suite's 64-dim Gaussians at n = 10,000, seeds 0 and 1; 0.78-1.26
at 5,000 and 2,500; 1.7-2.0 at 128 columns and n = 5,000: bench/README.md, "The diffusion estimator's
floor" and "With 10,000 rows the floor falls")."""

MI_AUTO_RULES = (
    ("n < 1024 (512 without an interval)", "ksg", "too few rows for the extrapolation (its subsamples of n/8, "
                                                   "n/16 in the half-samples of the interval, need 64 rows)"),
    ("dim X + dim Y <= 4", "ksg", "in 4 dimensions or fewer the kNN bias is below the extrapolation's added spread"),
    (f"n >= {LARGE_N:,} and dim X + dim Y <= 32, no labels, torch installed", "neural",
     "on the catalogue's 7 tasks of 5-32 dimensions at n = 50,000 SMILE's mean absolute error was 0.084 nats "
     "against 0.150 for the extrapolation (closer on 5; not on spiral-3x3-1 and gauss-16x16-2)"),
    (f"d_x or d_y > {MEASURED_DIMS}, no labels, n >= {COMPRESSED_MIN_N}, TwoNN dims <= {MAX_INTRINSIC:g}",
     "compressed",
     "each side's TwoNN intrinsic dimension at most the threshold (rows tied: not measured, the rule does not "
     "apply); PCA then KSG-1 extrapolated along the intrinsic dimensions: on the hd suite's 64+64-dim embeddings of "
     "intrinsic dimension 1 and 4 (truth 2 nats, n = 5000) 2.045 and 1.876, where the extrapolation on all 128 "
     "columns gave 3.43 and 9.18 and KSG-1 2.03 and 1.48; higher intrinsic dimensions are out of its reach "
     "(16: 40-58% low) and go on to the next rule, whose result the self-consistency checks mark"),
    (f"widest side {MEASURED_DIMS + 1}-{DIFFUSION_DIMS}, no labels, n >= {DIFFUSION_ROWS:,}, torch installed",
     "diffusion",
     "on the hd suite's 64+64-dim tasks at n = 10,000 that the previous rule leaves (TwoNN dims > 8; seed 0, "
     "in-sample) diffusion_mi's mean absolute error was 0.78 nats against 2.59 for the extrapolation (median "
     "relative error 11% against 44%), its permuted-Y control flagging 2 of its 3 runs more than 25% off (not "
     "hd-label-64-4, 48% low: the control catches a floor, not a gap learned short) and 3 of the 11 others; "
     "held out (seed 1), auto with this rule was 0.76 nats off on average over the 16 tasks (median 10.8%) "
     "against 2.83 for the extrapolation; past 64 columns or below 10,000 rows its floor is too high "
     "(1.7-2.0 nats at 128 columns, n = 5,000)"),
    ("otherwise", "ksg-extrapolated", "kNN with the bias extrapolated away along m^(-2/D): at n = 5000 the "
                                      "smallest error from 6 to 512 dimensions on every task with all coordinates "
                                      "informative (level with SMILE at 20, 14x faster on CPUs); SMILE was closer "
                                      "on the two sparse tasks"),
)
"""The rules of estimator="auto", in order (first match wins): (condition, choice, reason). For
labels, dim Y counts as 0. The probe bound is no choice of "auto": no measurement shows it ahead of
Ross's estimate on nonlinear labels (XOR labels of 2 Gaussian coordinates, truth 0.69 nats: the
linear probe 0.00, Ross 0.58), and an overfit probe is arbitrarily negative (1,000 independent
classes: -1.8). Where "ksg-extrapolated" cannot run (tied rows, too few rows or too small classes:
:func:`cchmi.estimators.extrapolate.obstacle`) or returns I(X; labels) above the labels' entropy,
"auto" runs "ksg" and ``choice_reason`` says why."""


@dataclass(frozen=True)
class AutoMIResult(MIResult):
    """An :class:`~cchmi.results.MIResult` from :func:`mi`, with the choice recorded.

    choice_reason: why estimator="auto" chose ``estimator`` (None when it was asked for).
    bias: the correction added to the plain estimate ("ksg-extrapolated": extrapolated minus
    full-sample estimate; None for the others). interval_note: what the interval covers.
    reliability: a :class:`~cchmi.estimators.reliability.Reliability`: unreliable, with the reasons,
    for a labels term above the labels' entropy, an estimate more than 3 standard errors below 0, a
    failed self-consistency check (:mod:`cchmi.estimators.consistency`; their numbers in
    ``reliability.checks``), samples wider than :data:`~cchmi.estimators.choice.MEASURED_DIMS`
    columns that no check covered (labels, the neural estimator, ``checks="none"``), or the
    extrapolation's own checks; printed with the result when unreliable.
    """

    choice_reason: str | None = None
    bias: float | None = None
    interval_note: str | None = None
    reliability: Reliability | None = None

    def __str__(self) -> str:
        text = super().__str__()
        if self.choice_reason is not None:
            text += f"\n  estimator='auto': {self.choice_reason}"
        if self.reliability is not None and not self.reliability.reliable:
            text += f"\n  {self.reliability}"
        return text


def wants_compression(n: int, dim_x: int, dim_y: int, labels: bool) -> bool:
    """Whether the compressed rule of :data:`MI_AUTO_RULES` is worth its diagnostic: wide samples
    (no labels) with rows enough for two halves."""
    return not labels and max(dim_x, dim_y) > MEASURED_DIMS and n >= COMPRESSED_MIN_N


def mi_auto_estimator(n: int, dim_x: int, dim_y: int, labels: bool, torch_available: bool,
                      interval: bool, low_intrinsic: bool = False) -> tuple[str, str]:
    """(estimator, reason) by :data:`MI_AUTO_RULES` for n rows of dim_x + dim_y dimensions (dim_y 0
    for labels), with an interval or without; low_intrinsic: both sides' TwoNN intrinsic dimension
    is at most :data:`~cchmi.estimators.compress.MAX_INTRINSIC` and no row is tied (measured by the
    caller where :func:`wants_compression`)."""
    if n < (1024 if interval else 512):
        rule = MI_AUTO_RULES[0]
    elif dim_x + dim_y <= 4:
        rule = MI_AUTO_RULES[1]
    elif n >= LARGE_N and dim_x + dim_y <= 32 and not labels and torch_available:
        rule = MI_AUTO_RULES[2]
    elif low_intrinsic and wants_compression(n, dim_x, dim_y, labels):
        rule = MI_AUTO_RULES[3]
    elif (MEASURED_DIMS < max(dim_x, dim_y) <= DIFFUSION_DIMS and not labels and n >= DIFFUSION_ROWS
          and torch_available):
        rule = MI_AUTO_RULES[4]
    else:
        rule = MI_AUTO_RULES[5]
    return rule[1], explain_choice(rule, "cchmi.estimators.select.MI_AUTO_RULES", n, (dim_x, dim_y), labels=labels)


def low_intrinsic_dimension(xa: np.ndarray, ya: np.ndarray, random_state,
                            names: tuple[str, str] = ("x", "y")) -> tuple[bool, str]:
    """(whether both sides' TwoNN intrinsic dimension, standardised, on at most 5000 rows, is at
    most MAX_INTRINSIC, the values as text, the sides called `names`). Tied rows, which TwoNN
    refuses, count as not low."""
    from cchmi._scaling import standardise
    from cchmi.estimators.intrinsic import intrinsic_dimension

    seed = int(V.as_rng(random_state).integers(2**31))
    values = []
    for name, a in zip(names, (xa, ya)):
        try:
            z = standardise(a, np.arange(a.shape[0]), dtype=np.float64)
            values.append((name, intrinsic_dimension(z, random_state=seed, name=name).value))
        except ValueError as exc:
            return False, f"{name}: {exc}"
    text = ", ".join(f"{name} {value:.1f}" for name, value in values)
    return all(value <= MAX_INTRINSIC for _, value in values), f"TwoNN intrinsic dimension {text}"


def _torch_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


@reports("cchmi.mi")
def mi(x, y, *, labels: bool = False, estimator: str = "auto", k: int = 3, confidence: float | None = None,
       n_subsamples: int = 20, base: float = math.e, random_state=0, backend: str = "auto",
       device=None, progress: bool = False, checks: str = "auto") -> AutoMIResult:
    """I(X; Y), or I(X; labels) with ``labels=True``, by the estimator that suits n and the dimensions.

    Parameters
    ----------
    x : (n, d_x) real samples; y : (n, d_y) real samples, or (n,) discrete labels with ``labels=True``.
    estimator :
        * "ksg": KSG-1 (:func:`cchmi.ksg_mi`), or Ross (:func:`cchmi.mixed_mi`) for labels.
        * "ksg-extrapolated": the same, evaluated on subsamples of n, n/2, n/4, n/8 rows and
          extrapolated to n -> inf along a + b m^(-2/D) (D = d_x + d_y, or d_x for labels; see
          :mod:`cchmi.estimators.extrapolate` for the assumptions); needs n >= 512 (1024 with an
          interval, which is the half-sample jackknife of the whole extrapolation widened by the
          fit's lack of fit and by 0.2 of the correction, the power law's error).
        * "neural" (torch): the SMILE bound (:func:`cchmi.neural_mi`, its defaults but the batch,
          lowered below 1,280 rows to fit the test rows:
          :func:`cchmi.estimators.cch_terms.neural_batch_size`), or for labels H(labels) minus the
          held-out cross-entropy of a softmax-regression probe (:func:`cchmi.estimators.probe.probe_mi`).
        * "diffusion" (torch): :func:`cchmi.neural.diffusion_mi` with its defaults and its permuted-Y
          control, whose floor above a quarter of the estimate marks the result unreliable (the kNN
          self-consistency checks do not run on it). Not for labels.
        * "compressed": compress-then-kNN (:func:`cchmi.estimators.compress.compressed_mi`: PCA fitted
          on one half of the rows, KSG-1 extrapolated on the other, cross-fitted), for wide samples of
          low intrinsic dimension; a side above its threshold is refused (ValueError). Not for labels.
        * "auto" (default): the first matching row (``choice_reason`` records it):

          ==============================================================  ==================
          condition                                                       estimator
          ==============================================================  ==================
          n < 1024 (512 without an interval)                              ksg
          d_x + d_y <= 4                                                  ksg
          n >= 50,000 and d_x + d_y <= 32, no labels, torch installed     neural
          d_x or d_y > 32, no labels, n >= 2048, TwoNN dims <= 8          compressed
          widest side 33-64, no labels, n >= 10,000, torch installed      diffusion
          otherwise                                                       ksg-extrapolated
          ==============================================================  ==================

          Where "ksg-extrapolated" cannot run (tied rows, too few rows per half-sample, classes
          of fewer than 16 rows, 32 with an interval) or returns I(X; labels) above the labels'
          entropy, "ksg" runs and ``choice_reason`` says why. For labels the probe is never
          chosen (see :data:`MI_AUTO_RULES`).

          The rows at n = 5000 were derived on ``cchmi bench accuracy --n 5000 --seeds 1
          --seed-offset 1000 --methods 'cchmi KSG-1 / Ross' 'cchmi.mi ksg-extrapolated' 'cchmi.mi
          auto' 'cchmi.mi neural' --timeout 900 --out bench/results/accuracy/rules`` (report and
          rows: bench/results/accuracy/rules/accuracy.md, accuracy.csv): the 22 tasks of
          :func:`cchmi.data.tasks.catalogue` at n = 5000, rule seed 1000 (in-sample for these
          rules), 95% intervals; bench code c4768b2, 2-core AMD EPYC VM shared by other jobs (load
          3.5-37, median 7), 2026-11-30. Mean absolute error: KSG-1 / Ross 1.400 nats, extrapolated
          0.569, neural (SMILE; the probe for labels) 1.062 (21 tasks: SMILE diverged on
          student-1x1-df1), these rules 0.532, 0.38 of KSG-1's (the goal: at most half); their 95%
          intervals covered the truth on 18 of the 22 tasks. Above 4 dimensions SMILE was ahead of
          the extrapolation only on the two sparse tasks (0.84 against 0.79 of 1 nat, 1.36 against
          0.53 of 2) and level with it at 10+10 (errors 0.234 and 0.233 nats, 73 s against 5 s); it
          was far below it from 25+25 up (3.3 of 5 nats, 0.05 of 10 at 256+256).

          The n >= 50,000 row: ``cchmi bench accuracy --n 50000 --seeds 1 --seed-offset 1000
          --methods 'cchmi KSG-1 / Ross' 'cchmi.mi ksg-extrapolated' 'cchmi.mi neural' --tasks
          gauss-5x5-2,gauss-10x10-2,gauss-16x16-2,student-5x5-df5,rotate-5x5-2,spiral-3x3-1,sparse-1of10-1
          --timeout 1800 --out bench/results/accuracy_large_n`` (the catalogue's continuous tasks of
          5 to 32 dimensions, rule seed 1000, git c04dc3f, same VM, load 2-5): mean absolute error
          KSG-1 0.458 nats, extrapolated 0.150 (median 81 s), SMILE 0.084 (median 45 s). SMILE was
          closer on 5 of the 7, not on spiral-3x3-1 (0.123 against 0.050) nor gauss-16x16-2 (0.177
          against 0.115); its interval is the spread over test batches and covered none of the 7
          truths (the extrapolation's 3). Held out, gauss-16x16-2 at n = 100,000, seed 0 (same
          file): these rules (SMILE) 1.865 of 2 nats, 6.8% off, in 52 s; the extrapolation 2.211,
          10.5% off, in 626 s; KSG-1 0.914, 54% off.
          No GPU measurement went into the rules.
    k : neighbours of the kNN estimators.
    confidence : interval level (None, the default: no interval).
    n_subsamples, base, random_state, backend : as in :func:`cchmi.ksg_mi`.
    device : torch device of the neural estimators (None: CUDA when available).
    progress : True: a progress bar on stderr, per stage ("extrapolation levels", "half-samples", the
        neural estimator's epochs); off by default, on in the CLI.
    checks : the self-consistency checks of a kNN estimate of I(X; Y) (:mod:`cchmi.estimators.consistency`:
        data processing on a random projection, additivity on two independent copies, a planted
        pair of known MI, the extrapolation's leap, stability from n/4 to n rows), each failure a
        reason in ``reliability`` and the numbers in ``reliability.checks``: "auto" (default) where
        x or y is wider than :data:`~cchmi.estimators.choice.MEASURED_DIMS` columns, "all" always,
        "none" never. They cost 2-3 times the estimate's own time (64+64 dims, n = 5000: 2-4 s
        after KSG-1's 1 s, 4-7 s after the extrapolation's 2-3 s, on a shared 2-core CPU:
        bench/results/flag_calibration). Wider samples no check covers (labels, "neural",
        ``checks="none"``) are marked unreliable unchecked.

    Returns an :class:`AutoMIResult`.
    """
    start = time.perf_counter()
    if not isinstance(labels, (bool, np.bool_)):
        raise TypeError(f"labels must be True or False, got {labels!r}")
    estimator = V.choice(estimator, "estimator", MI_ESTIMATORS)
    checks = V.choice(checks, "checks", CHECKS)
    xa = V.as_samples(x, "x")
    if labels:
        codes, _ = V.as_labels(y, "y", xa.shape[0], continuous_hint="leave labels=False for a real-valued y")
        dim_y = 0
    else:
        ya = V.as_samples(y, "y")
        dim_y = ya.shape[1]
    n = V.same_length(x=xa, y=codes if labels else ya)
    reason = None
    if estimator == "auto":
        low, measured = False, None
        if wants_compression(n, xa.shape[1], dim_y, labels):
            low, measured = low_intrinsic_dimension(xa, ya, random_state)
        estimator, reason = mi_auto_estimator(n, xa.shape[1], dim_y, labels, _torch_available(), confidence is not None,
                                              low)
        if measured is not None:
            reason = f"{reason} ({measured})"
        cannot = None
        if estimator == "ksg-extrapolated":
            cannot = obstacle({"x": xa} if labels else {"x": xa, "y": ya}, n, codes if labels else None,
                              confidence is not None)
        if cannot is not None:
            estimator, reason = "ksg", f"{reason}; the extrapolation could not run, so 'ksg' did: {cannot}"
    common = dict(confidence=confidence, base=base, random_state=random_state)
    bias, reliability = None, None
    if estimator == "ksg-extrapolated":
        r = extrapolated_mi(xa, codes if labels else ya, KnnOptions(k=k, n_subsamples=n_subsamples, backend=backend,
                                                                     **common), labels=labels)
        bias, note, reliability = r.bias, r.interval_note, r.reliability
        if reason is not None and not reliability.reliable:
            refused = "; ".join(reliability.reasons)
            estimator, reason = "ksg", f"{reason}; the extrapolated estimate was refused, so 'ksg' ran: {refused}"
            reliability = None  # the plain estimate gets its own checks below
    if estimator == "ksg":
        function = mixed_mi if labels else ksg_mi
        r = function(xa, codes if labels else ya, k=k, n_subsamples=n_subsamples, backend=backend, **common)
        note, bias = "half-sample jackknife: sampling variability only, not the estimator's bias", None
    elif estimator == "neural":
        r, note = _neural(xa, codes if labels else ya, labels, device, common)
    elif estimator == "diffusion":
        if labels:
            raise ValueError("estimator='diffusion' estimates I(X; Y) between real samples; for labels use 'ksg'")
        r, note = _diffusion(xa, ya, device, progress, common)
    elif estimator == "compressed":
        if labels:
            raise ValueError("estimator='compressed' estimates I(X; Y) between real samples; for labels use 'ksg'")
        r = compressed_mi(xa, ya, k=k, n_subsamples=n_subsamples, confidence=confidence, base=base,
                          random_state=int(V.as_rng(random_state).integers(2**31)))
        note, bias = r.interval_note, r.bias
    below = interval.below_zero_reason(r.estimate, r.stderr, f"the {estimator} estimate")
    if estimator == "ksg-extrapolated" or (estimator == "neural" and not labels):  # ksg and the probe warn
        interval.warn_if_below_zero(r.estimate, r.stderr, f"the {estimator} estimate")
    reasons = [*(() if reliability is None else reliability.reasons), below]
    record = None
    if estimator == "compressed":  # gated by its own diagnostic (the kNN checks would test the wide samples)
        record = {"intrinsic dimension": {"x": r.intrinsic_x.value, "y": r.intrinsic_y.value}}
    elif estimator == "diffusion":  # checked by its permuted-Y control
        reasons.extend(r.reliability.reasons)
        record = {"permuted-Y control": {"floor": r.floor}}
    elif not labels and estimator != "neural" and wanted(checks, (xa.shape[1], dim_y), MEASURED_DIMS):
        seed = int(V.as_rng(random_state).integers(2**31))
        failed, numbers = run_checks(xa, ya, knn_estimate(estimator, k, backend, seed), r.estimate * math.log(base),
                                     None if r.stderr is None else r.stderr * math.log(base),
                                     correction=None if bias is None else bias * math.log(base), random_state=seed)
        reasons.extend(failed)
        record = {"I(X; Y)": numbers}
    else:
        reasons.append(unmeasured_reason((xa.shape[1], dim_y)))
    if labels and estimator != "ksg-extrapolated":  # the extrapolation checked its own ceiling
        reasons.append(label_ceiling_reason(r.estimate * math.log(base), codes,
                                            None if r.stderr is None else r.stderr * math.log(base)))
    reliability = Reliability.of(reasons, record)
    fields = {name: getattr(r, name) for name in MIResult.__dataclass_fields__}
    fields["seconds"] = time.perf_counter() - start
    return AutoMIResult(**fields, choice_reason=reason, bias=bias,
                        interval_note=note if r.stderr is not None else None, reliability=reliability)


def _diffusion(xa, ya, device, progress, common) -> tuple[MIResult, str]:
    """:func:`cchmi.neural.diffusion_mi` with its defaults and its permuted-Y control: (result, what its
    interval covers)."""
    from cchmi._extras import require

    require("torch", "torch", "cchmi.mi(estimator='diffusion')")
    from cchmi.neural import diffusion_mi

    seed = int(V.as_rng(common["random_state"]).integers(2**31))
    r = diffusion_mi(xa, ya, device=device, confidence=common["confidence"], base=common["base"], random_state=seed,
                     progress=progress, control=True)
    return r, "spread over test rows and noise draws: the evaluation's sampling error, not the denoisers' error"


def _neural(xa, ya, labels, device, common) -> tuple[MIResult, str]:
    from cchmi._extras import require

    require("torch", "torch", "cchmi.mi(estimator='neural')")
    V.warn_about_samples({"x": xa} if labels else {"x": xa, "y": ya}, dict(x=LABELS_HINT, y=LABELS_HINT))
    if labels:
        try:
            result = probe_mi(xa, ya, probe="linear", device=device, **common)
        except ValueError as exc:  # its advice names probe_mi's options, which cchmi.mi has not
            raise ValueError(f"estimator='neural' (the probe bound) cannot run here: {exc}; with cchmi.mi, give "
                             f"more rows or use estimator='ksg' (Ross's estimator)") from None
        return result, (
            "standard error of the mean over held-out rows: the evaluation's sampling error, not what the probe "
            "misses (which lowers the estimate)")
    from cchmi.neural import neural_mi

    seed = int(V.as_rng(common["random_state"]).integers(2**31))
    r = neural_mi(xa, ya, bound="smile", device=device, confidence=common["confidence"], base=common["base"],
                  random_state=seed, batch_size=neural_batch_size(xa.shape[0], common["confidence"] is not None))
    return r, "spread over test batches: the evaluation's sampling error, not the critic's gap to the truth"
