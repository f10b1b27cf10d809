"""The kNN estimators written point by point from the papers, in float64 sums.

Inputs are prepared arrays (already standardised / jittered, in the working dtype). Estimates are
in nats and are not clipped.
"""

from __future__ import annotations

import math

import numpy as np

from cchmi._special import digamma
from cchmi.reference.knn import count_within, knn


def _psi(v: float) -> float:
    return float(digamma(v))


def ksg_mi(x: np.ndarray, y: np.ndarray, k: int, variant: int = 1) -> float:
    """Kraskov, Stoegbauer, Grassberger (2004), estimators (8) and (9), max-norm.

    Variant 1: eps_i = distance to the k-th neighbour in the joint space, n_x(i) = #{j != i:
    |x_i - x_j| < eps_i}; I = psi(k) + psi(N) - < psi(n_x + 1) + psi(n_y + 1) >.
    Variant 2: eps_x(i), eps_y(i) = the largest marginal distances among the k joint neighbours,
    n_x(i) = #{j != i: |x_i - x_j| <= eps_x(i)}; I = psi(k) - 1/k + psi(N) - < psi(n_x) + psi(n_y) >.
    """
    n = x.shape[0]
    joint = np.hstack([x, y])
    dist, idx = knn(joint, k)
    total = 0.0
    if variant == 1:
        eps = dist[:, k - 1]
        nx = count_within(x, eps, inclusive=False)
        ny = count_within(y, eps, inclusive=False)
        for i in range(n):
            total += _psi(nx[i] + 1) + _psi(ny[i] + 1)
        return _psi(k) + _psi(n) - total / n
    eps_x = np.array([np.abs(x[idx[i]] - x[i]).max() for i in range(n)], dtype=x.dtype)
    eps_y = np.array([np.abs(y[idx[i]] - y[i]).max() for i in range(n)], dtype=y.dtype)
    nx = count_within(x, eps_x, inclusive=True)
    ny = count_within(y, eps_y, inclusive=True)
    for i in range(n):
        total += _psi(nx[i]) + _psi(ny[i])
    return _psi(k) - 1.0 / k + _psi(n) - total / n


def gao_mi(x: np.ndarray, y: np.ndarray, k: int) -> float:
    """Gao, Kannan, Oh, Viswanath (2017) mixture estimator: exact ties, no noise.

    rho_i = k-th neighbour distance in the joint space; k_i = k, or the number of other points at
    joint distance 0 when rho_i = 0; n_x(i) = #{j != i: |x_i - x_j| <= rho_i};
    I = < psi(k_i) + log N - log(n_x + 1) - log(n_y + 1) >.
    """
    n = x.shape[0]
    joint = np.hstack([x, y])
    dist, _ = knn(joint, k)
    rho = dist[:, k - 1]
    ties = count_within(joint, rho, inclusive=True)
    nx = count_within(x, rho, inclusive=True)
    ny = count_within(y, rho, inclusive=True)
    total = 0.0
    for i in range(n):
        k_i = ties[i] if rho[i] == 0 else k
        total += _psi(k_i) + math.log(n) - math.log(nx[i] + 1) - math.log(ny[i] + 1)
    return total / n


def mixed_mi(x: np.ndarray, codes: np.ndarray, k: int, exact_ties: bool = False) -> float:
    """Ross (2014) estimator of I(X; L) for continuous X and discrete labels (codes 0..C-1).

    Per class c with N_c >= 2 points (singleton classes are left out, as in scikit-learn):
    k_c = min(k, N_c - 1), d_i = distance to the k_c-th neighbour of the same class,
    m_i = 1 + #{j != i: |x_i - x_j| < d_i} over all kept points;
    I = psi(N) + < psi(k_c) > - < psi(N_c) > - < psi(m_i) >.
    With exact_ties, the rows with ties (d_i = 0, or n_x(i) != m_i, i.e. another point than the
    k_c-th neighbour at exactly d_i) take Gao et al.'s term with the label as a discrete coordinate,
    psi(k_i) + log N - log(n_x + 1) - log(N_c), n_x(i) = #{j != i: |x_i - x_j| <= d_i},
    k_i = k_c, or the number of same-class points at distance 0 when d_i = 0; the others Ross's
    psi(N) + psi(k_c) - psi(N_c) - psi(m_i).
    """
    sizes = np.bincount(codes)
    keep = sizes[codes] >= 2
    x, codes = x[keep], codes[keep]
    n = x.shape[0]
    radius = np.empty(n, dtype=x.dtype)
    k_i = np.empty(n, dtype=np.int64)
    for c in np.unique(codes):
        members = np.flatnonzero(codes == c)
        kc = min(k, members.size - 1)
        dist, _ = knn(x[members], kc)
        radius[members] = dist[:, kc - 1]
        k_i[members] = kc
        if exact_ties:
            zeros = count_within(x[members], dist[:, kc - 1], inclusive=True)
            at_zero = dist[:, kc - 1] == 0
            k_i[members[at_zero]] = zeros[at_zero]
    class_size = np.bincount(codes)[codes]
    total = 0.0
    m = count_within(x, radius, inclusive=False) + 1
    if exact_ties:
        nx = count_within(x, radius, inclusive=True)
        for i in range(n):
            if radius[i] == 0 or nx[i] != m[i]:
                total += _psi(k_i[i]) + math.log(n) - math.log(nx[i] + 1) - math.log(class_size[i])
            else:
                total += _psi(n) + _psi(k_i[i]) - _psi(class_size[i]) - _psi(m[i])
        return total / n
    for i in range(n):
        total += _psi(k_i[i]) - _psi(class_size[i]) - _psi(m[i])
    return _psi(n) + total / n


def entropy(x: np.ndarray, k: int) -> float:
    """Kozachenko-Leonenko differential entropy in max-norm (Kraskov et al. 2004, eq. 20).

    H = psi(N) - psi(k) + d log 2 + (d / N) sum_i log eps_i, eps_i = k-th neighbour distance
    (the max-norm ball of radius eps has volume (2 eps)^d).
    """
    n, d = x.shape
    dist, _ = knn(x, k)
    total = 0.0
    for i in range(n):
        total += math.log(float(dist[i, k - 1]))
    return _psi(n) - _psi(k) + d * math.log(2.0) + d * total / n


def cmi(x: np.ndarray, y: np.ndarray, z: np.ndarray, k: int) -> float:
    """Frenzel and Pompe (2007) conditional MI I(X; Y | Z), max-norm, KSG-1 style counts.

    eps_i = k-th neighbour distance in (x, y, z); n_xz, n_yz, n_z count points strictly within eps_i;
    I = psi(k) - < psi(n_xz + 1) + psi(n_yz + 1) - psi(n_z + 1) >.
    """
    n = x.shape[0]
    dist, _ = knn(np.hstack([x, y, z]), k)
    eps = dist[:, k - 1]
    nxz = count_within(np.hstack([x, z]), eps, inclusive=False)
    nyz = count_within(np.hstack([y, z]), eps, inclusive=False)
    nz = count_within(z, eps, inclusive=False)
    total = 0.0
    for i in range(n):
        total += _psi(nxz[i] + 1) + _psi(nyz[i] + 1) - _psi(nz[i] + 1)
    return _psi(k) - total / n
