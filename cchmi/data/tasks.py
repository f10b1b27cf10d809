"""The benchmark task catalogue: samplers with known mutual information.

Each :class:`Task` has a name, a description, the kind of variables ("continuous": X and Y real;
"labels": X real, Y discrete labels), the dimensions, the true MI in nats, and ``sample(n, seed)``
returning a :class:`cchmi.data.Sample`. Families:

* ``gauss-DxD-M``: correlated Gaussians, D dims per side, M nats spread over D coordinate pairs;
* ``student-DxD-dfV``: multivariate Student-t with V degrees of freedom (X, Y = Z / sqrt(W / V),
  Z Gaussian with the gauss task's covariance, W ~ chi2_V): MI = the Gaussian part plus
  h(D) + h(D) - h(2D), h(k) the entropy of a standard k-dim Student-t (Arellano-Valle, Contreras-Reyes
  and Genton 2013); heavier tails, and dependence even at correlation 0;
* ``asinh-``, ``halfcube-``, ``wiggly-``, ``rotate-``, ``spiral-``: a gauss task pushed through an
  invertible map of each variable (MI unchanged); the spiral rotates the first two coordinates by
  an angle proportional to the squared norm, a diffeomorphism that keeps norms;
* ``classes-C-Dd``: C Gaussian classes 2 s.d. apart along one of D coordinates (MI by quadrature);
* ``sparse-KofD-M``: only K of the D coordinate pairs carry the M nats; the rest is noise.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from cchmi._special import digamma
from cchmi.data import Sample, correlated_gaussian, gaussian_classes


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    kind: str  # "continuous" or "labels"
    dim_x: int
    dim_y: int
    mi: float
    sampler: Callable[[int, int], Sample]

    def sample(self, n: int, seed: int = 0) -> Sample:
        return self.sampler(n, seed)


def student_t_entropy(k: int, dof: float) -> float:
    """Differential entropy (nats) of the standard k-dim Student-t with `dof` degrees of freedom
    (identity scale matrix)."""
    half = 0.5 * (dof + k)
    return (math.lgamma(0.5 * dof) - math.lgamma(half) + 0.5 * k * math.log(dof * math.pi)
            + half * (float(digamma(half)) - float(digamma(0.5 * dof))))


def student_t_mi_correction(dim_x: int, dim_y: int, dof: float) -> float:
    """What a Student-t adds to the Gaussian MI of its scale matrix: h(dx) + h(dy) - h(dx + dy) >= 0."""
    return student_t_entropy(dim_x, dof) + student_t_entropy(dim_y, dof) - student_t_entropy(dim_x + dim_y, dof)


def _gauss(dim: int, mi: float) -> Task:
    return Task(f"gauss-{dim}x{dim}-{mi:g}", f"correlated Gaussian, {dim}+{dim} dims, {mi:g} nats", "continuous",
                dim, dim, mi, lambda n, seed: correlated_gaussian(n, dim, dim, mi=mi, random_state=seed))


def student_task(dim: int, mi_gauss: float, dof: int) -> Task:
    """Multivariate Student-t with `dof` degrees of freedom over a correlated Gaussian of `mi_gauss`
    nats, dim + dim columns: its MI is mi_gauss plus :func:`student_t_mi_correction`."""
    total = mi_gauss + student_t_mi_correction(dim, dim, dof)

    def sample(n: int, seed: int) -> Sample:
        base = correlated_gaussian(n, dim, dim, mi=mi_gauss, random_state=seed)
        rng = np.random.default_rng([seed, 7])
        scale = np.sqrt(dof / rng.chisquare(dof, size=(n, 1)))
        return Sample(base.x * scale, base.y * scale, total, f"Student-t, {dof} dof, {dim}+{dim} dims")

    return Task(f"student-{dim}x{dim}-df{dof}", f"Student-t ({dof} dof), {dim}+{dim} dims, Gaussian part "
                f"{mi_gauss:g} nats", "continuous", dim, dim, total, sample)


def _spiral(a: np.ndarray, speed: float = 0.5) -> np.ndarray:
    out = a.copy()
    angle = speed * np.sum(a * a, axis=1)
    c, s = np.cos(angle), np.sin(angle)
    out[:, 0], out[:, 1] = c * a[:, 0] - s * a[:, 1], s * a[:, 0] + c * a[:, 1]
    return out


def _transformed(kind: str, dim: int, mi: float) -> Task:
    name = {"asinh": "asinh", "half_cube": "halfcube", "wiggly": "wiggly", "rotate": "rotate", "spiral": "spiral"}[kind]

    def sample(n: int, seed: int) -> Sample:
        if kind == "spiral":
            base = correlated_gaussian(n, dim, dim, mi=mi, random_state=seed)
            return Sample(_spiral(base.x), _spiral(base.y), base.mi, f"spiral of a Gaussian, {dim}+{dim} dims")
        return correlated_gaussian(n, dim, dim, mi=mi, transform=kind, random_state=seed)

    return Task(f"{name}-{dim}x{dim}-{mi:g}", f"{kind} map of a correlated Gaussian, {dim}+{dim} dims, {mi:g} nats",
                "continuous", dim, dim, mi, sample)


def _classes(n_classes: int, dim: int) -> Task:
    mi = gaussian_classes(4, n_classes, separation=2.0, dim=dim).mi
    return Task(f"classes-{n_classes}-{dim}d", f"{n_classes} Gaussian classes 2 s.d. apart, {dim} dims", "labels",
                dim, 1, mi, lambda n, seed: gaussian_classes(n, n_classes, separation=2.0, dim=dim,
                                                             random_state=seed))


def sparse_task(k: int, dim: int, mi: float) -> Task:
    """`k` correlated Gaussian pairs of `mi` nats in all, padded with independent noise columns to
    dim + dim."""
    def sample(n: int, seed: int) -> Sample:
        base = correlated_gaussian(n, k, k, mi=mi, random_state=seed)
        rng = np.random.default_rng([seed, 11])
        x = np.hstack([base.x, rng.standard_normal((n, dim - k))])
        y = np.hstack([base.y, rng.standard_normal((n, dim - k))])
        return Sample(x, y, mi, f"{k} of {dim} coordinate pairs informative")

    return Task(f"sparse-{k}of{dim}-{mi:g}", f"{mi:g} nats on {k} of {dim} coordinate pairs, the rest noise",
                "continuous", dim, dim, mi, sample)


def catalogue() -> dict[str, Task]:
    """Every task, by name."""
    return dict(_catalogue())


@functools.lru_cache(maxsize=1)
def _catalogue() -> dict[str, Task]:  # built once: the class tasks integrate their MI numerically
    tasks = [
        _gauss(1, 0.1), _gauss(1, 1.0), _gauss(2, 1.0), _gauss(5, 2.0), _gauss(10, 2.0), _gauss(16, 2.0), _gauss(25, 5.0),
        _gauss(50, 10.0), _gauss(256, 10.0),
        student_task(1, 0.5, 1), student_task(2, 1.0, 3), student_task(5, 1.0, 5),
        _transformed("asinh", 2, 1.0), _transformed("half_cube", 2, 1.0), _transformed("wiggly", 2, 1.0),
        _transformed("rotate", 5, 2.0), _transformed("spiral", 3, 1.0),
        _classes(2, 1), _classes(5, 4), _classes(10, 16),
        sparse_task(1, 10, 1.0), sparse_task(2, 50, 2.0),
    ]
    return {t.name: t for t in tasks}


QUICK_TASKS = ("gauss-1x1-1", "gauss-5x5-2", "student-2x2-df3", "halfcube-2x2-1", "spiral-3x3-1", "classes-5-4d",
               "sparse-1of10-1")
