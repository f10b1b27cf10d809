"""The CUDA kNN and counting kernels, unchanged, on the CPU.

tests/cuda/emulate.h is a block emulator: compiled with the host C++ compiler, a kernel's blocks
run one after another and a block's threads as OS threads, so __syncthreads and __syncthreads_or
are real barriers and __shared__ arrays are shared by the block. CI has no GPU: this is where the
kernels' indexing, tiling, barriers, pruning and register top-k are checked before tests/gpu runs
them on a device.

* kernels_check.cpp runs csrc/cuda/knn_cuda.cu and count_cuda.cu against brute force;
* emulated_module.cpp builds cchmi._cuda's own pybind11 module (csrc/bind_cuda.cpp) over the
  emulated kernels, and the cuda backend runs on CPU tensors through it: the Python glue (spatial
  sort, boxes, pointers, argument order, batches) and the estimators, end to end.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from conftest import make_points

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["-std=c++20", "-O2", "-pthread", "-Wno-subobject-linkage", f"-I{ROOT / 'csrc'}", f"-I{ROOT / 'tests/cuda'}"]


def _cxx():
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++")


pytestmark = pytest.mark.skipif(_cxx() is None, reason="no C++ compiler found")


def _compile(args: list[str], timeout: int = 900) -> None:
    build = subprocess.run([_cxx(), *FLAGS, *args], capture_output=True, text=True, timeout=timeout, check=False)
    assert build.returncode == 0, build.stderr[-4000:]


def test_cuda_kernels_match_brute_force_under_emulation(tmp_path):
    exe = tmp_path / "kernels_check"
    _compile(["-x", "c++", str(ROOT / "tests/cuda/kernels_check.cpp"), "-o", str(exe)])
    done = subprocess.run([str(exe)], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-4000:]
    assert done.stdout.strip() == "ok"


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """cchmi._cuda's bindings over the emulated kernels, and a cuda backend on the CPU using them."""
    pybind11 = pytest.importorskip("pybind11")
    torch = pytest.importorskip("torch")
    from cchmi import _backend

    out = tmp_path_factory.mktemp("emulated") / f"_cuda{sysconfig.get_config_var('EXT_SUFFIX')}"
    _compile(["-shared", "-fPIC", f"-I{pybind11.get_include()}", f"-I{sysconfig.get_paths()['include']}",
              '-DCCHMI_CUDA_ARCHES="emulated"', '-DCCHMI_CUDA_COMPILER_VERSION="none"', "-x", "c++",
              str(ROOT / "tests/cuda/emulated_module.cpp"), "-o", str(out)])
    spec = importlib.util.spec_from_file_location("_cuda", out)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, _backend.CudaBackend(module, torch.device("cpu"))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind,n,d", [("dup", 301, 3), ("grid", 200, 8), ("gauss", 130, 20), ("dup", 97, 70)])
def test_cuda_backend_equals_cpu_through_the_bindings(emulated, kind, n, d, dtype):
    from cchmi import _backend

    _, be = emulated
    cpu = _backend.resolve("cpu")
    pts = make_points(kind, n, d, np.dtype(dtype), seed=n + d)
    y = np.ascontiguousarray(pts[:, : max(1, d // 3)] * 2)
    for prune in (True, False):
        be.prune = prune
        for k in (1, 5):
            dist, idx = be.knn(pts, k)
            want_d, want_i = cpu.knn(pts, k)
            np.testing.assert_array_equal(idx.numpy(), want_i)
            np.testing.assert_array_equal(dist.numpy(), want_d)
        radius = want_d[:, -1]
        for inclusive in (False, True):
            cx, cy = be.count_pair(pts, y, radius, radius, inclusive)
            want = cpu.count_pair(pts, y, radius, radius, inclusive)
            np.testing.assert_array_equal(cx.numpy(), want[0])
            np.testing.assert_array_equal(cy.numpy(), want[1])
            np.testing.assert_array_equal(be.count_within(pts, radius, inclusive).numpy(), want[0])
    be.prune = True


def test_cuda_backend_batches_and_limits(emulated):
    from cchmi import _backend

    _, be = emulated
    cpu = _backend.resolve("cpu")
    pts = np.stack([make_points(kind, 150, 4, np.float32, seed=i) for i, kind in enumerate(("gauss", "dup", "grid"))])
    dist, idx = be.knn(pts, 6)
    want_d, want_i = cpu.knn(pts, 6)
    np.testing.assert_array_equal(idx.numpy(), want_i)
    np.testing.assert_array_equal(dist.numpy(), want_d)
    radius = np.ascontiguousarray(want_d[..., -1])
    np.testing.assert_array_equal(be.count_within(pts, radius, False).numpy(), cpu.count_within(pts, radius, False))
    small = make_points("gauss", 70, 2, np.float32)
    assert be.knn(small, 64)[1].shape == (70, 64)
    with pytest.raises(ValueError, match="k=65 is above the cuda backend's limit of 64"):
        be.knn(small, 65)


def test_estimators_through_the_emulated_cuda_backend(emulated, monkeypatch):
    import cchmi
    from cchmi import _backend

    module, _ = emulated
    monkeypatch.setattr(_backend, "_cuda_module", lambda: module)
    monkeypatch.setattr(_backend, "_torch_sees_gpu", lambda: True)
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
