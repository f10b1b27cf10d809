"""The high-dimensional task suite: samplers with closed-form MI at 64 to 1024 dimensions per side.

Every task is a :class:`cchmi.data.tasks.Task` (X and Y real, ``dim`` columns each) whose ``mi`` is
exact in nats; :func:`hd_suite` lists them. Names read ``hd-<family>-<d>-<MI>``: d columns per side
and the target MI in nats (the stated ``mi`` equals it to 1e-9). Families:

* ``gauss-dense``: X, Y standard Gaussian, every one of the d coordinate pairs correlated with the
  same rho, I = -d/2 log(1 - rho^2) (rho solved from the target), then each side mixed by its own
  random rotation (drawn per sample), so every coordinate of X depends on every coordinate of Y;
* ``gauss-sparse``: the target on :data:`SPARSE_PAIRS` coordinate pairs, the other coordinates
  independent noise (the catalogue's ``sparse`` sampler);
* ``halfcube``, ``asinh``, ``normcdf``: the axis-aligned correlated Gaussian (all d pairs) pushed
  coordinate-wise through a strictly increasing map: a|a|^(1/2), asinh a, and the standard normal
  CDF Phi(a) (uniform marginals; needs SciPy); MI is invariant under injective maps of each side,
  so it is the Gaussian's (the transforms of benchmark-mi, bmi). float64 rounds Phi near 1 (to
  eps / phi(a) in a: 2e-8 at a = 6; Phi(a) = 1 from a = 8.3, which a coordinate exceeds with
  probability 1e-16);
* ``student-dfV``: multivariate Student-t with V degrees of freedom: (X, Y) = (Z_x, Z_y) / sqrt(W / V),
  Z the axis-aligned correlated Gaussian, W ~ chi2_V shared. The marginals are Student-t with the
  same V and scale I, so I = h(X) + h(Y) - h(X, Y) = I_gauss(scale) + c(d) + c(d) - c(2d), c(k) the
  entropy of the standard k-dim Student-t (:func:`cchmi.data.tasks.student_t_mi_correction`);
  the Gaussian part is set to the target minus that correction;
* ``embed-kK``: intrinsic dimension K: latent Z_x, Z_y, K-dim correlated Gaussians carrying the
  target, lifted to d dims per side by a fixed random smooth map f(z) = Q [u; tanh(W u + c)] with
  u = A2 asinh(2 (A1 z + b)) (A1, A2 random K x K rotations, Q a random d x d rotation, W (d - K) x K):
  f is injective (Q^T x gives u back, and u gives z: :meth:`Lift.invert`), so I(f(Z_x); g(Z_y)) =
  I(Z_x; Z_y); the samples lie on a curved K-dim manifold in R^d (no added noise, which would
  change the MI);
* ``field``: 2-D stationary Gaussian random fields on the s x s torus (d = s^2; a task wherever d is a
  perfect square): X with spectrum lambda(f) ~ (1 + (2 pi l |f|)^2)^-2 (l = :data:`FIELD_LENGTH`
  pixels, unit variance), Y = X blurred by a Gaussian kernel (s.d. :data:`FIELD_BLUR` pixels) plus
  white noise of s.d. sigma. Both maps are circulant, diagonal in the 2-D Fourier basis with
  eigenvalues lambda_f and beta_f, so cov(Y) = B C B + sigma^2 I and
  I = 1/2 log det(I + B C B / sigma^2) = 1/2 sum_f log(1 + beta_f^2 lambda_f / sigma^2); sigma is
  solved from the target;
* ``label``: the label channel. C_x is m independent fair bits (2^m classes, H(C) = m log 2); C_y
  is C_x with each bit flipped independently with probability beta (m binary symmetric channels),
  so I(C_x; C_y) = m (log 2 - h(beta)) = H(C) (1 - H_2(beta)), h the binary entropy in nats and H_2
  in bits (m and beta chosen to hit the target: m = ceil(MI / (0.75 log 2)), beta solved). Each
  side is a feature of its class: X = Q_x [s_1 |G_1|, ..., s_m |G_m|, G_{m+1}, ..., G_d] with G
  standard Gaussian, s_j = +-1 the sign of bit j and Q_x a fixed random rotation (so X ~ N(0, I_d)
  marginally), and Y likewise from C_y with its own G and rotation. The class is a function of the
  feature (the signs of the first m coordinates of Q_x^T X), so I(X; Y) >= I(C_x; C_y); and
  X - C_x - C_y - Y is a Markov chain (each feature depends on its own class and its own noise
  only), so I(X; Y) <= I(C_x; C_y): I(X; Y) = I(C_x; C_y) exactly.

Fixed random maps (the embeddings' lifts, the label rotations) are drawn from the task's name, so
a task is the same on every machine; samples from ``seed``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import zlib
from dataclasses import dataclass

import numpy as np

from cchmi import _validate as V
from cchmi.data import Sample, correlated_gaussian
from cchmi.data.tasks import Task, sparse_task, student_t_mi_correction, student_task

HD_DIMS = (64, 128, 256, 512, 1024)
"""Columns per side of the suite's tasks."""

