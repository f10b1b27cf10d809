"""CCH problems with known answers: (T, S, Y) samplers whose I(T; S), I(S; Y) and gap are known.

The Cross-modal Complementarity Hypothesis compares I(T; S) (teacher and student representations)
with I(S; Y) (student and label). Each :class:`CCHTask` states both, their gap I(T; S) - I(S; Y),
the standard error of that truth (0 for closed forms) and ``sample(n, random_state) -> (T, S, Y)``.
The catalogue is three tables of parameter tuples (``GAUSS_ROWS``, ``CLASS_ROWS``, ``MAPPED_ROWS``);
:func:`cch_tasks` turns them into tasks, so a benchmark can iterate over it and filter by
``dim_t``, ``dim_s``, ``n_classes`` or ``gap``.

Families (T in R^dim_t, S in R^dim_s):

* ``gauss``: jointly Gaussian (T, S, Y), Y continuous in R^dim_y (``n_classes`` 0). In canonical
  coordinates S ~ N(0, I); T_i = a S_i + sqrt(1 - a^2) E_i on the first ``k_ts`` coordinates and
  T_i = E_i after; Y_j = b_j S_j + c_j E_j + sqrt(1 - b_j^2 - c_j^2) N_j with b_j = b on the first
  min(dim_s, dim_y) coordinates and 0 after, and c_j^2 = ``private`` (1 - b_j^2) where T has a j-th
  coordinate (that share of Y's residual given S comes from the teacher's own noise E_j, information
  the student lacks; it changes neither MI). a and b are solved from the target
  MIs (equal shares per coordinate pair), and the stated truth is the determinant formula
  I(A; B) = 1/2 log(det S_A det S_B / det S_AB) on the covariance (:func:`cchmi.theory.gaussian_mi`).
* ``classes``: Y uniform (or ``priors``) on ``n_classes`` labels; S_1 | Y = y ~ N(sep c_y, 1) with
  c_y = y - (C - 1)/2 (classes ``sep`` apart on a line); T_1 | Y, S = alpha sep c_y +
  rho (S_1 - sep c_y) + sqrt(1 - rho^2) E, so (T_1, S_1) | Y is Gaussian (unit variances,
  correlation rho) and T, S are Gaussian mixtures; every other coordinate is independent N(0, 1)
  noise. No closed form: the truth is the Monte Carlo mean of the exact log-density ratios
  log p(s | y) - log p(s) and log p(t, s) - log p(t) - log p(s) (mixtures by logsumexp) over
  ``N_MC`` seeded draws, with its standard error. The noise coordinates' densities cancel exactly in
  both ratios, so the ratios are evaluated on (T_1, S_1, Y).
* ``mapped``: a task of the other two families with an invertible map applied to T and to S
  (``asinh`` or ``half_cube`` a|a|^(1/2) per coordinate, as in :mod:`cchmi.data`, or ``rotate``, one
  random orthogonal mixing per block, fixed per task). MI is invariant under such maps, so the truth
  is the base task's; the samples are not.

The high-dimensional suite (``cch_tasks(suite="hd")``, :func:`hd_cch_tasks`) puts the catalogue's
low-dimensional problems at D columns per side (:data:`HD_CCH_DIMS`: 64 to 512), from the rows of
``HD_BASE_ROWS`` (eight tasks with at most 8 columns per side, gaps of both signs and one near 0)
and ``HD_GAUSS_ROWS``. Families:

* ``lifted`` (``lift<D>-<base name>``): the base task's T and S each pushed through its own fixed
  injective smooth map R^K -> R^D (:class:`cchmi.data.hd_tasks.Lift`, K the base side's columns,
  drawn from the task's name), Y unchanged. MI is invariant under an injective (measurable, with a
  measurable inverse on its image) map of either argument, so I(f(T); g(S)) = I(T; S) and
  I(g(S); Y) = I(S; Y): the truth is the base task's. Each side lies on a curved manifold of the
  base's dimension (1 to 8) in R^D: the setting where reducing the dimension before a kNN estimate
  can work.
* ``padded`` (``pad<D>-<base name>``): the base task's T and S each followed by D - K independent
  N(0, 1) columns (drawn after the base sample from the same generator, independent of everything
  else), then mixed by a fixed random rotation per side (drawn from the name). Independent columns
  add nothing: I((T, E); (S, E')) = I(T; S) when (E, E') is independent of (T, S) and E of E'
  (chain rule), likewise for I(S; Y), and a rotation is invertible: the truth is the base task's.
  The samples have the full dimension D, so a kNN estimate is not to be trusted there (a CCH
  verdict should be "undecided").
* ``gauss`` at D per side: rows of ``HD_GAUSS_ROWS`` (the construction of ``gauss`` above with
  dim_t = dim_s = D), their I(T; S) on all D coordinate pairs (dense) or on 8 (sparse), Y continuous
  with 1 to 4 columns; truth by the determinant formula (slogdet of the (2 D + dim_y)-square
  covariance).
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass

import numpy as np

from cchmi import _validate as V
from cchmi.theory import gaussian_mi

N_MC = 200_000
"""Monte Carlo draws behind each ``classes`` truth (standard error about 1e-3 nats)."""

MC_CHUNK = 50_000

# (dim_t, dim_s, dim_y, i_ts, i_sy, k_ts, private): k_ts coordinate pairs carry I(T; S).
GAUSS_ROWS = (
    (1, 1, 1, 0.60, 0.55, 1, 0.0),
    (1, 1, 1, 0.30, 0.35, 1, 0.0),
    (1, 1, 1, 1.20, 0.20, 1, 0.0),
    (1, 1, 1, 0.10, 1.10, 1, 0.5),
    (3, 1, 1, 0.25, 0.20, 1, 0.8),
    (2, 2, 1, 0.80, 0.78, 2, 0.5),
    (4, 4, 2, 0.50, 1.00, 4, 0.0),
    (8, 8, 1, 1.50, 1.00, 8, 0.0),
    (16, 8, 1, 0.90, 0.97, 4, 0.3),
    (16, 16, 4, 2.00, 1.00, 16, 0.0),
    (1, 32, 1, 0.60, 0.90, 1, 0.0),
    (32, 32, 1, 0.40, 0.43, 2, 0.0),
    (64, 16, 1, 1.08, 1.00, 16, 0.2),
    (16, 64, 2, 0.70, 1.40, 16, 0.0),
    (64, 64, 1, 1.00, 1.01, 64, 0.0),
    (64, 64, 8, 3.00, 2.25, 32, 0.4),
)

# (n_classes, dim_t, dim_s, sep, rho, alpha, priors or None); rho was tuned (root-finding on the Monte Carlo
# truth) to give the gap in the comment, in nats.
CLASS_ROWS = (
    (2, 1, 1, 2.0, 0.0, 0.0, None),  # -0.34: T independent of S
    (2, 1, 1, 3.0, 0.4531, 1.0, None),  # +0.05
    (3, 1, 1, 2.0, 0.7007, 0.5, None),  # -0.05
    (5, 2, 4, 1.5, 0.7133, 1.0, None),  # +0.30
    (10, 1, 1, 1.0, 0.4508, 1.0, None),  # -0.02
    (4, 8, 8, 2.0, 0.5622, 0.0, (0.1, 0.2, 0.3, 0.4)),  # -0.70
    (10, 16, 32, 1.0, 0.9067, 0.5, None),  # +0.08
    (3, 64, 64, 2.5, 0.9318, 1.0, None),  # +1.00
)

# (transform, family, row index in that family's table)
MAPPED_ROWS = (
    ("asinh", "gauss", 0),
    ("half_cube", "gauss", 5),
    ("rotate", "gauss", 9),
    ("asinh", "gauss", 14),
    ("half_cube", "classes", 1),
    ("rotate", "classes", 3),
    ("asinh", "classes", 7),
)

TRANSFORMS = ("asinh", "half_cube", "rotate")

SUITES = ("catalogue", "hd")
"""The task lists of :func:`cch_tasks`: the catalogue (the tables above) and the high-dimensional suite."""

HD_CCH_DIMS = (64, 128, 256, 512)
"""Columns per side of the high-dimensional suite's tasks."""

