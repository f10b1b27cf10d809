"""Sharded kNN estimators (cchmi.distributed, cchmi.ops.blocks, devices=).

Oracles: the one-process ops (:func:`cchmi.ops.knn`, :func:`cchmi.ops.count_pair` on the cpu,
numpy and triton backends) for neighbours and counts, exactly; the one-process estimators for the
estimates (exactly in one process with devices=; across processes up to the order of the final
float64 sum, ``_dist_worker.SUM_ORDER_RTOL``). Process groups: gloo on the CPU, 3 processes
spawned by torch.multiprocessing (rank 1 holds no rows) and a subgroup of 2 of them, all checks in
one spawn (tests/_dist_worker.py). GPU: devices=[0, 0] (two virtual shards on one device) equals
one device.
"""

from __future__ import annotations

import socket

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import cchmi  # noqa: E402
from cchmi import ops  # noqa: E402
from cchmi.ops import blocks  # noqa: E402
from cchmi.ops.blocks import Block, Neighbours  # noqa: E402


def points(kind: str, n: int, d: int, dtype, seed: int = 0) -> np.ndarray:
    """gauss, dup (a third of the rows copied from others) or grid (3 values per column: ties)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    if kind == "dup":
        rows = rng.choice(n, size=n // 3, replace=False)
        x[rows] = x[rng.choice(n, size=rows.size)]
    elif kind == "grid":
        x = rng.integers(-1, 2, size=(n, d)).astype(np.float64)
    return np.ascontiguousarray(x, dtype=dtype)


def block_knn(p: np.ndarray, k: int, pieces: int) -> tuple[np.ndarray, np.ndarray]:
    """The top-k of every point, merging the reference blocks of `pieces` shards in reverse order."""
    t = torch.from_numpy(p)
    everything = Block(t, torch.arange(len(p)))
    state = Neighbours.empty(len(p), k, 1, t.dtype, t.device)
    for rows in reversed(torch.arange(len(p)).tensor_split(pieces)):
        state = blocks.knn_update(state, everything, everything.rows(rows), (p.shape[1],))
    return state.dist.numpy(), state.index.numpy()


@pytest.mark.parametrize("backend", ("cpu", "numpy", "triton"))
@pytest.mark.parametrize("kind", ("gauss", "dup", "grid"))
def test_block_ops_equal_the_backends(backend, kind, monkeypatch):
    """Neighbours (ties by global index) and counts of the block ops equal the kernels', bit for
    bit, with chunks that split queries and references unevenly."""
    from cchmi.ops import registry

    if not registry.usable(backend):
        pytest.skip(f"backend {backend} is not available here")
    be = ops.resolve(backend)
    monkeypatch.setattr(blocks, "CHUNK_ELEMENTS", 37 * 4)
    monkeypatch.setattr(blocks, "QUERY_CHUNK", 23)
    n, k = (67, 4) if backend == "triton" else (101, 5)
    dtype = np.float32 if backend == "triton" else np.float64
    x, y = points(kind, n, 2, dtype, 1), points(kind, n, 1, dtype, 2)
    joint = np.hstack([x, y])
    ref_d, ref_i = map(be.host, ops.knn(be, joint, k))
    dist, idx = block_knn(joint, k, 3)
    assert np.array_equal(dist, ref_d) and np.array_equal(idx, ref_i)
    rho = ref_d[:, k - 1]
    everything = Block(torch.from_numpy(joint), torch.arange(n))
    for inclusive in (False, True):
        counts = blocks.count_update(torch.zeros((n, 3), dtype=torch.int64), everything,
                                     torch.from_numpy(np.stack([rho] * 3, axis=1)), everything, (2, 1),
                                     (((0,), False), ((1,), False), ((0, 1), False)), inclusive).numpy()
        cx, cy = map(be.host, ops.count_pair(be, x, y, rho, rho, inclusive))
        assert np.array_equal(counts[:, 0], cx) and np.array_equal(counts[:, 1], cy)
        assert np.array_equal(counts[:, 2], be.host(ops.count_within(be, joint, rho, inclusive)))


def test_block_knn_carries_marginal_distances_and_labels():
    """The atoms of the kept neighbours give KSG-2's extents; same_label restricts candidates."""
    p = points("dup", 90, 3, np.float64, 4)
    labels = torch.from_numpy(np.random.default_rng(5).integers(0, 3, 90))
    q = Block(torch.from_numpy(p), torch.arange(90), labels)
    state = blocks.knn_update(Neighbours.empty(90, 4, 2, torch.float64, "cpu"), q, q, (2, 1), same_label=True)
    idx = state.index.numpy()
    assert (labels.numpy()[idx] == labels.numpy()[:, None]).all()
    expected = np.abs(p[idx][..., :2] - p[:, None, :2]).max(axis=-1)
    assert np.array_equal(state.atoms[..., 0].numpy(), expected)
    assert np.array_equal(state.dist.numpy(), np.abs(p[idx] - p[:, None, :]).max(axis=-1))


