"""Mutual information under a Gaussian model, from sample covariances (NumPy only; nats).

* :func:`gaussian_mi`: I(A; B) of jointly Gaussian (A, B), -1/2 sum_i log(1 - rho_i^2) over the
  canonical correlations rho_i of A and B (canonical correlation analysis, CCA);
* :func:`gaussian_label_mi`: I(A; Y) of the linear discriminant (LDA) model, A | Y = c ~ N(mu_c, W)
  with one within-class covariance W shared by all classes, taken as 1/2 log(det T / det W), T the
  total covariance (the Gaussian with A's covariance against the shared class-conditional one);
* :func:`gaussian_conditional_mi`: I(A; B | Y) of the same model for the pair, (A, B) | Y = c
  ~ N((mu_c, nu_c), W) with W shared: the CCA of the class-centred A and B (within-class CCA);
* :func:`gaussian_cch`: the CCH terms (I(T; S), I(S; Y)) of two representations and a label.

They are exact for the models they name and a fast, low-variance reference elsewhere: they see only
second moments, so they miss any non-linear dependence (they are not bounds of the true MI in
general). Covariances are maximum-likelihood (divided by the rows, or by the rows when pooled over
classes) plus a ridge of :data:`RIDGE` times the mean variance on the diagonal, so that nearly
collinear columns (integer-valued features, more columns than informative directions) give a finite
answer; the ridge lowers every canonical correlation slightly (by about RIDGE relative to the weakest
direction's variance). Too few rows for a covariance of full rank are refused with a ValueError.
"""

from __future__ import annotations

import numpy as np

from cchmi import _validate as V

RIDGE = 1e-8
"""Ridge added to a covariance's diagonal, relative to its mean variance (trace / dims)."""


def _regularised(cov: np.ndarray) -> np.ndarray:
    """cov + RIDGE * trace(cov) / d * I (a zero covariance stays zero: its MI is 0 by definition)."""
    d = cov.shape[0]
    return cov + (RIDGE * np.trace(cov) / d) * np.eye(d)


def _canonical_log_terms(cov: np.ndarray, d_a: int) -> np.ndarray:
    """log(1 - rho_i^2) for the canonical correlations of the first d_a coordinates of `cov` against
    the others: from the eigenvalues 1 - rho_i^2 of I - C_aa^-1/2 C_ab C_bb^-1 C_ba C_aa^-1/2."""
    cov = _regularised(cov)
    c_aa, c_ab, c_bb = cov[:d_a, :d_a], cov[:d_a, d_a:], cov[d_a:, d_a:]
    l_a, l_b = np.linalg.cholesky(c_aa), np.linalg.cholesky(c_bb)
    whitened = np.linalg.solve(l_a, np.linalg.solve(l_b, c_ab.T).T)  # L_a^-1 C_ab L_b^-T
    rho = np.linalg.svd(whitened, compute_uv=False)
    return np.log1p(-np.minimum(rho, 1.0 - 1e-15) ** 2)


def _pair(a, b, a_name: str, b_name: str) -> tuple[np.ndarray, np.ndarray]:
    a = V.as_samples(a, a_name).astype(np.float64, copy=False)
    b = V.as_samples(b, b_name).astype(np.float64, copy=False)
    V.same_length(**{a_name: a, b_name: b})
    return a, b


def _check_rows(n: int, needed: int, what: str) -> None:
    if n < needed:
        raise ValueError(f"{what} needs at least {needed} rows for a covariance of full rank, got n={n}")


def _cca_nats(a: np.ndarray, b: np.ndarray) -> float:
    """-1/2 sum log(1 - rho_i^2) of centred a and b (ML covariance of their rows)."""
    joint = np.hstack([a, b])
    cov = joint.T @ joint / joint.shape[0]
    if not np.any(cov):
        return 0.0
    return float(-0.5 * _canonical_log_terms(cov, a.shape[1]).sum())


def _class_centred(a: np.ndarray, codes: np.ndarray, n_classes: int) -> np.ndarray:
    """a minus its class means (rows of class c minus the mean of class c)."""
    counts = np.bincount(codes, minlength=n_classes)
    sums = np.zeros((n_classes, a.shape[1]))
    np.add.at(sums, codes, a)
    return a - (sums / np.maximum(counts, 1)[:, None])[codes]


