"""The kNN op against the NumPy reference (cchmi.reference.knn), exactly.

Distances and indices must be identical, bit for bit: on every backend through the op's
dispatcher (cchmi.ops.knn; cpu, numpy, triton under its interpreter, the CUDA kernels under the
block emulator, faiss), and for every method of the compiled CPU kernels (tree, brute, auto), on
random data, duplicated rows, discrete columns and grids, at sizes that fill no tile.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_points

from cchmi import _cpu, ops, reference


METHODS = {"auto": 0, "tree": 1, "brute": 2}
KINDS = ("gauss", "dup", "discrete", "grid", "scaled")


def _case(kind: str, n: int, d: int, dtype_name: str):
    """Points and their full reference neighbour lists (k = n - 1): a prefix serves every k."""
    pts = make_points(kind, n, d, np.dtype(dtype_name), seed=n * 100 + d)
    return pts, reference.knn(pts, n - 1)


def _ks(n):
    return sorted({k for k in (1, 3, 10, n - 1) if 1 <= k <= n - 1})


CASES = [(kind, n, d, dt) for n in (2, 3, 1023) for d in (1, 2, 7, 32) for kind in KINDS for dt in ("float32", "float64")]
# The largest size on the two workhorse kinds only: the reference costs O(n^2 d).
CASES += [pytest.param(kind, 4099, d, "float32", marks=pytest.mark.slow) for d in (1, 2, 7, 32)
          for kind in ("gauss", "dup")]


@pytest.mark.parametrize("kind,n,d,dtype", CASES)
def test_knn_matches_reference(kind, n, d, dtype):
    pts, (ref_dist, ref_idx) = _case(kind, n, d, dtype)
    for method, code in METHODS.items():
        for k in _ks(n):
            dist, idx, used = _cpu.knn(pts, k, code)
            assert dist.dtype == pts.dtype and idx.dtype == np.int64
            np.testing.assert_array_equal(idx, ref_idx[:, :k], err_msg=f"indices, k={k}, method={used}")
            np.testing.assert_array_equal(dist, ref_dist[:, :k], err_msg=f"distances, k={k}, method={used}")
            assert method == "auto" or used == method


@pytest.mark.parametrize("d", [1, 3, 8, 20])
def test_knn_distances_match_scipy_ckdtree(d):
    """Independent oracle: SciPy's cKDTree with p=inf, in float64 (its own arithmetic)."""
    spatial = pytest.importorskip("scipy.spatial")
    pts = make_points("gauss", 2000, d, np.float64, seed=d)
    k = 5
    ref = spatial.cKDTree(pts).query(pts, k=k + 1, p=np.inf)[0][:, 1:]  # column 0 is the point itself
    for method in (1, 2):
        dist, _, _ = _cpu.knn(pts, k, method)
        np.testing.assert_array_equal(dist, ref)


def test_knn_threads_do_not_change_results():
    pts = make_points("dup", 3001, 5, np.float32, seed=7)
    one = _cpu.knn(pts, 4, 0, 1)
    two = _cpu.knn(pts, 4, 0, 2)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


def test_knn_tie_order_is_by_index():
    """Equidistant neighbours come in index order: the rule that fixes KSG-2's neighbour set."""
    pts = np.array([[0.0], [1.0], [-1.0], [1.0], [-1.0], [5.0]])
    for method in (0, 1, 2):
        dist, idx, _ = _cpu.knn(pts, 4, method)
        np.testing.assert_array_equal(idx[0], [1, 2, 3, 4])
        np.testing.assert_array_equal(dist[0], [1.0, 1.0, 1.0, 1.0])


@pytest.mark.parametrize("bad_k", [0, -1, 5])
def test_knn_kernel_rejects_bad_k(bad_k):
    pts = np.zeros((5, 2))
    with pytest.raises(ValueError, match="k"):
        _cpu.knn(pts, bad_k)


