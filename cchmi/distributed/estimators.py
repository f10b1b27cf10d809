"""The kNN estimators on shards held by the ranks of a torch.distributed process group.

Each rank passes its own rows (the problem is the concatenation of the shards in rank order);
every rank gets the same result. The steps:

1. validation on every rank, then one exchange of the shard sizes, widths, working dtypes, options
   and label kinds: any rank's error, and any option or label kind that differs between ranks, is
   raised on every rank before any work (no rank is left waiting in a collective);
2. preparation with global statistics (:mod:`cchmi.distributed.prepare`): the rows the
   one-process preparation gives, jitter included;
3. the layout (:mod:`cchmi.distributed.passes`): ``replicate`` (all points gathered on every rank,
   interleaved Morton tiles of queries) or ``ring`` (rows range-partitioned by global Morton code,
   each rank's region as its queries, the other regions passing by); ``auto`` replicates when the
   gathered problem takes at most a quarter of the device's free memory (CUDA:
   ``torch.cuda.mem_get_info``; CPU: ``REPLICATE_HOST_BYTES``) on every rank;
4. the kNN pass and the counting pass, exact (the compiled kernels' queries= path where the
   device has one, else :mod:`cchmi.ops.blocks`): neighbour distances and counts equal one
   process's, bit for bit;
5. the formula's row sums (``ksg_sums``, ``mixed_sums``, ``cmi_sums``, the entropy's sum of log
   distances) over this rank's queries, one all-reduce (float64), and the formula's closing step
   (``ksg_from_sums``, ...) with the global n.

The estimate equals the one-process estimate up to the order of the final float64 sum (NumPy sums
pairwise in one process; here each rank sums its queries, then the ranks' sums are added): a
difference of a few units in the last place (in ring mode a rank's queries are the rows of its
Morton range, not its own rows: the row terms need not go back to their owners to be summed). Not
offered here: intervals (``confidence``) and ``backend`` (the rank's device decides:
:func:`cchmi.distributed.local.kernel_backend`).

With NCCL, each rank computes on ``torch.cuda.current_device()`` unless ``device`` says otherwise:
call ``torch.cuda.set_device(local_rank)`` before the first call, as for any NCCL collective.
"""

from __future__ import annotations

import inspect
import math
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from cchmi import _validate as V
from cchmi.distributed.comm import Comm
from cchmi.distributed.local import kernel_backend
from cchmi.distributed.passes import Layout, count_pass, knn_pass, replicate_layout, ring_layout
from cchmi.distributed.prepare import prepare_shard
from cchmi.estimators.cmi import cmi_from_sums, cmi_sums
from cchmi.estimators.entropy import entropy_from_sums, zero_distance_error
from cchmi.estimators.interval import unit_name
from cchmi.estimators.ksg import estimator_name as ksg_name
from cchmi.estimators.ksg import ksg_from_sums, ksg_sums, warn_if_tied
from cchmi.estimators.mixed import check_class_sizes, mixed_from_sums, mixed_sums
from cchmi.estimators.mixed import estimator_name as mixed_name
from cchmi.estimators.options import KnnOptions, knn_api
from cchmi.ops.base import HostBackend
from cchmi.ops.blocks import Block
from cchmi.results import MIResult

MODES = ("auto", "replicate", "ring")
# In auto mode on the CPU, replicate when the gathered prepared problem is at most this large.
REPLICATE_HOST_BYTES = 1 << 30
_HOST = HostBackend()
_OPTIONS = ("ties", "noise", "standardize", "base", "dtype", "random_state")
_KW = inspect.Parameter.KEYWORD_ONLY
EXTRA = (inspect.Parameter("group", _KW, default=None), inspect.Parameter("mode", _KW, default="auto"),
         inspect.Parameter("device", _KW, default=None))


@dataclass
class Run:
    """A sharded problem after validation and preparation, on this rank."""

    comm: Comm
    opts: KnnOptions
    mode: str
    n: int  # rows of the whole problem
    k: int
    offset: int  # global row of this rank's first row
    widths: tuple[int, ...]  # columns of each sample, in order
    block: Block  # this rank's prepared rows (all samples side by side), on the device
    log_scale: float
    dtype: np.dtype
    start: float

    def layout(self, block: Block) -> tuple[Layout, str]:
        """(the layout of `block`, the mode it runs in)."""
        mode = self.mode
        if mode == "auto":
            fits = self.n * sum(self.widths) * self.dtype.itemsize <= _replicate_budget(self.comm.device)
            mode = "replicate" if self.comm.all_reduce(np.array([int(fits)]), "min")[0] else "ring"
        if mode == "replicate":
            return replicate_layout(self.comm.gather(block), self.comm.rank, self.comm.size,
                                    kernel_backend(self.comm.device)), mode
        return ring_layout(block, self.comm, kernel_backend(self.comm.device)), mode

    def result(self, nats: float, estimator: str, mode: str) -> MIResult:
        return MIResult(estimate=float(nats / math.log(self.opts.base)), n=self.n, k=self.k, estimator=estimator,
                        backend=f"distributed:{mode}:{self.comm.size}", seconds=time.perf_counter() - self.start,
                        unit=unit_name(self.opts.base))


