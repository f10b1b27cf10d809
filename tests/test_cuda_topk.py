"""The CUDA kNN kernel's register top-k (csrc/cuda/topk.cuh), compiled by nvcc for the host and
checked against a sort with many ties. Runs wherever nvcc is (CI has it); no GPU needed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _nvcc():
    return os.environ.get("CUDACXX") or shutil.which("nvcc")


@pytest.mark.skipif(_nvcc() is None, reason="nvcc not found")
def test_register_topk_matches_a_sort(tmp_path):
    exe = tmp_path / "topk_check"
    subprocess.run([_nvcc(), "-std=c++17", "-O2", f"-I{ROOT / 'csrc'}", str(ROOT / "tests/cuda/topk_check.cu"),
                    "-o", str(exe)], check=True, capture_output=True, text=True, timeout=300)
    done = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout
    assert done.stdout.strip() == "ok"
