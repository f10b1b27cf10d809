"""`cchmi bench` from an installed wheel, outside any checkout: the wheel ships the benchmark suite
as cchmi.bench (bench/ mapped by pyproject's wheel.packages), and `cchmi bench` imports nothing
from the working directory.

Building a wheel takes minutes, so this runs where one is installed: CCHMI_WHEEL_PYTHON names the
python of an environment with the built wheel installed (e.g. `pip wheel --no-deps -w dist .` then
`pip install dist/cchmi-*.whl` in a fresh venv); skipped without it."""

from __future__ import annotations

import os
import subprocess

import pytest

PYTHON = os.environ.get("CCHMI_WHEEL_PYTHON")
pytestmark = pytest.mark.skipif(not PYTHON, reason="CCHMI_WHEEL_PYTHON (a python with the cchmi wheel) not set")


def _run(args, cwd, timeout=600):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CCHMI_BENCH_DIR")}
    env["PYTHONSAFEPATH"] = "1"  # nothing from the working directory on sys.path
    return subprocess.run([PYTHON, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


def test_the_installed_wheel_runs_its_benchmark_suite(tmp_path):
    planted = tmp_path / "bench"
    planted.mkdir()
    (planted / "__init__.py").write_text("raise SystemExit('PLANTED CODE RAN')\n")
    where = _run(["-c", "import cchmi, cchmi.bench.bench_accuracy as b; print(cchmi.__file__); print(b.__file__)"],
                 tmp_path)
    assert where.returncode == 0, where.stderr
    package, suite = where.stdout.split()
    assert "site-packages" in package and suite.startswith(os.path.dirname(package))
    short = _run(["-m", "cchmi", "bench", "--help"], tmp_path)
    assert short.returncode == 0 and len(short.stdout.splitlines()) <= 15
    run = _run(["-m", "cchmi", "bench", "accuracy", "--tasks", "gauss-1x1-1", "--n", "300", "--seeds", "1",
                "--methods", "cchmi KSG-1 / Ross", "--out", str(tmp_path / "out"), "--no-progress"], tmp_path)
    assert run.returncode == 0, run.stderr
    assert "PLANTED" not in run.stdout + run.stderr and "| gauss-1x1-1 | 300 | cchmi KSG-1 / Ross |" in run.stdout