def _replicate_budget(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0] // 4
    return REPLICATE_HOST_BYTES


def as_shard(a, name: str) -> np.ndarray:
    """A validated shard (V.as_samples), except that it may have no rows: (0, d) of its dtype
    (float32 kept, anything else float64)."""
    shape = tuple(getattr(a, "shape", None) or np.shape(a))
    if shape and shape[0] == 0:
        if len(shape) > 2:
            raise ValueError(f"{name} must be 1-D (n,) or 2-D (n, d), got shape {shape}")
        float32 = str(getattr(a, "dtype", "")).removeprefix("torch.") == "float32"
        return np.empty((0, shape[1] if len(shape) == 2 else 1), dtype=np.float32 if float32 else np.float64)
    return V.as_samples(a, name)


def _rows(shards: dict) -> int:
    lengths = {name: a.shape[0] for name, a in shards.items()}
    if len(set(lengths.values())) != 1:
        listed = ", ".join(f"{name} has {m}" for name, m in lengths.items())
        raise ValueError(f"all inputs need the same number of rows on each rank: {listed}")
    return next(iter(lengths.values()))


def _labels(labels, name: str, rows: int) -> np.ndarray:
    arr = V.to_host(labels) if hasattr(labels, "shape") else np.asarray(labels)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1 or arr.shape[0] != rows:
        raise ValueError(f"{name} must be 1-D with one entry per row of this rank's samples ({rows}), got shape "
                         f"{arr.shape}")
    if rows == 0:
        return arr
    if arr.dtype.kind not in "biuUS":
        raise TypeError(f"{name} of sharded problems must be integers or strings (labels are coded by sorting their "
                        f"values across ranks), got dtype {arr.dtype}")
    return arr


def _seeded(comm: Comm, random_state) -> np.random.Generator:
    """The rng of `random_state` on every rank; None draws one seed on rank 0 for all. A seed or
    Generator must be the same on every rank (checked: the jitter of a row must not depend on the
    rank holding it)."""
    if random_state is None:
        random_state = comm.broadcast_object(int(np.random.default_rng().integers(2**63 - 1)))
    rng = V.as_rng(random_state)
    states = comm.all_gather_object(rng.bit_generator.state)
    if any(state != states[0] for state in states):
        raise ValueError("random_state must be the same on every rank (the same seed, or Generators in the same "
                         "state)")
    return rng


# The options every rank must pass alike (random_state is compared as the rng's state, _seeded).
_AGREED = ("k", "variant", "ties", "noise", "standardize", "base", "dtype")


def _fingerprint(opts: KnnOptions, mode, labels, label_values) -> dict:
    """This rank's options that the ranks must share, and the kind of its labels ("integer" or
    "string"; None without labels or on an empty shard, whose kind cannot be told)."""
    fields = {name: repr(getattr(opts, name)) for name in _AGREED}
    # One spelling per value: np.float32 and "float32" agree, and so do 0 and 0.0.
    fields["dtype"] = repr(None if opts.dtype is None else V.working_dtype(opts.dtype).name)
    fields["noise"] = repr(None if opts.noise is None else float(opts.noise))
    fields["mode"] = repr(mode)
    if labels is not None:
        kind = None if label_values is None or label_values.size == 0 else label_values.dtype.kind
        fields[f"{labels[0]} kind"] = None if kind is None else ("strings" if kind in "US" else "integers")
    return fields


def _check_same(meta: list, names: tuple) -> None:
    """ValueError (on every rank: `meta` is the same everywhere) when the ranks' samples differ in
    width, or their options or label kinds differ: naming each option and what each rank passed.
    Run before any work, so that no rank waits in a collective another one never enters."""
    for rank, (_, widths, _, _) in enumerate(meta):
        if widths != meta[0][1]:
            raise ValueError(f"every rank needs samples of the same widths: rank {rank} has {widths} columns for "
                             f"{names}, rank 0 has {meta[0][1]}")
    prints = [m[3] for m in meta]
    differ = []
    for name in prints[0]:
        values = [p[name] for p in prints]
        if len({v for v in values if v is not None}) > 1:
            differ.append(f"{name} ({', '.join(f'rank {r}: {v}' for r, v in enumerate(values) if v is not None)})")
    if differ:
        raise ValueError(f"every rank must pass the same options and the same kind of labels; they differ in "
                         f"{'; '.join(differ)}")


