"""The Triton kNN and counting kernels (cchmi/_triton/knn.py) against the NumPy reference, exactly.

Without a GPU they run under TRITON_INTERPRET=1 (set here before Triton is imported), at small
sizes: the interpreter executes the same kernel code with NumPy arithmetic, so neighbour indices,
distances and counts must equal the reference bit for bit, ties included. The GPU runs of the same
kernels are in tests/gpu/test_knn_gpu.py.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import make_points

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"
pytest.importorskip("triton")

from cchmi import reference
from cchmi._triton import knn as tk

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
KINDS = ("gauss", "dup", "discrete", "grid")
# Sizes that fill no 32-wide tile (33, 70) and the smallest problems (2, 3).
CASES = [(kind, n, d, "float32") for kind in KINDS for n, d in ((2, 1), (3, 2), (33, 3), (70, 9))]
CASES += [(kind, 41, 4, "float64") for kind in ("gauss", "dup")]


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a)).to(DEVICE)


def _np(t):
    return t.cpu().numpy()


@pytest.mark.parametrize("kind,n,d,dtype", CASES)
def test_triton_knn_and_counts_match_reference(kind, n, d, dtype):
    pts = make_points(kind, n, d, np.dtype(dtype), seed=n + d)
    ks = sorted({k for k in (1, 3, min(n - 1, 12)) if 1 <= k <= n - 1})
    ref_d, ref_i = reference.knn(pts, n - 1)
    for k in ks:
        dist, idx = tk.knn(_t(pts), k)
        assert dist.dtype == _t(pts).dtype and idx.dtype == torch.int64
        np.testing.assert_array_equal(_np(idx), ref_i[:, :k], err_msg=f"indices, k={k}")
        np.testing.assert_array_equal(_np(dist), ref_d[:, :k], err_msg=f"distances, k={k}")
    radius = np.ascontiguousarray(ref_d[:, min(2, n - 2)])  # on the boundary of some points
    y = np.ascontiguousarray(pts[:, :1] * 2)
    for inclusive in (False, True):
        want_x = reference.count_within(pts, radius, inclusive)
        np.testing.assert_array_equal(_np(tk.count_within(_t(pts), _t(radius), inclusive)), want_x)
        cx, cy = tk.count_within(_t(pts), _t(radius), inclusive, _t(y), _t(radius))
        np.testing.assert_array_equal(_np(cx), want_x)
        np.testing.assert_array_equal(_np(cy), reference.count_within(y, radius, inclusive))


def test_triton_knn_at_the_k_limit():
    n = tk.MAX_K + 1
    pts = make_points("dup", n, 2, np.float32, seed=3)
    dist, idx = tk.knn(_t(pts), tk.MAX_K)
    ref_d, ref_i = reference.knn(pts, tk.MAX_K)
    np.testing.assert_array_equal(_np(idx), ref_i)
    np.testing.assert_array_equal(_np(dist), ref_d)
    with pytest.raises(ValueError, match=r"MAX_K=64.*backend='cpu'"):
        tk.knn(_t(make_points("gauss", n + 1, 2, np.float32)), tk.MAX_K + 1)


@pytest.mark.parametrize("bad_k", [0, 5])
def test_triton_knn_rejects_bad_k(bad_k):
    with pytest.raises(ValueError, match="k must satisfy"):
        tk.knn(_t(make_points("gauss", 5, 2, np.float32)), bad_k)


def test_triton_batches_equal_problem_by_problem():
    """(B, n, d) in one launch = each problem alone (indices are within each problem)."""
    b, n = 3, 37
    pts = np.stack([make_points(kind, n, 3, np.float32, seed=i) for i, kind in enumerate(("gauss", "dup", "grid"))])
    dist, idx = tk.knn(_t(pts), 4)
    assert tuple(dist.shape) == (b, n, 4)
    rx = np.ascontiguousarray(_np(dist)[..., -1])
    y = np.ascontiguousarray(pts[..., :2] * 3)
    cx, cy = tk.count_within(_t(pts), _t(rx), False, _t(y), _t(rx))
    for i in range(b):
        ref_d, ref_i = reference.knn(pts[i], 4)
        np.testing.assert_array_equal(_np(idx[i]), ref_i)
        np.testing.assert_array_equal(_np(dist[i]), ref_d)
        np.testing.assert_array_equal(_np(cx[i]), reference.count_within(pts[i], rx[i], False))
        np.testing.assert_array_equal(_np(cy[i]), reference.count_within(y[i], rx[i], False))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pruned_tiles_give_the_reference_results(dtype):
    """Well-separated clusters: far tiles are skipped by their bounding boxes, near ones counted
    whole or scanned; every path must give the reference's neighbours and counts exactly."""
    rng = np.random.default_rng(7)
    centres = np.array([[0, 0, 0], [50, 0, 0], [0, 50, 0], [0, 0, 50]], dtype=np.float64)
    pts = centres[rng.integers(0, 4, 161)] + rng.standard_normal((161, 3))
    pts[::9] = pts[1::9][: pts[::9].shape[0]]  # duplicated rows: ties at distance 0
    pts = np.ascontiguousarray(pts, dtype=dtype)
    ref_d, ref_i = reference.knn(pts, 5)
    for prune in (True, False):  # pruned, and brute force (the benchmarks' baseline)
        dist, idx = tk.knn(_t(pts), 5, prune=prune)
        np.testing.assert_array_equal(_np(idx), ref_i)
        np.testing.assert_array_equal(_np(dist), ref_d)
    y = np.ascontiguousarray(pts[:, :2])
    for radius in (ref_d[:, -1], np.full(161, 10.0, dtype=dtype), np.full(161, 200.0, dtype=dtype)):
        radius = np.ascontiguousarray(radius)
        for inclusive in (False, True):
            cx, cy = tk.count_within(_t(pts), _t(radius), inclusive, _t(y), _t(radius))
            np.testing.assert_array_equal(_np(cx), reference.count_within(pts, radius, inclusive))
            np.testing.assert_array_equal(_np(cy), reference.count_within(y, radius, inclusive))
    brute = tk.count_within(_t(pts), _t(radius), True, _t(y), _t(radius), prune=False)
    np.testing.assert_array_equal(_np(brute[0]), reference.count_within(pts, radius, True))


def test_spatial_order_is_a_permutation_and_boxes_hold_their_tiles():
    from cchmi import _spatial

    pts = torch.from_numpy(np.stack([make_points(kind, 77, 5, np.float32, seed=1) for kind in ("gauss", "grid")]))
    sp, order, lo, hi = _spatial.sorted_with_boxes(pts, 32)
    for b in range(2):
        assert sorted(order[b].tolist()) == list(range(77))
        np.testing.assert_array_equal(_np(sp[b]), _np(pts[b][order[b]]))
    assert tuple(lo.shape) == (2, 3, 5)
    for t in range(3):
        tile = sp[:, 32 * t: 32 * (t + 1)]
        assert bool((tile >= lo[:, t:t + 1]).all()) and bool((tile <= hi[:, t:t + 1]).all())
    values = torch.arange(2 * 77).reshape(2, 77)
    assert torch.equal(_spatial.from_sorted(_spatial.to_sorted(values, order), order), values)

