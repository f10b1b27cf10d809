"""I(X; Y) by Kraskov, Stoegbauer and Grassberger (2004): the formula, :func:`ksg_mi`,
:func:`ksg_mi_batch` and the :class:`KSG` class."""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from cchmi import _validate as V
from cchmi import ops
from cchmi._special import digamma, digamma_int
from cchmi.estimators import interval
from cchmi.estimators.base import KnnEstimator
from cchmi.estimators.options import COMMON, INTERVAL, SHARDED, KnnOptions, knn_api
from cchmi.estimators.problem import prepare, prepare_arrays, resolve_backend
from cchmi.ops.knn import check_k
from cchmi.results import MIResult

FIELDS = ("k", "variant") + COMMON + INTERVAL + SHARDED
# Elements of the stacked (B, m, dx + dy) problems sent to a device backend in one launch.
_BATCH_ELEMENTS = 1 << 26


def estimator_name(ties: str, variant: int) -> str:
    return "gao" if ties == "exact" else f"ksg{variant}"


def warn_if_tied(be: ops.Backend, rho, ties: str, dtype) -> None:
    """Jittered data whose k-th neighbour distance is 0 somewhere: `dtype` (the working dtype, of
    either array kind) could not separate them."""
    if ties == "jitter":
        tied = int(np.count_nonzero(be.host(rho) == 0))
        if tied:
            warnings.warn(
                f"{tied} points have their k-th neighbour at distance 0 after jitter ({str(dtype).removeprefix('torch.')} cannot "
                "separate them): use ties='exact', dtype='float64' or a larger noise",
                RuntimeWarning,
                stacklevel=5,
            )


def ksg_sums(n: int, nx, ny, variant: int, ties: str, k_i=None) -> np.ndarray:
    """The sums over rows of a KSG estimate, from the marginal counts nx, ny of these rows (and,
    with ties="exact", their k_i), n the problem's size: the only part of the formula that needs
    the rows. Sums of row subsets add up (sharded execution: cchmi.distributed)."""
    if ties == "exact":
        return np.array([np.sum(digamma(k_i) + math.log(n) - np.log(nx + 1.0) - np.log(ny + 1.0))])
    shift = 1 if variant == 1 else 0
    return np.array([np.sum(digamma_int(nx + shift) + digamma_int(ny + shift))])


def ksg_from_sums(sums: np.ndarray, n: int, k: int, variant: int, ties: str) -> float:
    """The KSG estimate in nats from the row sums of all n rows (ksg_sums)."""
    if ties == "exact":
        return float(sums[0] / n)
    if variant == 1:
        return float(digamma(k) + digamma(n) - sums[0] / n)
    return float(digamma(k) - 1.0 / k + digamma(n) - sums[0] / n)


def ksg_nats(be: ops.Backend, x, y, k: int, variant: int, ties: str) -> float:
    """KSG-1 / KSG-2 (or Gao et al. with ties="exact") in nats on prepared arrays of one problem."""
    n = x.shape[0]
    joint = be.hstack(x, y)
    dist, idx = ops.knn(be, joint, k)
    rho = be.host(dist[:, k - 1])
    if ties == "exact":  # Gao et al. (2017)
        k_i = np.full(n, float(k))
        zero = rho == 0
        if zero.any():
            k_i[zero] = be.host(ops.count_within(be, joint, rho, True))[zero]
        nx, ny = map(be.host, ops.count_pair(be, x, y, rho, rho, True))
        return ksg_from_sums(ksg_sums(n, nx, ny, variant, ties, k_i), n, k, variant, ties)
    warn_if_tied(be, rho, ties, x.dtype)
    if variant == 1:
        nx, ny = map(be.host, ops.count_pair(be, x, y, rho, rho, False))
    else:
        nx, ny = map(be.host, ops.count_pair(be, x, y, be.extent(x, idx), be.extent(y, idx), True))
    return ksg_from_sums(ksg_sums(n, nx, ny, variant, ties), n, k, variant, ties)


