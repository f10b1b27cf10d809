"""Conditional mutual information by Frenzel and Pompe (2007): the formula, :func:`cmi` and the
:class:`CMI` class."""

from __future__ import annotations

import time

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
TIES = ("jitter", "none")


def cmi_nats(be: ops.Backend, x, y, z, k: int, ties: str) -> float:
    """I(X; Y | Z) in nats on prepared arrays of one problem."""
    dist, _ = ops.knn(be, be.hstack(x, y, z), k)
    eps = be.host(dist[:, k - 1])
    warn_if_tied(be, eps, ties, x.dtype)
    nxz, nyz = map(be.host, ops.count_pair(be, be.hstack(x, z), be.hstack(y, z), eps, eps, False))
    nz = be.host(ops.count_within(be, z, eps, False))
    return cmi_from_sums(cmi_sums(nxz, nyz, nz), nxz.shape[0], k)


def cmi_sums(nxz, nyz, nz) -> np.ndarray:
    """The sum over rows of the Frenzel-Pompe terms from these rows' strict counts in the (x, z),
    (y, z) and z subspaces. Sums of row subsets add up."""
    return np.array([np.sum(digamma_int(nxz + 1) + digamma_int(nyz + 1) - digamma_int(nz + 1))])


def cmi_from_sums(sums: np.ndarray, n: int, k: int) -> float:
    """I(X; Y | Z) in nats from the row sums of all n rows (cmi_sums)."""
    return float(digamma(k) - sums[0] / n)


@knn_api("x", "y", "z", fields=FIELDS)
def cmi(x, y, z, opts: KnnOptions) -> MIResult:
    """Conditional mutual information I(X; Y | Z) by Frenzel and Pompe (2007), max-norm.

    eps_i is the k-th neighbour distance in the joint (x, y, z) space; n_xz, n_yz and n_z count the
    points strictly inside it in the (x, z), (y, z) and z subspaces:
    I = psi(k) - <psi(n_xz + 1) + psi(n_yz + 1) - psi(n_z + 1)>.
    ``ties`` may be "jitter" or "none". Other parameters as in :func:`ksg_mi`.
    """
    start = time.perf_counter()
    p = prepare({"x": x, "y": y, "z": z}, opts, ties_allowed=TIES)
    (xp, yp, zp), be, k, ties = p.arrays, p.be, p.k, p.opts.ties

    def core(rows):
        return cmi_nats(be, be.take(xp, rows), be.take(yp, rows), be.take(zp, rows), k, ties)

    return interval.estimate("fp", core, p, start=start)


class CMI(KnnEstimator):
    """I(X; Y | Z) by Frenzel-Pompe; see :func:`cchmi.cmi`. After ``fit(x, y, z)``: ``mi_``, ``result_``."""

    _function = staticmethod(cmi)
    _fields = FIELDS

    def fit(self, x, y, z):
        self.mi_ = self._estimate(x, y, z)
        return self