SPARSE_PAIRS = 4
"""Coordinate pairs that carry the MI of the ``gauss-sparse`` tasks."""

STUDENT_DOF = 3
"""Degrees of freedom of the ``student`` tasks."""

FIELD_LENGTH = 2.0
"""Correlation length (pixels) of the random fields' spectrum."""

FIELD_BLUR = 1.0
"""Standard deviation (pixels) of the Gaussian blur from X to Y in the ``field`` tasks."""

TRANSFORMS = ("half_cube", "asinh", "normal_cdf")

HD_LEVELS = {
    "gauss-dense": (0.5, 2.0, 10.0),
    "gauss-sparse": (2.0, 8.0),
    "halfcube": (4.0,),
    "asinh": (4.0,),
    "normcdf": (4.0,),
    "student": (5.0,),
    "embed-k1": (2.0,),
    "embed-k4": (2.0,),
    "embed-k16": (2.0,),
    "field": (2.0, 8.0),
    "label": (0.5, 4.0),
}
"""Target MIs (nats) of each family in :func:`hd_suite`."""

HD_FAMILIES = tuple(HD_LEVELS)

HD_QUICK_TASKS = ("hd-gauss-dense-64-2", "hd-gauss-sparse-64-2", "hd-halfcube-64-4", "hd-embed-k4-64-2",
                  "hd-field-64-2", "hd-label-64-0.5")
"""A few tasks at 64 dims per side (``cchmi bench accuracy --suite hd --quick``)."""


def _name(family: str, dim: int, mi: float) -> str:
    return f"hd-{family}-{dim}-{mi:g}"


def _check(dim, mi, low_dim: int = 1) -> tuple[int, float]:
    return V.as_int(dim, "dim", low_dim), V.as_real(mi, "mi", 0, low_open=True)


def _task_rng(name: str, side: int) -> np.random.Generator:
    """The generator of a task's fixed random maps on one side (0: X, 1: Y)."""
    return np.random.default_rng([zlib.crc32(name.encode()), side])