def _only_kernels(monkeypatch, path: str) -> None:
    """path "kernels": the block ops raise if called from the sharded code (the compiled kernels'
    query-subset path must do all the work); "blocks": no kernel backend (the block ops do it)."""
    from cchmi.distributed import local, passes

    if path == "kernels":
        def refuse(*args, **kwargs):
            raise AssertionError("the block ops ran where the kernels should")

        monkeypatch.setattr(passes, "knn_update", refuse)
        monkeypatch.setattr(passes, "count_update", refuse)
    else:
        monkeypatch.setattr(local, "kernel_backend", lambda device: None)


@pytest.mark.parametrize("path", ("kernels", "blocks"))
@pytest.mark.parametrize("kind", ("gauss", "dup", "grid"))
def test_sharded_backend_ops_equal_the_cpu_backend(monkeypatch, path, kind):
    """The ops of devices=[cpu] x 3 (interleaved tiles of 32 queries) equal the cpu backend's, bit
    for bit, through the kernels' queries= path and through the block ops."""
    from cchmi.distributed import passes
    from cchmi.distributed.local import ShardedBackend

    monkeypatch.setattr(passes, "TILE_ROWS", 32)
    _only_kernels(monkeypatch, path)
    be, cpu = ShardedBackend(["cpu"] * 3), ops.resolve("cpu")
    x, y = points(kind, 131, 3, np.float64, 1), points(kind, 131, 2, np.float64, 2)
    want_d, want_i = ops.knn(cpu, x, 4)
    dist, idx = ops.knn(be, x, 4)
    assert np.array_equal(dist, want_d) and np.array_equal(idx, want_i)
    rho = np.ascontiguousarray(want_d[:, -1])
    for inclusive in (False, True):
        assert np.array_equal(ops.count_within(be, x, rho, inclusive), ops.count_within(cpu, x, rho, inclusive))
        got, want = ops.count_pair(be, x, y, rho, rho, inclusive), ops.count_pair(cpu, x, y, rho, rho, inclusive)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


@pytest.mark.parametrize("name", ("cpu", "triton"))
def test_replicate_passes_on_a_kernel_equal_the_block_ops(name, monkeypatch, request):
    """The passes of a replicate layout carrying a kernel backend (queries= on the worker's tiles:
    the cpu kernels, triton's launch over query blocks) equal the block ops': neighbours, atoms
    (KSG-2's extents), counts in subspaces of several atoms; for each of 3 workers."""
    from conftest import make_backend

    from cchmi.distributed import passes

    monkeypatch.setattr(passes, "TILE_ROWS", 32)
    be = make_backend(name, request)
    p = np.hstack([points("dup", 75, 2, np.float32, 1), points("grid", 75, 1, np.float32, 2)])
    everything = Block(torch.from_numpy(p), torch.arange(75))
    widths, groups = (2, 1), (((0,), False), ((1,), False), ((0, 1), False))
    for worker in range(3):
        plain = passes.replicate_layout(everything, worker, 3)
        fast = passes.replicate_layout(everything, worker, 3, kernel=be)
        want, got = passes.knn_pass(plain, 3, widths), passes.knn_pass(fast, 3, widths)
        for a, b in ((want.dist, got.dist), (want.index, got.index), (want.atoms, got.atoms)):
            assert torch.equal(a, b)
        radius = want.dist[:, -1:].expand(-1, 3)
        for inclusive in (False, True):
            assert torch.equal(passes.count_pass(plain, radius, widths, groups, inclusive),
                               passes.count_pass(fast, radius, widths, groups, inclusive))


