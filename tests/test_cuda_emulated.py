"""The CUDA kNN and counting kernels, unchanged, on the CPU.

tests/cuda/emulate.h is a block emulator: compiled with the host C++ compiler, a kernel's blocks
run one after another and a block's threads as OS threads, so __syncthreads and __syncthreads_or
are real barriers and __shared__ arrays are shared by the block. CI has no GPU: this is where the
kernels' indexing, tiling, barriers, pruning and register top-k are checked before tests/gpu runs
them on a device.

* kernels_check.cpp runs csrc/cuda/knn_cuda.cu and count_cuda.cu against brute force;
* emulated_module.cpp builds cchmi._cuda's own pybind11 module (csrc/bind_cuda.cpp) over the
  emulated kernels (conftest.py's ``emulated_cuda``), and the cuda backend runs on CPU tensors
  through it: the kNN and counting ops on every shape in test_knn.py and test_count.py (the
  ``cuda-emulated`` backend), and here the estimators, end to end, and ``queries=`` (the kernels
  launched over the query blocks holding the rows: ``knn_blocks``, ``count_within_pair_blocks``)
  against the full call's rows and the numpy backend.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT, compile_emulated, cxx, make_points

pytestmark = pytest.mark.skipif(cxx() is None, reason="no C++ compiler found")


@pytest.mark.slow
def test_cuda_kernels_match_brute_force_under_emulation(tmp_path):
    import subprocess

    exe = tmp_path / "kernels_check"
    compile_emulated(["-x", "c++", str(ROOT / "tests/cuda/kernels_check.cpp"), "-o", str(exe)])
    done = subprocess.run([str(exe)], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-4000:]
    assert done.stdout.strip() == "ok"


def test_estimators_through_the_emulated_cuda_backend(emulated_cuda, monkeypatch):
    import cchmi
    from cchmi.ops import registry

    monkeypatch.setattr(registry, "cuda_module", lambda: emulated_cuda)
    monkeypatch.setattr(registry, "torch_sees_gpu", lambda: True)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((160, 3)).astype(np.float32)
    y = (x[:, :2] + rng.standard_normal((160, 2))).astype(np.float32)
    labels = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0)
    calls = {
        "ksg1": lambda be: cchmi.ksg_mi(x, y, backend=be),
        "ksg2": lambda be: cchmi.ksg_mi(x, y, variant=2, backend=be),
        "interval": lambda be: cchmi.ksg_mi(x, y, confidence=0.9, n_subsamples=3, backend=be),
        "mixed": lambda be: cchmi.mixed_mi(x, labels, backend=be),
        "entropy": lambda be: cchmi.entropy(x, backend=be),
        "cmi": lambda be: cchmi.cmi(x, y, x[:, 2:], backend=be),
        "permutation": lambda be: cchmi.permutation_test(x, y, n_permutations=3, backend=be),
        "batch": lambda be: cchmi.ksg_mi_batch(np.stack([x, x[::-1]]), y, backend=be)[1],
    }
    for name, call in calls.items():
        got, want = call("cuda"), call("cpu")
        assert got.backend == "cuda", name
        assert (got.estimate, getattr(got, "stderr", None)) == (want.estimate, getattr(want, "stderr", None)), name


# ---------------------------------------------------------------------------------------------
# queries=: the rows of the full call, bit for bit, in the order given (repeats, none), and the
# numpy backend's. Cases: (kind, n, d, k). n is no multiple of the 64-row tiles (except 128: whole
# tiles); d and k reach the dimension-specialised kNN kernels (d padded to 4, 8; K = 8, 16, 64),
# the generic ones (d = 70; float64 counts) and ties (dup, grid, discrete).
QUERY_CASES = [("gauss", 2, 1, 1), ("dup", 131, 3, 4), ("grid", 128, 2, 9), ("discrete", 200, 6, 17),
               ("dup", 97, 2, 64), ("gauss", 70, 70, 3)]


class _Recorder:
    """The module with the names of the functions called (the launches a query subset made)."""

    def __init__(self, module):
        self._module, self.calls = module, []

    def __getattr__(self, name):
        attr = getattr(self._module, name)
        if not callable(attr):
            return attr

        def call(*args):
            self.calls.append(name)
            return attr(*args)

        return call


def _subsets(n: int, rng) -> list[np.ndarray]:
    """Unsorted with repeats, sorted without, the last row (in the last, partial tile), none."""
    return [rng.integers(0, n, size=2 * n // 3 + 1), np.unique(rng.integers(0, n, size=n // 2 + 1)),
            np.array([n - 1]), np.empty(0, dtype=np.int64)]


def _query_backend(emulated_cuda):
    import torch

    from cchmi.ops.cuda import CudaBackend

    recorder = _Recorder(emulated_cuda)
    return CudaBackend(recorder, torch.device("cpu")), recorder


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind,n,d,k", QUERY_CASES)
def test_knn_queries_equal_the_full_rows(emulated_cuda, kind, n, d, k, dtype):
    from cchmi import ops

    be, recorder = _query_backend(emulated_cuda)
    numpy = ops.resolve("numpy")
    pts = make_points(kind, n, d, np.dtype(dtype), seed=n + d)
    full_d, full_i = map(be.host, ops.knn(be, pts, k))
    want_d, want_i = ops.knn(numpy, pts, k)
    np.testing.assert_array_equal(full_i, want_i)
    np.testing.assert_array_equal(full_d, want_d)
    for rows in _subsets(n, np.random.default_rng(n)):
        recorder.calls.clear()
        dist, idx = map(be.host, ops.knn(be, pts, k, queries=rows))
        assert recorder.calls == ["knn_blocks"]
        assert dist.shape == idx.shape == (rows.size, k) and dist.dtype == pts.dtype and idx.dtype == np.int64
        np.testing.assert_array_equal(idx, full_i[rows])
        np.testing.assert_array_equal(dist, full_d[rows])
        np_d, np_i = ops.knn(numpy, pts, k, queries=rows)
        np.testing.assert_array_equal(idx, np_i)
        np.testing.assert_array_equal(dist, np_d)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind,n,d,k", QUERY_CASES)
def test_count_queries_equal_the_full_rows(emulated_cuda, kind, n, d, k, dtype):
    """Radii on the boundary (k-th distances: strict and inclusive differ), in x alone and in x and
    y (the y space: the first column doubled, or the rest of the columns)."""
    from cchmi import ops, reference

    be, recorder = _query_backend(emulated_cuda)
    numpy = ops.resolve("numpy")
    pts = make_points(kind, n, d, np.dtype(dtype), seed=n + d)
    y = np.ascontiguousarray(pts[:, 1:] if d > 1 else pts * 2)
    rx = np.ascontiguousarray(reference.knn(pts, k)[0][:, -1])
    ry = np.ascontiguousarray(reference.knn(y, k)[0][:, -1])
    for inclusive in (False, True):
        full = be.host(ops.count_within(be, pts, rx, inclusive))
        full_x, full_y = map(be.host, ops.count_pair(be, pts, y, rx, ry, inclusive))
        np.testing.assert_array_equal(full_x, numpy.count_within(pts, rx, inclusive))
        np.testing.assert_array_equal(full_y, numpy.count_within(y, ry, inclusive))
        for rows in _subsets(n, np.random.default_rng(n)):
            recorder.calls.clear()
            got = be.host(ops.count_within(be, pts, rx[rows], inclusive, queries=rows))
            cx, cy = map(be.host, ops.count_pair(be, pts, y, rx[rows], ry[rows], inclusive, queries=rows))
            assert set(recorder.calls) <= {"count_within_pair_blocks"} and (recorder.calls or not rows.size)
            np.testing.assert_array_equal(got, full[rows])
            np.testing.assert_array_equal(cx, full_x[rows])
            np.testing.assert_array_equal(cy, full_y[rows])
            np.testing.assert_array_equal(got, ops.count_within(numpy, pts, rx[rows], inclusive, queries=rows))
    if n > 2:  # one row asked twice with two radii (answered in two rounds of distinct rows)
        rows, r = np.array([1, 1]), np.array([rx[1], 2 * rx[1]], dtype=pts.dtype)
        got = be.host(ops.count_within(be, pts, r, False, queries=rows))
        want = [numpy.count_within(pts, np.full(n, v, dtype=pts.dtype), False)[1] for v in r]
        np.testing.assert_array_equal(got, want)


def test_block_launchers_check_the_block_count(emulated_cuda):
    """n_blocks is checked against the number of query blocks (a caller bypassing the backend gets a
    ValueError, not a read past the list); an empty list launches nothing and writes nothing."""
    import torch

    from cchmi.ops import _spatial

    pts = torch.from_numpy(make_points("gauss", 130, 2, np.float32))[None]
    sp, order, lo, hi = _spatial.sorted_with_boxes(pts, 64, prune=True)
    dist = torch.full((1, 130, 3), -1.0)
    idx = torch.full((1, 130, 3), -1, dtype=torch.int64)
    blocks = torch.arange(3)
    ptrs = (sp.data_ptr(), order.data_ptr(), lo.data_ptr(), hi.data_ptr(), 1, 130, 2, 3)
    for bad in (-1, 4):
        with pytest.raises(ValueError, match="n_blocks"):
            emulated_cuda.knn_blocks(*ptrs, blocks.data_ptr(), bad, dist.data_ptr(), idx.data_ptr(), False, 0, 0)
        with pytest.raises(ValueError, match="n_blocks"):
            emulated_cuda.count_within_pair_blocks(sp.data_ptr(), lo.data_ptr(), hi.data_ptr(), 2, 0, 0, 0, 0, 1, 130,
                                                   dist.data_ptr(), 0, False, blocks.data_ptr(), bad, idx.data_ptr(),
                                                   0, False, 0, 0)
    emulated_cuda.knn_blocks(*ptrs, blocks.data_ptr(), 0, dist.data_ptr(), idx.data_ptr(), False, 0, 0)
    assert bool((dist == -1).all()) and bool((idx == -1).all())
    emulated_cuda.knn_blocks(*ptrs, blocks[2:].data_ptr(), 1, dist.data_ptr(), idx.data_ptr(), False, 0, 0)
    assert bool((idx[0, 128:] >= 0).all()) and bool((idx[0, :128] == -1).all())  # the last block only
