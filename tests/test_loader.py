"""cchmi._loader: which OpenMP runtime the kernels use, and when their default team adapts to the load
(the runtime loaded before cchmi, e.g. by torch, and no wait policy chosen by the user)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

_CHILD = """
import json, sys
if sys.argv[1] == "torch first":
    import torch
    torch.ones(4) @ torch.ones(4)
import numpy as np
import cchmi
from cchmi._loader import import_cpu_module
info = import_cpu_module().build_info()
x = np.random.default_rng(0).standard_normal((500, 3))
print(json.dumps({"follows": info["threads_follow_load"], "runtime": info["openmp_runtime"],
                  "estimate": cchmi.ksg_mi(x[:, :1], x[:, 1:]).estimate}))
"""


def _child(order: str, **env) -> dict:
    environ = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", _CHILD, order], env={**environ, **env}, capture_output=True,
                         text=True, timeout=300, check=True)
    return json.loads(out.stdout)


def _needs_linux_openmp():
    from cchmi._loader import import_cpu_module

    if not sys.platform.startswith("linux") or not import_cpu_module().build_info()["openmp"]:
        pytest.skip("the runtime check reads /proc and needs the OpenMP build")


def test_own_runtime_keeps_the_default_team():
    _needs_linux_openmp()
    alone = _child("cchmi alone")
    assert alone["follows"] is False
    assert alone["runtime"]  # the path of the libgomp it loaded


def test_runtime_loaded_first_by_torch_adapts_the_team_and_the_estimate_stands():
    _needs_linux_openmp()
    pytest.importorskip("torch")
    alone = _child("cchmi alone")
    after_torch = _child("torch first")
    assert after_torch["follows"] is True
    assert after_torch["estimate"] == alone["estimate"]


def test_a_policy_the_user_chose_is_left_alone():
    _needs_linux_openmp()
    pytest.importorskip("torch")
    assert _child("torch first", OMP_WAIT_POLICY="ACTIVE")["follows"] is False
    assert _child("torch first", GOMP_SPINCOUNT="1000")["follows"] is False
