"""The cuda and triton kNN backends on a real GPU: neighbour lists and counts equal the cpu
backend's exactly, and the estimators pick them for CUDA tensors.

Marked gpu: skipped without a GPU, failed instead under --require-gpu / CCHMI_REQUIRE_GPU=1. Each
test asserts the backend that ran. Sizes cover the dimension-specialised CUDA kernels (d padded to
4, 8, 16, 32, 64), the generic ones (d > 64; float64 counts), odd n that fill no tile, k up to the
limit and duplicated rows; queries= (the kernels over the query blocks holding the rows) against
the cpu backend's answers for those rows.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_points

pytestmark = pytest.mark.gpu

CASES = [("dup", 1023, 1), ("gauss", 4099, 3), ("grid", 1023, 5), ("discrete", 2047, 8), ("dup", 1031, 16),
         ("gauss", 777, 33), ("dup", 515, 64), ("gauss", 301, 100)]


def _backends():
    from cchmi import ops

    return {name: ops.resolve(name) for name in ("cuda", "triton")}


@pytest.fixture(scope="module")
def backends():
    import torch

    assert torch.cuda.is_available(), "torch sees no CUDA device"
    found = _backends()
    assert {be.name for be in found.values()} == {"cuda", "triton"}
    return found


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind,n,d", CASES)
def test_knn_and_counts_equal_cpu(backends, kind, n, d, dtype):
    from cchmi import ops

    cpu = ops.resolve("cpu")
    pts = make_points(kind, n, d, np.dtype(dtype), seed=n + d)
    ref_d, ref_i = cpu.knn(pts, 10)
    y = np.ascontiguousarray(pts[:, : max(1, d // 2)] * 0.5)
    for name, be in backends.items():
        for k in (1, 4, 10):
            dist, idx = be.knn(be.put(pts), k)
            assert dist.is_cuda and be.name == name
            np.testing.assert_array_equal(idx.cpu().numpy(), ref_i[:, :k], err_msg=f"{name} indices, k={k}")
            np.testing.assert_array_equal(dist.cpu().numpy(), ref_d[:, :k], err_msg=f"{name} distances, k={k}")
        radius = ref_d[:, 3]
        for inclusive in (False, True):
            want = cpu.count_pair(pts, y, radius, radius, inclusive)
            got = be.count_pair(be.put(pts), be.put(y), radius, radius, inclusive)
            np.testing.assert_array_equal(got[0].cpu().numpy(), want[0], err_msg=f"{name} x counts")
            np.testing.assert_array_equal(got[1].cpu().numpy(), want[1], err_msg=f"{name} y counts")
            one = be.count_within(be.put(pts), radius, inclusive)
            np.testing.assert_array_equal(one.cpu().numpy(), want[0], err_msg=f"{name} one-space counts")


@pytest.mark.parametrize("k", [16, 17, 63, 64])
def test_k_up_to_the_limit(backends, k):
    from cchmi import ops

    pts = make_points("dup", 999, 4, np.float32, seed=k)
    ref_d, ref_i = ops.resolve("cpu").knn(pts, k)
    for name, be in backends.items():
        dist, idx = be.knn(be.put(pts), k)
        np.testing.assert_array_equal(idx.cpu().numpy(), ref_i, err_msg=name)
        np.testing.assert_array_equal(dist.cpu().numpy(), ref_d, err_msg=name)
    for name, be in backends.items():
        with pytest.raises(ValueError, match="limit|at most 64"):
            ops.knn(be, be.put(pts), 65)


def test_batches_equal_problem_by_problem(backends):
    from cchmi import ops

    cpu = ops.resolve("cpu")
    pts = np.stack([make_points(kind, 1001, 6, np.float32, seed=i) for i, kind in enumerate(("gauss", "dup", "grid"))])
    ref_d, ref_i = cpu.knn(pts, 5)
    radius = np.ascontiguousarray(ref_d[..., -1])
    want = cpu.count_within(pts, radius, False)
    for name, be in backends.items():
        dist, idx = be.knn(be.put(pts), 5)
        np.testing.assert_array_equal(idx.cpu().numpy(), ref_i, err_msg=name)
        np.testing.assert_array_equal(dist.cpu().numpy(), ref_d, err_msg=name)
        np.testing.assert_array_equal(be.count_within(be.put(pts), radius, False).cpu().numpy(), want, err_msg=name)


def test_estimators_use_cuda_tensors_in_place():
    import torch

    import cchmi

    rng = np.random.default_rng(0)
    x = rng.standard_normal((5000, 4)).astype(np.float32)
    y = (x[:, :2] + rng.standard_normal((5000, 2))).astype(np.float32)
    labels = (x[:, 0] > 0).astype(np.int64)
    xc, yc = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()
    # No jitter and no standardisation: the device preparation is a cast, so estimates are exact.
    opts = {"ties": "none", "standardize": False}
    want = cchmi.ksg_mi(x, y, backend="cpu", **opts).estimate
    auto = cchmi.ksg_mi(xc, yc, **opts)
    assert auto.backend == "cuda" and auto.estimate == want
    assert cchmi.ksg_mi(xc, yc, backend="triton", **opts).estimate == want
    assert cchmi.ksg_mi(x, y, backend="cuda", **opts).estimate == want  # NumPy in, copied once
    assert cchmi.ksg_mi(xc, yc, variant=2, **opts).estimate == cchmi.ksg_mi(x, y, variant=2, backend="cpu",
                                                                             **opts).estimate
    assert cchmi.mixed_mi(xc, labels, **opts).estimate == cchmi.mixed_mi(x, labels, backend="cpu", **opts).estimate
    assert cchmi.entropy(xc, **opts).estimate == cchmi.entropy(x, backend="cpu", **opts).estimate
    # With the default jitter (drawn on the device) the estimate agrees statistically.
    assert abs(cchmi.ksg_mi(xc, yc).estimate - cchmi.ksg_mi(x, y, backend="cpu").estimate) < 0.02
    # Batched half-samples and permutations equal the one-by-one CPU path exactly (same NumPy input).
    a = cchmi.ksg_mi(x, y, backend="cuda", confidence=0.95, n_subsamples=8)
    b = cchmi.ksg_mi(x, y, backend="cpu", confidence=0.95, n_subsamples=8)
    assert (a.estimate, a.stderr) == (b.estimate, b.stderr)
    many = cchmi.ksg_mi_batch(torch.stack([xc, xc.flip(0)]), yc, ties="none", standardize=False)
    assert many[0].backend == "cuda" and many[0].estimate == want
    assert many[1].estimate == cchmi.ksg_mi(x[::-1].copy(), y, backend="cpu", **opts).estimate
    p = cchmi.permutation_test(x, y, n_permutations=9, backend="cuda")
    q = cchmi.permutation_test(x, y, n_permutations=9, backend="cpu")
    np.testing.assert_array_equal(p.null, q.null)
    assert p.backend == "cuda"


def test_large_host_problems_go_to_the_gpu():
    import cchmi
    from cchmi import ops

    rng = np.random.default_rng(1)
    n = ops.AUTO_GPU_MIN_N
    x = rng.standard_normal((n, 2)).astype(np.float32)
    r = cchmi.ksg_mi(x[:, :1], x[:, 1:] + x[:, :1])
    assert r.backend == "cuda"


def test_pruning_changes_nothing(backends):
    """The spatial sort and tile pruning against brute force on the same kernels (prune=False)."""
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((8, 5)) * 20
    pts = np.ascontiguousarray(centres[rng.integers(0, 8, 5003)] + rng.standard_normal((5003, 5)), dtype=np.float32)
    y = np.ascontiguousarray(pts[:, :2])
    for name, be in backends.items():
        results = []
        for prune in (True, False):
            be.prune = prune
            dist, idx = be.knn(be.put(pts), 7)
            radius = dist[:, -1]
            cx, cy = be.count_pair(be.put(pts), be.put(y), radius, radius, False)
            results.append([t.cpu().numpy() for t in (dist, idx, cx, cy)])
        be.prune = True
        for a, b in zip(*results):
            np.testing.assert_array_equal(a, b, err_msg=name)


def _query_subsets(n: int, rng) -> list[np.ndarray]:
    """Unsorted with repeats, sorted without, the Morton tiles of worker 1 of 3 (the sharded path's
    layout: whole query blocks), the last row, none."""
    import torch

    from cchmi.distributed.passes import tile_rows

    points = torch.from_numpy(rng.standard_normal((n, 2)))
    return [rng.integers(0, n, size=n // 3), np.unique(rng.integers(0, n, size=n // 2)),
            tile_rows(points, 1, 3).numpy(), np.array([n - 1]), np.empty(0, dtype=np.int64)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind,n,d", [("dup", 1023, 1), ("gauss", 4099, 3), ("discrete", 2047, 8), ("gauss", 777, 33),
                                      ("gauss", 301, 100)])
def test_queries_equal_cpu(backends, kind, n, d, dtype):
    """The rows asked, in their order, bit for bit: neighbours (k up to the limit), counts strict
    and inclusive in one space and in two (repeated rows get their own radii)."""
    from cchmi import ops

    cpu = ops.resolve("cpu")
    pts = make_points(kind, n, d, np.dtype(dtype), seed=n + d)
    y = np.ascontiguousarray(pts[:, : max(1, d // 2)] * 0.5)
    radius = np.ascontiguousarray(cpu.knn(pts, 4)[0][:, -1])
    for rows in _query_subsets(n, np.random.default_rng(n)):
        for name, be in backends.items():
            assert be.takes_queries and be.name == name
            for k in (1, 10, 64):
                want_d, want_i = ops.knn(cpu, pts, k, queries=rows)
                dist, idx = ops.knn(be, be.put(pts), k, queries=rows)
                assert dist.is_cuda and tuple(dist.shape) == (rows.size, k)
                np.testing.assert_array_equal(idx.cpu().numpy(), want_i, err_msg=f"{name} indices, k={k}")
                np.testing.assert_array_equal(dist.cpu().numpy(), want_d, err_msg=f"{name} distances, k={k}")
            r = radius[rows]
            for inclusive in (False, True):
                want = ops.count_pair(cpu, pts, y, r, r, inclusive, queries=rows)
                got = ops.count_pair(be, be.put(pts), be.put(y), r, r, inclusive, queries=rows)
                np.testing.assert_array_equal(got[0].cpu().numpy(), want[0], err_msg=f"{name} x counts")
                np.testing.assert_array_equal(got[1].cpu().numpy(), want[1], err_msg=f"{name} y counts")
                one = ops.count_within(be, be.put(pts), r, inclusive, queries=rows)
                np.testing.assert_array_equal(one.cpu().numpy(), want[0], err_msg=f"{name} one-space counts")
