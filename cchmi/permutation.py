"""Permutation test of independence for the kNN estimators."""

from __future__ import annotations

import math
import time

import numpy as np

from cchmi import _backend
from cchmi import _validate as V
from cchmi.ksg import (
    _TIES,
    _check_classes,
    _batchable,
    _check_ties_for_variant,
    _ksg1_batch,
    _ksg_core,
    _ksg_name,
    _mixed_core,
    _mixed_name,
    _prepare,
    _take,
    _unit,
)
from cchmi.results import PermutationResult


def permutation_test(
    x,
    y,
    *,
    estimator: str = "ksg",
    k: int = 3,
    variant: int = 1,
    n_permutations: int = 199,
    ties: str = "jitter",
    noise: float | None = None,
    standardize: bool = True,
    base: float = math.e,
    dtype=None,
    random_state=0,
    backend: str = "auto",
) -> PermutationResult:
    """Tests H0: X and Y are independent, by shuffling the rows of Y.

    estimator : "ksg" (continuous y, :func:`cchmi.ksg_mi` with `variant`) or "mixed" (y holds
        discrete labels, :func:`cchmi.mixed_mi`).
    The data are standardised and jittered once; every permutation reuses them, so the null
    distribution differs from the observed estimate only by the pairing. The p-value is
    (1 + #{null >= observed}) / (1 + n_permutations): exact for exchangeable data, never 0.
    """
    start = time.perf_counter()
    estimator = V.choice(estimator, "estimator", ("ksg", "mixed"))
    xa = V.as_kernel_samples(x, "x")
    n_permutations = V.as_int(n_permutations, "n_permutations", 1)
    ties = V.choice(ties, "ties", _TIES)
    variant = V.choice(variant, "variant", (1, 2))
    base = V.check_base(base)
    be = _backend.resolve(backend, device=_backend.input_device(xa, y), n=xa.shape[0])
    rng = np.random.default_rng(random_state)
    batch = None
    if estimator == "mixed":
        codes, _ = V.as_labels(y, "y", xa.shape[0])
        n = V.same_length(x=xa, y=codes)
        k = V.check_k(k, n)
        _check_classes(codes, "y")
        (xp,), _ = _prepare({"x": xa}, dtype=V.working_dtype(dtype, xa), standardize=standardize, ties=ties,
                            noise=noise, rng=rng, be=be)

        def core(perm):
            return _mixed_core(be, xp, codes if perm is None else codes[perm], k, ties)

        name = _mixed_name(ties)
    else:
        ya = V.as_kernel_samples(y, "y")
        n = V.same_length(x=xa, y=ya)
        k = V.check_k(k, n)
        _check_ties_for_variant(ties, variant)
        (xp, yp), _ = _prepare({"x": xa, "y": ya}, dtype=V.working_dtype(dtype, xa, ya), standardize=standardize,
                               ties=ties, noise=noise, rng=rng, be=be)

        def core(perm):
            return _ksg_core(be, xp, _take(yp, perm), k, variant, ties)

        if _batchable(be, variant, ties):
            def batch(perms):
                return _ksg1_batch(be, xp, yp, [np.arange(n)] * len(perms), perms, k, ties)

        name = _ksg_name(ties, variant)
    scale = 1.0 / math.log(base)
    observed = core(None) * scale
    perms = [rng.permutation(n) for _ in range(n_permutations)]
    null = (batch(perms) if batch is not None else np.array([core(p) for p in perms])) * scale
    p_value = (1.0 + np.count_nonzero(null >= observed)) / (1.0 + n_permutations)
    return PermutationResult(
        estimate=float(observed),
        p_value=float(p_value),
        null=null,
        n_permutations=n_permutations,
        n=n,
        k=k,
        estimator=name,
        backend=be.name,
        seconds=time.perf_counter() - start,
        unit=_unit(base),
    )