def setup(samples: dict, opts: KnnOptions, group, mode, device, *, ties_allowed=None, labels=None):
    """Validate, agree on the sizes and prepare: (Run, this rank's label values or None).
    Collective."""
    start = time.perf_counter()
    comm = Comm(group, device)
    error, shards, label_values, rows, dtype = None, {}, None, 0, None
    try:
        opts = opts.validated(ties_allowed) if ties_allowed else opts.validated()
        V.choice(mode, "mode", MODES)
        shards = {name: as_shard(a, name) for name, a in samples.items()}
        rows = _rows(shards)
        if labels is not None:
            label_values = _labels(labels[1], labels[0], rows)
        dtype = V.working_dtype(opts.dtype, *shards.values())
    except (ValueError, TypeError) as exc:
        error = exc
    comm.check(error)
    meta = comm.all_gather_object((rows, tuple(a.shape[1] for a in shards.values()), dtype.name,
                                   _fingerprint(opts, mode, labels, label_values)))
    _check_same(meta, tuple(shards))
    n = sum(m[0] for m in meta)
    if n == 0:
        raise ValueError(f"every rank's shard of {', '.join(shards)} is empty: the sharded problem has no rows")
    k = V.check_k(opts.k, n, "the number of samples over all ranks")
    dtype = np.dtype(np.float64) if any(m[2] == "float64" for m in meta) else np.dtype(np.float32)
    offset = sum(m[0] for m in meta[:comm.rank])
    rng = _seeded(comm, opts.random_state)
    prepared, log_scale = [], 0.0
    for name, a in shards.items():
        p, scale = prepare_shard(a, comm, n=n, offset=offset, name=name, dtype=dtype, standardize=opts.standardize,
                                 ties=opts.ties, noise=opts.noise_for(dtype), rng=rng)
        prepared.append(p)
        log_scale += scale
    points = torch.from_numpy(np.concatenate(prepared, axis=1)).to(comm.device)
    block = Block(points, torch.arange(offset, offset + rows, device=comm.device))
    run = Run(comm=comm, opts=opts, mode=mode, n=n, k=k, offset=offset, widths=tuple(meta[0][1]), block=block,
              log_scale=log_scale, dtype=dtype, start=start)
    return run, label_values


def _host(t: torch.Tensor) -> np.ndarray:
    return t.cpu().numpy()


def _warn_tied(rho: torch.Tensor, ties: str, dtype) -> None:
    """warn_if_tied on this rank's queries (each rank warns about its own)."""
    warn_if_tied(_HOST, _host(rho), ties, dtype)


_KSG_FIELDS = ("k", "variant") + _OPTIONS
_ONE_FIELDS = ("k",) + _OPTIONS


@knn_api("x", "y", fields=_KSG_FIELDS, extra=EXTRA)
def ksg_mi(x, y, opts: KnnOptions, group=None, mode: str = "auto", device=None) -> MIResult:
    """I(X; Y) by KSG-1/KSG-2 (or Gao et al. with ties="exact") over the shards x, y of this rank.

    Collective: every rank of `group` (None: the default group) calls it with its rows; the
    problem is the concatenation of the shards in rank order (a shard may be empty). mode:
    "replicate", "ring" or "auto" (module doc). device: where this rank computes (None: the
    current CUDA device with NCCL, else the CPU). Other parameters as in :func:`cchmi.ksg_mi`;
    every rank must pass the same ones, random_state and mode included (checked: a ValueError on
    every rank names those that differ). The result's ``backend`` reads
    "distributed:<mode>:<ranks>".
    """
    run, _ = setup({"x": x, "y": y}, opts, group, mode, device)
    k, variant, ties = run.k, run.opts.variant, run.opts.ties
    layout, mode = run.layout(run.block)
    nb = knn_pass(layout, k, run.widths)
    rho = nb.dist[:, k - 1]
    marginals = (((0,), False), ((1,), False))
    if ties == "exact":
        counts = _host(count_pass(layout, rho[:, None].expand(-1, 3), run.widths,
                                  marginals + (((0, 1), False),), True))
        rho_host = _host(rho)
        k_i = np.where(rho_host == 0, counts[:, 2], k).astype(np.float64)
        sums = ksg_sums(run.n, counts[:, 0], counts[:, 1], variant, ties, k_i)
    else:
        _warn_tied(rho, ties, run.dtype)
        radius = rho[:, None].expand(-1, 2) if variant == 1 else nb.atoms.amax(dim=1)
        counts = _host(count_pass(layout, radius, run.widths, marginals, variant == 2))
        sums = ksg_sums(run.n, counts[:, 0], counts[:, 1], variant, ties)
    nats = ksg_from_sums(run.comm.all_reduce(sums), run.n, k, variant, ties)
    return run.result(nats, ksg_name(ties, variant), mode)


