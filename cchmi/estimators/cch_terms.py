"""The term estimators of :func:`cchmi.cch`: I(T; S) and I(S; Y) from one estimator family.

Each estimator is an object with ``terms(sample, opts, streams) -> CCHTerms`` (the
:class:`TermEstimator` protocol), built by :func:`term_estimator` from cch's options:

* :class:`KnnTerms`: KSG-1 for I(T; S), Ross (KSG-1 for a continuous Y) for I(S; Y), optionally
  on ``pca`` principal components fitted on held-out rows, optionally extrapolated to n -> inf
  (:func:`cchmi.estimators.extrapolate.extrapolate_estimate`, "ksg-extrapolated");
* :class:`LatentTerms`: the kNN terms on learned embeddings (:func:`cchmi.neural.latent.embed`);
* :class:`NeuralTerms`: the SMILE bound for I(T; S) and the probe bound
  (:func:`cchmi.estimators.probe.probe_mi`) for I(S; Y);
* :class:`CompressedTerms`: the extrapolated kNN terms on a few principal components of each side,
  gated by its intrinsic dimension (compress-then-kNN, :mod:`cchmi.estimators.compress`).

The kNN terms are prepared by :func:`cchmi.estimators.problem.prepare`, the student and the
target with one random stream and the teacher with another (:class:`CCHStreams`), so that the
same seed jitters the student the same way whatever the teacher (``rank_teachers`` relies on it).
Values are in nats; :func:`cchmi.cch` converts them to its unit and decides.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from cchmi import _validate as V
from cchmi._extras import require
from cchmi._scaling import standardise
from cchmi.estimators import interval
from cchmi.estimators.compress import MAX_INTRINSIC, default_dims, pca_basis, too_high
from cchmi.estimators.extrapolate import MODEL_SPREAD, extrapolate_estimate, obstacle, refuse
from cchmi.estimators.intrinsic import intrinsic_dimension
from cchmi.estimators.ksg import ksg_nats
from cchmi.estimators.mixed import class_sizes, mixed_nats
from cchmi.estimators.options import KnnOptions
from cchmi.estimators.probe import probe_mi
from cchmi.estimators.problem import prepare
from cchmi.estimators.reliability import informative_dims, label_ceiling_reason

JACKKNIFE_NOTE = "half-sample jackknife: sampling variability only, not the estimators' bias"


@dataclass(frozen=True)
class CCHSample:
    """The rows of one CCH problem: teacher (n, d_t) and student (n, d_s) arrays, and either
    discrete label codes 0..C-1 (``codes``) or a continuous target (``y``, (n, d_y))."""

    teacher: np.ndarray
    student: np.ndarray
    codes: np.ndarray | None = None
    y: np.ndarray | None = None

    @property
    def n(self) -> int:
        return self.student.shape[0]

    def subset(self, rows: np.ndarray, teacher: np.ndarray, student: np.ndarray) -> CCHSample:
        """The sample of `rows` with the teacher and student replaced (reduced representations)."""
        return CCHSample(teacher, student, None if self.codes is None else self.codes[rows],
                         None if self.y is None else self.y[rows])


@dataclass(frozen=True)
class CCHStreams:
    """The independent random streams of one cch call: the held-out split (and what is learned on
    it), the student's and target's jitter, the teacher's jitter, and the half-samples and
    subsamples of the interval and the extrapolation."""

    split: np.random.Generator
    student: np.random.Generator
    teacher: np.random.Generator
    subsamples: np.random.Generator

    @classmethod
    def spawn(cls, random_state) -> CCHStreams:
        """The four streams spawned, in this order, from one seed."""
        return cls(*np.random.default_rng(random_state).spawn(4))


@dataclass(frozen=True)
class CCHTerms:
    """I(T; S) and I(S; Y) in nats from one term estimator, and what produced them.

    stderr: standard errors of (i_ts, i_sy, gap) (None without an interval); bias: the corrections
    added to (i_ts, i_sy) (None for estimators without one); names: the estimator of each term;
    dims: (teacher, student) dimensions the terms used; n: rows of the estimates; k: neighbours (0
    for learned bounds); note: what the interval covers; fallback: what ran in place of what
    estimator="auto" chose, and why (None: what it chose ran); unreliable:
    the reasons the terms cannot be trusted (empty: none found), e.g. I(S; Y) above H(Y); sides:
    the (teacher, student, continuous target or None) arrays the kNN terms were estimated on (after
    ``pca``), for :func:`cchmi.cch`'s self-consistency checks (None for the learned estimators).
    """

    i_ts: float
    i_sy: float
    names: tuple[str, str]
    dims: tuple[int, int]
    n: int
    k: int
    backend: str
    note: str
    stderr: np.ndarray | None = None
    n_subsamples: int | None = None
    bias: np.ndarray | None = None
    fallback: str | None = None
    unreliable: tuple[str, ...] = ()
    sides: tuple | None = None

    @property
    def gap(self) -> float:
        """I(T; S) - I(S; Y) in nats."""
        return self.i_ts - self.i_sy


class TermEstimator(Protocol):
    """An estimator of cch's two terms on the rows of `sample`, with `opts` (k, base, dtype,
    backend, confidence, n_subsamples; ties "jitter") and the call's random `streams`."""

    def terms(self, sample: CCHSample, opts: KnnOptions, streams: CCHStreams) -> CCHTerms: ...