def test_replicate_passes_above_the_kernels_k_limit_use_the_block_ops():
    """A replicate layout whose kernel takes k up to max_k: a larger k runs on the block ops (as in
    ring mode and ShardedBackend), not into the kernel's k check."""
    import copy

    from cchmi.distributed import passes

    small = copy.copy(ops.resolve("cpu"))
    small.max_k = 3
    p = points("dup", 40, 2, np.float64, 3)
    everything = Block(torch.from_numpy(p), torch.arange(40))
    want = passes.knn_pass(passes.replicate_layout(everything, 0, 2), 5, (1, 1))
    got = passes.knn_pass(passes.replicate_layout(everything, 0, 2, kernel=small), 5, (1, 1))
    for a, b in ((want.dist, got.dist), (want.index, got.index), (want.atoms, got.atoms)):
        assert torch.equal(a, b)


def test_one_device_runs_the_whole_problem_on_its_backend(monkeypatch, request):
    """One device takes every query: its backend's plain call (here triton under the interpreter,
    standing in for a GPU's backend), results back on the host, equal to the cpu backend's; above
    the backend's k limit the block ops do it."""
    from conftest import make_backend

    from cchmi.distributed import local

    _only_kernels(monkeypatch, "kernels")
    be = local.ShardedBackend(["cpu"])
    be._kernels = [make_backend("triton", request)]
    cpu = ops.resolve("cpu")
    x, y = points("dup", 45, 2, np.float32, 1), points("grid", 45, 1, np.float32, 2)
    dist, idx = ops.knn(be, x, 3)
    want_d, want_i = ops.knn(cpu, x, 3)
    assert isinstance(dist, np.ndarray) and np.array_equal(dist, want_d) and np.array_equal(idx, want_i)
    rho = np.ascontiguousarray(want_d[:, -1])
    assert np.array_equal(ops.count_within(be, x, rho, True), ops.count_within(cpu, x, rho, True))
    got, want = ops.count_pair(be, x, y, rho, rho, False), ops.count_pair(cpu, x, y, rho, rho, False)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    monkeypatch.undo()
    big, z = be._kernels[0].max_k + 1, points("gauss", 70, 2, np.float32, 3)
    assert np.array_equal(ops.knn(be, z, big)[1], ops.knn(cpu, z, big)[1])


