"""The rules of :func:`cchmi.cch`'s estimator="auto" (:data:`AUTO_RULES`, re-exported as
``cchmi.cch.AUTO_RULES``) and their words: why a rule chose what it did, as a sentence a user can read.

:func:`cchmi.mi` and :func:`cchmi.cch` choose their estimator by a rule table (``MI_AUTO_RULES``,
``AUTO_RULES``: condition, choice, measured reason) and record why in ``choice_reason``:
:func:`explain_choice` writes it as "<the data>: <what ran>. Why: <the measured reason> [rule
'<condition>' of <the table>]", so the table stays the reference and the sentence says it in words.
"""

from __future__ import annotations

from cchmi.estimators.compress import MAX_INTRINSIC

MI_WORDS = {
    "ksg": ("the plain kNN estimate (KSG-1)", "the plain kNN estimate (Ross's estimator of I(X; labels))"),
    "ksg-extrapolated": ("the KSG-1 estimate extrapolated to n -> inf (its dimension bias removed)",
                         "Ross's estimate of I(X; labels) extrapolated to n -> inf (its dimension bias removed)"),
    "neural": ("a neural bound (SMILE, a critic trained on half the rows)",
               "a probe's held-out bound (softmax regression trained on half the rows)"),
    "compressed": ("compress-then-kNN (PCA fitted on one half of the rows, KSG-1 extrapolated on the other, "
                   "cross-fitted)", "not for labels"),
    "diffusion": ("the diffusion estimate (a denoiser of x trained with and without y, checked by the same fit on y's "
                  "rows permuted)", "not for labels"),
}
"""What each choice of :func:`cchmi.mi` is, in words: (for I(X; Y), for I(X; labels))."""

CCH_WORDS = {
    "ksg": "the plain kNN terms (KSG-1 of I(T; S), Ross's estimator of I(S; Y))",
    "ksg-extrapolated": "the kNN terms extrapolated to n -> inf (KSG-1 and Ross, their dimension bias removed)",
    "neural": "neural bounds (SMILE for I(T; S), a probe for I(S; Y))",
    "latent": "the kNN terms on learned embeddings",
    "compressed": ("compress-then-kNN terms (PCA of each side fitted on held-out rows, the kNN terms extrapolated "
                   "along the intrinsic dimensions)"),
}
"""What each choice of :func:`cchmi.cch` is, in words."""


def explain_choice(rule: tuple[str, str, str], table: str, n: int, dims: tuple[int, int], *, cch: bool = False,
                   labels: bool = False) -> str:
    """``choice_reason`` for `rule` (condition, choice, why) of the rule table named `table`, on n
    rows of `dims`: (teacher, student) for cch, (x, y) for mi (y 0 with labels)."""
    condition, choice, why = rule
    if cch:
        data, words = f"{dims[0]}+{dims[1]} dimensions (teacher + student)", CCH_WORDS.get(choice, choice)
    elif labels:
        data, words = f"{dims[0]} dimensions and labels", MI_WORDS.get(choice, (choice, choice))[1]
    else:
        data, words = f"{dims[0]}+{dims[1]} dimensions (x + y)", MI_WORDS.get(choice, (choice, choice))[0]
    return f"{n:,} rows of {data}: {words}. Why: {why} [rule '{condition}' of {table}]"


MEASURED_DIMS = 32
"""The widest sample (columns per side) any estimator here was measured reliable on: the cch rule
sweep's tasks past 64 joint dimensions gave no reliable estimator (KSG's gap sign right on 2 of 8),
and on the 64-dimensional tasks of ``cchmi bench accuracy --suite hd`` (n = 5000,
bench/results/accuracy_hd) KSG-1 was 26-99% low, the extrapolation 29-359% off and SMILE 26-94% low.
Wider kNN estimates between continuous samples are checked for self-consistency
(:mod:`cchmi.estimators.consistency`; ``checks="auto"`` of cchmi.mi and cch) and marked unreliable
where a check fails; wider results no check covers (labels terms, the learned estimators,
``checks="none"``) are marked unreliable unchecked (:func:`unmeasured_reason`)."""

COMPRESSED_MIN_ROWS = (1500, 750)
"""Rows (with an interval, without) from which cch's "auto" tries compress-then-kNN: the
extrapolation needs 1024 (512) rows after the fit part, 30% of the rows by default."""

