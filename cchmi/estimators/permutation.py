"""Permutation test of independence for the kNN estimators."""

from __future__ import annotations

import inspect
import math
import time

import numpy as np

from cchmi import _validate as V
from cchmi._progress import Progress
from cchmi.estimators import interval, ksg, mixed
from cchmi.estimators.options import COMMON, KnnOptions, knn_api
from cchmi.estimators.problem import prepare
from cchmi.results import PermutationResult

_EXTRA = (
    inspect.Parameter("estimator", inspect.Parameter.KEYWORD_ONLY, default="ksg"),
    inspect.Parameter("n_permutations", inspect.Parameter.KEYWORD_ONLY, default=199),
    inspect.Parameter("progress", inspect.Parameter.KEYWORD_ONLY, default=False),
)
_BAR_STEPS = 20  # batched permutations (device backends) go in this many parts when a bar is shown


@knn_api("x", "y", fields=("k", "variant") + COMMON, extra=_EXTRA, k_positional=False)
def permutation_test(x, y, opts: KnnOptions, *, estimator: str, n_permutations: int,
                     progress: bool) -> PermutationResult:
    """Tests H0: X and Y are independent, by shuffling the rows of Y.

    estimator : "ksg" (continuous y, :func:`cchmi.ksg_mi` with `variant`) or "mixed" (y holds
        discrete labels, :func:`cchmi.mixed_mi`).
    progress : show a progress bar over the permutations on stderr. The estimates are the same
        with or without it.
    The data are standardised and jittered once; every permutation reuses them, so the null
    distribution differs from the observed estimate only by the pairing. The p-value is
    (1 + #{null >= observed}) / (1 + n_permutations): exact for exchangeable data, never 0.
    Other parameters as in :func:`cchmi.ksg_mi`.
    """
    start = time.perf_counter()
    estimator = V.choice(estimator, "estimator", ("ksg", "mixed"))
    n_permutations = V.as_int(n_permutations, "n_permutations", 1)
    batch = None
    if estimator == "mixed":
        p = prepare({"x": x}, opts, labels=("y", y))
        mixed.class_sizes(p.codes, "y")
        (xp,), codes, be, k, ties = p.arrays, p.codes, p.be, p.k, p.opts.ties

        def core(perm):
            return mixed.mixed_nats(be, xp, codes if perm is None else codes[perm], k, ties)

        name = mixed.estimator_name(ties)
    else:
        p = prepare({"x": x, "y": y}, opts)
        (xp, yp), be, k, ties, variant = p.arrays, p.be, p.k, p.opts.ties, p.opts.variant

        def core(perm):
            return ksg.ksg_nats(be, xp, be.take(yp, perm), k, variant, ties)

        if ksg.batchable(be, variant, ties):
            def batch(perms):
                return ksg.ksg1_rows(be, xp, yp, [np.arange(p.n)] * len(perms), perms, k, ties)

        name = ksg.estimator_name(ties, variant)
    scale = 1.0 / math.log(p.opts.base)
    observed = core(None) * scale
    if progress:
        bar = Progress(n_permutations, "permutation test", True)
        core, batch = _stepping(core, bar), None if batch is None else _stepping_batch(batch, bar)
    null = interval.permutation_null(core, p.n, p.rng, n_permutations, batch) * scale
    p_value = (1.0 + np.count_nonzero(null >= observed)) / (1.0 + n_permutations)
    return PermutationResult(
        estimate=float(observed),
        p_value=float(p_value),
        null=null,
        n_permutations=n_permutations,
        n=p.n,
        k=k,
        estimator=name,
        backend=be.name,
        seconds=time.perf_counter() - start,
        unit=interval.unit_name(p.opts.base),
    )


def _stepping(core, bar: Progress):
    """`core`, stepping the bar after each permutation."""

    def stepped(perm):
        value = core(perm)
        bar.step()
        return value

    return stepped


def _stepping_batch(batch, bar: Progress):
    """`batch`, called on parts of the permutations (each problem's estimate does not depend on
    the others in its batch) and stepping the bar after each part."""

    def stepped(perms):
        size = -(-len(perms) // _BAR_STEPS)
        parts = []
        for start in range(0, len(perms), size):
            parts.append(batch(perms[start:start + size]))
            bar.step(count=len(parts[-1]))
        return np.concatenate(parts)

    return stepped
