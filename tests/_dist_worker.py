"""The body of each process of tests/test_distributed.py's gloo groups (torch.multiprocessing spawn).

``main(rank, world, port)`` joins a gloo group on 127.0.0.1:port and runs every check with this
rank's shard of the same data, on the whole group and on a subgroup of two ranks: the sharded ops
against the one-process ops on the whole array (neighbours and counts equal, float32 and float64,
ties and duplicated rows, all rows equal, an integer grid; ring mode on the kernels with and
without block pruning and on the block ops), ring mode's range partition (every row owned once, in
the whole problem's Morton order, within the balance bound, results routed back to their owners),
the sharded preparation against the one-process one, the estimators against the one-process
estimators, in both modes, and the errors every rank must raise together. World 3 leaves rank 1 empty. A failed
assertion fails the spawn, which fails the test with this process's traceback.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import warnings

import numpy as np
import torch.distributed as dist

N = 151
K = 3
# Estimates: the sharded sum of the row terms is added in another order than NumPy's pairwise sum.
SUM_ORDER_RTOL = 1e-12


def bounds(world: int) -> list[int]:
    """Shard boundaries: uneven shards (P does not divide N); with 3 ranks, rank 1 is empty."""
    if world == 3:
        return [0, 50, 50, N]
    cuts = [round(N * (r + 0.3) / world) if 0 < r else 0 for r in range(world)]
    return sorted(set(cuts)) + [N]


def data():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((N, 2))
    y = x + 0.5 * rng.standard_normal((N, 2))
    z = x[:, :1] + rng.standard_normal((N, 1))
    dup = rng.choice(N, 25, replace=False)
    x[dup[:12]], y[dup[:12]] = x[dup[12:24]], y[dup[12:24]]  # duplicated rows
    y[:, 1] = np.round(y[:, 1])  # a discrete column: ties in the marginal
    labels = rng.integers(0, 3, N)
    labels[N - 1] = 9  # a singleton class, left out by the Ross estimator
    w = rng.standard_normal((N, 3))  # continuous, for the entropy
    return x, y, z, labels, w


def close(a, b) -> bool:
    return a.estimate == b.estimate or math.isclose(a.estimate, b.estimate, rel_tol=SUM_ORDER_RTOL, abs_tol=1e-13)


@contextlib.contextmanager
def ring_path(path: str):
    """Ring mode on "kernels" (pruned), "unpruned" kernels or the "blocks" ops (no kernel backend)."""
    import torch

    from cchmi.distributed import estimators, passes

    kernel_backend = estimators.kernel_backend
    assert kernel_backend(torch.device("cpu")) is not None  # "kernels" runs the kernels, not the block ops
    passes.PRUNE_BLOCKS = path != "unpruned"
    if path == "blocks":
        estimators.kernel_backend = lambda device: None
    try:
        yield
    finally:
        passes.PRUNE_BLOCKS, estimators.kernel_backend = True, kernel_backend


# (mode, ring path) of the ops checks: every ring path against one process.
PATHS = (("replicate", None), ("ring", "kernels"), ("ring", "unpruned"), ("ring", "blocks"))


def check_ops(sl, group) -> None:
    from cchmi import distributed as D
    from cchmi import ops

    x, y, *_ = data()
    grid = np.random.default_rng(8).integers(-1, 2, size=(N, 3)).astype(np.float64)
    cpu = ops.resolve("cpu")
    cases = [(x, y, np.float64, PATHS), (x, y, np.float32, PATHS[:2]),
             (grid[:, :2], grid[:, 2:], np.float64, PATHS[1:2]), (np.zeros((N, 2)), np.zeros((N, 1)), np.float32,
                                                                  PATHS[1:2])]
    for xa, ya, dtype, paths in cases:
        xs, ys = xa.astype(dtype), ya.astype(dtype)
        joint = np.hstack([xs, ys])
        ref_d, ref_i = ops.knn(cpu, joint, K)
        rho = ref_d[:, K - 1]
        for mode, path in paths:
            with ring_path(path or "kernels"):
                d, i = D.knn(joint[sl], K, mode=mode, group=group)
                assert d.dtype == dtype and np.array_equal(d, ref_d[sl]), (mode, path, dtype)
                assert np.array_equal(i, ref_i[sl]), (mode, path, dtype)
                for inclusive in (False, True):
                    cx, cy = D.count_pair(xs[sl], ys[sl], rho[sl], rho[sl], inclusive, mode=mode, group=group)
                    rx, ry = ops.count_pair(cpu, xs, ys, rho, rho, inclusive)
                    assert np.array_equal(cx, rx[sl]) and np.array_equal(cy, ry[sl]), (mode, path, dtype, inclusive)


def check_partition(sl, comm) -> None:
    """Ring mode's range partition on the group: every row received by one rank, the ranks' rows in
    key order the whole problem's morton_order, each rank under the bound of
    cchmi.distributed.partition, labels carried, and Route.back / forward inverse exchanges."""
    import torch

    from cchmi.distributed import partition
    from cchmi.ops._spatial import morton_order
    from cchmi.ops.blocks import Block

    x, *_ = data()
    for p in (x, np.zeros((N, 2))):
        t = torch.from_numpy(p)
        mine, route = partition.range_partition(Block(t[sl], torch.arange(sl.start, sl.stop), -torch.arange(
            sl.start, sl.stop)), comm)
        index = mine.index.numpy()
        assert np.array_equal(mine.points.numpy(), p[index]) and np.array_equal(mine.labels.numpy(), -index)
        f = t.to(torch.float32)
        codes = partition.morton_codes(t, f.amin(dim=0), f.amax(dim=0)).numpy()
        parts = comm.all_gather_object(index[partition.key_order(codes[index], index)])
        assert np.array_equal(np.concatenate(parts), morton_order(t[None])[0].numpy())
        widths = np.diff(bounds(comm.size))
        s = partition.OVERSAMPLE * comm.size
        assert index.size < N / comm.size + -(-widths.max() // s) + sum(-(-widths // s))
        assert np.array_equal(route.back(mine.index[:, None])[:, 0].numpy(), np.arange(sl.start, sl.stop))
        assert torch.equal(route.forward(torch.arange(sl.start, sl.stop)), mine.index)


def check_prepare(sl, comm) -> np.ndarray:
    """The sharded preparation against the one-process one; returns the whole prepared single
    column (standardised, jittered: the case NumPy sums pairwise) as this group prepared it."""
    from cchmi.distributed.prepare import prepare_shard
    from cchmi.ops.base import prepare_on_host

    x, _, z, _, _ = data()
    for a, exact in ((x, True), (z, False)):  # one column: NumPy sums it pairwise (prepare.py's docstring)
        ref, _ = prepare_on_host(a, name="a", dtype=np.dtype(np.float32), standardize=False, ties="none", noise=0.0,
                                 rng=None)
        assert np.array_equal(prepare_shard(a[sl], comm, n=N, offset=sl.start, name="a", dtype=np.dtype(np.float32),
                                            standardize=False, ties="none", noise=0.0, rng=None)[0], ref[sl])
        for standardize in (True, False):
            options = dict(name="x", dtype=np.dtype(np.float64), standardize=standardize, ties="jitter", noise=1e-3)
            ref, ref_scale = prepare_on_host(a, rng=np.random.default_rng(3), **options)
            mine, scale = prepare_shard(a[sl], comm, n=N, offset=sl.start, rng=np.random.default_rng(3), **options)
            if exact:
                assert np.array_equal(mine, ref[sl]) and scale == ref_scale, (a.shape, standardize)
            else:
                assert np.allclose(mine, ref[sl], rtol=1e-14, atol=1e-14) and math.isclose(scale, ref_scale)
    column, _ = prepare_shard(z[sl], comm, n=N, offset=sl.start, name="z", dtype=np.dtype(np.float64), standardize=True,
                              ties="jitter", noise=1e-3, rng=np.random.default_rng(3))
    check_robust_scale(sl, comm)
    return np.concatenate(comm.all_gather_object(column))


def check_robust_scale(sl, comm) -> None:
    """The interquartile scale of a column with a far outlier (in the last rank's rows), of a
    discrete column (IQR 0: its s.d. kept), of a column with ties and both zeros and of a rectified
    one (73% zeros: its s.d. kept): the sharded
    order statistics equal NumPy's, and the preparation (with its warning) equals one process's."""
    from cchmi._scaling import quartile_ranks
    from cchmi.distributed.prepare import order_statistics, prepare_shard
    from cchmi.ops.base import prepare_on_host

    x, *_ = data()
    a = np.hstack([x, np.round(x[:, :1] / 4), np.where(x[:, 1:] > 0, 0.0, -0.0), np.maximum(0.0, x[:, 1:] - 0.6)])
    a[N - 1, 0] = 1e6
    for n_rows in (N, 2, 5):  # the whole sample, and prefixes of 2 and 5 rows (some shards empty)
        part = a[:n_rows][sl.start:min(sl.stop, n_rows)] if sl.start < n_rows else a[:0]
        ranks = quartile_ranks(n_rows)
        mine = order_statistics(part, comm, ranks, a[:n_rows].min(axis=0), a[:n_rows].max(axis=0))
        assert np.array_equal(mine, np.sort(a[:n_rows], axis=0)[ranks]), n_rows
    options = dict(name="x", dtype=np.dtype(np.float64), standardize=True, ties="jitter", noise=1e-3)
    with warnings.catch_warnings(record=True) as one:
        warnings.simplefilter("always")
        ref, ref_scale = prepare_on_host(a, rng=np.random.default_rng(3), **options)
    with warnings.catch_warnings(record=True) as sharded:
        warnings.simplefilter("always")
        mine, scale = prepare_shard(a[sl], comm, n=N, offset=sl.start, rng=np.random.default_rng(3), **options)
    assert np.array_equal(mine, ref[sl]) and scale == ref_scale
    assert [str(w.message) for w in sharded] == [str(w.message) for w in one]
    assert len(one) == 1 and "x: columns [0] have a standard deviation" in str(one[0].message)


# Estimator options checked in each mode (ring and replicate differ only in the layout, which
# check_ops covers exactly; every option runs in one mode at least; ring runs KSG-1 and KSG-2 and
# the Ross estimator's same-label counts of ties="exact", which take the block ops).
REPLICATE_KSG = (dict(variant=1), dict(variant=2), dict(ties="exact"), dict(ties="none", standardize=False),
                 dict(dtype="float32"))
RING_KSG = (dict(variant=1), dict(variant=2), dict(ties="exact"))


def check_estimators(sl, group) -> None:
    import cchmi
    from cchmi import distributed as D

    x, y, z, labels, w = data()
    world = dist.get_world_size(group)
    for mode, ksg_options, mixed_options in (("replicate", REPLICATE_KSG, (dict(), dict(ties="exact"))),
                                            ("ring", RING_KSG, (dict(), dict(ties="exact")))):
        for options in ksg_options:
            one, sharded = cchmi.ksg_mi(x, y, **options), D.ksg_mi(x[sl], y[sl], mode=mode, group=group, **options)
            assert close(one, sharded), (mode, options, one.estimate, sharded.estimate)
            assert sharded.backend == f"distributed:{mode}:{world}" and sharded.n == N
        for options in mixed_options:
            one = cchmi.mixed_mi(x, labels, **options)
            sharded = D.mixed_mi(x[sl], labels[sl], mode=mode, group=group, **options)
            assert close(one, sharded), (mode, options, one.estimate, sharded.estimate)
        one, sharded = cchmi.entropy(w), D.entropy(w[sl], mode=mode, group=group)
        assert close(one, sharded), (mode, one.estimate, sharded.estimate)
        one, sharded = cchmi.cmi(x, y, z), D.cmi(x[sl], y[sl], z[sl], mode=mode, group=group)
        assert close(one, sharded), (mode, one.estimate, sharded.estimate)
    assert D.ksg_mi(x[sl], y[sl], group=group).backend.startswith("distributed:replicate")  # auto: small data


def expect_error(kind, text: str, fn) -> None:
    try:
        fn()
    except kind as exc:
        assert text in str(exc), (text, str(exc))
    else:
        raise AssertionError(f"no {kind.__name__} ({text})")


def check_errors(sl, rank: int) -> None:
    from cchmi import distributed as D

    x, y, *_ = data()
    wide = np.hstack([x, x])[sl] if rank == 0 else x[sl]
    expect_error(ValueError, "same widths", lambda: D.ksg_mi(wide, y[sl]))
    short = y[sl][:-1] if rank == 2 or (rank == 0 and dist.get_world_size() == 2) else y[sl]
    expect_error(ValueError, "same number of rows", lambda: D.ksg_mi(x[sl], short))
    expect_error(ValueError, "k < n", lambda: D.ksg_mi(x[sl], y[sl], k=N))
    expect_error(ValueError, "mode must be one of", lambda: D.ksg_mi(x[sl], y[sl], mode="star"))
    seed = rank if rank < 2 else 0
    expect_error(ValueError, "same on every rank", lambda: D.ksg_mi(x[sl], y[sl], random_state=seed))
    expect_error(TypeError, "unexpected keyword", lambda: D.ksg_mi(x[sl], y[sl], backend="cpu"))
    check_option_errors(sl, rank)


def check_option_errors(sl, rank: int) -> None:
    """Ranks that pass different options or kinds of labels, or only empty shards, get one clear
    error on every rank before any work (different ties or standardize hung, different modes
    crashed, different k, variant or base gave each rank its own estimate, integer and string
    labels made 6 classes of 3)."""
    from cchmi import distributed as D

    x, y, _, labels, _ = data()
    last = rank == dist.get_world_size() - 1
    for option, mine, others in (("ties", "exact", "jitter"), ("standardize", False, True), ("k", 4, 3),
                                 ("variant", 2, 1), ("base", 2, math.e), ("mode", "ring", "replicate")):
        expect_error(ValueError, f"differ in {option} (rank 0: {others!r}",
                     lambda: D.ksg_mi(x[sl], y[sl], **{option: mine if last else others}))
    spelt = D.ksg_mi(x[sl], y[sl], dtype=np.float32 if last else "float32", noise=0 if last else 0.0)
    assert spelt.estimate == D.ksg_mi(x[sl], y[sl], dtype="float32", noise=0.0).estimate  # one value, two spellings
    coded = labels[sl].astype(str) if last else labels[sl]
    expect_error(ValueError, "differ in labels kind (rank 0: integers", lambda: D.mixed_mi(x[sl], coded))
    expect_error(ValueError, "shard of x, y is empty", lambda: D.ksg_mi(x[:0], y[:0]))


def main(rank: int, world: int, port: int) -> None:
    """Checks on the whole group of `world` ranks, then on the subgroup of ranks 0 and world - 1
    (the group= argument; P = 2), then the errors on the whole group."""
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        from cchmi.distributed import passes
        from cchmi.distributed.comm import Comm
        from cchmi.ops import threads

        # One thread per rank for the cpu kernels: the ranks share the machine's cores, and waking a
        # team of OpenMP threads on oversubscribed cores costs milliseconds per call (ring mode calls
        # the kernels once per step).
        threads.set_num_threads(1)

        passes.TILE_ROWS = 16  # replicate mode: 10 tiles of queries interleaved over the ranks, not 1
        warnings.simplefilter("ignore", RuntimeWarning)  # the singleton class, on both sides
        pair = dist.new_group([0, world - 1])
        column = {}
        for group, members in ((None, list(range(world))), (pair, [0, world - 1])):
            if rank not in members:
                continue
            cuts = bounds(len(members))
            sl = slice(cuts[members.index(rank)], cuts[members.index(rank) + 1])
            check_ops(sl, group)
            check_partition(sl, Comm(group))
            column[len(members)] = check_prepare(sl, Comm(group))
            check_estimators(sl, group)
        if len(column) == 2:  # the same bits whatever the number of ranks and the split
            assert np.array_equal(column[world], column[2])
        cuts = bounds(world)
        check_errors(slice(cuts[rank], cuts[rank + 1]), rank)
    finally:
        dist.destroy_process_group()
    exit_without_teardown()


def exit_without_teardown() -> None:
    """End a spawned rank whose checks all passed without the interpreter's teardown, where torch's
    gloo threads abort a process now and then after destroy_process_group has returned ("terminate
    called without an active exception", no Python frame; torch 2.13, about one run in five of
    test_neural_distributed's 2-process group on 2 cores). A failed check raises before this, and
    torch.multiprocessing reports its traceback as before."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