def gaussian_mi(a, b) -> float:
    """I(A; B) in nats of jointly Gaussian (A, B): -1/2 sum_i log(1 - rho_i^2), rho_i the canonical
    correlations of the samples a (n, d_a) and b (n, d_b) (ML covariance, ridge :data:`RIDGE`).

    Exact for Gaussian data as n grows (bias of order d_a d_b / (2n) upwards); for other data it is
    the MI of the Gaussian with the same covariance. Refuses n <= d_a + d_b + 1 (ValueError)."""
    a, b = _pair(a, b, "a", "b")
    n, d_a, d_b = a.shape[0], a.shape[1], b.shape[1]
    _check_rows(n, d_a + d_b + 2, f"gaussian_mi of a ({d_a} dims) and b ({d_b} dims)")
    return _cca_nats(a - a.mean(axis=0), b - b.mean(axis=0))


def _labelled(a, labels, name: str) -> tuple[np.ndarray, np.ndarray, int]:
    a = V.as_samples(a, name).astype(np.float64, copy=False)
    codes, n_classes = V.as_labels(labels, "labels", a.shape[0])
    return a, codes, n_classes


def gaussian_label_mi(a, labels) -> float:
    """I(A; Y) in nats under the LDA model A | Y = c ~ N(mu_c, W), W shared by the classes:
    1/2 log(det T / det W), T the total and W the pooled within-class covariance of a (n, d)
    (ML, both divided by n, so T = W + between-class covariance and the value is >= 0).

    This is the MI of the Gaussian with A's covariance against the class-conditional Gaussians,
    the model whose Bayes classifier is linear; the true I(A; Y) of such a mixture is smaller
    (at most log C). labels: (n,) discrete, 2 or more classes. Refuses n <= d + C (ValueError)."""
    a, codes, n_classes = _labelled(a, labels, "a")
    n, d = a.shape
    _check_rows(n, d + n_classes + 1, f"gaussian_label_mi of a ({d} dims) with {n_classes} classes")
    total = a - a.mean(axis=0)
    within = _class_centred(a, codes, n_classes)
    cov_t, cov_w = total.T @ total / n, within.T @ within / n
    if not np.any(cov_t):
        return 0.0
    ridge = RIDGE * np.trace(cov_t) / d * np.eye(d)  # the same ridge for both, so T - W stays >= 0
    _, logdet_t = np.linalg.slogdet(cov_t + ridge)
    _, logdet_w = np.linalg.slogdet(cov_w + ridge)
    return float(0.5 * (logdet_t - logdet_w))


def gaussian_conditional_mi(a, b, labels) -> float:
    """I(A; B | Y) in nats under (A, B) | Y = c ~ N((mu_c, nu_c), W), W shared by the classes:
    -1/2 sum_i log(1 - rho_i^2) over the canonical correlations of the class-centred a (n, d_a) and
    b (n, d_b), their pooled within-class covariance (within-class CCA).

    The dependence of A and B that the label does not explain. labels: (n,) discrete, 2 or more
    classes. Refuses n <= d_a + d_b + C (ValueError)."""
    a, b = _pair(a, b, "a", "b")
    codes, n_classes = V.as_labels(labels, "labels", a.shape[0])
    n, d_a, d_b = a.shape[0], a.shape[1], b.shape[1]
    _check_rows(n, d_a + d_b + n_classes + 1,
                f"gaussian_conditional_mi of a ({d_a} dims) and b ({d_b} dims) with {n_classes} classes")
    return _cca_nats(_class_centred(a, codes, n_classes), _class_centred(b, codes, n_classes))


def gaussian_cch(teacher, student, labels) -> tuple[float, float]:
    """(I(T; S), I(S; Y)) in nats under the Gaussian models of :func:`gaussian_mi` and
    :func:`gaussian_label_mi`: the CCH gap is their difference. teacher (n, d_t), student (n, d_s),
    labels (n,) discrete."""
    t, s = _pair(teacher, student, "teacher", "student")
    codes, n_classes = V.as_labels(labels, "labels", t.shape[0])
    n, d_t, d_s = t.shape[0], t.shape[1], s.shape[1]
    _check_rows(n, d_t + d_s + 2, f"gaussian_cch's I(T; S) of teacher ({d_t} dims) and student ({d_s} dims)")
    _check_rows(n, d_s + n_classes + 1, f"gaussian_cch's I(S; Y) of student ({d_s} dims) with {n_classes} classes")
    return gaussian_mi(t, s), gaussian_label_mi(s, codes)
