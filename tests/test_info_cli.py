"""cchmi.info(), the command line, and the build facts (the CUDA module is compiled in CI)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import cchmi
from cchmi.cli import main


def test_info_reports_build():
    facts = cchmi.info()
    assert facts["cchmi"] == cchmi.__version__
    assert facts["cpu_module"]["openmp"] in (True, False)
    assert facts["cpu_module"]["max_threads"] >= 1
    assert facts["backends"][0] == "cpu"
    for name in ("torch", "triton", "faiss", "cuda_module"):
        assert name in facts


@pytest.mark.skipif(os.environ.get("CCHMI_CUDA", "").upper() != "ON", reason="built without CCHMI_CUDA=ON")
def test_cuda_module_was_built_when_forced():
    from cchmi import _cuda

    assert set(_cuda.arches.split(",")) >= {"80", "90"} or os.environ.get("CMAKE_CUDA_ARCHITECTURES")
    assert _cuda.runtime_version() > 0
    assert _cuda.device_count() >= 0  # imports and answers on a machine without a GPU


def test_import_has_no_side_effects():
    code = "import sys, cchmi; print(sorted(m for m in ('torch', 'triton', 'faiss') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]" and out.stderr == ""


def test_cli_info_and_demo(capsys):
    assert main(["info"]) == 0
    assert "cpu_module" in capsys.readouterr().out
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "true MI 1.0000" in out and "KSG-1" in out and "p = " in out


def test_cli_mi_on_files(tmp_path, capsys):
    s = cchmi.data.correlated_gaussian(300, 2, 1, mi=0.5, random_state=0)
    np.save(tmp_path / "x.npy", s.x)
    np.savetxt(tmp_path / "y.csv", s.y, delimiter=",")
    np.savez(tmp_path / "labels.npz", labels=(s.y[:, 0] > 0).astype(int))
    assert main(["mi", str(tmp_path / "x.npy"), str(tmp_path / "y.csv"), "-k", "4"]) == 0
    assert f"{cchmi.ksg_mi(s.x, s.y, k=4).estimate:.4f}" in capsys.readouterr().out
    assert main(["mi", str(tmp_path / "x.npy"), str(tmp_path / "labels.npz"), "--labels"]) == 0


@pytest.mark.parametrize("argv,message", [
    (["mi", "missing.npy", "missing.npy"], "no such file"),
    (["mi", "{x}", "{short}"], "same number of samples"),
    (["mi", "{x}", "{nan}"], "NaN"),
    (["mi", "{x}", "{bad}"], "unsupported file type"),
])
def test_cli_errors_are_one_line_with_status_2(tmp_path, capsys, argv, message):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((20, 2)))
    np.save(tmp_path / "short.npy", np.zeros(10))
    np.save(tmp_path / "nan.npy", np.full(20, np.nan))
    (tmp_path / "bad.json").write_text("{}")
    files = {name: str(tmp_path / f) for name, f in
             [("x", "x.npy"), ("short", "short.npy"), ("nan", "nan.npy"), ("bad", "bad.json")]}
    assert main([a.format(**files) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_cli_unknown_option_exits_2():
    with pytest.raises(SystemExit) as exc:
        main(["mi", "--frobnicate"])
    assert exc.value.code == 2


def test_python_dash_m():
    out = subprocess.run([sys.executable, "-m", "cchmi", "info"], capture_output=True, text=True, check=True)
    assert "backends" in out.stdout
