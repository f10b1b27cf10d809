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
than penultimate features).
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
from cchmi.estimators.ksg import ksg_nats
from cchmi.estimators.mixed import class_sizes, mixed_nats
from cchmi.estimators.options import KnnOptions
from cchmi.estimators.problem import prepare_arrays
from cchmi.ops.knn import check_k

ESTIMATORS = ("ksg", "latent")
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
    after the representation and PCA.
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

    def __str__(self) -> str:
        text = f"I(T;S) = {self.i_ts:.4f}, I(S;Y) = {self.i_sy:.4f}, gap = {self.gap:+.4f} {self.unit}"
        if self.gap_stderr is not None:
            text += f" ({100 * self.confidence:g}% CI [{self.gap_ci_low:+.4f}, {self.gap_ci_high:+.4f}])"
        return (f"{text}: {self.verdict} ({self.estimator}, k={self.k}, n={self.n}, dims {self.dims[0]}+"
                f"{self.dims[1]}, {self.backend}, {self.seconds:.3g} s)")

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
) -> CCHResult:
    """Test the CCH, I(T; S) > I(S; Y), on representations a user already has.

    Parameters
    ----------
    teacher, student : (n, d_t) and (n, d_s) representations of the same n samples, row i of each
        from sample i (NumPy arrays or torch tensors).
    labels : (n,) discrete labels of any hashable type, at least two classes.
    estimator : "ksg": KSG-1 for I(T; S) and the Ross mixed estimator (the same kNN family and
        max-norm conventions) for I(S; Y). "latent" (torch): the same two estimators on learned
        ``embed_dim``-dimensional embeddings (:func:`cchmi.latent_mi`'s cross-predictive
        autoencoders: one model for (T, S), one for (S, labels)), trained on a stratified
        ``fit_fraction`` of the rows (0.5 by default; a fifth of them for early stopping) and
        applied to the others, where both terms and the interval are estimated.
    k : neighbours for both terms.
    representation : "features", "logits" (used as given) or "probabilities" (additive log-ratio
        transform), or a (teacher, student) pair of these.
    pca : reduce each representation wider than this to `pca` principal components (after
        standardising), fitted on a stratified `fit_fraction` (0.3 by default) of the rows that the
        estimates then do not use. For estimator "ksg" only.
    base, dtype, random_state, backend : as in :func:`cchmi.ksg_mi` (jitter ties, standardised columns).
    confidence : interval level for the gap (None: no interval; the verdict is then the gap's sign).
    n_subsamples : half-samples for the interval, stratified by label and shared by both terms.
    """
    start = time.perf_counter()
    ta, sa = V.as_samples(teacher, "teacher"), V.as_samples(student, "student")
    codes, _ = V.as_labels(labels, "labels", sa.shape[0])
    n = V.same_length(teacher=ta, student=sa, labels=codes)
    estimator = V.choice(estimator, "estimator", ESTIMATORS)
    reps = _representations(representation)
    ta, sa = _represent(ta, reps[0], "teacher"), _represent(sa, reps[1], "student")
    opts = KnnOptions(k=k, base=base, dtype=dtype, backend=backend, confidence=confidence,
                      n_subsamples=n_subsamples).validated(("jitter",))
    be = ops.resolve(opts.backend, n=n)
    # Independent streams for the split, the jitter of each variable and the half-samples, so that
    # the same seed gives the same student rows whatever the teacher (rank_teachers relies on it).
    rng_split, rng_student, rng_teacher, rng_sub = np.random.default_rng(random_state).spawn(4)
    if fit_fraction is not None:
        fit_fraction = V.as_real(fit_fraction, "fit_fraction", 0, 1, low_open=True, high_open=True)
    s_for_labels = None
    if estimator == "latent":
        if pca is not None:
            raise ValueError("pca applies to estimator='ksg' only (the latent estimator learns its own embeddings)")
        fit, rows = _stratified_split(codes, fit_fraction or 0.5, rng_split)
        ta, sa, s_for_labels = _latent_embeddings(ta, sa, codes, fit, rows, embed_dim, rng_split)
        codes = codes[rows]
        n = rows.size
    elif pca is not None:
        pca = V.as_int(pca, "pca", 1)
        fit, rows = _stratified_split(codes, fit_fraction or 0.3, rng_split)
        ta, sa, codes = _pca(ta, fit, rows, pca), _pca(sa, fit, rows, pca), codes[rows]
        n = rows.size
    k = check_k(be, opts.k, n, "the number of rows used for the estimate")
    sizes = class_sizes(codes, "labels")
    if opts.confidence is not None:
        interval.check_interval_classes(sizes)
        interval.check_interval_size(n, k)
    dt = V.working_dtype(opts.dtype, ta, sa)
    # Prepared on the host, then (GPU backends) moved to the device once for every estimate below.
    (sp,), _ = prepare_arrays(be, {"student": sa}, opts, dt, rng_student)
    (tp,), _ = prepare_arrays(be, {"teacher": ta}, opts, dt, rng_teacher)
    sp_labels = sp
    if s_for_labels is not None:
        (sp_labels,), _ = prepare_arrays(be, {"student": s_for_labels}, opts, dt, rng_student)

    def core(rows):
        c = codes if rows is None else codes[rows]
        i_ts = ksg_nats(be, be.take(tp, rows), be.take(sp, rows), k, 1, "jitter")
        i_sy = mixed_nats(be, be.take(sp_labels, rows), c, k, "jitter")
        return np.array([i_ts, i_sy, i_ts - i_sy])

    scale = 1.0 / math.log(opts.base)
    i_ts, i_sy, gap = core(None) * scale
    se = lo = hi = None
    confidence = opts.confidence
    if confidence is not None:
        se = interval.subsample_spread(core, n, rng_sub, opts.n_subsamples, strata=codes) * scale
        interval.warn_if_no_spread(se)
        z = interval.z_value(confidence)
        lo, hi = gap - z * se[2], gap + z * se[2]
    return CCHResult(
        i_ts=float(i_ts),
        i_sy=float(i_sy),
        gap=float(gap),
        verdict=_verdict(gap, lo, hi),
        estimator="ksg1 + ross" if estimator == "ksg" else "latent-ksg1 + latent-ross",
        n=n,
        k=k,
        dims=(tp.shape[1], sp.shape[1]),
        backend=be.name,
        seconds=time.perf_counter() - start,
        unit=interval.unit_name(opts.base),
        stderr_ts=None if se is None else float(se[0]),
        stderr_sy=None if se is None else float(se[1]),
        gap_stderr=None if se is None else float(se[2]),
        gap_ci_low=None if lo is None else float(lo),
        gap_ci_high=None if hi is None else float(hi),
        confidence=confidence if se is not None else None,
        n_subsamples=opts.n_subsamples if se is not None else None,
        representation=reps,
        pca=pca,
    )


def _latent_embeddings(ta, sa, codes, fit, rows, embed_dim, rng):
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
                   batch_size=min(128, train.size), epochs=200, lr=1e-3, patience=15, device=None, seed=seed)
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
                     n_subsamples=n_subsamples, random_state=random_state, backend=backend)
        rows.append((str(name), result))
    rows.sort(key=lambda row: -row[1].gap)
    return TeacherRanking(rows)