def test_knn_kernel_rejects_bad_method_and_shape():
    with pytest.raises(ValueError, match="method"):
        _cpu.knn(np.zeros((5, 2)), 1, 7)
    with pytest.raises(ValueError, match="sort"):
        _cpu.knn(np.zeros((5, 2)), 1, 3)
    with pytest.raises(ValueError, match="2-D"):
        _cpu.knn(np.zeros(5), 1)


# ---------------------------------------------------------------------------------------------
# Every backend, through the dispatcher. Sizes that fill no 32- or 64-wide tile (33, 70) and the
# smallest problems (2, 3): the Triton interpreter and the CUDA emulator are slow.
BACKEND_CASES = [(kind, n, d, "float32") for kind in ("gauss", "dup", "discrete", "grid")
                 for n, d in ((2, 1), (3, 2), (33, 3), (70, 9))]
BACKEND_CASES += [(kind, 41, 4, "float64") for kind in ("gauss", "dup")]


def _skip_float64_on_faiss(be, dtype):
    if be.name == "faiss" and np.dtype(dtype) != np.float32:
        pytest.skip("faiss computes in float32 only (refusal tested in test_backends.py)")


@pytest.mark.parametrize("kind,n,d,dtype", BACKEND_CASES)
def test_knn_on_every_backend_matches_reference(op_backend, kind, n, d, dtype):
    be = op_backend
    _skip_float64_on_faiss(be, dtype)
    pts = make_points(kind, n, d, np.dtype(dtype), seed=n + d)
    ref_d, ref_i = reference.knn(pts, n - 1)
    for k in sorted({k for k in (1, 3, min(n - 1, 12)) if 1 <= k <= n - 1}):
        dist, idx = ops.knn(be, be.put(pts), k)
        assert be.host(dist).dtype == pts.dtype and be.host(idx).dtype == np.int64
        np.testing.assert_array_equal(be.host(idx), ref_i[:, :k], err_msg=f"indices, k={k}, {be.name}")
        np.testing.assert_array_equal(be.host(dist), ref_d[:, :k], err_msg=f"distances, k={k}, {be.name}")