def _rotation(dim: int, rng) -> np.ndarray:
    """A Haar-random dim x dim rotation (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))


# -- Gaussians and their coordinate-wise transforms -----------------------------------------------


def gauss_dense(dim: int, mi: float) -> Task:
    """``hd-gauss-dense-<dim>-<mi>``: mi nats on every coordinate pair, each side randomly rotated."""
    dim, mi = _check(dim, mi)

    def sample(n: int, seed: int) -> Sample:
        return correlated_gaussian(n, dim, dim, mi=mi, transform="rotate", random_state=seed)

    return Task(_name("gauss-dense", dim, mi), f"correlated Gaussian, {mi:g} nats on all {dim} pairs, each side "
                f"rotated, {dim}+{dim} dims", "continuous", dim, dim, mi, sample)


def gauss_sparse(dim: int, mi: float, pairs: int = SPARSE_PAIRS) -> Task:
    """``hd-gauss-sparse-<dim>-<mi>``: mi nats on `pairs` coordinate pairs, the rest independent noise."""
    dim, mi = _check(dim, mi)
    pairs = V.as_int(pairs, "pairs", 1, dim - 1, " (fewer pairs than dim: the rest is noise)")
    task = sparse_task(pairs, dim, mi)
    return dataclasses.replace(task, name=_name("gauss-sparse", dim, mi), description=f"correlated Gaussian, {mi:g} "
                               f"nats on {pairs} of {dim} pairs, the rest noise, {dim}+{dim} dims")


def _normal_cdf(a: np.ndarray) -> np.ndarray:
    try:
        from scipy.special import ndtr
    except ImportError as e:  # numpy has no erf
        raise ImportError("the normal-CDF tasks need SciPy (scipy.special.ndtr): pip install scipy") from e
    return ndtr(a)


def transformed(transform: str, dim: int, mi: float) -> Task:
    """``hd-<halfcube|asinh|normcdf>-<dim>-<mi>``: the axis-aligned correlated Gaussian (mi nats on all
    dim pairs) with `transform` (half_cube, asinh or normal_cdf) applied to every coordinate."""
    V.choice(transform, "transform", TRANSFORMS)
    dim, mi = _check(dim, mi)
    family = {"half_cube": "halfcube", "asinh": "asinh", "normal_cdf": "normcdf"}[transform]

    def sample(n: int, seed: int) -> Sample:
        if transform != "normal_cdf":
            return correlated_gaussian(n, dim, dim, mi=mi, transform=transform, random_state=seed)
        base = correlated_gaussian(n, dim, dim, mi=mi, random_state=seed)
        return Sample(_normal_cdf(base.x), _normal_cdf(base.y), base.mi, f"normal CDF of a {base.description}")

    return Task(_name(family, dim, mi), f"{transform} of each coordinate of a correlated Gaussian, {mi:g} nats on "
                f"all {dim} pairs, {dim}+{dim} dims", "continuous", dim, dim, mi, sample)


def student(dim: int, mi: float, dof: int = STUDENT_DOF) -> Task:
    """``hd-student-df<dof>-<dim>-<mi>``: multivariate Student-t whose total MI is mi nats (module
    docstring); a ValueError if the Student-t's own share at this dim and dof already exceeds mi."""
    dim, mi = _check(dim, mi)
    dof = V.as_int(dof, "dof", 1)
    share = student_t_mi_correction(dim, dim, dof)
    if share >= mi:
        raise ValueError(f"mi must exceed {share:.6g} nats, the MI a Student-t with {dof} degrees of freedom has at "
                         f"{dim}+{dim} dims without correlation; got {mi!r}")
    task = student_task(dim, mi - share, dof)
    return dataclasses.replace(task, name=_name(f"student-df{dof}", dim, mi), description=f"Student-t, {dof} dof, "
                               f"{mi:g} nats ({mi - share:.6g} from the correlation on all {dim} pairs), {dim}+{dim} "
                               "dims")


# -- low intrinsic dimension ----------------------------------------------------------------------


@dataclass(frozen=True)
class Lift:
    """The injective smooth map R^K -> R^d of an ``embed`` task's side: x = Q [u; tanh(W u + c)],
    u = A2 asinh(2 (A1 z + b))."""

    a1: np.ndarray  # (K, K) rotation
    b: np.ndarray  # (K,)
    a2: np.ndarray  # (K, K) rotation
    w: np.ndarray  # (d - K, K)
    c: np.ndarray  # (d - K,)
    q: np.ndarray  # (d, d) rotation

    @classmethod
    def draw(cls, intrinsic: int, dim: int, rng) -> Lift:
        """A random lift: rotations Haar, b ~ N(0, 0.5^2), W ~ N(0, 4 / K), c ~ U(-1, 1)."""
        return cls(a1=_rotation(intrinsic, rng), b=0.5 * rng.standard_normal(intrinsic), a2=_rotation(intrinsic, rng),
                   w=rng.standard_normal((dim - intrinsic, intrinsic)) * (2.0 / math.sqrt(intrinsic)),
                   c=rng.uniform(-1.0, 1.0, dim - intrinsic), q=_rotation(dim, rng))

    def __call__(self, z: np.ndarray) -> np.ndarray:
        u = np.arcsinh(2.0 * (z @ self.a1.T + self.b)) @ self.a2.T
        return np.hstack([u, np.tanh(u @ self.w.T + self.c)]) @ self.q.T

    def invert(self, x: np.ndarray) -> np.ndarray:
        """z from x = self(z): the left inverse on the image (it shows the map is injective)."""
        u = (x @ self.q)[:, : self.a1.shape[0]]
        return (np.sinh(u @ self.a2) / 2.0 - self.b) @ self.a1


