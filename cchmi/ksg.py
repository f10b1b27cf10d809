"""kNN estimators of mutual information and entropy (the KSG family), on any backend.

Conventions, shared by every estimator and every backend:

* **Distances** are max-norm (Chebyshev): ``max_c |x_jc - x_ic|``, computed in the working dtype
  (float32 when every input is float32, else float64; ``dtype=`` overrides) with one rounding per
  coordinate difference, so all backends find the same neighbours and the same counts.
* **Neighbours** exclude the point itself. Among equal distances the smaller index is nearer, which
  fixes the k neighbours (KSG-2 uses their identity, not only the k-th distance).
* **Counts**: KSG-1, Frenzel-Pompe and Ross count points strictly inside the k-th neighbour
  distance (``<``); KSG-2 counts within the marginal extents of the k neighbours, boundary included
  (``<=``); the exact-ties (Gao et al.) estimators count with ``<=``.
* **Standardisation** (``standardize=True``, the default): each column is centred and divided by its
  standard deviation with ddof=0 (the population s.d., as scikit-learn's ``scale``); constant
  columns are only centred. MI is invariant to it; :func:`entropy` adds back ``sum(log s.d.)`` so
  that it estimates the entropy of the data as given.
* **Ties** (duplicated rows, discrete-valued columns): ``ties="jitter"`` (default) adds seeded
  Gaussian noise of standard deviation ``noise * max(1, mean|column|)`` to every column after
  standardisation, as scikit-learn does (``noise`` defaults to 1e-10 in float64 and 1e-5 in
  float32, whose resolution is coarser); a warning is raised when exact ties survive it.
  ``ties="exact"`` uses no noise and handles ties by Gao et al. (2017) (:func:`ksg_mi` variant 1
  and :func:`mixed_mi`); ``ties="none"`` uses no noise and applies the counting rules as they are.
* **Units**: nats; ``base=2`` gives bits. Estimates are never clipped: a negative value is the
  estimator's sampling error around a small MI, and is returned as is.
* **Uncertainty** (``confidence=0.95``): ``n_subsamples`` estimates on half-samples drawn without
  replacement (stratified by label for :func:`mixed_mi`). With m = n // 2, the standard error is
  ``sqrt(m / (n - m) * mean((theta_s - mean theta)^2))``, the delete-d jackknife of Shao & Wu (1989),
  and the interval is ``estimate +/- z * stderr``. It covers sampling variability, not the
  estimator's bias. A bootstrap with replacement is not offered: duplicated points break kNN
  estimators.
"""

from __future__ import annotations

import math
import time
import warnings
from statistics import NormalDist
from typing import Callable

import numpy as np

from cchmi import _backend
from cchmi import _validate as V
from cchmi._special import digamma, digamma_int
from cchmi.results import MIResult

_TIES = ("jitter", "exact", "none")
_DEFAULT_NOISE = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}
# Elements of the (rows, k, d) gather computed at once by _neighbour_extent.
_EXTENT_CHUNK = 4_000_000
# Elements of the stacked (B, m, dx + dy) problems sent to a device backend in one launch.
_BATCH_ELEMENTS = 1 << 26


# ---------------------------------------------------------------------------------------------
# Preparation: standardise, jitter, cast (once, before any subsample or permutation).


def _check_noise(noise, dtype: np.dtype) -> float:
    if noise is None:
        return _DEFAULT_NOISE[dtype]
    if isinstance(noise, (bool, np.bool_)) or not isinstance(noise, (int, float, np.floating, np.integer)):
        raise TypeError(f"noise must be a non-negative float or None, got {noise!r}")
    if not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite float >= 0, got {noise!r}")
    return float(noise)


def _range_error(name: str, dtype: np.dtype) -> ValueError:
    return ValueError(
        f"{name} spans a range too wide for {dtype.name} distances (differences overflow); "
        "use standardize=True or dtype='float64'"
    )