def ksg1_stacked(be: ops.Backend, xs, ys, k: int, ties: str) -> np.ndarray:
    """KSG-1 estimates of the problems of a (B, m, dx) / (B, m, dy) stack: one kNN launch and one
    counting launch; equal, problem by problem, to ksg_nats (same kernels, same counts)."""
    m = xs.shape[1]
    dist, _ = ops.knn(be, be.hstack(xs, ys), k)
    rho = dist[..., k - 1]
    nx, ny = map(be.host, ops.count_pair(be, xs, ys, rho, rho, False))
    warn_if_tied(be, rho, ties, xs.dtype)
    terms = digamma_int(nx.ravel() + 1).reshape(nx.shape) + digamma_int(ny.ravel() + 1).reshape(ny.shape)
    return digamma(k) + digamma(m) - terms.mean(axis=1)


def _per_launch(m: int, width: int) -> int:
    """Problems of m points and `width` columns per batched launch (bounded memory)."""
    return max(1, _BATCH_ELEMENTS // (m * width))


def ksg1_rows(be: ops.Backend, x, y, x_rows: list[np.ndarray], y_rows: list[np.ndarray], k: int,
              ties: str) -> np.ndarray:
    """KSG-1 estimates of many problems of one size at once: problem b pairs x[x_rows[b]] with
    y[y_rows[b]] (half-samples: the same rows; permutations: all rows of x, permuted rows of y)."""
    step = _per_launch(len(x_rows[0]), x.shape[1] + y.shape[1])
    return np.concatenate([
        ksg1_stacked(be, be.stack([be.take(x, r) for r in x_rows[s:s + step]]),
                     be.stack([be.take(y, r) for r in y_rows[s:s + step]]), k, ties)
        for s in range(0, len(x_rows), step)
    ])


def batchable(be: ops.Backend, variant: int, ties: str) -> bool:
    """Whether KSG estimates of many same-size problems go to the device in batches."""
    return be.on_device and variant == 1 and ties != "exact"


@knn_api("x", "y", fields=FIELDS)
def ksg_mi(x, y, opts: KnnOptions) -> MIResult:
    """Mutual information I(X; Y) by Kraskov, Stoegbauer and Grassberger (2004), max-norm.

    Parameters
    ----------
    x, y : array-like (n, dx) and (n, dy); a 1-D array is one column. Any real dtype. Torch CUDA
        tensors stay on their device for the cuda and triton backends (prepared there, no host
        round trip); other torch tensors are host data.
    k : neighbours, 1 <= k <= n - 1 (3 is the usual choice: low bias, moderate variance).
    variant : 1 (KSG-1: strict counts inside the k-th joint distance) or 2 (KSG-2: counts within the
        marginal extents of the k neighbours, boundary included).
    ties : "jitter" (default), "exact" (Gao et al. 2017, variant 1 only) or "none"; see
        ``help(cchmi.estimators)`` for all conventions.
    noise : jitter amplitude relative to max(1, mean |column|); None: 1e-10 (float64), 1e-5 (float32).
    standardize : centre and scale every column to unit s.d. (ddof=0) first. MI does not change;
        the neighbour search sees commensurate columns. A column whose s.d. is more than 3 times
        its interquartile scale IQR / 1.349 (a few far rows set its s.d.: one row at 1e3 among
        3,000 N(0, 1) rows makes it 18 times larger and would squeeze the other rows together) is
        centred on its quartiles' midpoint and divided by the interquartile scale instead, with a
        RuntimeWarning naming it; Gaussian columns stay below 1.5 times even at n = 100. Partly
        discrete columns, where one value at a quartile holds a quarter of the rows or more
        (mostly constant ones, a rectified unit's zeros), keep their s.d. The same rule holds on
        every backend and in cchmi.distributed.
    base : logarithm base of the result: e (nats, default), 2 (bits).
    dtype : working precision of the distances: None (float32 if all inputs are float32, else
        float64), "float32" or "float64".
    random_state : seed (int >= 0), None, or a numpy Generator, for the jitter and the subsamples.
    backend : "auto", "cpu", "cuda", "triton", "faiss" or "numpy" (the slow reference); ``auto``
        takes cuda, then triton, for CUDA tensors and for host problems of 50,000+ points when a
        GPU is visible, else cpu (cchmi.ops.registry). The one that ran is in ``result.backend``.
    confidence : e.g. 0.95 for a standard error and interval from ``n_subsamples`` half-samples.
    devices : None, or a list of devices (CUDA ordinals, "cuda:1", "cpu", torch.device) to split
        the kNN and counting ops over, in this process (replicate mode of :mod:`cchmi.distributed`:
        every device holds the points and answers interleaved tiles of queries, one thread each;
        needs torch; ``backend`` stays "auto"). Counts and neighbours equal one device's; the
        estimate is the same. Across processes and machines, see :mod:`cchmi.distributed`.

    Returns
    -------
    MIResult with ``estimate`` in the requested unit (never clipped) and how it was obtained;
    ``float(result)`` is the estimate.
    """
    start = time.perf_counter()
    p = prepare({"x": x, "y": y}, opts)
    xp, yp = p.arrays
    be, k, variant, ties = p.be, p.k, p.opts.variant, p.opts.ties

    def core(rows):
        return ksg_nats(be, be.take(xp, rows), be.take(yp, rows), k, variant, ties)

    def batch_core(subsets):
        return ksg1_rows(be, xp, yp, subsets, subsets, k, ties)

    return interval.estimate(estimator_name(ties, variant), core, p, start=start,
                             batch_core=batch_core if batchable(be, variant, ties) else None)


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


@knn_api("x", "y", fields=("k", "variant") + COMMON + SHARDED)
def ksg_mi_batch(x, y, opts: KnnOptions) -> list[MIResult]:
    """KSG estimates of many problems over the same number of samples: I(X_b; Y_b) for b = 1..B.

    x, y : a (B, n, d) array or torch tensor, or a sequence of B (n, d) arrays of one shape; either
        may instead be one (n, d) array shared by every problem (one student against many
        teachers, say). Every problem is standardised and jittered on its own.
    On the cuda and triton backends, KSG-1 problems (``ties`` "jitter" or "none") run as batched
    launches: one kNN launch and one counting launch per chunk of problems, instead of one per
    problem. Elsewhere the problems run one after another. With ``devices=[...]`` the problems are
    spread over the devices (problem b on device b mod D, one thread per device, no communication)
    and give the estimates of ``devices=None`` on the cpu backend. Other parameters as in
    :func:`ksg_mi`.

    Returns one MIResult per problem; its ``seconds`` is the batch's wall time divided by B. With
    ``ties="none"`` each estimate equals ``ksg_mi`` on that problem alone; with jitter the noise
    draws differ (one random stream for the whole batch).
    """
    start = time.perf_counter()
    opts = opts.validated()
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
    be = resolve_backend(opts, [*xs, *ys], n)
    k = check_k(be, opts.k, n)
    rng = V.as_rng(opts.random_state)
    dtype = V.working_dtype(opts.dtype, *xs, *ys)
    prepared = [prepare_arrays(be, {"x": xa, "y": ya}, opts, dtype, rng)[0] for xa, ya in zip(xs, ys)]
    if opts.devices is not None:
        backends = [resolve_backend(dataclasses.replace(opts, devices=(d,)), [], n) for d in opts.devices]
        with ThreadPoolExecutor(len(backends)) as pool:
            nats = np.array(list(pool.map(
                lambda i: ksg_nats(backends[i % len(backends)], *prepared[i], k, opts.variant, opts.ties), range(b))))
    elif batchable(be, opts.variant, opts.ties):
        step = _per_launch(n, xs[0].shape[1] + ys[0].shape[1])
        nats = np.concatenate([
            ksg1_stacked(be, be.stack([p[0] for p in prepared[s:s + step]]),
                         be.stack([p[1] for p in prepared[s:s + step]]), k, opts.ties)
            for s in range(0, b, step)
        ])
    else:
        nats = np.array([ksg_nats(be, xp, yp, k, opts.variant, opts.ties) for xp, yp in prepared])
    seconds = (time.perf_counter() - start) / b
    scale = 1.0 / math.log(opts.base)
    return [MIResult(estimate=float(v * scale), n=n, k=k, estimator=estimator_name(opts.ties, opts.variant),
                     backend=be.name, seconds=seconds, unit=interval.unit_name(opts.base)) for v in nats]


class KSG(KnnEstimator):
    """I(X; Y) by KSG-1/KSG-2; see :func:`cchmi.ksg_mi`. After ``fit(x, y)``: ``mi_``, ``result_``."""

    _function = staticmethod(ksg_mi)
    _fields = FIELDS

    def fit(self, x, y):
        self.mi_ = self._estimate(x, y)
        return self


