"""The counting op against the NumPy reference, exactly: on every backend through the op's
dispatcher (cchmi.ops.count_within / count_pair), and for every method of the compiled CPU kernels.

Radii are taken where ties are hardest: at the k-th neighbour distances themselves (so points lie
exactly on the boundary, where '<' and '<=' differ), at 0, and at random values.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_points

from cchmi import _cpu, ops, reference


METHODS = {"auto": 0, "tree": 1, "brute": 2, "sort": 3}
KINDS = ("gauss", "dup", "discrete", "grid", "scaled")


def _case(kind: str, n: int, d: int, dtype_name: str):
    """Points, radii and the reference counts for each (radius, inclusive) pair."""
    pts = make_points(kind, n, d, np.dtype(dtype_name), seed=n * 7 + d)
    rng = np.random.default_rng(n + d)
    radii = {"zero": np.zeros(n, dtype=pts.dtype), "random": rng.uniform(0, 1.5, n).astype(pts.dtype)}
    if n >= 2:
        dist, _ = reference.knn(pts, min(3, n - 1))
        radii["kth"] = np.ascontiguousarray(dist[:, -1])
    expected = {(name, inc): reference.count_within(pts, r, inc) for name, r in radii.items() for inc in (False, True)}
    return pts, radii, expected


CASES = [(kind, n, d, dt) for n in (1, 2, 3, 1023) for d in (1, 2, 7, 32) for kind in KINDS for dt in ("float32", "float64")]
CASES += [pytest.param(kind, 4099, d, "float32", marks=pytest.mark.slow) for d in (1, 2, 7, 32)
          for kind in ("gauss", "dup")]


@pytest.mark.parametrize("kind,n,d,dtype", CASES)
def test_counts_match_reference(kind, n, d, dtype):
    pts, radii, expected = _case(kind, n, d, dtype)
    for method, code in METHODS.items():
        if method == "sort" and d != 1:
            continue  # the one-dimensional method
        for (name, inclusive), want in expected.items():
            got, used = _cpu.count_within(pts, radii[name], inclusive, code)
            np.testing.assert_array_equal(got, want, err_msg=f"radius={name}, inclusive={inclusive}, {used}")
            assert method == "auto" or used == method


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n,dx,dy", [(1, 1, 1), (2, 1, 3), (3, 2, 2), (17, 1, 1), (1023, 7, 9), (4099, 16, 16),
                                     (2000, 32, 1)])
def test_count_pair_matches_reference(n, dx, dy, dtype):
    """Both marginals at once: the brute-force pair kernel visits each pair once for both points."""
    x = make_points("dup", n, dx, np.dtype(dtype), seed=n + dx)
    y = make_points("discrete", n, dy, np.dtype(dtype), seed=n + dy)
    rng = np.random.default_rng(n)
    rx = rng.uniform(0, 2, n).astype(dtype)
    ry = rng.uniform(0, 2, n).astype(dtype)
    rx[::3] = 0
    for inclusive in (False, True):
        want_x = reference.count_within(x, rx, inclusive)
        want_y = reference.count_within(y, ry, inclusive)
        for method in ("auto", "tree", "brute"):
            got_x, got_y, used = _cpu.count_within_pair(x, y, rx, ry, inclusive, METHODS[method])
            np.testing.assert_array_equal(got_x, want_x, err_msg=f"x, inclusive={inclusive}, {used}")
            np.testing.assert_array_equal(got_y, want_y, err_msg=f"y, inclusive={inclusive}, {used}")


def test_count_tree_counts_whole_nodes_exactly():
    """A radius covering everything: whole-node counting must give n - 1 for every point."""
    pts = make_points("gauss", 5000, 3, np.float32)
    r = np.full(5000, 100.0, dtype=np.float32)
    for method in (1, 2):
        got, _ = _cpu.count_within(pts, r, False, method)
        assert (got == 4999).all()


@pytest.mark.parametrize("bad", [np.nan, -1.0, np.inf])
def test_count_kernel_rejects_bad_radius(bad):
    pts = np.zeros((4, 1))
    r = np.array([0.5, 0.5, bad, 0.5])
    with pytest.raises(ValueError, match="radii"):
        _cpu.count_within(pts, r, False)


def test_count_kernel_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="same number of rows"):
        _cpu.count_within_pair(np.zeros((4, 2)), np.zeros((3, 2)), np.zeros(4), np.zeros(4), False)
    with pytest.raises(ValueError, match="radii"):
        _cpu.count_within_pair(np.zeros((4, 2)), np.zeros((4, 2)), np.zeros(4), np.full(4, -1.0), False)
    with pytest.raises(ValueError, match="radius"):
        _cpu.count_within(np.zeros((4, 2)), np.zeros(3), False)
    with pytest.raises(ValueError, match="sort"):
        _cpu.count_within(np.zeros((4, 2)), np.zeros(4), False, 3)


# ---------------------------------------------------------------------------------------------
# Every backend, through the dispatcher (cases as in test_knn.py's BACKEND_CASES).
BACKEND_CASES = [(kind, n, d, "float32") for kind in ("gauss", "dup", "discrete", "grid")
                 for n, d in ((2, 1), (3, 2), (33, 3), (70, 9))]
BACKEND_CASES += [(kind, 41, 4, "float64") for kind in ("gauss", "dup")]


@pytest.mark.parametrize("kind,n,d,dtype", BACKEND_CASES)
def test_counts_on_every_backend_match_reference(op_backend, kind, n, d, dtype):
    be = op_backend
    pts = make_points(kind, n, d, np.dtype(dtype), seed=n + d)
    ref_d, _ = reference.knn(pts, n - 1)
    radius = np.ascontiguousarray(ref_d[:, min(2, n - 2)])  # on the boundary of some points
    y = np.ascontiguousarray(pts[:, :1] * 2)
    for inclusive in (False, True):
        want_x = reference.count_within(pts, radius, inclusive)
        np.testing.assert_array_equal(be.host(ops.count_within(be, be.put(pts), radius, inclusive)), want_x)
        cx, cy = ops.count_pair(be, be.put(pts), be.put(y), radius, radius, inclusive)
        np.testing.assert_array_equal(be.host(cx), want_x)
        np.testing.assert_array_equal(be.host(cy), reference.count_within(y, radius, inclusive))


@pytest.mark.parametrize("kind,n,d", [("dup", 301, 3), ("grid", 200, 8), ("gauss", 130, 20), ("dup", 97, 70)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_device_counts_on_wide_shapes_pruned_or_not(device_backend, kind, n, d, dtype):
    be = device_backend
    if be.name == "triton" and d > 8:
        pytest.skip("the Triton kernel has no width specialisation; the interpreter is slow at this size")
    pts = make_points(kind, n, d, np.dtype(dtype), seed=n + d)
    y = np.ascontiguousarray(pts[:, : max(1, d // 3)] * 2)
    radius = np.ascontiguousarray(reference.knn(pts, 5)[0][:, -1])
    for prune in (True, False):
        be.prune = prune
        for inclusive in (False, True):
            cx, cy = ops.count_pair(be, pts, y, radius, radius, inclusive)
            np.testing.assert_array_equal(be.host(cx), reference.count_within(pts, radius, inclusive))
            np.testing.assert_array_equal(be.host(cy), reference.count_within(y, radius, inclusive))
            np.testing.assert_array_equal(be.host(ops.count_within(be, pts, radius, inclusive)),
                                          reference.count_within(pts, radius, inclusive))


def test_count_batches_equal_problem_by_problem(op_backend):
    be = op_backend
    pts = np.stack([make_points(kind, 37, 3, np.float32, seed=i) for i, kind in enumerate(("gauss", "dup", "grid"))])
    radius = np.ascontiguousarray(np.stack([reference.knn(p, 4)[0][:, -1] for p in pts]))
    y = np.ascontiguousarray(pts[..., :2] * 3)
    counts = ops.count_within(be, be.put(pts), radius, False)
    cx, cy = ops.count_pair(be, be.put(pts), be.put(y), radius, radius, True)
    for b in range(3):
        np.testing.assert_array_equal(be.host(counts[b]), reference.count_within(pts[b], radius[b], False))
        np.testing.assert_array_equal(be.host(cx[b]), reference.count_within(pts[b], radius[b], True))
        np.testing.assert_array_equal(be.host(cy[b]), reference.count_within(y[b], radius[b], True))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pruned_tiles_give_the_reference_counts(device_backend, dtype):
    """Tiles skipped, counted whole from their box, or scanned: every path gives the reference's
    counts, pruned and as brute force."""
    from test_knn import clustered_points

    be = device_backend
    pts = clustered_points(dtype)
    y = np.ascontiguousarray(pts[:, :2])
    kth = reference.knn(pts, 5)[0][:, -1]
    for prune in (True, False):
        be.prune = prune
        for radius in (kth, np.full(161, 10.0, dtype=dtype), np.full(161, 200.0, dtype=dtype)):
            radius = np.ascontiguousarray(radius)
            for inclusive in (False, True):
                cx, cy = ops.count_pair(be, pts, y, radius, radius, inclusive)
                np.testing.assert_array_equal(be.host(cx), reference.count_within(pts, radius, inclusive))
                np.testing.assert_array_equal(be.host(cy), reference.count_within(y, radius, inclusive))


# ---------------------------------------------------------------------------------------------
# A subset of queries (queries=): the rows of the full call with the same radii, bit for bit.
@pytest.mark.parametrize("kind,n,d", [("gauss", 1, 1), ("dup", 3, 1), ("dup", 300, 1), ("grid", 301, 3),
                                      ("discrete", 517, 7), ("dup", 200, 32)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_count_kernel_query_subset_equals_the_full_rows(kind, n, d, dtype):
    """Every method (sort, tree, brute, auto), radii on the boundary (k-th distances), zero, random."""
    from test_knn import _subsets

    pts, radii, _ = _case(kind, n, d, dtype)
    y = np.ascontiguousarray(pts[:, :1] * 2)
    rng = np.random.default_rng(d)
    for method, code in METHODS.items():
        if method == "sort" and d != 1:
            continue
        for r in radii.values():
            for inclusive in (False, True):
                full, _ = _cpu.count_within(pts, r, inclusive, code)
                full_x, full_y, _ = _cpu.count_within_pair(pts, y, r, r, inclusive, code)
                for rows in _subsets(n, rng):
                    sub = np.ascontiguousarray(r[rows])
                    got, _ = _cpu.count_within(pts, sub, inclusive, code, 0, rows)
                    np.testing.assert_array_equal(got, full[rows], err_msg=f"{method}, inclusive={inclusive}")
                    gx, gy, _ = _cpu.count_within_pair(pts, y, sub, sub, inclusive, code, 0, rows)
                    np.testing.assert_array_equal(gx, full_x[rows])
                    np.testing.assert_array_equal(gy, full_y[rows])


@pytest.mark.parametrize("name", ("cpu", "numpy", "faiss", "triton", "cuda-emulated"))
@pytest.mark.parametrize("kind,n,d", [("gauss", 2, 1), ("dup", 70, 3), ("grid", 130, 4)])
def test_count_ops_queries_equal_the_full_rows(name, kind, n, d, request):
    """As test_knn_op_queries_equal_the_full_rows; repeated rows get their own radii (triton: in
    rounds of distinct rows)."""
    from test_knn import _query_case, _subsets

    be = _query_case(name, n, request)
    pts = make_points(kind, n, d, np.float32, seed=n)
    y = np.ascontiguousarray(pts[:, :1] * 2)
    radius = np.ascontiguousarray(reference.knn(pts, 1)[0][:, 0])
    wide = np.ascontiguousarray(radius * 2)
    for inclusive in (False, True):
        full = be.host(ops.count_within(be, pts, radius, inclusive))
        full_x, full_y = map(be.host, ops.count_pair(be, pts, y, radius, wide, inclusive))
        for rows in _subsets(n, np.random.default_rng(d)):
            got = be.host(ops.count_within(be, pts, radius[rows], inclusive, queries=rows))
            np.testing.assert_array_equal(got, full[rows])
            cx, cy = map(be.host, ops.count_pair(be, pts, y, radius[rows], wide[rows], inclusive, queries=rows))
            np.testing.assert_array_equal(cx, full_x[rows])
            np.testing.assert_array_equal(cy, full_y[rows])
    if n > 2:  # one row asked twice with two radii
        rows, r = np.array([1, 1]), np.array([radius[1], wide[1]], dtype=pts.dtype)
        got = be.host(ops.count_within(be, pts, r, False, queries=rows))
        want = [be.host(ops.count_within(be, pts, np.full(n, v, dtype=pts.dtype), False))[1] for v in r]
        np.testing.assert_array_equal(got, want)


def test_count_ops_refuse_radii_not_per_query():
    be = ops.resolve("numpy")
    pts = make_points("gauss", 10, 2, np.float64)
    with pytest.raises(ValueError, match=r"radius needs one entry per query \(2\), got shape \(10,\)"):
        ops.count_within(be, pts, np.ones(10), False, queries=[0, 1])
    with pytest.raises(ValueError, match="radius_y needs one entry per query"):
        ops.count_pair(be, pts, pts, np.ones(2), np.ones(3), False, queries=[0, 1])
    with pytest.raises(ValueError, match=r"radius needs one entry per query \(1\), got shape \(\)"):
        ops.count_within(be, pts, 0.3, False, queries=[1])  # a scalar: named, not a TypeError
    with pytest.raises(TypeError, match="queries must be integer"):
        ops.count_within(be, pts, np.ones(1), False, queries=[0.0])
    with pytest.raises(ValueError, match="radius must have one entry per query"):
        _cpu.count_within(pts, np.ones(10), False, 0, 0, np.array([0, 1]))
