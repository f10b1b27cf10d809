"""Exact kNN of the compiled CPU kernels against the NumPy reference (cchmi.reference.knn).

Distances and indices must be identical, bit for bit, for every method (tree, brute, auto), on
random data, duplicated rows, discrete columns and grids, at sizes that fill no tile.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_points

from cchmi import _cpu, reference


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
CASES += [(kind, 4099, d, "float32") for d in (1, 2, 7, 32) for kind in ("gauss", "dup")]


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
