"""One estimation problem, prepared once: validate -> resolve the backend -> prepare the arrays.

Every kNN estimator (and cch's kNN terms, the extrapolated estimates, the permutation test,
ksg_mi_batch, the label MI terms) starts with :func:`prepare`:
the samples are validated (:mod:`cchmi._validate`; a sample that looks transposed or, with
jittered ties, like labels warns), k is checked against n and the backend, the
backend is resolved from the inputs' device and n, the working dtype is chosen, and each sample is
standardised, jittered and cast by the backend (``Backend.prepare``), which also puts it where its
kernels run. Subsamples and permutations then reuse the prepared arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cchmi import _validate as V
from cchmi import ops
from cchmi._extras import require
from cchmi.estimators.options import KnnOptions
from cchmi.ops.knn import check_k


@dataclass
class Problem:
    """Prepared samples (in the order given, as the backend's arrays) and what was resolved."""

    arrays: list
    n: int
    k: int
    be: ops.Backend
    rng: np.random.Generator
    opts: KnnOptions
    log_scale: float = 0.0  # sum of log standard deviations removed by the standardisation
    codes: np.ndarray | None = None  # label codes 0..C-1, when the problem has labels


LABELS_HINT = ("for I(X; labels) pass them as labels, cchmi.mi(x, labels, labels=True) or cchmi.mixed_mi(x, labels); "
               "pass ties='exact' to cchmi.ksg_mi where repeated values are meant")
"""What :func:`prepare` suggests for a sample of I(X; Y) that looks like labels (jittered ties only)."""

ENTROPY_HINT = ("the differential entropy of jittered repeated values is not the entropy of a discrete variable: "
                "count the values for that")
"""What :func:`prepare` says when the one sample of an entropy looks like labels."""


def validate_samples(samples: dict) -> dict:
    """name -> validated (n, d) sample (a torch CUDA tensor stays on its device)."""
    return {name: V.as_kernel_samples(a, name) for name, a in samples.items()}


def prepare(samples: dict, opts: KnnOptions, *, labels: tuple[str, object] | None = None,
            ties_allowed: tuple[str, ...] | None = None, streams: dict | None = None,
            rows: str = "the number of samples") -> Problem:
    """The problem of the validated-or-raw `samples` (name -> array) under `opts`.

    labels: (name, values) of discrete labels of the same rows, coded 0..C-1 in ``codes``.
    ties_allowed: the ``ties`` values this estimator supports (default: all three).
    streams: name -> numpy Generator that jitters that sample (several names may share one, which
    then continues in the order of `samples`); samples not named use the problem's own stream
    (``opts.random_state``, which then also draws the subsamples). cch uses it to jitter the
    student the same way whatever the teacher.
    rows: what the rows are, for the error of a k too large for them.
    """
    opts = opts.validated(ties_allowed) if ties_allowed else opts.validated()
    samples = validate_samples(samples)
    # Labels-like samples are a likely mistake in I(X; Y) (ksg_mi, cchmi.mi) and in an entropy, each
    # with its hint; the discrete z of a conditional MI is meant.
    hint = {frozenset("xy"): LABELS_HINT, frozenset("x"): ENTROPY_HINT}.get(frozenset(samples))
    labels_like = opts.ties == "jitter" and labels is None and hint is not None
    V.warn_about_samples(samples, dict.fromkeys(samples, hint) if labels_like else None)
    first = next(iter(samples.values()))
    codes = None
    lengths = dict(samples)
    if labels is not None:
        codes, _ = V.as_labels(labels[1], labels[0], first.shape[0])
        lengths[labels[0]] = codes
    n = V.same_length(**lengths)
    be = resolve_backend(opts, samples.values(), n)
    try:
        k = check_k(be, opts.k, n, rows)
    except ValueError as exc:
        raise ValueError(f"{exc}{V.transposed_hint(samples)}") from None
    rng = V.as_rng(opts.random_state)
    dtype = V.working_dtype(opts.dtype, *samples.values())
    arrays, log_scale = prepare_arrays(be, samples, opts, dtype, rng, streams)
    return Problem(arrays=arrays, n=n, k=k, be=be, rng=rng, opts=opts, log_scale=log_scale, codes=codes)


def resolve_backend(opts: KnnOptions, arrays, n: int) -> ops.Backend:
    """The backend of validated options: the sharded ops of cchmi.distributed over
    ``opts.devices`` when given, else ``ops.resolve(opts.backend, ...)``."""
    if opts.devices is not None:
        require("torch", "torch", "devices=")
        from cchmi.distributed.local import ShardedBackend

        return ShardedBackend(opts.devices)
    return ops.resolve(opts.backend, device=ops.input_device(*arrays), n=n)


def prepare_arrays(be: ops.Backend, samples: dict, opts: KnnOptions, dtype: np.dtype, rng,
                   streams: dict | None = None) -> tuple[list, float]:
    """Each validated sample standardised, jittered and cast by `be`, in order, each with its own
    stream from `streams` (name -> Generator) or else with `rng`: (arrays, sum of log standard
    deviations)."""
    out, log_scale = [], 0.0
    for name, a in samples.items():
        stream = rng if streams is None else streams.get(name, rng)
        prepared, scale = be.prepare(a, name=name, dtype=dtype, standardize=opts.standardize, ties=opts.ties,
                                     noise=opts.noise_for(dtype), rng=stream)
        out.append(prepared)
        log_scale += scale
    return out, log_scale
