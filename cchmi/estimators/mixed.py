"""I(X; labels) between a continuous X and discrete labels by Ross (2014): the formula,
:func:`mixed_mi` and the :class:`MixedMI` class. This is the CCH's I(S; Y)."""

from __future__ import annotations

import math
import time
import warnings

import numpy as np

from cchmi import ops
from cchmi._special import digamma, digamma_int
from cchmi.estimators import interval
from cchmi.estimators.base import KnnEstimator
from cchmi.estimators.ksg import warn_if_tied
from cchmi.estimators.options import COMMON, INTERVAL, SHARDED, KnnOptions, knn_api
from cchmi.estimators.problem import prepare
from cchmi.results import MIResult

FIELDS = ("k",) + COMMON + INTERVAL + SHARDED


def estimator_name(ties: str) -> str:
    return "ross-gao" if ties == "exact" else "ross"


def class_sizes(codes: np.ndarray, name: str) -> np.ndarray:
    """Class sizes of label codes; needs two classes with 2+ samples, warns about singletons
    (they have no same-class neighbour and are left out of the estimate)."""
    return check_class_sizes(np.bincount(codes), name)


def check_class_sizes(sizes: np.ndarray, name: str) -> np.ndarray:
    """class_sizes' checks on the sizes themselves (sharded labels: sizes from an all-reduce)."""
    if np.count_nonzero(sizes >= 2) < 2:
        raise ValueError(f"{name} needs at least two classes with 2 or more samples each")
    singletons = int(np.count_nonzero(sizes == 1))
    if singletons:
        warnings.warn(
            f"{name}: {singletons} classes have a single sample; those samples are left out of the estimate",
            RuntimeWarning,
            stacklevel=5,
        )
    return sizes


def mixed_nats(be: ops.Backend, x, codes: np.ndarray, k: int, ties: str) -> float:
    """Ross's estimate (or Gao et al.'s mixture form with ties="exact") in nats on prepared x."""
    sizes = np.bincount(codes)
    keep = sizes[codes] >= 2
    if not keep.all():
        x, codes = be.take(x, keep), codes[keep]
    n = x.shape[0]
    radius = np.empty(n, dtype=np.float64)  # holds float32 distances exactly too
    k_i = np.empty(n, dtype=np.float64)
    for c in np.unique(codes):
        members = np.flatnonzero(codes == c)
        kc = min(k, members.size - 1)
        sub = be.take(x, members)
        dist, _ = ops.knn(be, sub, kc)
        rho = be.host(dist[:, kc - 1])
        radius[members] = rho
        k_i[members] = kc
        zero = rho == 0
        if ties == "exact" and zero.any():
            k_i[members[zero]] = be.host(ops.count_within(be, sub, rho, True))[zero]
    class_size = np.bincount(codes)[codes].astype(np.float64)
    strict = be.host(ops.count_within(be, x, radius, False))
    if ties == "exact":
        inclusive = be.host(ops.count_within(be, x, radius, True))
        return mixed_from_sums(mixed_sums(n, k_i, class_size, strict, ties, inclusive, radius == 0), n, ties)
    warn_if_tied(be, radius, ties, x.dtype)
    return mixed_from_sums(mixed_sums(n, k_i, class_size, strict, ties), n, ties)


def tied_rows(strict, inclusive, zero) -> np.ndarray:
    """The rows that ties="exact" gives Gao et al.'s term: a k-th same-class distance of 0 (`zero`),
    or another point than that neighbour at exactly that distance (inclusive - strict counts != 1)."""
    return zero | (inclusive - strict != 1)


def mixed_sums(n: int, k_i, class_size, strict, ties: str, inclusive=None, zero=None) -> np.ndarray:
    """The sums over rows of Ross's estimate from these rows' k_i, class sizes and counts strictly
    within their radius, n the number of rows of the problem (singleton classes left out). With
    ties="exact", the tied rows (:func:`tied_rows`, from the `inclusive` counts and the rows of
    radius 0, `zero`) take Gao et al.'s term instead: (sum of Gao's terms, the number of Ross's
    rows, then Ross's three sums over them). Sums of row subsets add up."""
    if ties != "exact":
        m = strict + 1  # + 1: the point itself, as in Ross (2014)
        return np.array([np.sum(digamma(k_i)), np.sum(digamma(class_size)), np.sum(digamma_int(m))])
    gao = tied_rows(strict, inclusive, zero)
    ross = ~gao
    gao_terms = digamma(k_i[gao]) + math.log(n) - np.log(inclusive[gao] + 1.0) - np.log(class_size[gao])
    return np.array([np.sum(gao_terms), np.count_nonzero(ross), np.sum(digamma(k_i[ross])),
                     np.sum(digamma(class_size[ross])), np.sum(digamma_int(strict[ross] + 1))])


def mixed_from_sums(sums: np.ndarray, n: int, ties: str) -> float:
    """The estimate in nats from the row sums of all n rows (mixed_sums)."""
    if ties == "exact":
        return float((sums[0] + sums[1] * digamma(n) + sums[2] - sums[3] - sums[4]) / n)
    return float(digamma(n) + sums[0] / n - sums[1] / n - sums[2] / n)


@knn_api("x", "labels", fields=FIELDS)
def mixed_mi(x, labels, opts: KnnOptions) -> MIResult:
    """I(X; L) between a continuous X (n, d) and discrete labels L (Ross 2014): the CCH's I(S; Y).

    For each point, d_i is the distance to its k-th nearest neighbour among the points of its own
    class, and m_i counts the points of any class strictly closer than d_i, plus the point itself:
    I = psi(N) + <psi(k)> - <psi(N_class)> - <psi(m)>.
    Labels may be any hashable values (ints, strings, ...), with at least two classes. A class with
    fewer than k + 1 points uses k_c = N_c - 1 neighbours; singleton classes carry no neighbour and
    are left out (with a warning), as in scikit-learn's ``mutual_info_classif``.
    ``ties="exact"`` uses Gao et al.'s (2017) mixture form, with the label as a discrete coordinate,
    on the rows with ties: a k-th same-class distance of 0 (k_i then counts the points at distance
    0), or another point at exactly that distance; the other rows keep Ross's term. (Gao's term
    on every row, psi(k) + log N - log(n_x + 1) - log(N_c) with inclusive counts, is biased on
    continuous x by about psi(k) - log(k + 1) = -0.46 nats at k = 3: 0.23 for sign labels of a
    Gaussian, truth 0.69, and -0.18 for independent 3-class labels.)
    The other parameters are those of :func:`ksg_mi`; the interval's half-samples are stratified
    by label.
    """
    start = time.perf_counter()
    p = prepare({"x": x}, opts, labels=("labels", labels))
    sizes = class_sizes(p.codes, "labels")
    if p.opts.confidence is not None:
        interval.check_interval_classes(sizes)
    (xp,), codes, be, k, ties = p.arrays, p.codes, p.be, p.k, p.opts.ties

    def core(rows):
        return mixed_nats(be, be.take(xp, rows), codes if rows is None else codes[rows], k, ties)

    return interval.estimate(estimator_name(ties), core, p, start=start, strata=codes)


class MixedMI(KnnEstimator):
    """I(X; labels) by Ross (2014); see :func:`cchmi.mixed_mi`. After ``fit(x, labels)``: ``mi_``, ``result_``."""

    _function = staticmethod(mixed_mi)
    _fields = FIELDS

    def fit(self, x, labels):
        self.mi_ = self._estimate(x, labels)
        return self
