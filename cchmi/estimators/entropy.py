"""Differential entropy by Kozachenko and Leonenko (1987): the formula, :func:`entropy` and the
:class:`KLEntropy` class."""

from __future__ import annotations

import math
import time
import warnings

import numpy as np

from cchmi import ops
from cchmi._special import digamma
from cchmi.estimators import interval
from cchmi.estimators.base import KnnEstimator
from cchmi.estimators.options import COMMON, INTERVAL, SHARDED, KnnOptions, knn_api
from cchmi.estimators.problem import prepare
from cchmi.results import MIResult

FIELDS = ("k",) + COMMON + INTERVAL + SHARDED
TIES = ("jitter", "none")


def entropy_nats(be: ops.Backend, x, k: int, ties: str) -> float:
    """H(X) in nats on prepared (standardised) x, before adding back the log scale."""
    n, d = x.shape
    dist, _ = ops.knn(be, x, k)
    eps = be.host(dist[:, k - 1]).astype(np.float64)
    if np.any(eps == 0):
        raise zero_distance_error(int(np.count_nonzero(eps == 0)), ties)
    return entropy_from_sums(np.array([np.sum(np.log(eps))]), n, d, k)


def zero_distance_error(zeros: int, ties: str) -> ValueError:
    return ValueError(
        f"{zeros} points have their k-th neighbour at distance 0 (duplicated rows): the differential entropy "
        "estimate would be -inf. Use ties='jitter' (the default) or a larger k"
        + (" or dtype='float64'" if ties == "jitter" else "")
    )


def entropy_from_sums(sums: np.ndarray, n: int, d: int, k: int) -> float:
    """H in nats (before the log scale) from the sum over all n rows of log eps_i (d columns)."""
    return float(digamma(n) - digamma(k) + d * math.log(2.0) + d * (sums[0] / n))


@knn_api("x", fields=FIELDS)
def entropy(x, opts: KnnOptions) -> MIResult:
    """Differential entropy H(X) by Kozachenko and Leonenko (1987), max-norm form.

    H = psi(N) - psi(k) + d log 2 + (d / N) sum_i log eps_i, with eps_i the distance to the k-th
    neighbour. With ``standardize=True`` the search runs on standardised columns and sum(log s.d.) is
    added back, so the result estimates the entropy of X as given (in nats unless ``base``).
    ``ties="exact"`` is not available: the differential entropy of data with ties is -inf.
    """
    start = time.perf_counter()
    p = prepare({"x": x}, opts, ties_allowed=TIES)
    (xp,), be, k, ties = p.arrays, p.be, p.k, p.opts.ties
    if p.log_scale == -math.inf:  # a constant column: X lives on a lower-dimensional set
        warnings.warn("x has a constant column, so its differential entropy is -inf (the distribution has no density "
                      "in all its dimensions); returning -inf", RuntimeWarning, stacklevel=3)
        return MIResult(estimate=-math.inf, n=p.n, k=k, estimator="kl", backend=be.name,
                        seconds=time.perf_counter() - start, unit=interval.unit_name(p.opts.base))

    def core(rows):
        return entropy_nats(be, be.take(xp, rows), k, ties)

    return interval.estimate("kl", core, p, start=start, offset=p.log_scale)


class KLEntropy(KnnEstimator):
    """H(X) by Kozachenko-Leonenko; see :func:`cchmi.entropy`. After ``fit(x)``: ``entropy_``, ``result_``."""

    _function = staticmethod(entropy)
    _fields = FIELDS

    def fit(self, x, y=None):
        """``y`` is ignored (scikit-learn's convention for estimators of one variable)."""
        self.entropy_ = self._estimate(x)
        return self