def _prepare(arrays: dict, *, dtype: np.dtype, standardize: bool, ties: str, noise, rng, be=None):
    """Returns (prepared arrays in `dtype`, C-contiguous, where backend `be` computes; sum of log
    standard deviations). Host data is prepared on the host (then moved to a device backend once);
    torch CUDA tensors going to a device backend are prepared on their device."""
    noise = _check_noise(noise, dtype)
    on_device = be is not None and be.on_device
    if on_device and any(not isinstance(a, np.ndarray) for a in arrays.values()):
        return _prepare_on_device(arrays, dtype=dtype, standardize=standardize, ties=ties, noise=noise, rng=rng, be=be)
    out, log_scale = [], 0.0
    for name, a in arrays.items():
        a = np.array(V.to_host(a), dtype=np.float64, copy=True)
        if standardize:
            a -= a.mean(axis=0)
            sd = a.std(axis=0)
            sd[sd == 0] = 1.0
            a /= sd
            log_scale += float(np.log(sd).sum())
        if ties == "jitter" and noise > 0:
            amplitude = noise * np.maximum(1.0, np.abs(a).mean(axis=0))
            a += amplitude * rng.standard_normal(a.shape)
        # |values| < max / 2 keeps every difference, hence every distance, finite in `dtype`.
        if not np.abs(a).max() < np.finfo(dtype).max / 2:
            raise _range_error(name, dtype)
        a = np.ascontiguousarray(a, dtype=dtype)
        out.append(be.put(a) if on_device else a)
    return out, log_scale


def _prepare_on_device(arrays: dict, *, dtype, standardize, ties, noise, rng, be):
    """_prepare's arithmetic in torch on the backend's device (float64, then cast). The jitter comes
    from a torch generator seeded by `rng`: estimates agree with the host path statistically, and
    exactly when no jitter is drawn (ties="none" or noise=0)."""
    torch = be._torch
    target = torch.float32 if dtype == np.float32 else torch.float64
    gen = torch.Generator(device=be.device)
    gen.manual_seed(int(rng.integers(2**63 - 1)))
    out, log_scale = [], 0.0
    for name, a in arrays.items():
        a = be.put(a).to(torch.float64, copy=True)
        if standardize:
            a -= a.mean(dim=0)
            sd = a.std(dim=0, correction=0)
            sd[sd == 0] = 1.0
            a /= sd
            log_scale += float(torch.log(sd).sum())
        if ties == "jitter" and noise > 0:
            amplitude = noise * torch.clamp(a.abs().mean(dim=0), min=1.0)
            a += amplitude * torch.randn(a.shape, generator=gen, device=a.device, dtype=torch.float64)
        if not float(a.abs().max()) < np.finfo(dtype).max / 2:
            raise _range_error(name, dtype)
        out.append(a.to(target).contiguous())
    return out, log_scale


def _host(a) -> np.ndarray:
    """Per-point results (distances, counts) on the host, where the digamma sums are taken."""
    return V.to_host(a)


def _take(a, idx):
    """Rows `idx` (NumPy integer or boolean index) of a NumPy array or a torch tensor; None: all."""
    if idx is None:
        return a
    if isinstance(a, np.ndarray):
        return np.ascontiguousarray(a[idx])
    import torch

    return a[torch.as_tensor(np.asarray(idx), device=a.device)].contiguous()


def _hstack(*arrays):
    if len(arrays) == 1:
        return arrays[0]
    if isinstance(arrays[0], np.ndarray):
        return np.ascontiguousarray(np.concatenate(arrays, axis=-1))
    import torch

    return torch.cat(arrays, dim=-1).contiguous()


def _dtype_name(a) -> str:
    return a.dtype.name if isinstance(a, np.ndarray) else str(a.dtype).removeprefix("torch.")


def _warn_if_tied(rho: np.ndarray, ties: str, dtype_name: str) -> None:
    if ties == "jitter":
        tied = int(np.count_nonzero(rho == 0))
        if tied:
            warnings.warn(
                f"{tied} points have their k-th neighbour at distance 0 after jitter ({dtype_name} cannot "
                "separate them): use ties='exact', dtype='float64' or a larger noise",
                RuntimeWarning,
                stacklevel=4,
            )


