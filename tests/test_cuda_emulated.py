"""The CUDA kNN and counting kernels, unchanged, on the CPU: tests/cuda/kernels_check.cpp compiles
csrc/cuda/knn_cuda.cu and count_cuda.cu with the host C++ compiler and the block emulator
(tests/cuda/emulate.h: a block's threads are OS threads, __syncthreads a real barrier) and checks
them against brute force, exactly. CI has no GPU: this is where the kernels' indexing, tiling,
barriers, pruning and register top-k are checked before tests/gpu runs them on a device."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _cxx():
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++")


@pytest.mark.skipif(_cxx() is None, reason="no C++ compiler found")
def test_cuda_kernels_match_brute_force_under_emulation(tmp_path):
    exe = tmp_path / "kernels_check"
    build = subprocess.run(
        [_cxx(), "-std=c++20", "-O2", "-pthread", "-Wno-subobject-linkage", f"-I{ROOT / 'csrc'}",
         f"-I{ROOT / 'tests/cuda'}", "-x", "c++", str(ROOT / "tests/cuda/kernels_check.cpp"), "-o", str(exe)],
        capture_output=True, text=True, timeout=600, check=False)
    if build.returncode != 0 and "barrier" in build.stderr:
        pytest.skip("the C++ compiler lacks C++20 <barrier>")
    assert build.returncode == 0, build.stderr[-4000:]
    done = subprocess.run([str(exe)], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-4000:]
    assert done.stdout.strip() == "ok"