@knn_api("x", "labels", fields=_ONE_FIELDS, extra=EXTRA)
def mixed_mi(x, labels, opts: KnnOptions, group=None, mode: str = "auto", device=None) -> MIResult:
    """I(X; labels) by Ross (2014) (Gao et al.'s term on tied rows with ties="exact") over the shards of this
    rank; see :func:`cchmi.mixed_mi` and
    :func:`ksg_mi` (this module) for the parameters. Labels are integers or strings here (coded by
    sorting the values of all ranks)."""
    run, values = setup({"x": x}, opts, group, mode, device, labels=("labels", labels))
    comm, k, ties = run.comm, run.k, run.opts.ties
    local = np.unique(values)
    classes = np.unique(np.concatenate([u for u in comm.all_gather_object(local) if u.size]))
    codes = np.searchsorted(classes, values).astype(np.int64)
    sizes = comm.all_reduce(np.bincount(codes, minlength=classes.size).astype(np.int64))
    check_class_sizes(sizes, "labels")
    keep = sizes[codes] >= 2
    block = run.block.rows(torch.from_numpy(np.flatnonzero(keep)).to(comm.device))
    block.labels = torch.from_numpy(codes[keep]).to(comm.device)
    n = int(sizes[sizes >= 2].sum())
    layout, mode = run.layout(block)
    q_codes = _host(layout.queries.labels)
    kc = np.minimum(k, sizes[q_codes] - 1)
    nb = knn_pass(layout, k, run.widths, same_label=True)
    rho = nb.dist.gather(1, torch.from_numpy(kc - 1).to(comm.device)[:, None])[:, 0]
    class_size = sizes[q_codes].astype(np.float64)
    k_i = kc.astype(np.float64)
    strict = _host(count_pass(layout, rho[:, None], run.widths, (((0,), False),), False))[:, 0]
    if ties == "exact":
        counts = _host(count_pass(layout, rho[:, None].expand(-1, 2), run.widths, (((0,), True), ((0,), False)), True))
        zero = _host(rho) == 0
        k_i[zero] = counts[zero, 0]
        sums = mixed_sums(n, k_i, class_size, strict, ties, counts[:, 1], zero)
    else:
        _warn_tied(rho, ties, run.dtype)
        sums = mixed_sums(n, k_i, class_size, strict, ties)
    nats = mixed_from_sums(comm.all_reduce(sums), n, ties)
    return run.result(nats, mixed_name(ties), mode)


@knn_api("x", fields=_ONE_FIELDS, extra=EXTRA)
def entropy(x, opts: KnnOptions, group=None, mode: str = "auto", device=None) -> MIResult:
    """H(X) by Kozachenko-Leonenko over the shards of this rank; see :func:`cchmi.entropy` and
    :func:`ksg_mi` (this module) for the parameters."""
    run, _ = setup({"x": x}, opts, group, mode, device, ties_allowed=("jitter", "none"))
    k = run.k
    if run.log_scale == -math.inf:
        warnings.warn("x has a constant column, so its differential entropy is -inf (the distribution has no density "
                      "in all its dimensions); returning -inf", RuntimeWarning, stacklevel=3)
        return run.result(-math.inf, "kl", run.mode)
    layout, mode = run.layout(run.block)
    eps = _host(knn_pass(layout, k, run.widths).dist[:, k - 1]).astype(np.float64)
    zeros = int(run.comm.all_reduce(np.array([np.count_nonzero(eps == 0)]))[0])
    if zeros:
        raise zero_distance_error(zeros, run.opts.ties)
    total = run.comm.all_reduce(np.array([np.sum(np.log(eps))]))
    return run.result(entropy_from_sums(total, run.n, run.widths[0], k) + run.log_scale, "kl", mode)


@knn_api("x", "y", "z", fields=_ONE_FIELDS, extra=EXTRA)
def cmi(x, y, z, opts: KnnOptions, group=None, mode: str = "auto", device=None) -> MIResult:
    """I(X; Y | Z) by Frenzel-Pompe over the shards of this rank; see :func:`cchmi.cmi` and
    :func:`ksg_mi` (this module) for the parameters."""
    run, _ = setup({"x": x, "y": y, "z": z}, opts, group, mode, device, ties_allowed=("jitter", "none"))
    k = run.k
    layout, mode = run.layout(run.block)
    eps = knn_pass(layout, k, run.widths).dist[:, k - 1]
    _warn_tied(eps, run.opts.ties, run.dtype)
    groups = (((0, 2), False), ((1, 2), False), ((2,), False))
    counts = _host(count_pass(layout, eps[:, None].expand(-1, 3), run.widths, groups, False))
    nats = cmi_from_sums(run.comm.all_reduce(cmi_sums(counts[:, 0], counts[:, 1], counts[:, 2])), run.n, k)
    return run.result(nats, "fp", mode)
