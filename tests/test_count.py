"""Radius counts of the compiled CPU kernels against the NumPy reference, exactly.

Radii are taken where ties are hardest: at the k-th neighbour distances themselves (so points lie
exactly on the boundary, where '<' and '<=' differ), at 0, and at random values.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_points

from cchmi import _cpu, reference


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
CASES += [(kind, 4099, d, "float32") for d in (1, 2, 7, 32) for kind in ("gauss", "dup")]


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