@functools.lru_cache(maxsize=4)
def embed_lifts(name: str, intrinsic: int, dim: int) -> tuple[Lift, Lift]:
    """The fixed lifts (X's, Y's) of the ``embed`` task called `name`."""
    return Lift.draw(intrinsic, dim, _task_rng(name, 0)), Lift.draw(intrinsic, dim, _task_rng(name, 1))


def embedded(intrinsic: int, dim: int, mi: float) -> Task:
    """``hd-embed-k<intrinsic>-<dim>-<mi>``: an intrinsic-dim correlated Gaussian (mi nats on its
    pairs) lifted to dim columns per side by :class:`Lift` (module docstring)."""
    intrinsic = V.as_int(intrinsic, "intrinsic", 1)
    dim, mi = _check(dim, mi)
    if dim <= intrinsic:
        raise ValueError(f"dim must exceed intrinsic={intrinsic} (the lift adds dim - intrinsic features), got {dim}")
    name = _name(f"embed-k{intrinsic}", dim, mi)

    def sample(n: int, seed: int) -> Sample:
        base = correlated_gaussian(n, intrinsic, intrinsic, mi=mi, random_state=seed)
        fx, fy = embed_lifts(name, intrinsic, dim)
        return Sample(fx(base.x), fy(base.y), base.mi, f"{intrinsic}-dim correlated Gaussian lifted to {dim} dims")

    return Task(name, f"{mi:g} nats on an intrinsic dimension of {intrinsic} lifted injectively to {dim}+{dim} dims",
                "continuous", dim, dim, mi, sample)


# -- Gaussian random image fields ----------------------------------------------------------------


def field_spectra(side: int) -> tuple[np.ndarray, np.ndarray]:
    """The eigenvalues (side, side) of the field's covariance C (mean 1: unit pixel variance) and of
    the blur B, on the 2-D Fourier frequencies of the side x side torus."""
    f = np.fft.fftfreq(side)
    f2 = f[:, None] ** 2 + f[None, :] ** 2
    lam = (1.0 + (2.0 * math.pi * FIELD_LENGTH) ** 2 * f2) ** -2.0
    return lam / lam.mean(), np.exp(-2.0 * math.pi**2 * FIELD_BLUR**2 * f2)


def field_mi(side: int, sigma: float) -> float:
    """I(X; Y) in nats of the ``field`` task on the side x side torus with noise s.d. sigma:
    1/2 sum_f log(1 + beta_f^2 lambda_f / sigma^2)."""
    lam, beta = field_spectra(side)
    return 0.5 * float(np.sum(np.log1p(beta**2 * lam / sigma**2)))


def field_sigma(side: int, mi: float) -> float:
    """The noise s.d. at which :func:`field_mi` is mi (bisection on log sigma; MI falls as sigma grows)."""
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if field_mi(side, math.exp(mid)) > mi:
            lo = mid
        else:
            hi = mid
    return math.exp(0.5 * (lo + hi))


def _circulant(images: np.ndarray, eigen: np.ndarray) -> np.ndarray:
    """The circulant map with eigenvalues `eigen` (real, even in f) applied to each image (n, s, s)."""
    return np.fft.ifft2(np.fft.fft2(images) * eigen).real


def image_field(side: int, mi: float) -> Task:
    """``hd-field-<side^2>-<mi>``: X a stationary Gaussian field on the side x side torus, Y = X blurred
    + white noise (module docstring), both flattened row-major to side^2 columns."""
    side = V.as_int(side, "side", 2)
    mi = V.as_real(mi, "mi", 0, low_open=True)
    sigma = field_sigma(side, mi)
    truth = field_mi(side, sigma)
    dim = side * side

    def sample(n: int, seed: int) -> Sample:
        n = V.as_int(n, "n", 1)
        rng = np.random.default_rng(seed)
        lam, beta = field_spectra(side)
        x = _circulant(rng.standard_normal((n, side, side)), np.sqrt(lam))
        y = _circulant(x, beta) + sigma * rng.standard_normal((n, side, side))
        return Sample(x.reshape(n, dim), y.reshape(n, dim), truth,
                      f"{side}x{side} Gaussian field, blurred + noise s.d. {sigma:.6g}")

    return Task(_name("field", dim, mi), f"{side}x{side} stationary Gaussian field X, Y = blurred X + noise "
                f"(s.d. {sigma:.6g}), {dim}+{dim} dims", "continuous", dim, dim, truth, sample)


