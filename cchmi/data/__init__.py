"""Samplers with known mutual information, the closed forms behind them, and a bundled sample.

Used by the tests, the README and the benchmarks. Every sampler takes `random_state` and returns a
:class:`Sample` whose ``mi`` is exact (closed form, or a quadrature accurate to 1e-9 nats).
Real co-observed data read offline from Debian packages: :func:`load_emoji` (image, text, speech),
:func:`load_miniacc` (TCGA omics); :func:`degraded_view` / :func:`add_degraded_view` (cchmi.data.views).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources

import numpy as np

from cchmi import _validate as V
from cchmi.data.cch_tasks import CCHTask, cch_tasks, hd_cch_tasks
from cchmi.data.emoji import load_emoji
from cchmi.data.omics import load_miniacc
from cchmi.data.views import add_degraded_view, degraded_view, with_view

TRANSFORMS = ("none", "asinh", "half_cube", "wiggly", "rotate")


@dataclass(frozen=True)
class Sample:
    """x (n, dx), y (n, dy) or labels (n,), the true MI in nats, and what was sampled."""

    x: np.ndarray
    y: np.ndarray
    mi: float
    description: str


def gaussian_mi(cov, dim_x: int) -> float:
    """I(X; Y) in nats for jointly Gaussian (X, Y) with covariance `cov`, X the first dim_x
    coordinates: 1/2 log(det S_xx det S_yy / det S)."""
    cov = np.asarray(cov, dtype=np.float64)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
        raise ValueError(f"cov must be a square matrix, got shape {cov.shape}")
    dim_x = V.as_int(dim_x, "dim_x", 1, cov.shape[0] - 1)
    _, logdet = np.linalg.slogdet(cov)
    _, logdet_x = np.linalg.slogdet(cov[:dim_x, :dim_x])
    _, logdet_y = np.linalg.slogdet(cov[dim_x:, dim_x:])
    if not np.all(np.linalg.eigvalsh(cov) > 0):
        raise ValueError("cov must be symmetric positive definite")
    return 0.5 * (logdet_x + logdet_y - logdet)


def _transform(a: np.ndarray, name: str, rng) -> np.ndarray:
    """An invertible map applied to one variable: leaves I(X; Y) unchanged."""
    if name == "none":
        return a
    if name == "asinh":
        return np.arcsinh(a)
    if name == "half_cube":
        return a * np.sqrt(np.abs(a))
    if name == "wiggly":  # derivative 1 + 0.8 cos(2a) >= 0.2: strictly increasing
        return a + 0.4 * np.sin(2.0 * a)
    # rotate: a random orthogonal mixing of the variable's own coordinates
    q, r = np.linalg.qr(rng.standard_normal((a.shape[1], a.shape[1])))
    return a @ (q * np.sign(np.diag(r)))


def correlated_gaussian(
    n: int,
    dim_x: int = 1,
    dim_y: int | None = None,
    *,
    mi: float | None = None,
    rho: float | None = None,
    transform: str = "none",
    dtype=np.float64,
    random_state=0,
) -> Sample:
    """Standard Gaussian X (n, dim_x) and Y (n, dim_y) whose first min(dim_x, dim_y) coordinates
    are pairwise correlated with coefficient rho; I(X; Y) = -min(dim_x, dim_y)/2 log(1 - rho^2).

    Give either `mi` (nats, rho is derived) or `rho`. `transform` applies an invertible map to X and
    Y separately (asinh, half_cube: a|a|^(1/2), wiggly: a + 0.4 sin 2a, rotate: a random orthogonal
    mixing), which keeps the MI and makes the task harder for kNN estimators.
    """
    n = V.as_int(n, "n", 2)
    dim_x = V.as_int(dim_x, "dim_x", 1)
    dim_y = dim_x if dim_y is None else V.as_int(dim_y, "dim_y", 1)
    V.choice(transform, "transform", TRANSFORMS)
    pairs = min(dim_x, dim_y)
    if (mi is None) == (rho is None):
        raise ValueError("give exactly one of mi (nats) and rho")
    if mi is not None:
        if not (math.isfinite(mi) and mi >= 0):
            raise ValueError(f"mi must be a finite number >= 0, got {mi!r}")
        rho = math.sqrt(-math.expm1(-2.0 * mi / pairs))
    if not -1 < rho < 1:
        raise ValueError(f"rho must be in (-1, 1), got {rho!r}")
    rng = np.random.default_rng(random_state)
    x = rng.standard_normal((n, dim_x))
    y = rng.standard_normal((n, dim_y))
    y[:, :pairs] = rho * x[:, :pairs] + math.sqrt(1.0 - rho * rho) * y[:, :pairs]
    true_mi = -0.5 * pairs * math.log1p(-rho * rho)
    x, y = _transform(x, transform, rng), _transform(y, transform, rng)
    return Sample(
        x=x.astype(dtype),
        y=y.astype(dtype),
        mi=true_mi,
        description=f"correlated Gaussian {dim_x}+{dim_y} dims, rho={rho:.6g} on {pairs} pairs, transform={transform}",
    )


def _mixture_mi(means: np.ndarray, probs: np.ndarray) -> float:
    """I(X; L) for L ~ probs and X | L = c ~ N(means[c], 1), by quadrature on a fine grid."""
    grid = np.linspace(means.min() - 12.0, means.max() + 12.0, 400_001)
    step = grid[1] - grid[0]
    dens = np.exp(-0.5 * (grid[None, :] - means[:, None]) ** 2) / math.sqrt(2 * math.pi)
    mix = probs @ dens
    h_mix = -np.sum(mix * np.log(np.maximum(mix, 1e-300))) * step
    h_cond = 0.5 * math.log(2 * math.pi * math.e)
    return float(h_mix - h_cond)


def gaussian_classes(
    n: int,
    n_classes: int = 2,
    *,
    separation: float = 2.0,
    dim: int = 1,
    dtype=np.float64,
    random_state=0,
) -> Sample:
    """Labels L uniform on n_classes, and X (n, dim) with X_1 | L = c ~ N(c * separation, 1) and the
    other coordinates independent N(0, 1). I(X; L) comes from one-dimensional quadrature.
    Returns a Sample whose `y` holds the labels."""
    n = V.as_int(n, "n", 2)
    n_classes = V.as_int(n_classes, "n_classes", 2)
    dim = V.as_int(dim, "dim", 1)
    rng = np.random.default_rng(random_state)
    labels = rng.integers(0, n_classes, size=n)
    x = rng.standard_normal((n, dim))
    means = separation * np.arange(n_classes, dtype=np.float64)
    x[:, 0] += means[labels]
    mi = _mixture_mi(means, np.full(n_classes, 1.0 / n_classes))
    return Sample(
        x=x.astype(dtype),
        y=labels,
        mi=mi,
        description=f"{n_classes} Gaussian classes {separation:g} s.d. apart in {dim} dims",
    )


def load_sample() -> Sample:
    """The bundled sample: 2000 draws of a correlated Gaussian, 2 + 2 dims, true MI 1 nat
    (``correlated_gaussian(2000, 2, 2, mi=1.0, random_state=2026)``, stored so that it does not depend
    on NumPy's random streams)."""
    with resources.files("cchmi.data").joinpath("gaussian_2x2.npz").open("rb") as f:
        stored = np.load(f)
        return Sample(x=stored["x"], y=stored["y"], mi=float(stored["mi"]), description=str(stored["description"]))
