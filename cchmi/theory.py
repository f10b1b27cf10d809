"""The joint Gaussian model of knowledge distillation, where the CCH can be checked exactly.

Model. (X1, X2, Y) is zero-mean jointly Gaussian, X1 in R^d1 (teacher modality), X2 in R^d2 (student
modality), Y scalar, covariance ``cov`` ordered (X1, X2, Y). The teacher is linear, T = a^T X1 (by
default a is the population least-squares fit of Y on X1). The student w is fitted on n i.i.d. rows
by minimising ||y - X2 w||^2 + lambda ||t - X2 w||^2, i.e. ordinary least squares on the mixed target
z = (y + lambda t) / (1 + lambda) = (1 - u) y + u t, u = lambda / (1 + lambda). Its test risk is
R(w) = E (Y - w^T X2)^2 on a new row.

Closed forms (derived here; the notation matches the attributes of :class:`LinearKD`).
Let S22 = Cov(X2), beta_y = S22^-1 Cov(X2, Y), beta_t = S22^-1 Cov(X2, T) and

* s_y = Var(Y | X2), s_t = Var(T | X2), c = Cov(Y, T | X2)  (residual (co)variances after X2),
* delta = (beta_t - beta_y)^T S22 (beta_t - beta_y)         (how far the teacher's X2-part is from Y's).

1. R(w) = s_y + (w - beta_y)^T S22 (w - beta_y).
2. z given X2 has mean beta_z^T X2, beta_z = (1 - u) beta_y + u beta_t, and independent Gaussian
   residual of variance v(u) = (1 - u)^2 s_y + 2 u (1 - u) c + u^2 s_t. OLS gives
   w = beta_z + (X^T X)^-1 X^T e with E (X^T X)^-1 = S22^-1 / (n - d2 - 1) (inverse Wishart), so
   E R = s_y + u^2 delta + kappa v(u),  kappa = d2 / (n - d2 - 1),  for n > d2 + 1
   (for n <= d2 + 1 the expected risk is infinite).
3. E R is a quadratic in u with dE R/du at 0 equal to -2 kappa (s_y - c): a small KD weight lowers
   the expected risk if and only if c < s_y, i.e. Cov(Y, T | X2) < Var(Y | X2); the best weight is
   u* = kappa (s_y - c) / (delta + kappa (s_y - 2 c + s_t)), lambda* = u* / (1 - u*).
   The effect is a finite-sample one (kappa -> 0 as n grows): distillation trades the variance of
   the label noise for the teacher's, at the price of a bias delta that only enters at second order.
4. The CCH with H1 = T and H2 = beta_y^T X2 (the optimal student without KD): for jointly Gaussian
   scalars I = -1/2 log(1 - rho^2), so I(H1; H2) > I(H2; Y) iff |rho(T, H2)| > |rho(H2, Y)|.

Where the CCH is sufficient. With eta = Cov(T, H2) and gamma = Cov(Y, T) one has c = gamma - eta
and s_y = Var(Y) - Var(H2). If the teacher is aligned with the student (eta >= 0) and not on a larger
scale than the label (Var(T) <= Var(Y)), then the CCH implies that a small lambda helps:
eta > Var(H2) sd(T) / sd(Y) and gamma <= sd(T) sd(Y) give
c < (sd(T) / sd(Y)) (Var(Y) - Var(H2)) <= s_y. (:meth:`LinearKD.cch_sufficient_conditions`.)

Where it is not necessary. A teacher independent of everything (rho(T, H2) = 0, so the CCH fails)
has c = 0 < s_y: a small lambda still helps, by shrinking the target's noise. And without the
scale assumption the CCH is not sufficient either: T = alpha (Y + delta H2) with alpha > 1 satisfies
the CCH but has c = alpha s_y > s_y, so any small lambda hurts. The tests exhibit both cases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cchmi import _validate as V


def gaussian_mi(cov, a, b) -> float:
    """I(A; B) in nats for jointly Gaussian coordinates of covariance `cov`, A and B given as index
    lists: 1/2 log(det S_A det S_B / det S_AB)."""
    cov = np.asarray(cov, dtype=np.float64)
    a, b = np.atleast_1d(np.asarray(a, dtype=np.int64)), np.atleast_1d(np.asarray(b, dtype=np.int64))
    if np.intersect1d(a, b).size:
        raise ValueError("a and b must be disjoint index sets")
    ab = np.concatenate([a, b])

    def logdet(idx):
        sign, value = np.linalg.slogdet(cov[np.ix_(idx, idx)])
        if sign <= 0:
            raise ValueError("the covariance restricted to a and b must be positive definite")
        return value

    return 0.5 * (logdet(a) + logdet(b) - logdet(ab))


def scalar_gaussian_mi(rho: float) -> float:
    """-1/2 log(1 - rho^2): MI in nats of two jointly Gaussian scalars with correlation rho."""
    return -0.5 * math.log1p(-rho * rho)


@dataclass(frozen=True)
class Moments:
    """Second moments of (T, H2, Y) that decide everything in the model (see the module text)."""

    var_y: float
    var_t: float
    var_h2: float
    cov_yt: float
    cov_th2: float
    s_y: float
    s_t: float
    c: float
    delta: float


class LinearKD:
    """The linear KD model for a covariance of (X1, X2, Y) and a linear teacher on X1.

    Parameters
    ----------
    cov : (d1 + d2 + 1) square covariance, symmetric positive definite, ordered X1, X2, Y.
    d1, d2 : dimensions of the teacher and student modalities.
    teacher : weights a of T = a^T X1 (d1,); None: the least-squares teacher Cov(X1)^-1 Cov(X1, Y).
    """

    def __init__(self, cov, d1: int, d2: int, teacher=None):
        cov = np.asarray(cov, dtype=np.float64)
        d1, d2 = V.as_int(d1, "d1", 1), V.as_int(d2, "d2", 1)
        if cov.shape != (d1 + d2 + 1, d1 + d2 + 1):
            raise ValueError(f"cov must have shape {(d1 + d2 + 1,) * 2} for d1={d1}, d2={d2}, got {cov.shape}")
        if not np.allclose(cov, cov.T) or np.linalg.eigvalsh(cov).min() <= 0:
            raise ValueError("cov must be symmetric positive definite")
        self.cov, self.d1, self.d2 = cov, d1, d2
        i1, i2, iy = slice(0, d1), slice(d1, d1 + d2), d1 + d2
        s11, s12, s22 = cov[i1, i1], cov[i1, i2], cov[i2, i2]
        s1y, s2y = cov[i1, iy], cov[i2, iy]
        a = np.linalg.solve(s11, s1y) if teacher is None else np.asarray(teacher, dtype=np.float64).reshape(-1)
        if a.shape != (d1,) or not np.isfinite(a).all() or not a.any():
            raise ValueError(f"teacher must be {d1} finite weights, not all zero")
        self.teacher = a
        self.s22 = s22
        self.beta_y = np.linalg.solve(s22, s2y)
        self.beta_t = np.linalg.solve(s22, s12.T @ a)
        var_y, var_t, var_h2 = float(cov[iy, iy]), float(a @ s11 @ a), float(self.beta_y @ s2y)
        cov_yt, cov_th2 = float(a @ s1y), float(self.beta_y @ (s12.T @ a))
        diff = self.beta_t - self.beta_y
        self.moments = Moments(
            var_y=var_y,
            var_t=var_t,
            var_h2=var_h2,
            cov_yt=cov_yt,
            cov_th2=cov_th2,
            s_y=var_y - var_h2,
            s_t=var_t - float(self.beta_t @ (s12.T @ a)),
            c=cov_yt - cov_th2,
            delta=float(diff @ s22 @ diff),
        )

    # -- risks --------------------------------------------------------------------------------

    def _kappa(self, n) -> float:
        n = V.as_int(n, "n (rows; the expected risk is finite for n > d2 + 1)", self.d2 + 2)
        return self.d2 / (n - self.d2 - 1)

    def risk(self, w) -> float:
        """Exact test risk E (Y - w^T X2)^2 of a student weight vector w (d2,)."""
        w = np.asarray(w, dtype=np.float64).reshape(-1)
        if w.shape != (self.d2,):
            raise ValueError(f"w must have {self.d2} entries, got {w.shape}")
        diff = w - self.beta_y
        return self.moments.s_y + float(diff @ self.s22 @ diff)

    def expected_risk(self, lam, n) -> float:
        """E R of the student fitted on n rows with KD weight lam >= 0 (n > d2 + 1)."""
        lam = float(lam)
        if not (math.isfinite(lam) and lam >= 0):
            raise ValueError(f"lam must be a finite number >= 0, got {lam!r}")
        m, kappa, u = self.moments, self._kappa(n), lam / (1.0 + lam)
        variance = (1 - u) ** 2 * m.s_y + 2 * u * (1 - u) * m.c + u * u * m.s_t
        return m.s_y + u * u * m.delta + kappa * variance

    def risk_slope_at_zero(self, n) -> float:
        """d E R / d lambda at lambda = 0: -2 kappa (s_y - c); negative iff a small KD weight helps."""
        return -2.0 * self._kappa(n) * (self.moments.s_y - self.moments.c)

    def kd_helps(self) -> bool:
        """True iff a small KD weight lowers the expected risk (for every n > d2 + 1): c < s_y."""
        return self.moments.c < self.moments.s_y

    def optimal_lambda(self, n) -> float:
        """The KD weight that minimises the expected risk (0 if none helps, inf if u* >= 1)."""
        m, kappa = self.moments, self._kappa(n)
        slope = kappa * (m.s_y - m.c)
        if slope <= 0:
            return 0.0
        u = slope / (m.delta + kappa * (m.s_y - 2 * m.c + m.s_t))
        return math.inf if u >= 1 else u / (1 - u)

    # -- the CCH ------------------------------------------------------------------------------

    def rho_teacher_student(self) -> float:
        m = self.moments
        return m.cov_th2 / math.sqrt(m.var_t * m.var_h2)

    def rho_student_label(self) -> float:
        return math.sqrt(self.moments.var_h2 / self.moments.var_y)

    def mi_teacher_student(self) -> float:
        """I(H1; H2) in nats, H1 = T, H2 = beta_y^T X2."""
        return scalar_gaussian_mi(self.rho_teacher_student())

    def mi_student_label(self) -> float:
        """I(H2; Y) in nats."""
        return scalar_gaussian_mi(self.rho_student_label())

    def cch_holds(self) -> bool:
        """I(H1; H2) > I(H2; Y)."""
        return abs(self.rho_teacher_student()) > self.rho_student_label()

    def cch_sufficient_conditions(self) -> bool:
        """The assumptions under which the CCH implies that a small KD weight helps: the teacher is
        aligned with the student (Cov(T, H2) >= 0) and Var(T) <= Var(Y)."""
        return self.moments.cov_th2 >= 0 and self.moments.var_t <= self.moments.var_y

    # -- simulation ---------------------------------------------------------------------------

    def sample(self, n, random_state=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """n rows of (X1, X2, Y, T)."""
        n = V.as_int(n, "n", 1)
        rng = np.random.default_rng(random_state)
        rows = rng.multivariate_normal(np.zeros(self.cov.shape[0]), self.cov, size=n, method="cholesky")
        x1, x2, y = rows[:, : self.d1], rows[:, self.d1 : self.d1 + self.d2], rows[:, -1]
        return x1, x2, y, x1 @ self.teacher


def fit_student(x2, y, t, lam) -> np.ndarray:
    """The KD student: argmin ||y - X2 w||^2 + lam ||t - X2 w||^2 (no intercept, zero-mean model).
    Batched: x2 (..., n, d2), y and t (..., n)."""
    x2, y, t = (np.asarray(v, dtype=np.float64) for v in (x2, y, t))
    z = (y + lam * t) / (1.0 + lam)
    xtx = np.swapaxes(x2, -1, -2) @ x2
    xtz = np.swapaxes(x2, -1, -2) @ z[..., None]
    return np.linalg.solve(xtx, xtz)[..., 0]


def random_model(d1: int, d2: int, random_state=None, teacher_scale: float = 1.0) -> LinearKD:
    """A random instance: (X1, X2, Y) with a random positive definite covariance (Wishart-like,
    unit-diagonal scale) and the least-squares teacher times `teacher_scale`."""
    rng = np.random.default_rng(random_state)
    dim = d1 + d2 + 1
    g = rng.standard_normal((dim, 2 * dim))
    cov = g @ g.T / (2 * dim) + 0.05 * np.eye(dim)
    sd = np.sqrt(np.diag(cov))
    cov = cov / np.outer(sd, sd)
    base = LinearKD(cov, d1, d2)
    return LinearKD(cov, d1, d2, teacher=teacher_scale * base.teacher)