# (family, row index in that family's table): the base tasks of the lifted and padded families (at most 8
# columns per side); the true gap in the comment, in nats.
HD_BASE_ROWS = (
    ("gauss", 2),  # +1.00 (1x1)
    ("gauss", 3),  # -1.00 (1x1)
    ("gauss", 6),  # -0.50 (4x4)
    ("gauss", 7),  # +0.50 (8x8)
    ("gauss", 5),  # +0.02 (2x2)
    ("classes", 0),  # -0.34 (1x1)
    ("classes", 3),  # +0.30 (2x4)
    ("classes", 5),  # -0.70 (8x8, priors)
)

# (dim_y, i_ts, i_sy, k_ts or None for all D pairs, private): GAUSS_ROWS with dim_t = dim_s = D.
HD_GAUSS_ROWS = (
    (1, 1.00, 0.50, None, 0.0),  # dense, +0.5
    (2, 0.50, 1.00, None, 0.3),  # dense, -0.5
    (1, 2.00, 1.00, 8, 0.0),  # sparse, +1.0
    (4, 1.00, 1.50, 8, 0.0),  # sparse, -0.5
)

HD_CCH_QUICK_TASKS = (
    "lift64-cch-gauss-1x1y1-ts1.2-sy0.2-k1-p0",
    "lift64-cch-classes4-8x8-sep2-rho0.5622-a0-prior",
    "pad64-cch-gauss-1x1y1-ts0.1-sy1.1-k1-p0.5",
    "pad64-cch-classes5-2x4-sep1.5-rho0.7133-a1",
    "cch-gauss-64x64y1-ts1-sy0.5-k64-p0",
    "cch-gauss-64x64y4-ts1-sy1.5-k8-p0",
)
"""A few tasks of the high-dimensional suite at 64 columns per side, gaps of both signs in every family
(``cchmi bench cch --suite hd --quick``)."""