@pytest.mark.parametrize("path", ("kernels", "blocks"))
def test_devices_in_one_process_equal_one_device(monkeypatch, path):
    """devices=[cpu] x 3 (virtual shards, threads; 7 tiles of 32 queries interleaved): every
    estimator's estimate equals the backend's, exactly (same counts, same formula), through the
    kernels' queries= path and through the block ops; ksg_mi_batch spreads problems."""
    from cchmi.distributed import passes

    monkeypatch.setattr(passes, "TILE_ROWS", 32)
    _only_kernels(monkeypatch, path)
    rng = np.random.default_rng(0)
    x = points("dup", 203, 2, np.float64, 1)
    y = x + rng.standard_normal((203, 2))
    labels = rng.integers(0, 3, 203)
    devices = ["cpu"] * 3
    for options in (dict(variant=1), dict(variant=2), dict(ties="exact")):
        one, sharded = cchmi.ksg_mi(x, y, **options), cchmi.ksg_mi(x, y, devices=devices, **options)
        assert one.estimate == sharded.estimate and sharded.backend == "sharded[cpu,cpu,cpu]"
    for options in (dict(), dict(ties="exact")):
        assert cchmi.mixed_mi(x, labels, **options).estimate == cchmi.mixed_mi(x, labels, devices=devices,
                                                                               **options).estimate
    w = rng.standard_normal((203, 3))
    assert cchmi.entropy(w).estimate == cchmi.entropy(w, devices=devices).estimate
    assert cchmi.cmi(x, y, w[:, :1]).estimate == cchmi.cmi(x, y, w[:, :1], devices=devices).estimate
    one = cchmi.ksg_mi(x, y, confidence=0.9, n_subsamples=3)
    sharded = cchmi.ksg_mi(x, y, confidence=0.9, n_subsamples=3, devices=devices)
    assert (one.estimate, one.stderr) == (sharded.estimate, sharded.stderr)
    xs, ys = np.stack([x, x, x]), np.stack([y, y[::-1], -y])
    batch = cchmi.ksg_mi_batch(xs, ys, devices=["cpu", "cpu"])
    assert [r.estimate for r in batch] == [r.estimate for r in cchmi.ksg_mi_batch(xs, ys)]


def simulated_partition(p: np.ndarray, cuts: list[int]) -> list[Block]:
    """The blocks ring mode's range partition gives ranks holding p[cuts[r]:cuts[r + 1]], computed
    in one process with the functions the ranks run (cchmi.distributed.partition)."""
    from cchmi.distributed import partition

    t, n, parts = torch.from_numpy(p), p.shape[0], len(cuts) - 1
    f = t[:, :min(p.shape[1], partition.CODE_BITS)].to(torch.float32)
    codes = partition.morton_codes(t, f.amin(dim=0), f.amax(dim=0)).numpy()
    samples = []
    for r in range(parts):
        rows = np.arange(cuts[r], cuts[r + 1])
        order = partition.key_order(codes[rows], rows)
        samples.append(partition.regular_sample(codes[rows][order], rows[order], partition.OVERSAMPLE * parts))
    dest = partition.destinations(codes, np.arange(n), partition.splitters(np.concatenate(samples), n, parts))
    return [Block(t[dest == r], torch.from_numpy(np.flatnonzero(dest == r))) for r in range(parts)]


def ring_of(parts: list[Block], rank: int, kernel, prune: bool):
    """Rank `rank`'s ring layout over the partition `parts`, its own block first (Comm.ring's order)."""
    from cchmi.distributed import passes

    order = [parts[(rank - s) % len(parts)] for s in range(len(parts))]
    return passes.Layout(parts[rank], lambda: order, kernel=kernel, prune=prune)