AUTO_RULES = (
    (f"d_t > {MEASURED_DIMS} or d_s > {MEASURED_DIMS}, TwoNN dims <= {MAX_INTRINSIC:g}, n >= {COMPRESSED_MIN_ROWS[0]} "
     f"({COMPRESSED_MIN_ROWS[1]} without an interval)", "compressed",
     "both sides' TwoNN intrinsic dimension at most the threshold (rows tied: not measured, the rule does not "
     "apply); on the CCH hd suite's lifted problems (64-512 columns a side, intrinsic dimension 1-8, n = 4000, "
     "bench/results/cch_hd) it decided 49 of 56 runs with |gap| >= 0.1 nats, all with the right sign, gap error "
     "0.07-0.09 nats"),
    (f"d_t > {MEASURED_DIMS} or d_s > {MEASURED_DIMS}", "ksg",
     "outside the dimensions the rules were measured on: past 64 joint dimensions no estimator here was reliable "
     "(KSG's sign right on 2 of 8 gaps, the extrapolation's gap error 0.71 nats), so the terms are checked for "
     "self-consistency (checks=), a failed check or an unchecked labels term marks the result unreliable and "
     "the verdict is undecided; reduce the representations (pca=16) or use logits"),
    ("n < 1024 (512 without an interval)", "ksg", "too few rows for the extrapolation (its subsamples of n/8, "
                                                   "n/16 in the half-samples of the interval, need 64 rows)"),
    ("n >= 1024 (512 without an interval)", "ksg-extrapolated",
     "on the rule sweep its gap interval covered the truth in 61 of 62 runs (KSG: 31), with the same or better "
     "sign accuracy at every dimension; the neural estimator lost I(T; S) at 64+64 (0.02 of 1 nat)"),
)
"""The rules of estimator="auto", in order (first match wins): (condition, choice, reason). n is
the number of rows the estimates will use (after ``pca``'s held-out rows)."""


def cch_wants_compression(n: int, dim_t: int, dim_s: int, interval: bool) -> bool:
    """Whether the compressed rule of :data:`AUTO_RULES` is worth its diagnostic: a side wider than
    :data:`MEASURED_DIMS` and rows enough for the fit part and the extrapolation."""
    return max(dim_t, dim_s) > MEASURED_DIMS and n >= COMPRESSED_MIN_ROWS[0 if interval else 1]


def auto_estimator(n: int, dim_t: int, dim_s: int, interval: bool, low_intrinsic: bool = False) -> tuple[str, str]:
    """(estimator, reason) by :data:`AUTO_RULES` for n rows of dim_t + dim_s dimensions, with an
    interval or without; low_intrinsic: both sides' TwoNN intrinsic dimension is at most
    :data:`~cchmi.estimators.compress.MAX_INTRINSIC` and no row is tied (measured by the caller
    where :func:`cch_wants_compression`)."""
    if low_intrinsic and cch_wants_compression(n, dim_t, dim_s, interval):
        rule = AUTO_RULES[0]
    elif max(dim_t, dim_s) > MEASURED_DIMS:
        rule = AUTO_RULES[1]
    else:
        rule = AUTO_RULES[2] if n < (1024 if interval else 512) else AUTO_RULES[3]
    return rule[1], explain_choice(rule, "cchmi.cch.AUTO_RULES", n, (dim_t, dim_s), cch=True)


def unmeasured_reason(dims: tuple[int, int]) -> str | None:
    """Why unchecked estimates on samples of `dims` columns ((teacher, student), or (x, y) with y 0
    for labels) cannot be trusted, when a side is wider than :data:`MEASURED_DIMS` (None otherwise)."""
    if max(dims) <= MEASURED_DIMS:
        return None
    return (f"dims {dims[0]}+{dims[1]} are outside the dimensions any estimator here was measured reliable on (at "
            f"most {MEASURED_DIMS} per side; at 64 per side KSG-1 was 26-99% low, the extrapolation 29-359% off, "
            f"SMILE 26-94% low: bench/results/accuracy_hd): reduce them first (pca=, logits)")


def unchecked_labels_reason(dim_s: int) -> str:
    """Why cch's I(S; Y) with discrete labels on a `dim_s`-column student (wider than
    :data:`MEASURED_DIMS`) cannot be trusted: the consistency checks cover continuous pairs only."""
    return (f"I(S; Y): the student's {dim_s} dims are outside the dimensions any estimator here was measured reliable "
            f"on (at most {MEASURED_DIMS} per side), and the self-consistency checks cover continuous pairs only, "
            f"not a labels term: reduce them first (pca=, logits)")