def knn_terms(sample: CCHSample, opts: KnnOptions, streams: CCHStreams, *, extrapolated: bool = False,
              fallback: bool = False, student_for_labels: np.ndarray | None = None,
              bias_dims: tuple[int, int] | None = None) -> CCHTerms:
    """KSG-1 of I(T; S) and Ross (KSG-1 for a continuous Y) of I(S; Y) on one preparation, with the
    half-sample interval of both and of their gap (stratified by label); ``extrapolated``: both
    terms extrapolated to n -> inf, D the non-constant columns each term searches in. Where the
    extrapolation cannot run (:func:`cchmi.estimators.extrapolate.obstacle`: tied rows, too few rows,
    too small classes) it is refused, or with ``fallback`` (estimator="auto") the plain terms run
    and ``CCHTerms.fallback`` says why. A Ross term above the labels' entropy is recorded in
    ``CCHTerms.unreliable``. student_for_labels: a second student array for I(S; Y) (the latent
    estimator embeds the student once per term). bias_dims: the dimensions D of the two terms' bias
    exponents 2 / D (default: the non-constant columns each term searches in)."""
    samples = {"student": sample.student, "teacher": sample.teacher}
    if student_for_labels is not None:
        samples["student_for_labels"] = student_for_labels
    if sample.y is not None:
        samples["labels"] = sample.y
    fell_back = None
    if extrapolated:
        fell_back = obstacle(samples, sample.n, sample.codes, opts.confidence is not None)
        if fell_back is not None and not fallback:
            raise refuse(fell_back, opts.confidence is not None)
        extrapolated = fell_back is None
    jitter = {name: streams.teacher if name == "teacher" else streams.student for name in samples}
    p = prepare(samples, dataclasses.replace(opts, random_state=streams.subsamples),
                labels=None if sample.codes is None else ("labels", sample.codes), streams=jitter,
                rows="the number of rows used for the estimate")
    be, k, n, codes = p.be, p.k, p.n, p.codes
    sp, tp = p.arrays[0], p.arrays[1]
    sp_labels = p.arrays[2] if student_for_labels is not None else sp
    yp = p.arrays[-1] if sample.y is not None else None
    if codes is not None:
        sizes = class_sizes(codes, "labels")
    if opts.confidence is not None:
        if codes is not None:
            interval.check_interval_classes(sizes)
        interval.check_interval_size(n, k)

    def core(rows):
        i_ts = ksg_nats(be, be.take(tp, rows), be.take(sp, rows), k, 1, "jitter")
        if yp is None:
            i_sy = mixed_nats(be, be.take(sp_labels, rows), codes if rows is None else codes[rows], k, "jitter")
        else:
            i_sy = ksg_nats(be, be.take(sp_labels, rows), be.take(yp, rows), k, 1, "jitter")
        return np.array([i_ts, i_sy, i_ts - i_sy])

    def ceiling(i_sy, stderr):
        if codes is None:
            return ()
        reason = label_ceiling_reason(i_sy, codes, None if stderr is None else stderr[1], "I(S; Y)")
        return () if reason is None else (reason,)

    names = ("ksg1", "ross" if yp is None else "ksg1")
    common = dict(dims=(tp.shape[1], sp.shape[1]), n=n, k=k, backend=be.name,
                  fallback=None if fell_back is None else
                  f"the extrapolation could not run, so the plain kNN terms did: {fell_back}")
    with_interval = dict(n_subsamples=opts.n_subsamples) if opts.confidence is not None else {}
    if not extrapolated:
        values = core(None)
        if opts.confidence is not None:
            with_interval["stderr"] = interval.subsample_spread(core, n, p.rng, opts.n_subsamples, strata=codes)
            interval.warn_if_no_spread(with_interval["stderr"])
        return CCHTerms(values[0], values[1], names, note=JACKKNIFE_NOTE, **common, **with_interval,
                        unreliable=ceiling(values[1], with_interval.get("stderr")))
    dims_searched = list(bias_dims) if bias_dims is not None else [
        informative_dims(sample.teacher) + informative_dims(sample.student),
        informative_dims(sample.student) + (0 if sample.y is None else informative_dims(sample.y))]
    est = extrapolate_estimate(lambda rows: core(rows)[:2], n, dims_searched, p.rng,
                               strata=codes, confidence=opts.confidence, n_subsamples=opts.n_subsamples,
                               difference=True)
    note = JACKKNIFE_NOTE
    if est.stderr is not None:
        with_interval["stderr"] = est.stderr
        note = (f"extrapolated to n -> inf from subsamples of {est.subsample_sizes} rows (bias exponents 2/D = "
                f"{est.exponents[0]:.3g}, {est.exponents[1]:.3g}); the estimates were shifted by the corrections "
                f"bias_ts, bias_sy, and the interval is the half-sample jackknife of the extrapolation widened by "
                f"the fit's lack of fit and by {MODEL_SPREAD:g} times the corrections (the power law's error): gap "
                f"s.e. {est.stderr[2]:.3g} nats, {est.sampling[2]:.3g} of it sampling")
    return CCHTerms(est.values[0], est.values[1], tuple(name + "-extrapolated" for name in names), note=note,
                    bias=est.bias, **common, **with_interval, unreliable=ceiling(est.values[1], est.stderr))


