"""Intrinsic dimension: the dimension of the manifold the rows lie on, whatever the number of columns.

kNN estimators of MI fail with the intrinsic dimension of the data, not with its number of columns
(the bias decays as n^(-2/D) with D the intrinsic dimension; at D = 64 no n is enough). This
diagnostic tells whether compress-then-kNN (:mod:`cchmi.estimators.compress`) can work.

TwoNN (Facco, d'Errico, Rodriguez and Laio 2017, Sci. Rep. 7:12140): for each row, r1 and r2 the
Euclidean distances to its first and second nearest neighbours and mu = r2 / r1. If the density is
locally uniform on a D-dimensional manifold over the scale of the second neighbour, mu is Pareto
with P(mu > t) = t^-D, so log mu ~ Exponential(D) and S = sum_i log mu_i ~ Gamma(N, D). The
estimate is (N - 1) / S (the unbiased inverse of the Gamma mean), and the interval is the exact one
under that model: 2 D S ~ chi2(2N), D in [chi2_{a/2}(2N), chi2_{1-a/2}(2N)] / (2 S) (chi2 quantiles
by the Wilson-Hilferty approximation, relative error under 1e-3 at 2N >= 200). The interval takes
the rows' ratios as independent, which neighbouring rows are not quite (they share neighbours); it
does not cover the model's error (curvature and density changes at the scale of r2, which bias D
low on a strongly curved or high-dimensional sample: an isotropic 10-dim Gaussian at n = 2000 gives
about 9.5).

Distances are Euclidean on the columns as given (standardise first where the columns' scales are
arbitrary). Above ``max_rows`` rows a seeded subsample of ``max_rows`` rows is used (the search is
brute force, O(n^2 d)). Duplicated rows (r1 = 0, mu infinite) are refused by name: the intrinsic
dimension of tied data is not defined.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from cchmi import _validate as V
from cchmi.results import ResultIO

MAX_ROWS = 5000
"""Rows used by default (a seeded subsample above it): the brute-force search costs O(n^2 d)."""

_CHUNK = 1024


@dataclass(frozen=True)
class IntrinsicDimension(ResultIO):
    """A TwoNN estimate of intrinsic dimension: ``value`` with the interval [ci_low, ci_high] at
    ``confidence`` (module docstring: what it covers), from ``n`` rows (after subsampling) of a
    sample with ``columns`` columns."""

    value: float
    ci_low: float
    ci_high: float
    confidence: float
    n: int
    columns: int
    method: str = "twonn"

    def __float__(self) -> float:
        return float(self.value)


def two_nearest(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(r1, r2): each row's Euclidean distances to its nearest and second-nearest other rows (brute
    force in chunks; the three nearest candidates of the Gram-matrix form recomputed exactly)."""
    n = x.shape[0]
    sq = np.einsum("ij,ij->i", x, x)
    r1, r2 = np.empty(n), np.empty(n)
    for s in range(0, n, _CHUNK):
        q = x[s : s + _CHUNK]
        d2 = sq[s : s + _CHUNK, None] + sq[None, :] - 2.0 * (q @ x.T)
        d2[np.arange(q.shape[0]), np.arange(s, s + q.shape[0])] = np.inf  # not its own neighbour
        m = min(3, n - 1)
        cand = np.argpartition(d2, m - 1, axis=1)[:, :m]
        exact = np.sqrt(np.square(q[:, None, :] - x[cand]).sum(-1))
        exact.sort(axis=1)
        r1[s : s + _CHUNK], r2[s : s + _CHUNK] = exact[:, 0], exact[:, 1]
    return r1, r2


def _chi2_quantile(p: float, df: float) -> float:
    """Wilson-Hilferty: chi2_p(df) ~ df (1 - 2/(9 df) + z_p sqrt(2/(9 df)))^3."""
    z = NormalDist().inv_cdf(p)
    c = 2.0 / (9.0 * df)
    return df * (1.0 - c + z * math.sqrt(c)) ** 3


def intrinsic_dimension(x, *, confidence: float = 0.95, max_rows: int = MAX_ROWS, random_state=0,
                        name: str = "x") -> IntrinsicDimension:
    """The TwoNN estimate of the intrinsic dimension of the rows of `x` (n, d), with its interval at
    `confidence` (module docstring). Above `max_rows` rows a subsample drawn from `random_state` is
    used. ``name`` is the argument's name in errors (compress_mi passes "x" or "y"). Refuses
    (ValueError) duplicated rows and fewer than 3 rows."""
    xa = V.as_samples(x, name)
    confidence = V.check_confidence(confidence)
    if confidence is None:
        raise TypeError("confidence must be a float in (0, 1), e.g. 0.95, got None")
    max_rows = V.as_int(max_rows, "max_rows", 3)
    rng = V.as_rng(random_state)
    if xa.shape[0] < 3:
        raise ValueError(f"{name} has {xa.shape[0]} rows; the intrinsic dimension needs 3 or more")
    if xa.shape[0] > max_rows:
        rows = np.sort(rng.choice(xa.shape[0], max_rows, replace=False))
        xa = xa[rows]
    xa = np.asarray(xa, dtype=np.float64)
    r1, r2 = two_nearest(xa)
    tied = int(np.count_nonzero(r1 == 0))
    if tied:
        raise ValueError(f"{name} has {tied} of {xa.shape[0]} rows that duplicate another row: the intrinsic "
                         f"dimension of tied data is not defined (TwoNN divides by the distance to the nearest row); "
                         f"drop the duplicates (np.unique({name}, axis=0)) first")
    n = xa.shape[0]
    s = float(np.sum(np.log(r2 / r1)))
    if s <= 0:
        raise ValueError(f"every row of {name} is as far from its second neighbour as from its first: no "
                         "intrinsic dimension can be estimated (a lattice?)")
    a = 1.0 - confidence
    return IntrinsicDimension(value=(n - 1) / s, ci_low=_chi2_quantile(a / 2, 2 * n) / (2 * s),
                              ci_high=_chi2_quantile(1 - a / 2, 2 * n) / (2 * s), confidence=confidence, n=n,
                              columns=xa.shape[1])