@dataclass(frozen=True)
class Truth:
    """I(T; S), I(S; Y) and the gap in nats, each with its Monte Carlo standard error (0: exact)."""

    i_ts: float
    i_sy: float
    gap: float
    i_ts_stderr: float = 0.0
    i_sy_stderr: float = 0.0
    gap_stderr: float = 0.0


@dataclass(frozen=True)
class CCHTask:
    """One (T, S, Y) problem of the catalogue. ``params`` is its row of the family's table (for
    ``mapped``: the transform and the base task; for ``lifted`` and ``padded``: the columns per side
    and the base task). The truth is computed on first use and cached."""

    name: str
    family: str  # "gauss", "classes", "mapped", "lifted" or "padded"
    dim_t: int
    dim_s: int
    dim_y: int  # columns of Y; 0 when Y is a vector of labels
    n_classes: int  # 0 for continuous Y
    params: tuple

    def truth(self) -> Truth:
        if self.family in DERIVED:
            return self.params[1].truth()
        return _gauss_truth(self.params) if self.family == "gauss" else _classes_truth(self.params, N_MC, 0)

    @property
    def i_ts(self) -> float:
        return self.truth().i_ts

    @property
    def i_sy(self) -> float:
        return self.truth().i_sy

    @property
    def gap(self) -> float:
        return self.truth().gap

    @property
    def truth_stderr(self) -> float:
        """The largest standard error of the three stated values (0 for closed forms)."""
        t = self.truth()
        return max(t.i_ts_stderr, t.i_sy_stderr, t.gap_stderr)

    def sample(self, n: int, random_state=0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """n draws: T (n, dim_t), S (n, dim_s) float64, and Y (n, dim_y) float64 or (n,) int64
        labels. The same random_state gives the same arrays."""
        n = V.as_int(n, "n", 1)
        rng = np.random.default_rng(random_state)
        if self.family == "gauss":
            return _gauss_sample(self.params, n, rng)
        if self.family == "classes":
            return _classes_sample(self.params, n, rng)
        if self.family == "lifted":
            return _lifted_sample(self, n, random_state)
        if self.family == "padded":
            return _padded_sample(self, n, rng)
        transform, base = self.params
        t, s, y = base.sample(n, random_state)
        map_rng = np.random.default_rng(zlib.crc32(self.name.encode()))
        return _apply(t, transform, map_rng), _apply(s, transform, map_rng), y


# -- jointly Gaussian ---------------------------------------------------------------------------


def _loading(mi: float, pairs: int) -> float:
    """The correlation that puts mi nats on `pairs` independent coordinate pairs."""
    return math.sqrt(-math.expm1(-2.0 * mi / pairs))


@functools.lru_cache(maxsize=None)
def _gauss_model(params: tuple) -> tuple[np.ndarray, np.ndarray]:
    """The linear map A with (T, S, Y) = A z, z ~ N(0, I), and the covariance A A^T (checked
    positive definite)."""
    dim_t, dim_s, dim_y, i_ts, i_sy, k_ts, private = params
    k_sy = min(dim_s, dim_y)
    if not (1 <= k_ts <= min(dim_t, dim_s) and 0 <= private < 1 and i_ts >= 0 and i_sy >= 0):
        raise ValueError(f"invalid Gaussian CCH row {params}")
    a, b = _loading(i_ts, k_ts), _loading(i_sy, k_sy)
    # latent z = (Z_S: dim_s, E: dim_t, N: dim_y)
    mat = np.zeros((dim_t + dim_s + dim_y, dim_s + dim_t + dim_y))
    t_rows, s_rows, y_rows = np.arange(dim_t), dim_t + np.arange(dim_s), dim_t + dim_s + np.arange(dim_y)
    mat[s_rows, np.arange(dim_s)] = 1.0
    for i in range(dim_t):
        load = a if i < k_ts else 0.0
        if load:
            mat[t_rows[i], i] = load
        mat[t_rows[i], dim_s + i] = math.sqrt(1.0 - load * load)
    for j in range(dim_y):
        load = b if j < k_sy else 0.0
        residual = 1.0 - load * load
        c2 = private * residual if j < dim_t else 0.0
        if load:
            mat[y_rows[j], j] = load
        if c2:
            mat[y_rows[j], dim_s + j] = math.sqrt(c2)
        mat[y_rows[j], dim_s + dim_t + j] = math.sqrt(residual - c2)
    cov = mat @ mat.T
    if np.linalg.eigvalsh(cov).min() <= 1e-12:
        raise ValueError(f"Gaussian CCH row {params} gives a covariance that is not positive definite")
    return mat, cov


@functools.lru_cache(maxsize=None)
def _gauss_truth(params: tuple) -> Truth:
    dim_t, dim_s, dim_y = params[:3]
    _, cov = _gauss_model(params)
    t, s, y = np.arange(dim_t), dim_t + np.arange(dim_s), dim_t + dim_s + np.arange(dim_y)
    i_ts, i_sy = gaussian_mi(cov, t, s), gaussian_mi(cov, s, y)
    return Truth(i_ts, i_sy, i_ts - i_sy)


def _gauss_sample(params: tuple, n: int, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dim_t, dim_s = params[:2]
    mat, _ = _gauss_model(params)
    rows = rng.standard_normal((n, mat.shape[1])) @ mat.T
    return rows[:, :dim_t], rows[:, dim_t : dim_t + dim_s], rows[:, dim_t + dim_s :]


# -- Gaussian classes ---------------------------------------------------------------------------


def _class_parts(params: tuple):
    n_classes, _, _, sep, rho, alpha, priors = params
    probs = np.full(n_classes, 1.0 / n_classes) if priors is None else np.asarray(priors, dtype=np.float64)
    if probs.shape != (n_classes,) or abs(probs.sum() - 1.0) > 1e-12 or not -1 < rho < 1:
        raise ValueError(f"invalid class CCH row {params}")
    mu_s = sep * (np.arange(n_classes) - 0.5 * (n_classes - 1))
    return probs, mu_s, alpha * mu_s, rho


def _informative(params: tuple, n: int, rng):
    """Y, S_1, T_1 for n draws."""
    probs, mu_s, mu_t, rho = _class_parts(params)
    y = rng.choice(len(probs), size=n, p=probs)
    s = mu_s[y] + rng.standard_normal(n)
    t = mu_t[y] + rho * (s - mu_s[y]) + math.sqrt(1.0 - rho * rho) * rng.standard_normal(n)
    return y, s, t


def _classes_sample(params: tuple, n: int, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    _, dim_t, dim_s = params[:3]
    y, s1, t1 = _informative(params, n, rng)
    t = rng.standard_normal((n, dim_t))
    s = rng.standard_normal((n, dim_s))
    t[:, 0], s[:, 0] = t1, s1
    return t, s, y.astype(np.int64)


def _logsumexp(a: np.ndarray) -> np.ndarray:
    top = a.max(axis=1, keepdims=True)
    return top[:, 0] + np.log(np.exp(a - top).sum(axis=1))


def _log_ratios(params: tuple, y: np.ndarray, s: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per draw: log p(t, s) - log p(t) - log p(s) and log p(s | y) - log p(s), exact."""
    probs, mu_s, mu_t, rho = _class_parts(params)
    log_pi = np.log(probs)
    half_log_2pi = 0.5 * math.log(2.0 * math.pi)
    ds = s[:, None] - mu_s[None, :]  # (n, C): every class's mean
    dt = t[:, None] - mu_t[None, :]
    log_s_given = -0.5 * ds * ds - half_log_2pi
    log_t_given = -0.5 * dt * dt - half_log_2pi
    det = 1.0 - rho * rho
    log_ts_given = (-0.5 * (ds * ds - 2.0 * rho * ds * dt + dt * dt) / det
                    - 2.0 * half_log_2pi - 0.5 * math.log(det))
    log_s = _logsumexp(log_pi + log_s_given)
    log_t = _logsumexp(log_pi + log_t_given)
    log_ts = _logsumexp(log_pi + log_ts_given)
    own = log_s_given[np.arange(len(y)), y]
    return log_ts - log_t - log_s, own - log_s


@functools.lru_cache(maxsize=None)
def _classes_truth(params: tuple, n_mc: int, seed: int) -> Truth:
    """Monte Carlo of the exact log-density ratios over n_mc draws (in chunks), seeded."""
    rng = np.random.default_rng([seed, zlib.crc32(repr(params).encode())])
    sums = np.zeros(3)
    squares = np.zeros(3)
    done = 0
    while done < n_mc:
        m = min(MC_CHUNK, n_mc - done)
        f_ts, f_sy = _log_ratios(params, *_informative(params, m, rng))
        f = np.stack([f_ts, f_sy, f_ts - f_sy])
        sums += f.sum(axis=1)
        squares += (f * f).sum(axis=1)
        done += m
    mean = sums / n_mc
    stderr = np.sqrt(np.maximum(squares / n_mc - mean * mean, 0.0) / (n_mc - 1))
    return Truth(*(float(v) for v in mean), *(float(v) for v in stderr))


# -- MI-preserving maps -------------------------------------------------------------------------


def _apply(a: np.ndarray, transform: str, rng) -> np.ndarray:
    if transform == "asinh":
        return np.arcsinh(a)
    if transform == "half_cube":
        return a * np.sqrt(np.abs(a))
    q, r = np.linalg.qr(rng.standard_normal((a.shape[1], a.shape[1])))
    return a @ (q * np.sign(np.diag(r)))


# -- high-dimensional versions: lifts and padding -------------------------------------------------


DERIVED = ("mapped", "lifted", "padded")
"""Families whose ``params`` are (map, base task) and whose truth is the base task's."""


@functools.lru_cache(maxsize=4)
def _lifts(name: str, dim_t: int, dim_s: int, dim: int):
    """The fixed lifts (T's from dim_t, S's from dim_s columns to dim) of the lifted task `name`."""
    from cchmi.data.hd_tasks import Lift, _task_rng  # here: cchmi.data.hd_tasks imports cchmi.data

    return Lift.draw(dim_t, dim, _task_rng(name, 0)), Lift.draw(dim_s, dim, _task_rng(name, 1))


@functools.lru_cache(maxsize=4)
def _pad_rotations(name: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The fixed rotations (T's, S's) of the padded task `name`."""
    from cchmi.data.hd_tasks import _rotation, _task_rng

    return _rotation(dim, _task_rng(name, 0)), _rotation(dim, _task_rng(name, 1))


def _lifted_sample(task: CCHTask, n: int, random_state) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The base task's sample with T and S lifted; Y unchanged."""
    dim, base = task.params
    t, s, y = base.sample(n, random_state)
    lift_t, lift_s = _lifts(task.name, base.dim_t, base.dim_s, dim)
    return lift_t(t), lift_s(s), y


def _padded_sample(task: CCHTask, n: int, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The base task's sample drawn from rng (the arrays base.sample(n, seed) gives for the seed rng
    came from), each side padded with independent N(0, 1) columns drawn next from rng, then rotated."""
    dim, base = task.params
    t, s, y = base.sample(n, rng)
    rot_t, rot_s = _pad_rotations(task.name, dim)
    t = np.hstack([t, rng.standard_normal((n, dim - base.dim_t))]) @ rot_t.T
    s = np.hstack([s, rng.standard_normal((n, dim - base.dim_s))]) @ rot_s.T
    return t, s, y


# -- the catalogue ------------------------------------------------------------------------------


def _gauss_task(row: tuple) -> CCHTask:
    dim_t, dim_s, dim_y, i_ts, i_sy, k_ts, private = row
    name = f"cch-gauss-{dim_t}x{dim_s}y{dim_y}-ts{i_ts:g}-sy{i_sy:g}-k{k_ts}-p{private:g}"
    return CCHTask(name, "gauss", dim_t, dim_s, dim_y, 0, row)


def _classes_task(row: tuple) -> CCHTask:
    n_classes, dim_t, dim_s, sep, rho, alpha, priors = row
    name = f"cch-classes{n_classes}-{dim_t}x{dim_s}-sep{sep:g}-rho{rho:g}-a{alpha:g}" + ("-prior" if priors else "")
    return CCHTask(name, "classes", dim_t, dim_s, 0, n_classes, row)


def _base_tasks() -> dict[str, list[CCHTask]]:
    return {"gauss": [_gauss_task(r) for r in GAUSS_ROWS], "classes": [_classes_task(r) for r in CLASS_ROWS]}


def cch_tasks(suite: str = "catalogue") -> list[CCHTask]:
    """Every CCH task of `suite` (:data:`SUITES`): "catalogue", the tables GAUSS_ROWS, CLASS_ROWS and
    MAPPED_ROWS, or "hd", :func:`hd_cch_tasks` at :data:`HD_CCH_DIMS`. Truths are computed on first use."""
    V.choice(suite, "suite", SUITES)
    if suite == "hd":
        return hd_cch_tasks()
    base = _base_tasks()
    mapped = []
    for transform, family, index in MAPPED_ROWS:
        if transform not in TRANSFORMS:
            raise ValueError(f"unknown transform {transform!r}; expected one of {TRANSFORMS}")
        b = base[family][index]
        mapped.append(CCHTask(f"{transform}-{b.name}", "mapped", b.dim_t, b.dim_s, b.dim_y, b.n_classes,
                              (transform, b)))
    return base["gauss"] + base["classes"] + mapped


def hd_cch_tasks(dims=HD_CCH_DIMS) -> list[CCHTask]:
    """The high-dimensional suite at each of `dims` columns per side (each >= 9: more than the base
    tasks' 8), in that order; at each: the ``lifted`` and the ``padded`` version of every base task of
    HD_BASE_ROWS, then the ``gauss`` rows of HD_GAUSS_ROWS. Truths in nats, computed on first use."""
    dims = [V.as_int(d, "dims", 9) for d in dims]
    base = _base_tasks()
    bases = [base[family][index] for family, index in HD_BASE_ROWS]
    tasks = []
    for d in dims:
        for family, prefix in (("lifted", "lift"), ("padded", "pad")):
            tasks += [CCHTask(f"{prefix}{d}-{b.name}", family, d, d, b.dim_y, b.n_classes, (d, b)) for b in bases]
        tasks += [_gauss_task((d, d, dim_y, i_ts, i_sy, d if k_ts is None else k_ts, private))
                  for dim_y, i_ts, i_sy, k_ts, private in HD_GAUSS_ROWS]
    return tasks