# -- label channel -------------------------------------------------------------------------------


def binary_entropy(p: float) -> float:
    """h(p) in nats (h(0) = 0)."""
    return -sum(q * math.log(q) for q in (p, 1.0 - p) if q > 0)


def label_channel_params(mi: float) -> tuple[int, float]:
    """(m, beta) for a label-channel MI of mi nats: m = ceil(mi / (0.75 log 2)) bits, and beta in
    (0, 1/2) with m (log 2 - h(beta)) = mi (bisection)."""
    mi = V.as_real(mi, "mi", 0, low_open=True)
    bits = math.ceil(mi / (0.75 * math.log(2.0)))
    target = math.log(2.0) - mi / bits  # h(beta), in (0, log 2)
    lo, hi = 0.0, 0.5
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if binary_entropy(mid) < target:
            lo = mid
        else:
            hi = mid
    return bits, 0.5 * (lo + hi)


@functools.lru_cache(maxsize=4)
def label_rotations(name: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The fixed rotations (Q_x, Q_y) of the ``label`` task called `name`."""
    return _rotation(dim, _task_rng(name, 0)), _rotation(dim, _task_rng(name, 1))


def label_channel(dim: int, mi: float) -> Task:
    """``hd-label-<dim>-<mi>``: features of two classes linked by binary symmetric channels (module
    docstring); I(X; Y) = m (log 2 - h(beta)) with (m, beta) from :func:`label_channel_params`."""
    dim, mi = _check(dim, mi)
    bits, beta = label_channel_params(mi)
    if bits > dim:
        raise ValueError(f"dim must be at least {bits} (the class bits that carry mi={mi:g} nats), got {dim}")
    truth = bits * (math.log(2.0) - binary_entropy(beta))
    name = _name("label", dim, mi)

    def sample(n: int, seed: int) -> Sample:
        n = V.as_int(n, "n", 1)
        rng = np.random.default_rng(seed)
        cx = rng.random((n, bits)) < 0.5
        cy = cx ^ (rng.random((n, bits)) < beta)
        qx, qy = label_rotations(name, dim)

        def feature(c, q):
            g = rng.standard_normal((n, dim))
            g[:, :bits] = np.where(c, 1.0, -1.0) * np.abs(g[:, :bits])
            return g @ q.T

        return Sample(feature(cx, qx), feature(cy, qy), truth, f"{bits} class bits through BSC({beta:.6g}), "
                      f"{dim}+{dim} dims")

    return Task(name, f"features of 2^{bits} classes, each bit flipped with probability {beta:.6g} between X and Y, "
                f"{dim}+{dim} dims", "continuous", dim, dim, truth, sample)


# -- the suite -----------------------------------------------------------------------------------


def _family_task(family: str, dim: int, mi: float) -> Task | None:
    """The task of `family` at dim and mi, or None where the family has none (fields: dim not a square)."""
    if family == "gauss-dense":
        return gauss_dense(dim, mi)
    if family == "gauss-sparse":
        return gauss_sparse(dim, mi)
    if family in ("halfcube", "asinh", "normcdf"):
        return transformed({"halfcube": "half_cube", "asinh": "asinh", "normcdf": "normal_cdf"}[family], dim, mi)
    if family == "student":
        return student(dim, mi)
    if family.startswith("embed-k"):
        return embedded(int(family[len("embed-k"):]), dim, mi)
    if family == "field":
        side = math.isqrt(dim)
        return image_field(side, mi) if side * side == dim else None
    return label_channel(dim, mi)


def hd_suite(dims=HD_DIMS, families=HD_FAMILIES) -> list[Task]:
    """The suite's tasks: each family of `families` (:data:`HD_FAMILIES`) at each of `dims` (columns
    per side, each >= 32) and each of its target MIs (:data:`HD_LEVELS`); ``field`` only at dims that
    are perfect squares (8x8, 16x16, 32x32 images at 64, 256, 1024). Truths (``Task.mi``) in nats."""
    dims = [V.as_int(d, "dims", 32) for d in dims]
    for family in families:
        V.choice(family, "families", HD_FAMILIES)
    tasks = [_family_task(family, d, mi) for family in families for d in dims for mi in HD_LEVELS[family]]
    return [t for t in tasks if t is not None]
