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
  ``cuda-emulated`` backend), and here the estimators, end to end.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT, compile_emulated, cxx

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