@pytest.mark.parametrize("kind", ("gauss", "dup", "grid", "same"))
def test_range_partition_owns_every_row_once_in_morton_order(kind):
    """Splitters from regular samples: every row goes to one part, the parts in order are the
    whole problem's morton_order (the kernels' sort: codes from the global box, ties by row), and
    no part exceeds the documented bound, with all rows equal, uneven and empty shards."""
    from cchmi.distributed import partition
    from cchmi.ops._spatial import morton_order

    n = 397
    p = np.zeros((n, 3)) if kind == "same" else points(kind, n, 3, np.float32 if kind == "gauss" else np.float64, 6)
    for cuts in ([0, n], [0, 150, 150, n], [0, 0, 0, 5, n], [0, 100, 200, 300, n]):
        parts = simulated_partition(p, cuts)
        index = torch.cat([b.index for b in parts]).numpy()
        assert np.array_equal(np.sort(index), np.arange(n))
        t = torch.from_numpy(p)
        f = t.to(torch.float32)
        codes = partition.morton_codes(t, f.amin(dim=0), f.amax(dim=0)).numpy()
        in_parts = np.concatenate([b.index.numpy()[partition.key_order(codes[b.index.numpy()], b.index.numpy())]
                                   for b in parts])
        assert np.array_equal(in_parts, morton_order(t[None])[0].numpy())
        s, widths = partition.OVERSAMPLE * (len(cuts) - 1), np.diff(cuts)
        bound = n / (len(cuts) - 1) + -(-widths.max() // s) + sum(-(-widths // s))
        assert max(b.index.numel() for b in parts) < bound, (cuts, [b.index.numel() for b in parts])


@pytest.mark.parametrize(("backend", "kind"), [("cpu", "gauss"), ("cpu", "dup"), ("cpu", "grid"), ("cpu", "same"),
                                             ("triton", "dup")])
def test_ring_steps_on_kernels_equal_the_block_ops(backend, kind, request):
    """Ring mode's steps on a kernel (U = queries u block in global order, queries=; top-k merged
    with repeats dropped; counts count(U) - count(queries)), with and without pruning, equal the
    block ops' ring and the one-process ops, bit for bit: neighbours, per-atom distances, counts in
    subspaces of several atoms, strict and inclusive; 3 parts of a range partition (P does not
    divide n, an empty shard) and 7 tiny parts (steps with fewer than k + 1 points in U). triton
    (under the interpreter: seconds per launch) runs the 3 parts, pruned."""
    from conftest import make_backend

    from cchmi.distributed import passes

    be = make_backend(backend, request)
    triton = backend == "triton"
    n, k, dtype = (61, 4, np.float32) if triton else (131, 5, np.float64)
    p = np.zeros((n, 3), dtype=dtype) if kind == "same" else np.hstack(
        [points(kind, n, 2, dtype, 1), points("grid", n, 1, dtype, 2)])
    widths, groups = (2, 1), (((0,), False), ((1,), False), ((0, 1), False))
    cpu = ops.resolve("cpu")
    want_d, want_i = ops.knn(cpu, p, k)
    skipped = 0
    variants = ((be, True),) if triton else ((be, False), (be, True), (None, True))
    tiny = [] if triton else [list(np.linspace(0, 14, 8).astype(int)[:-1]) + [n]]
    for cuts in [[0, n // 3, n // 3, n]] + tiny:
        parts = simulated_partition(p, cuts)
        for rank in range(len(parts)):
            rows = parts[rank].index.numpy()
            plain = ring_of(parts, rank, None, False)
            want = passes.knn_pass(plain, k, widths)
            assert np.array_equal(want.dist.numpy(), want_d[rows]) and np.array_equal(want.index.numpy(), want_i[rows])
            radius = want.dist[:, -1:].expand(-1, 3)
            for inclusive in (False, True):
                want_c = passes.count_pass(plain, radius, widths, groups, inclusive)
                full = ops.count_within(cpu, p, want_d[:, -1], inclusive)
                assert np.array_equal(want_c[:, 2].numpy(), full[rows])
                for kernel, prune in variants:
                    layout = ring_of(parts, rank, kernel, prune)
                    got = passes.count_pass(layout, radius, widths, groups, inclusive)
                    assert torch.equal(got, want_c), (kernel, prune, inclusive)
                    skipped += layout.stats["count_skipped"]
            for kernel, prune in variants:
                layout = ring_of(parts, rank, kernel, prune)
                got = passes.knn_pass(layout, k, widths)
                for a, b in ((want.dist, got.dist), (want.index, got.index), (want.atoms, got.atoms)):
                    assert torch.equal(a, b), (kernel, prune)
                skipped += layout.stats["knn_skipped"]
    assert triton or kind == "same" or skipped > 0  # pruning ran (the 7 parts; identical points: no box is beyond)


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_box_distance_bounds_every_pair_distance(dtype):
    """box_distance never exceeds a pair distance of the block ops (the pruning's premise), with
    queries inside, outside and on the edge of the box, and at huge and tiny scales; it is 0 inside."""
    rng = np.random.default_rng(3)
    for scale in (1e-30, 1.0, 1e30):
        r = (rng.standard_normal((40, 3)) * scale).astype(dtype)
        q = np.concatenate([(rng.standard_normal((60, 3)) * 2 * scale).astype(dtype), r[:5]])
        rt, qt = torch.from_numpy(r), torch.from_numpy(q)
        bound = blocks.box_distance(qt, rt.amin(dim=0), rt.amax(dim=0))
        pairs = blocks.atom_distances(qt, rt, (3,))[0]
        assert (bound <= pairs.amin(dim=1)).all() and (bound[-5:] == 0).all()
        assert (bound > 0).any()


def test_ring_steps_refuse_a_block_sharing_some_queries():
    """A reference block must be the queries' own or disjoint from them (a partition): else a
    RuntimeError, not counts with some points twice."""
    from cchmi.distributed import passes

    p = torch.from_numpy(points("gauss", 20, 2, np.float64, 1))
    everything = Block(p, torch.arange(20))
    layout = passes.Layout(everything.rows(slice(0, 10)), lambda: [everything.rows(slice(5, 15))],
                           kernel=ops.resolve("cpu"))
    with pytest.raises(RuntimeError, match="shares 5 rows"):
        passes.knn_pass(layout, 2, (2,))


@pytest.mark.parametrize(("devices", "error", "text"), [
    ([], TypeError, "non-empty list"),
    ("cpu", TypeError, "non-empty list"),
    ([True], TypeError, "devices[0]"),
    ([-1], ValueError, "ordinal >= 0"),
    (["warp-drive"], ValueError, "devices[0]='warp-drive'"),
    ([99], ValueError, "CUDA devices visible"),
])
def test_devices_errors(devices, error, text):
    x = np.random.default_rng(0).standard_normal((20, 2))
    with pytest.raises(error) as info:
        cchmi.ksg_mi(x, x, devices=devices)
    assert text in str(info.value)


def test_devices_refuses_a_backend():
    x = np.random.default_rng(0).standard_normal((20, 2))
    with pytest.raises(ValueError, match="leave backend='auto'"):
        cchmi.ksg_mi(x, x, devices=["cpu"], backend="cpu")


def test_no_process_group():
    from cchmi import distributed

    x = np.random.default_rng(0).standard_normal((20, 2))
    with pytest.raises(RuntimeError, match="initialised torch.distributed process group"):
        distributed.ksg_mi(x, x)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_gloo_groups_equal_one_process():
    """Sharded ops, preparation and estimates in gloo groups of 3 processes (rank 1 empty) and of
    2 (a subgroup, group=) equal one process's (tests/_dist_worker.py: uneven shards, ties,
    duplicated rows, replicate and forced ring, float32 and float64; then the errors every rank
    raises together). One spawn for both: a spawn costs seconds."""
    import _dist_worker

    torch.multiprocessing.spawn(_dist_worker.main, args=(3, _free_port()), nprocs=3, join=True)


@pytest.mark.gpu
def test_virtual_shards_on_one_gpu_equal_one_device():
    """devices=[0, 0]: two shards run back to back on one GPU give the cuda backend's estimate."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4099, 3))
    y = x + rng.standard_normal((4099, 3))
    one = cchmi.ksg_mi(x, y, backend="cuda")
    assert one.backend == "cuda"
    sharded = cchmi.ksg_mi(x, y, devices=[0, 0])
    assert sharded.backend == "sharded[cuda:0,cuda:0]" and sharded.estimate == one.estimate


@pytest.mark.slow
@pytest.mark.parametrize(("n", "d"), [(1023, 3), (4099, 1)])
def test_devices_odd_sizes(n, d):
    """Sizes that fill no tile or chunk: KSG-1 and KSG-2 with devices equal the cpu backend."""
    x = points("dup", n, d, np.float64, 3)
    y = x + np.random.default_rng(4).standard_normal((n, d))
    for variant in (1, 2):
        assert (cchmi.ksg_mi(x, y, variant=variant).estimate
                == cchmi.ksg_mi(x, y, variant=variant, devices=["cpu", "cpu"]).estimate)