def _neighbour_extent(a, idx) -> np.ndarray:
    """max over the k neighbours idx[i] of the max-norm distance to a[i] (same rounding as the kernels)."""
    n, k = idx.shape
    out = []
    step = max(1, _EXTENT_CHUNK // (k * a.shape[1]))
    for s in range(0, n, step):
        e = min(n, s + step)
        diff = abs(a[idx[s:e]] - a[s:e, None, :])
        out.append(diff.max(axis=(1, 2)) if isinstance(diff, np.ndarray) else _host(diff.amax(dim=(1, 2))))
    return np.concatenate(out)


# ---------------------------------------------------------------------------------------------
# Cores: prepared arrays -> estimate in nats. `be` is a backend object (cchmi._backend).


def _ksg_core(be, x, y, k, variant, ties):
    n = x.shape[0]
    joint = _hstack(x, y)
    dist, idx = be.knn(joint, k)
    rho = _host(dist[:, k - 1])
    if ties == "exact":  # Gao et al. (2017)
        k_i = np.full(n, float(k))
        zero = rho == 0
        if zero.any():
            k_i[zero] = _host(be.count_within(joint, rho, True))[zero]
        nx, ny = map(_host, be.count_pair(x, y, rho, rho, True))
        return float(np.mean(digamma(k_i) + math.log(n) - np.log(nx + 1.0) - np.log(ny + 1.0)))
    _warn_if_tied(rho, ties, _dtype_name(x))
    if variant == 1:
        nx, ny = map(_host, be.count_pair(x, y, rho, rho, False))
        return float(digamma(k) + digamma(n) - np.mean(digamma_int(nx + 1) + digamma_int(ny + 1)))
    nx, ny = map(_host, be.count_pair(x, y, _neighbour_extent(x, idx), _neighbour_extent(y, idx), True))
    return float(digamma(k) - 1.0 / k + digamma(n) - np.mean(digamma_int(nx) + digamma_int(ny)))


def _stack_rows(a, rows: list[np.ndarray]):
    """(B, m, d): the rows rows[b] of `a` for every b (NumPy array or torch tensor)."""
    if isinstance(a, np.ndarray):
        return np.ascontiguousarray(a[np.stack(rows)])
    import torch

    return a[torch.as_tensor(np.stack(rows), device=a.device)].contiguous()


def _ksg1_stacked(be, xs, ys, k: int, ties: str) -> np.ndarray:
    """KSG-1 estimates of the problems of a (B, m, dx) / (B, m, dy) stack: one kNN launch and one
    counting launch; equal, problem by problem, to _ksg_core (same kernels, same counts)."""
    m = xs.shape[1]
    dist, _ = be.knn(_hstack(xs, ys), k)
    rho = dist[..., k - 1]
    nx, ny = map(_host, be.count_pair(xs, ys, rho, rho, False))
    _warn_if_tied(_host(rho), ties, _dtype_name(xs))
    terms = digamma_int(nx.ravel() + 1).reshape(nx.shape) + digamma_int(ny.ravel() + 1).reshape(ny.shape)
    return digamma(k) + digamma(m) - terms.mean(axis=1)


def _chunk(m: int, width: int) -> int:
    """Problems of m points and `width` columns per batched launch (bounded memory)."""
    return max(1, _BATCH_ELEMENTS // (m * width))


def _ksg1_batch(be, x, y, x_rows: list[np.ndarray], y_rows: list[np.ndarray], k: int, ties: str) -> np.ndarray:
    """KSG-1 estimates of many problems of one size at once: problem b pairs x[x_rows[b]] with
    y[y_rows[b]] (half-samples: the same rows; permutations: all rows of x, permuted rows of y)."""
    per_chunk = _chunk(len(x_rows[0]), x.shape[1] + y.shape[1])
    return np.concatenate([
        _ksg1_stacked(be, _stack_rows(x, x_rows[s:s + per_chunk]), _stack_rows(y, y_rows[s:s + per_chunk]), k, ties)
        for s in range(0, len(x_rows), per_chunk)
    ])


def _batchable(be, variant: int, ties: str) -> bool:
    """Whether KSG estimates of many same-size problems go to the device in batches."""
    return be.on_device and variant == 1 and ties != "exact"


def _mixed_core(be, x, codes, k, ties):
    sizes = np.bincount(codes)
    keep = sizes[codes] >= 2
    if not keep.all():
        x, codes = _take(x, keep), codes[keep]
    n = x.shape[0]
    radius = np.empty(n, dtype=np.float64)  # holds float32 distances exactly too
    k_i = np.empty(n, dtype=np.float64)
    for c in np.unique(codes):
        members = np.flatnonzero(codes == c)
        kc = min(k, members.size - 1)
        sub = _take(x, members)
        dist, _ = be.knn(sub, kc)
        rho = _host(dist[:, kc - 1])
        radius[members] = rho
        k_i[members] = kc
        zero = rho == 0
        if ties == "exact" and zero.any():
            k_i[members[zero]] = _host(be.count_within(sub, rho, True))[zero]
    class_size = np.bincount(codes)[codes].astype(np.float64)
    if ties == "exact":  # Gao et al. with the label as a discrete coordinate
        nx = _host(be.count_within(x, radius, True))
        return float(np.mean(digamma(k_i) + math.log(n) - np.log(nx + 1.0) - np.log(class_size)))
    _warn_if_tied(radius, ties, _dtype_name(x))
    m = _host(be.count_within(x, radius, False)) + 1  # + 1: the point itself, as in Ross (2014)
    return float(digamma(n) + np.mean(digamma(k_i)) - np.mean(digamma(class_size)) - np.mean(digamma_int(m)))


def _entropy_core(be, x, k, ties):
    n, d = x.shape
    dist, _ = be.knn(x, k)
    eps = _host(dist[:, k - 1]).astype(np.float64)
    if np.any(eps == 0):
        raise ValueError(
            f"{int(np.count_nonzero(eps == 0))} points have their k-th neighbour at distance 0 (duplicated rows): "
            "the differential entropy estimate would be -inf. Use ties='jitter' (the default) or a larger k"
            + (" or dtype='float64'" if ties == "jitter" else "")
        )
    return float(digamma(n) - digamma(k) + d * math.log(2.0) + d * np.mean(np.log(eps)))


def _cmi_core(be, x, y, z, k, ties):
    dist, _ = be.knn(_hstack(x, y, z), k)
    eps = _host(dist[:, k - 1])
    _warn_if_tied(eps, ties, _dtype_name(x))
    nxz, nyz = map(_host, be.count_pair(_hstack(x, z), _hstack(y, z), eps, eps, False))
    nz = _host(be.count_within(z, eps, False))
    return float(digamma(k) - np.mean(digamma_int(nxz + 1) + digamma_int(nyz + 1) - digamma_int(nz + 1)))


# ---------------------------------------------------------------------------------------------
# Shared driver: timing, units, interval.


def _unit(base: float) -> str:
    if base == math.e:
        return "nats"
    if base == 2:
        return "bits"
    if base == 10:
        return "hartleys"
    return f"log{base:g} units"


def _check_ties_for_variant(ties: str, variant: int) -> None:
    if ties == "exact" and variant == 2:
        raise ValueError("ties='exact' (Gao et al. 2017) is defined for variant=1 only")


def _check_classes(codes: np.ndarray, name: str) -> np.ndarray:
    """Class sizes of label codes; needs two classes with 2+ samples, warns about singletons
    (they have no same-class neighbour and are left out of the estimate)."""
    sizes = np.bincount(codes)
    if np.count_nonzero(sizes >= 2) < 2:
        raise ValueError(f"{name} needs at least two classes with 2 or more samples each")
    singletons = int(np.count_nonzero(sizes == 1))
    if singletons:
        warnings.warn(
            f"{name}: {singletons} classes have a single sample; those samples are left out of the estimate",
            RuntimeWarning,
            stacklevel=3,
        )
    return sizes


def _ksg_name(ties: str, variant: int) -> str:
    return "gao" if ties == "exact" else f"ksg{variant}"


def _mixed_name(ties: str) -> str:
    return "ross-gao" if ties == "exact" else "ross"


def subsample_spread(
    core: Callable[[np.ndarray], float | np.ndarray],
    n: int,
    rng,
    n_subsamples: int,
    strata: np.ndarray | None = None,
    batch_core: Callable[[list[np.ndarray]], np.ndarray] | None = None,
) -> float | np.ndarray:
    """Delete-d jackknife standard error of `core` from `n_subsamples` half-samples.

    core(idx) estimates on the rows idx (sorted, without replacement). With strata (label codes),
    each half-sample takes half of every stratum, so every class stays represented. A core that
    returns several values (an array) gets one standard error per value, all from the same
    half-samples, so a difference of two estimates can be one of the values. batch_core(list of
    idx), when given, returns all the estimates at once (one batched launch on a GPU backend).
    """
    m_total = 0
    subsets = []
    for _ in range(n_subsamples):
        if strata is None:
            idx = rng.choice(n, size=n // 2, replace=False)
        else:
            parts = []
            for c in np.unique(strata):
                members = np.flatnonzero(strata == c)
                parts.append(rng.choice(members, size=members.size // 2, replace=False))
            idx = np.concatenate(parts)
        m_total = idx.size
        subsets.append(np.sort(idx))
    estimates = batch_core(subsets) if batch_core is not None else [core(idx) for idx in subsets]
    theta = np.asarray(estimates, dtype=np.float64)
    se = np.sqrt(m_total / (n - m_total) * np.mean((theta - theta.mean(axis=0)) ** 2, axis=0))
    return float(se) if se.ndim == 0 else se


def _run(
    estimator: str,
    core: Callable[[np.ndarray | None], float],
    *,
    n: int,
    k: int,
    backend_name: str,
    base: float,
    confidence,
    n_subsamples,
    rng,
    start: float,
    min_half: int,
    strata=None,
    offset: float = 0.0,
    batch_core=None,
) -> MIResult:
    scale = 1.0 / math.log(base)
    estimate = (core(None) + offset) * scale
    stderr = lo = hi = None
    if confidence is not None:
        n_subsamples = V.as_int(n_subsamples, "n_subsamples", 2)
        if n // 2 < min_half:
            raise ValueError(
                f"an interval needs half-samples of at least {min_half} points (k + 1) per estimate; "
                f"n={n} is too small for k={k}: lower k or drop confidence"
            )
        stderr = subsample_spread(core, n, rng, n_subsamples, strata, batch_core) * scale
        z = NormalDist().inv_cdf(0.5 + confidence / 2)
        lo, hi = estimate - z * stderr, estimate + z * stderr
    return MIResult(
        estimate=float(estimate),
        n=n,
        k=k,
        estimator=estimator,
        backend=backend_name,
        seconds=time.perf_counter() - start,
        unit=_unit(base),
        stderr=stderr,
        ci_low=lo,
        ci_high=hi,
        confidence=confidence if stderr is not None else None,
        n_subsamples=n_subsamples if stderr is not None else None,
    )


# ---------------------------------------------------------------------------------------------
# Public estimators.


def ksg_mi(
    x,
    y,
    k: int = 3,
    *,
    variant: int = 1,
    ties: str = "jitter",
    noise: float | None = None,
    standardize: bool = True,
    base: float = math.e,
    dtype=None,
    random_state=0,
    backend: str = "auto",
    confidence: float | None = None,
    n_subsamples: int = 20,
) -> MIResult:
    """Mutual information I(X; Y) by Kraskov, Stoegbauer and Grassberger (2004), max-norm.

    Parameters
    ----------
    x, y : array-like (n, dx) and (n, dy); a 1-D array is one column. Any real dtype. Torch CUDA
        tensors stay on their device for the cuda and triton backends (prepared there, no host
        round trip); other torch tensors are host data.
    k : neighbours, 1 <= k <= n - 1 (3 is the usual choice: low bias, moderate variance).
    variant : 1 (KSG-1: strict counts inside the k-th joint distance) or 2 (KSG-2: counts within the
        marginal extents of the k neighbours, boundary included).
    ties : "jitter" (default), "exact" (Gao et al. 2017, variant 1 only) or "none"; see the module
        documentation (``help(cchmi.ksg)``) for all conventions.
    noise : jitter amplitude relative to max(1, mean |column|); None: 1e-10 (float64), 1e-5 (float32).
    standardize : centre and scale every column to unit s.d. (ddof=0) first. MI does not change;
        the neighbour search sees commensurate columns.
    base : logarithm base of the result: e (nats, default), 2 (bits).
    dtype : working precision of the distances: None (float32 if all inputs are float32, else
        float64), "float32" or "float64".
    random_state : seed (int), None, or a numpy Generator, for the jitter and the subsamples.
    backend : "auto", "cpu", "cuda", "triton", "faiss" or "numpy" (the slow reference); ``auto``
        takes cuda, then triton, for CUDA tensors and for host problems of 50,000+ points when a
        GPU is visible, else cpu (cchmi._backend). The one that ran is in ``result.backend``.
    confidence : e.g. 0.95 for a standard error and interval from ``n_subsamples`` half-samples.

    Returns
    -------
    MIResult with ``estimate`` in the requested unit (never clipped) and how it was obtained;
    ``float(result)`` is the estimate.
    """
    start = time.perf_counter()
    xa, ya = V.as_kernel_samples(x, "x"), V.as_kernel_samples(y, "y")
    n = V.same_length(x=xa, y=ya)
    k = V.check_k(k, n)
    variant = V.choice(variant, "variant", (1, 2))
    ties = V.choice(ties, "ties", _TIES)
    _check_ties_for_variant(ties, variant)
    base, confidence = V.check_base(base), V.check_confidence(confidence)
    be = _backend.resolve(backend, device=_backend.input_device(xa, ya), n=n)
    rng = np.random.default_rng(random_state)
    dt = V.working_dtype(dtype, xa, ya)
    (xp, yp), _ = _prepare({"x": xa, "y": ya}, dtype=dt, standardize=standardize, ties=ties, noise=noise, rng=rng,
                           be=be)

    def core(idx):
        return _ksg_core(be, _take(xp, idx), _take(yp, idx), k, variant, ties)

    def batch_core(subsets):
        return _ksg1_batch(be, xp, yp, subsets, subsets, k, ties)

    return _run(_ksg_name(ties, variant), core, n=n, k=k, backend_name=be.name, base=base, confidence=confidence,
                n_subsamples=n_subsamples, rng=rng, start=start, min_half=k + 1,
                batch_core=batch_core if _batchable(be, variant, ties) else None)


def mixed_mi(
    x,
    labels,
    k: int = 3,
    *,
    ties: str = "jitter",
    noise: float | None = None,
    standardize: bool = True,
    base: float = math.e,
    dtype=None,
    random_state=0,
    backend: str = "auto",
    confidence: float | None = None,
    n_subsamples: int = 20,
) -> MIResult:
    """I(X; L) between a continuous X (n, d) and discrete labels L (Ross 2014): the CCH's I(S; Y).

    For each point, d_i is the distance to its k-th nearest neighbour among the points of its own
    class, and m_i counts the points of any class strictly closer than d_i, plus the point itself:
    I = psi(N) + <psi(k)> - <psi(N_class)> - <psi(m)>.
    Labels may be any hashable values (ints, strings, ...), with at least two classes. A class with
    fewer than k + 1 points uses k_c = N_c - 1 neighbours; singleton classes carry no neighbour and
    are left out (with a warning), as in scikit-learn's ``mutual_info_classif``.
    ``ties="exact"`` uses Gao et al.'s (2017) mixture form with the label as a discrete coordinate.
    The other parameters are those of :func:`ksg_mi`; the interval's half-samples are stratified
    by label.
    """
    start = time.perf_counter()
    xa = V.as_kernel_samples(x, "x")
    codes, _ = V.as_labels(labels, "labels", xa.shape[0])
    n = V.same_length(x=xa, labels=codes)
    k = V.check_k(k, n)
    ties = V.choice(ties, "ties", _TIES)
    base, confidence = V.check_base(base), V.check_confidence(confidence)
    sizes = _check_classes(codes, "labels")
    if confidence is not None and np.count_nonzero(sizes >= 4) < 2:
        raise ValueError("an interval needs at least two classes with 4 or more samples (half-samples keep half of each)")
    be = _backend.resolve(backend, device=_backend.input_device(xa), n=n)
    rng = np.random.default_rng(random_state)
    dt = V.working_dtype(dtype, xa)
    (xp,), _ = _prepare({"x": xa}, dtype=dt, standardize=standardize, ties=ties, noise=noise, rng=rng, be=be)

    def core(idx):
        return _mixed_core(be, _take(xp, idx), codes if idx is None else codes[idx], k, ties)

    return _run(_mixed_name(ties), core, n=n, k=k, backend_name=be.name, base=base, confidence=confidence,
                n_subsamples=n_subsamples, rng=rng, start=start, min_half=2, strata=codes)


def entropy(
    x,
    k: int = 3,
    *,
    ties: str = "jitter",
    noise: float | None = None,
    standardize: bool = True,
    base: float = math.e,
    dtype=None,
    random_state=0,
    backend: str = "auto",
    confidence: float | None = None,
    n_subsamples: int = 20,
) -> MIResult:
    """Differential entropy H(X) by Kozachenko and Leonenko (1987), max-norm form.

    H = psi(N) - psi(k) + d log 2 + (d / N) sum_i log eps_i, with eps_i the distance to the k-th
    neighbour. With ``standardize=True`` the search runs on standardised columns and sum(log s.d.) is
    added back, so the result estimates the entropy of X as given (in nats unless ``base``).
    ``ties="exact"`` is not available: the differential entropy of data with ties is -inf.
    """
    start = time.perf_counter()
    xa = V.as_kernel_samples(x, "x")
    n = V.same_length(x=xa)
    k = V.check_k(k, n)
    ties = V.choice(ties, "ties", ("jitter", "none"))
    base, confidence = V.check_base(base), V.check_confidence(confidence)
    be = _backend.resolve(backend, device=_backend.input_device(xa), n=n)
    rng = np.random.default_rng(random_state)
    dt = V.working_dtype(dtype, xa)
    (xp,), log_scale = _prepare({"x": xa}, dtype=dt, standardize=standardize, ties=ties, noise=noise, rng=rng,
                                be=be)

    def core(idx):
        return _entropy_core(be, _take(xp, idx), k, ties)

    return _run("kl", core, n=n, k=k, backend_name=be.name, base=base, confidence=confidence,
                n_subsamples=n_subsamples, rng=rng, start=start, min_half=k + 1, offset=log_scale)


def cmi(
    x,
    y,
    z,
    k: int = 3,
    *,
    ties: str = "jitter",
    noise: float | None = None,
    standardize: bool = True,
    base: float = math.e,
    dtype=None,
    random_state=0,
    backend: str = "auto",
    confidence: float | None = None,
    n_subsamples: int = 20,
) -> MIResult:
    """Conditional mutual information I(X; Y | Z) by Frenzel and Pompe (2007), max-norm.

    eps_i is the k-th neighbour distance in the joint (x, y, z) space; n_xz, n_yz and n_z count the
    points strictly inside it in the (x, z), (y, z) and z subspaces:
    I = psi(k) - <psi(n_xz + 1) + psi(n_yz + 1) - psi(n_z + 1)>.
    ``ties`` may be "jitter" or "none". Other parameters as in :func:`ksg_mi`.
    """
    start = time.perf_counter()
    xa, ya, za = V.as_kernel_samples(x, "x"), V.as_kernel_samples(y, "y"), V.as_kernel_samples(z, "z")
    n = V.same_length(x=xa, y=ya, z=za)
    k = V.check_k(k, n)
    ties = V.choice(ties, "ties", ("jitter", "none"))
    base, confidence = V.check_base(base), V.check_confidence(confidence)
    be = _backend.resolve(backend, device=_backend.input_device(xa, ya, za), n=n)
    rng = np.random.default_rng(random_state)
    dt = V.working_dtype(dtype, xa, ya, za)
    (xp, yp, zp), _ = _prepare({"x": xa, "y": ya, "z": za}, dtype=dt, standardize=standardize, ties=ties,
                               noise=noise, rng=rng, be=be)

    def core(idx):
        return _cmi_core(be, _take(xp, idx), _take(yp, idx), _take(zp, idx), k, ties)

    return _run("fp", core, n=n, k=k, backend_name=be.name, base=base, confidence=confidence,
                n_subsamples=n_subsamples, rng=rng, start=start, min_half=k + 1)


def _ndim(a) -> int | None:
    try:
        return a.ndim if hasattr(a, "ndim") else np.ndim(a)
    except ValueError:  # ragged nested lists: as_samples reports them
        return None


def _problems(a, name: str) -> list:
    """A (B, n, d) array/tensor or a sequence of (n, d) arrays/tensors -> list of validated (n, d)
    samples; anything else is one (n, d) sample shared by every problem (a list of one entry)."""
    if isinstance(a, (list, tuple)) and a and all(hasattr(p, "ndim") for p in a):
        parts = list(a)
    elif _ndim(a) == 3:
        parts = list(a)
    else:
        return [V.as_kernel_samples(a, name)]
    return [V.as_kernel_samples(p, f"{name}[{b}]") for b, p in enumerate(parts)]


def ksg_mi_batch(
    x,
    y,
    k: int = 3,
    *,
    variant: int = 1,
    ties: str = "jitter",
    noise: float | None = None,
    standardize: bool = True,
    base: float = math.e,
    dtype=None,
    random_state=0,
    backend: str = "auto",
) -> list[MIResult]:
    """KSG estimates of many problems over the same number of samples: I(X_b; Y_b) for b = 1..B.

    x, y : a (B, n, d) array or torch tensor, or a sequence of B (n, d) arrays of one shape; either
        may instead be one (n, d) array shared by every problem (one student against many
        teachers, say). Every problem is standardised and jittered on its own.
    On the cuda and triton backends, KSG-1 problems (``ties`` "jitter" or "none") run as batched
    launches: one kNN launch and one counting launch per chunk of problems, instead of one per
    problem. Elsewhere the problems run one after another. Other parameters as in :func:`ksg_mi`.

    Returns one MIResult per problem; its ``seconds`` is the batch's wall time divided by B. With
    ``ties="none"`` each estimate equals ``ksg_mi`` on that problem alone; with jitter the noise
    draws differ (one random stream for the whole batch).
    """
    start = time.perf_counter()
    xs, ys = _problems(x, "x"), _problems(y, "y")
    b = max(len(xs), len(ys))
    if len(xs) not in (1, b) or len(ys) not in (1, b):
        raise ValueError(f"x and y must hold the same number of problems (or one shared array); got {len(xs)} "
                         f"and {len(ys)}")
    xs, ys = xs * (b // len(xs)), ys * (b // len(ys))
    for i, (xa, ya) in enumerate(zip(xs, ys)):
        V.same_length(**{f"x[{i}]": xa, f"y[{i}]": ya})
        if xa.shape != xs[0].shape or ya.shape != ys[0].shape:
            raise ValueError(f"every problem needs the shapes of the first: x[{i}] is {tuple(xa.shape)} and y[{i}] "
                             f"is {tuple(ya.shape)}, not {tuple(xs[0].shape)} and {tuple(ys[0].shape)}")
    n = xs[0].shape[0]
    k = V.check_k(k, n)
    variant = V.choice(variant, "variant", (1, 2))
    ties = V.choice(ties, "ties", _TIES)
    _check_ties_for_variant(ties, variant)
    base = V.check_base(base)
    be = _backend.resolve(backend, device=_backend.input_device(*xs, *ys), n=n)
    rng = np.random.default_rng(random_state)
    dt = V.working_dtype(dtype, *xs, *ys)
    prepared = [
        _prepare({"x": xa, "y": ya}, dtype=dt, standardize=standardize, ties=ties, noise=noise, rng=rng, be=be)[0]
        for xa, ya in zip(xs, ys)
    ]
    if _batchable(be, variant, ties):
        stack = np.stack if not be.on_device else be._torch.stack
        per_chunk = _chunk(n, xs[0].shape[1] + ys[0].shape[1])
        nats = np.concatenate([
            _ksg1_stacked(be, stack([p[0] for p in prepared[s:s + per_chunk]]),
                          stack([p[1] for p in prepared[s:s + per_chunk]]), k, ties)
            for s in range(0, b, per_chunk)
        ])
    else:
        nats = np.array([_ksg_core(be, xp, yp, k, variant, ties) for xp, yp in prepared])
    seconds = (time.perf_counter() - start) / b
    scale = 1.0 / math.log(base)
    return [MIResult(estimate=float(v * scale), n=n, k=k, estimator=_ksg_name(ties, variant), backend=be.name,
                     seconds=seconds, unit=_unit(base)) for v in nats]
