"""The installed distribution's metadata: a light install (numpy only), extras by use, typed, licensed.

Checks the metadata pip recorded for the installed cchmi (pyproject.toml is the source), so they
hold for the wheel as users get it; the wheel itself is built, repaired and run under emulated CPUs
by .ci/wheel_check.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata

import pytest

EXTRAS = {"torch", "gpu", "faiss", "plot", "data", "bench", "dask", "slurm", "test", "all"}


def _requirements() -> list[tuple[str, str]]:
    """(requirement name, marker text) for each Requires-Dist of cchmi."""
    out = []
    for req in metadata.requires("cchmi") or []:
        spec, _, marker = req.partition(";")
        name = spec.strip().split("[")[0]
        for sep in "<>=!~ (":
            name = name.split(sep)[0]
        out.append((name.lower(), marker.strip()))
    return out


def test_only_numpy_is_unconditional():
    unconditional = {name for name, marker in _requirements() if "extra ==" not in marker}
    assert unconditional <= {"numpy", "tomli"}, unconditional
    assert "numpy" in unconditional
    # tomli only where tomllib is missing
    assert all("python_version" in marker for name, marker in _requirements() if name == "tomli")


def test_extras_by_use():
    assert set(metadata.metadata("cchmi").get_all("Provides-Extra") or []) == EXTRAS

    def extra(name: str) -> set[str]:
        return {req for req, marker in _requirements() if f'extra == "{name}"' in marker}

    for name in ("torch", "gpu", "test"):
        assert "torch" in extra(name), name
    assert "triton" in extra("gpu") and "triton" in extra("test")
    assert "faiss-cpu" in extra("faiss") and "matplotlib" in extra("plot")
    assert "torch" not in extra("faiss") | extra("plot")
    assert "dask" in extra("dask") and "submitit" in extra("slurm")
    assert {"dask", "submitit"} <= extra("test")  # the executor tests run in CI
    assert {"pillow", "rdata"} <= extra("data") & extra("test")  # the real-data loaders' tests run in CI


def test_licence_and_classifiers():
    meta = metadata.metadata("cchmi")
    assert meta["License-Expression"] == "BSD-3-Clause"
    classifiers = set(meta.get_all("Classifier"))
    for minor in (10, 11, 12, 13):
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers
    assert "Operating System :: POSIX :: Linux" in classifiers


def _editable() -> bool:
    text = metadata.distribution("cchmi").read_text("direct_url.json")
    return bool(text) and json.loads(text).get("dir_info", {}).get("editable", False)


def test_typed_and_licence_files_ship():
    if _editable():
        pytest.skip("an editable install records no package files")
    files = {f.as_posix() for f in metadata.files("cchmi") or []}
    assert "cchmi/py.typed" in files
    assert any(f.endswith(".dist-info/licenses/LICENSE") for f in files), sorted(files)


def test_estimators_work_without_torch(tmp_path):
    """`pip install cchmi` has no torch: import and a KSG estimate must not need it."""
    code = """
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "triton", "matplotlib"):
            raise ImportError(f"{name} is blocked: a light install does not have it")
sys.meta_path.insert(0, NoTorch())
import numpy as np
import cchmi
x = np.random.default_rng(0).standard_normal((500, 2))
print(cchmi.ksg_mi(x[:, :1], x[:, 1:] + x[:, :1], k=3).estimate)
"""
    # cwd outside the checkout: `python -c` puts the cwd first on sys.path
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert float(run.stdout) > 0.2