@dataclass(frozen=True)
class KnnTerms:
    """The kNN terms ("ksg", "ksg-extrapolated"), on `pca` principal components of each side when
    set (fitted on a stratified `fit_fraction` of the rows, which the estimates then do not use).
    fallback: where the extrapolation cannot run, the plain terms instead of a refusal (:func:`knn_terms`)."""

    extrapolated: bool = False
    pca: int | None = None
    fit_fraction: float = 0.3
    fallback: bool = False

    def terms(self, sample: CCHSample, opts: KnnOptions, streams: CCHStreams) -> CCHTerms:
        if self.pca is not None:
            fit, rows = held_out_split(sample.codes, sample.n, self.fit_fraction, streams.split)
            sample = sample.subset(rows, pca_projection(sample.teacher, fit, rows, self.pca),
                                 pca_projection(sample.student, fit, rows, self.pca))
        terms = knn_terms(sample, opts, streams, extrapolated=self.extrapolated, fallback=self.fallback)
        return dataclasses.replace(terms, sides=(sample.teacher, sample.student, sample.y))


@dataclass(frozen=True)
class LatentTerms:
    """The kNN terms on learned `embed_dim`-dimensional embeddings (a cross-predictive model of
    (T, S) and one of (S, labels)), trained on a stratified `fit_fraction` of the rows (a fifth of
    it for early stopping) and applied to the others, where both terms are estimated."""

    embed_dim: int = 8
    fit_fraction: float = 0.5
    device: object = None

    def terms(self, sample: CCHSample, opts: KnnOptions, streams: CCHStreams) -> CCHTerms:
        require("torch", "torch", "cch(estimator='latent')")
        from cchmi.neural.latent import embed

        fit, rows = stratified_split(sample.codes, self.fit_fraction, streams.split)
        order = streams.split.permutation(fit)
        n_val = max(1, fit.size // 5)
        val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
        seed = int(streams.split.integers(2**31))
        options = dict(embed_dim=self.embed_dim, hidden=128, layers=2, reconstruction_weight=1.0, cross_weight=1.0,
                       batch_size=min(128, train.size), epochs=200, lr=1e-3, patience=15, device=self.device,
                       seed=seed)
        zt, zs = embed(sample.teacher, sample.student, train, val, rows, n_classes=0, **options)
        zs_labels, _ = embed(sample.student, sample.codes, train, val, rows, n_classes=int(sample.codes.max()) + 1,
                             **options)
        terms = knn_terms(sample.subset(rows, zt, zs), opts, streams, student_for_labels=zs_labels)
        return dataclasses.replace(terms, names=tuple("latent-" + name for name in terms.names))


@dataclass(frozen=True)
class CompressedTerms:
    """Compress-then-kNN terms ("compressed", the procedure of
    :func:`cchmi.estimators.compress.compressed_mi` for both terms): on a held-out `fit_fraction` of
    the rows (stratified by label) each of the teacher and the student is standardised, its TwoNN
    intrinsic dimension measured (a side above `max_intrinsic` is refused: ValueError naming it) and
    its principal axes fitted; the other rows are projected on 3 x the rounded intrinsic dimension
    components per side (at most those holding 99.9% of its variance), and there the kNN terms are
    extrapolated to n -> inf with the bias exponents 2 / D, D the sides' rounded intrinsic
    dimensions (plus a continuous target's columns for I(S; Y)), not the components' number. With
    ``fallback`` (estimator="auto"), a side refused on the fit rows gets the plain kNN terms on all
    the rows and columns, and the compressed sample the plain terms where the extrapolation cannot
    run; without it both are refused."""

    fit_fraction: float = 0.3
    fallback: bool = False
    max_intrinsic: float = MAX_INTRINSIC

    def terms(self, sample: CCHSample, opts: KnnOptions, streams: CCHStreams) -> CCHTerms:
        fit, rows = held_out_split(sample.codes, sample.n, self.fit_fraction, streams.split)
        seed = int(streams.split.integers(2**31))
        projected, intrinsic, kept = [], [], []
        for name, a in (("teacher", sample.teacher), ("student", sample.student)):
            z = standardise(a, fit, np.float64)
            diagnostic = intrinsic_dimension(z[fit], random_state=seed, name=name)
            reason = too_high(name, diagnostic, self.max_intrinsic)
            if reason is not None and self.fallback:
                terms = knn_terms(sample, opts, streams, fallback=True)
                refused = "the compression was refused on the fit rows, so the plain kNN terms ran on every column: "
                return dataclasses.replace(terms, sides=(sample.teacher, sample.student, sample.y),
                                           fallback=refused + reason)
            if reason is not None:
                raise ValueError(f"estimator='compressed' refuses: {reason} (measured on the {fit.size} rows of "
                                 f"fit_fraction={self.fit_fraction:g}); kNN after compression is biased there "
                                 "(cchmi.estimators.compress: the measurements)")
            basis, share = pca_basis(z[fit])
            m = default_dims(diagnostic, share)
            projected.append(z[rows] @ basis[:m].T)
            intrinsic.append(diagnostic.value)
            kept.append(m)
        rounded = [max(1, round(v)) for v in intrinsic]
        bias_dims = (rounded[0] + rounded[1], rounded[1] + (0 if sample.y is None else informative_dims(sample.y)))
        terms = knn_terms(sample.subset(rows, *projected), opts, streams, extrapolated=True, fallback=self.fallback,
                          bias_dims=bias_dims)
        note = (f"{terms.note}; on {kept[0]}+{kept[1]} principal components (teacher + student; TwoNN intrinsic "
                f"dimension {intrinsic[0]:.1f} and {intrinsic[1]:.1f}) fitted on {fit.size} held-out rows")
        return dataclasses.replace(terms, names=tuple("pca-" + name for name in terms.names), note=note,
                                   sides=(*projected, sample.y))


NEURAL_BATCH = 256
"""The batch size of cch's SMILE bound (neural_mi's default) where the rows allow it."""

MIN_NEURAL_BATCH = 16
"""The smallest batch :func:`neural_batch_size` accepts: SMILE scores each pair against the
batch's others, and a few negatives give no bound worth the name."""


def neural_batch_size(n: int, with_interval: bool) -> int:
    """The batch size of the SMILE bound on n rows (neural_mi's split: a fifth validation, a fifth
    test): NEURAL_BATCH, lowered to fit the test rows (twice with an interval, which is the spread
    over test batches); a ValueError naming estimator='neural' below MIN_NEURAL_BATCH."""
    test_rows = int(round(0.2 * n))
    size = min(NEURAL_BATCH, test_rows // 2 if with_interval else test_rows)
    if size < MIN_NEURAL_BATCH:
        needed = 5 * MIN_NEURAL_BATCH * (2 if with_interval else 1)
        also = (" with an interval", " or confidence=None") if with_interval else ("", "")
        raise ValueError(f"estimator='neural' needs {needed} rows or more{also[0]} (batches of {MIN_NEURAL_BATCH} "
                         f"pairs in its test fifth), got n={n}: use estimator='ksg'{also[1]}")
    return size


@dataclass(frozen=True)
class NeuralTerms:
    """The SMILE bound of I(T; S) (:func:`cchmi.neural_mi`, its defaults but the batch size,
    :func:`neural_batch_size`, held out) and the probe bound of I(S; Y) (a softmax-regression probe
    trained on a stratified `fit_fraction`; SMILE for a continuous Y).

    With an interval, each bound is also computed on row-permuted pairs (the teacher's rows, the
    labels or the target permuted: the same estimator where the truth is 0), and the magnitude of
    that null estimate, its error at independence, and the null estimate's own standard error are
    added in quadrature to the term's held-out standard error: the interval then covers the
    bounds' own bias (an overfit probe is below 0 by it; independent T, S and 300 classes gave a
    gap of +0.106 with an interval of +-0.018 without it). The gap's standard error is
    sqrt(se_ts^2 + se_sy^2) (separate splits)."""

    fit_fraction: float = 0.5
    device: object = None

    def terms(self, sample: CCHSample, opts: KnnOptions, streams: CCHStreams) -> CCHTerms:
        require("torch", "torch", "cch(estimator='neural')")
        from cchmi.neural import neural_mi

        seed_ts, seed_sy = (int(v) for v in streams.split.integers(2**31, size=2))
        batch = neural_batch_size(sample.n, opts.confidence is not None)

        def bounds(teacher, codes, y, confidence):
            ts = neural_mi(teacher, sample.student, bound="smile", confidence=confidence, random_state=seed_ts,
                           device=self.device, batch_size=batch)
            if y is None:
                sy = probe_mi(sample.student, codes, probe="linear", fit_fraction=self.fit_fraction,
                              confidence=confidence, random_state=seed_sy, device=self.device)
            else:
                sy = neural_mi(sample.student, y, bound="smile", confidence=confidence, random_state=seed_sy,
                               device=self.device, batch_size=batch)
            return ts, sy

        ts, sy = bounds(sample.teacher, sample.codes, sample.y, opts.confidence)
        with_interval = {}
        note = ("held-out spread of each bound, combined as sqrt(se_ts^2 + se_sy^2) (separate splits); covers the "
                "evaluation's sampling error, not what the learned functions miss (which lowers both terms)")
        if ts.stderr is not None and sy.stderr is not None:
            perm = streams.split.permutation(sample.n)
            with warnings.catch_warnings():  # an overfit probe warns; on permuted labels that is expected
                warnings.simplefilter("ignore", RuntimeWarning)
                null_ts, null_sy = bounds(sample.teacher[perm], None if sample.codes is None else sample.codes[perm],
                                          None if sample.y is None else sample.y[perm], opts.confidence)
            se_ts, se_sy = (float(np.linalg.norm([term.stderr, null.estimate, null.stderr or 0.0]))
                            for term, null in ((ts, null_ts), (sy, null_sy)))
            with_interval = dict(stderr=np.array([se_ts, se_sy, math.hypot(se_ts, se_sy)]),
                                 n_subsamples=ts.n_subsamples)
            note = (f"held-out spread of each bound, widened by the bound's value on row-permuted pairs (its error "
                    f"where the truth is 0: {null_ts.estimate:+.3g} nats for I(T; S), {null_sy.estimate:+.3g} for "
                    f"I(S; Y)) and that value's own spread, in quadrature, and combined as sqrt(se_ts^2 + se_sy^2) "
                    f"(separate splits); it does not cover what the learned functions miss where the truth is not 0 "
                    f"(which lowers both terms)")
        return CCHTerms(ts.estimate, sy.estimate, (ts.estimator, sy.estimator),
                        (sample.teacher.shape[1], sample.student.shape[1]), sample.n, 0, ts.backend, note,
                        **with_interval)


TERM_ESTIMATORS = ("ksg", "latent", "ksg-extrapolated", "neural", "compressed")
"""The estimators :func:`term_estimator` builds (cch's "auto" chooses among them first)."""


def term_estimator(name: str, *, pca: int | None, fit_fraction: float | None, embed_dim, device,
                   discrete: bool, fallback: bool = False) -> TermEstimator:
    """The term estimator `name` (one of TERM_ESTIMATORS) with cch's options (pca and fit_fraction
    validated; None: the estimator's default), or a ValueError naming the option that does not
    apply to it. fallback (estimator="auto"): "ksg-extrapolated" falls back to the plain terms
    where it cannot run."""
    if name in ("latent", "neural") and pca is not None:
        raise ValueError(f"pca applies to the kNN estimators only (estimator={name!r} learns its own functions)")
    if name == "compressed" and pca is not None:
        raise ValueError("pca does not apply to estimator='compressed' (it keeps 3 x the intrinsic dimension "
                         "components per side); use estimator='ksg-extrapolated' with pca=")
    if name == "compressed":
        return CompressedTerms(fit_fraction or 0.3, fallback)
    if name == "latent" and not discrete:
        raise ValueError("estimator='latent' needs discrete labels (labels_kind='discrete')")
    if name == "neural":
        return NeuralTerms(fit_fraction or 0.5, device)
    if name == "latent":
        return LatentTerms(V.as_int(embed_dim, "embed_dim", 1), fit_fraction or 0.5, device)
    return KnnTerms(name == "ksg-extrapolated", pca, fit_fraction or 0.3, fallback)


def stratified_split(codes: np.ndarray, fraction: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, estimate rows): `fraction` of every class (at least one row) goes to the fit part."""
    fit = []
    for c in np.unique(codes):
        members = np.flatnonzero(codes == c)
        take = min(members.size - 1, max(1, round(fraction * members.size)))
        fit.append(rng.choice(members, size=take, replace=False))
    fit = np.sort(np.concatenate(fit))
    rest = np.setdiff1d(np.arange(codes.size), fit)
    return fit, rest


def held_out_split(codes: np.ndarray | None, n: int, fraction: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, estimate rows): stratified by label when there are labels."""
    if codes is not None:
        return stratified_split(codes, fraction, rng)
    order = rng.permutation(n)
    take = min(n - 1, max(1, round(fraction * n)))
    return np.sort(order[:take]), np.sort(order[take:])


def pca_projection(a: np.ndarray, fit: np.ndarray, rows: np.ndarray, dim: int) -> np.ndarray:
    """`rows` of `a` projected onto the top `dim` principal axes of the standardised `fit` rows (the
    rows as they are when dim >= d)."""
    if dim >= a.shape[1]:
        return a[rows]
    z = standardise(a, fit, np.float64)
    _, _, vt = np.linalg.svd(z[fit], full_matrices=False)
    return z[rows] @ vt[:dim].T