@pytest.mark.parametrize("kind,n,d", [("dup", 301, 3), ("grid", 200, 8), ("gauss", 130, 20), ("dup", 97, 70)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_device_knn_on_wide_shapes_pruned_or_not(device_backend, kind, n, d, dtype):
    """Widths that pick each compiled width of the CUDA kernels (and the generic one, d=70);
    pruned and brute force (prune=False) give the same neighbours."""
    be = device_backend
    if be.name == "triton" and d > 8:
        pytest.skip("the Triton kernel has no width specialisation; the interpreter is slow at this size")
    pts = make_points(kind, n, d, np.dtype(dtype), seed=n + d)
    want_d, want_i = reference.knn(pts, 5)
    for prune in (True, False):
        be.prune = prune
        for k in (1, 5):
            dist, idx = ops.knn(be, pts, k)
            np.testing.assert_array_equal(be.host(idx), want_i[:, :k])
            np.testing.assert_array_equal(be.host(dist), want_d[:, :k])


def test_knn_batches_equal_problem_by_problem(op_backend):
    """(B, n, d) at once = each problem alone (indices are within each problem)."""
    be = op_backend
    pts = np.stack([make_points(kind, 37, 3, np.float32, seed=i) for i, kind in enumerate(("gauss", "dup", "grid"))])
    dist, idx = ops.knn(be, be.put(pts), 4)
    assert tuple(dist.shape) == (3, 37, 4)
    for b in range(3):
        ref_d, ref_i = reference.knn(pts[b], 4)
        np.testing.assert_array_equal(be.host(idx[b]), ref_i)
        np.testing.assert_array_equal(be.host(dist[b]), ref_d)


def test_knn_at_the_backend_limit_of_k(op_backend):
    be = op_backend
    limit = be.max_k or 64
    pts = make_points("dup", limit + 1, 2, np.float32, seed=3)
    dist, idx = ops.knn(be, pts, limit)
    ref_d, ref_i = reference.knn(pts, limit)
    np.testing.assert_array_equal(be.host(idx), ref_i)
    np.testing.assert_array_equal(be.host(dist), ref_d)
    bigger = make_points("gauss", limit + 2, 2, np.float32)
    if be.max_k is None:
        assert be.host(ops.knn(be, bigger, limit + 1)[1]).shape == (limit + 2, limit + 1)
    else:
        with pytest.raises(ValueError, match=rf"k={limit + 1} is above the {be.name} backend's limit of {limit}.*'cpu'"):
            ops.knn(be, bigger, limit + 1)


@pytest.mark.parametrize("bad_k", [0, 5])
def test_knn_op_rejects_bad_k(op_backend, bad_k):
    with pytest.raises(ValueError, match="k must be between 1 and 4"):
        ops.knn(op_backend, make_points("gauss", 5, 2, np.float32), bad_k)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pruned_tiles_give_the_reference_neighbours(device_backend, dtype):
    """Well-separated clusters: far tiles are skipped by their bounding boxes; every path must give
    the reference's neighbours exactly, pruned and as brute force (the benchmarks' baseline)."""
    be = device_backend
    pts = clustered_points(dtype)
    ref_d, ref_i = reference.knn(pts, 5)
    for prune in (True, False):
        be.prune = prune
        dist, idx = ops.knn(be, pts, 5)
        np.testing.assert_array_equal(be.host(idx), ref_i)
        np.testing.assert_array_equal(be.host(dist), ref_d)


def clustered_points(dtype) -> np.ndarray:
    rng = np.random.default_rng(7)
    centres = np.array([[0, 0, 0], [50, 0, 0], [0, 50, 0], [0, 0, 50]], dtype=np.float64)
    pts = centres[rng.integers(0, 4, 161)] + rng.standard_normal((161, 3))
    pts[::9] = pts[1::9][: pts[::9].shape[0]]  # duplicated rows: ties at distance 0
    return np.ascontiguousarray(pts, dtype=dtype)


def test_spatial_order_is_a_permutation_and_boxes_hold_their_tiles():
    torch = pytest.importorskip("torch")
    from cchmi.ops import _spatial

    pts = torch.from_numpy(np.stack([make_points(kind, 77, 5, np.float32, seed=1) for kind in ("gauss", "grid")]))
    sp, order, lo, hi = _spatial.sorted_with_boxes(pts, 32)
    for b in range(2):
        assert sorted(order[b].tolist()) == list(range(77))
        np.testing.assert_array_equal(sp[b].numpy(), pts[b][order[b]].numpy())
    assert tuple(lo.shape) == (2, 3, 5)
    for t in range(3):
        tile = sp[:, 32 * t: 32 * (t + 1)]
        assert bool((tile >= lo[:, t:t + 1]).all()) and bool((tile <= hi[:, t:t + 1]).all())
    values = torch.arange(2 * 77).reshape(2, 77)
    assert torch.equal(_spatial.from_sorted(_spatial.to_sorted(values, order), order), values)


# ---------------------------------------------------------------------------------------------
# A subset of queries (queries=): the rows of the full call, bit for bit, in the order given.
QUERY_BACKENDS = ("cpu", "numpy", "faiss", "triton", "cuda-emulated")


def _subsets(n: int, rng) -> list[np.ndarray]:
    """Unsorted with repeats, sorted without, one row, none; the last row (edge of every tile)."""
    return [rng.integers(0, n, size=2 * n // 3 + 1), np.unique(rng.integers(0, n, size=n // 2 + 1)),
            np.array([n - 1]), np.empty(0, dtype=np.int64)]


@pytest.mark.parametrize("kind,n,d", [("gauss", 3, 1), ("dup", 300, 2), ("grid", 301, 3), ("discrete", 517, 7),
                                      ("dup", 200, 32)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_knn_kernel_query_subset_equals_the_full_rows(kind, n, d, dtype):
    """Every method of the compiled kernels: tree (per-query traversal), brute force (tiles of
    query rows), auto."""
    pts = make_points(kind, n, d, np.dtype(dtype), seed=n + d)
    rng = np.random.default_rng(n)
    for k in sorted({1, min(4, n - 1), n - 1 if n < 10 else 17}):
        for code in METHODS.values():
            full_d, full_i, _ = _cpu.knn(pts, k, code)
            for rows in _subsets(n, rng):
                dist, idx, _ = _cpu.knn(pts, k, code, 0, rows)
                assert dist.shape == (rows.size, k) and idx.dtype == np.int64
                np.testing.assert_array_equal(idx, full_i[rows], err_msg=f"k={k}, method={code}")
                np.testing.assert_array_equal(dist, full_d[rows], err_msg=f"k={k}, method={code}")


def _query_case(name: str, n: int, request):
    from conftest import make_backend

    if name == "triton" and n > 70:
        pytest.skip("the Triton interpreter is slow; the smaller cases cover its launch over query blocks")
    return make_backend(name, request)


@pytest.mark.parametrize("name", QUERY_BACKENDS)
@pytest.mark.parametrize("kind,n,d", [("gauss", 2, 1), ("dup", 70, 3), ("grid", 130, 4)])
def test_knn_op_queries_equal_the_full_rows(name, kind, n, d, request):
    """Host backends, and triton's launch over the query blocks holding the rows (70 points: 3
    blocks of 32, the last one partial)."""
    be = _query_case(name, n, request)
    pts = make_points(kind, n, d, np.float32, seed=n)
    k = min(3, n - 1)
    full_d, full_i = map(be.host, ops.knn(be, pts, k))
    for rows in _subsets(n, np.random.default_rng(d)):
        dist, idx = map(be.host, ops.knn(be, pts, k, queries=rows))
        np.testing.assert_array_equal(idx, full_i[rows])
        np.testing.assert_array_equal(dist, full_d[rows])
    dist, _ = ops.knn(be, pts, k, queries=[n - 1, 0])  # any sequence of ints
    np.testing.assert_array_equal(be.host(dist), full_d[[n - 1, 0]])


def test_knn_op_refuses_bad_queries():
    be = ops.resolve("numpy")
    pts = make_points("gauss", 10, 2, np.float64)
    for bad, error, text in [(np.array([[1]]), ValueError, "queries must be 1-D"),
                             (np.array([0.5]), TypeError, "queries must be integer"),
                             (np.array([True]), TypeError, "queries must be integer"),
                             (np.array([10]), ValueError, r"queries must be rows of the points, in \[0, 10\)"),
                             (np.array([-1]), ValueError, "queries must be rows")]:
        with pytest.raises(error, match=text):
            ops.knn(be, pts, 2, queries=bad)
    with pytest.raises(ValueError, match="one problem"):
        ops.knn(be, np.stack([pts, pts]), 2, queries=[0])
    with pytest.raises(ValueError, match="k must be between"):
        ops.knn(be, pts, 10, queries=[0])
    with pytest.raises(ValueError, match="queries must be rows"):
        _cpu.knn(pts, 2, 0, 0, np.array([11]))


def test_a_backend_without_query_subsets_refuses_them_by_name():
    """A backend whose kernels answer every point only (takes_queries False): a clear error naming
    it (raised before any launch), not every row."""
    import types

    torch = pytest.importorskip("torch")
    from cchmi.ops.cuda import CudaBackend

    class EveryRow(CudaBackend):
        name = "every-row"
        takes_queries = False

    be = EveryRow(types.SimpleNamespace(max_k=64, tile_rows=64), torch.device("cpu"))
    pts = make_points("gauss", 10, 2, np.float32)
    with pytest.raises(ValueError, match="queries= is not supported by the every-row backend"):
        ops.knn(be, pts, 2, queries=[0])
    with pytest.raises(ValueError, match="queries= is not supported by the every-row backend"):
        ops.count_pair(be, pts, pts, np.ones(1), np.ones(1), False, queries=[0])
