"""The benchmark suite: the task catalogue's true MI values, the runners' bookkeeping (failures,
timeouts, missing peers are rows, never dropped), the summaries, and `cchmi bench` end to end.

The runners live in the checkout's bench/ folder, not in the package: they are imported the way
`cchmi bench` imports them (CCHMI_BENCH_DIR), so the installed cchmi stays the one imported."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cchmi.cli import _bench_module
from cchmi.data.tasks import QUICK_TASKS, Task, catalogue, student_t_mi_correction

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture
def bench(monkeypatch):
    """bench.<name> from this checkout."""
    if not BENCH.is_dir():
        pytest.skip("no bench/ folder: not a source checkout")
    monkeypatch.setenv("CCHMI_BENCH_DIR", str(BENCH))
    return _bench_module


def test_catalogue_tasks_sample_what_they_say():
    cat = catalogue()
    assert set(QUICK_TASKS) <= set(cat)
    families = {name.split("-")[0] for name in cat}
    assert {"gauss", "student", "asinh", "halfcube", "wiggly", "rotate", "spiral", "classes", "sparse"} <= families
    for task in cat.values():
        s = task.sample(50, seed=3)
        assert s.x.shape == (50, task.dim_x) and s.mi == pytest.approx(task.mi)
        if task.kind == "labels":
            assert s.y.shape == (50,)
        else:
            assert s.y.shape == (50, task.dim_y)
        again = task.sample(50, seed=3)
        assert np.array_equal(s.x, again.x)  # seeded
    assert cat["gauss-50x50-10"].mi == pytest.approx(10.0)
    assert cat["sparse-2of50-2"].dim_x == 50


def test_student_t_mi_against_monte_carlo():
    stats = pytest.importorskip("scipy.stats")
    task = catalogue()["student-2x2-df3"]
    s = task.sample(100_000, seed=1)
    rho = math.sqrt(-math.expm1(-2 * 1.0 / 2))
    scale = np.eye(4)
    scale[0, 2] = scale[2, 0] = scale[1, 3] = scale[3, 1] = rho
    joint = stats.multivariate_t(np.zeros(4), scale, df=3).logpdf(np.hstack([s.x, s.y]))
    marg = stats.multivariate_t(np.zeros(2), np.eye(2), df=3)
    pointwise = joint - marg.logpdf(s.x) - marg.logpdf(s.y)
    se = pointwise.std() / math.sqrt(pointwise.size)
    assert abs(pointwise.mean() - task.mi) < 4 * se
    assert student_t_mi_correction(1, 1, 1e6) == pytest.approx(0.0, abs=1e-5)  # the Gaussian limit


def test_spiral_keeps_norms_and_sparse_keeps_noise_apart():
    cat = catalogue()
    from cchmi.data import correlated_gaussian

    s = cat["spiral-3x3-1"].sample(200, seed=0)
    base = correlated_gaussian(200, 3, 3, mi=1.0, random_state=0)
    assert np.allclose(np.linalg.norm(s.x, axis=1), np.linalg.norm(base.x, axis=1))
    assert not np.allclose(s.x, base.x)
    sp = cat["sparse-1of10-1"].sample(20_000, seed=0)
    corr = np.corrcoef(sp.x.T, sp.y.T)[:10, 10:]
    assert abs(corr[0, 0]) > 0.8 and np.abs(corr[1:, 1:]).max() < 0.05


def _ok(x, y, labels, device):
    return 0.6


def _boom(x, y, labels, device):
    raise RuntimeError("peer crashed")


def _slow(x, y, labels, device):
    time.sleep(30)
    return 0.0


def test_failures_are_rows_not_dropped(bench):
    accuracy = bench("bench_accuracy")
    task = Task("toy", "toy", "continuous", 1, 1, 0.5, lambda n, seed: catalogue()["gauss-1x1-1"].sample(n, seed))
    methods = [
        ("good", "numpy", _ok, lambda t: True),
        ("crashes", "numpy", _boom, lambda t: True),
        ("hangs", "numpy", _slow, lambda t: True),
        ("missing", "no_such_module_here", _ok, lambda t: True),
        ("other kind", "numpy", _ok, lambda t: t.kind == "labels"),
    ]
    rows = accuracy.run_accuracy([task], [100], 2, method_list=methods, timeout=1.0, progress=False)
    assert len(rows) == 10
    status = {(r["method"], r["seed"]): r["status"] for r in rows}
    assert status[("good", 0)] == "ok" and "RuntimeError: peer crashed" in status[("crashes", 1)]
    assert status[("hangs", 0)].startswith("timeout") and status[("missing", 0)] == "not installed"
    assert status[("other kind", 1)] == "unsupported"
    summary = {s["method"]: s for s in accuracy.summarise_accuracy(rows)}
    assert summary["good"]["median_abs_error"] == pytest.approx(0.1)
    assert summary["good"]["median_rel_error"] == pytest.approx(0.2)
    assert summary["good"]["ok"] == 2 and summary["good"]["seeds"] == 2
    assert summary["crashes"]["ok"] == 0 and "peer crashed" in summary["crashes"]["status"]
    assert summary["missing"]["status"] == "not installed"


def test_slopes(bench):
    rows = [{"method": "m", "dims": "1+1", "n": n, "seconds": 1e-6 * n**2, "status": "ok"} for n in (100, 1000, 10000)]
    rows.append({"method": "m", "dims": "1+1", "n": 100000, "seconds": math.nan, "status": "timeout > 1 s"})
    assert bench("bench_ksg").fit_slopes(rows)[("m", "1+1")] == pytest.approx(2.0)


@pytest.mark.slow
def test_cli_bench_end_to_end(tmp_path):
    if not BENCH.is_dir():
        pytest.skip("no bench/ folder: not a source checkout")
    out = tmp_path / "b"
    env = {**os.environ, "CCHMI_BENCH_DIR": str(BENCH)}
    run = subprocess.run([sys.executable, "-m", "cchmi", "bench", "accuracy", "--tasks", "gauss-1x1-1,classes-2-1d",
                          "--seeds", "2", "--quick", "--out", str(out), "--no-progress"],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    assert "| gauss-1x1-1 | 1000 | cchmi KSG-1 / Ross |" in run.stdout
    text = (out / "accuracy.md").read_text()
    assert "classes-2-1d" in text and (out / "accuracy_gauss-1x1-1.png").is_file()
    lines = (out / "accuracy.csv").read_text().splitlines()
    assert lines[0].startswith("date,cchmi,git,cpu,cores,threads,gpu,versions,task")
    bad = subprocess.run([sys.executable, "-m", "cchmi", "bench", "accuracy", "--tasks", "nope"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert bad.returncode == 2 and "unknown task(s) nope" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_cli_bench_outside_a_checkout_says_where_the_suite_is(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CCHMI_BENCH_DIR"}
    run = subprocess.run([sys.executable, "-m", "cchmi", "bench", "speed", "--quick"], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path, env=env)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1
    assert "bench/ folder of the source repository" in run.stderr and "CCHMI_BENCH_DIR" in run.stderr


def test_results_csv_gains_new_columns_without_misaligning_old_rows(bench, tmp_path):
    """A newer script's extra column (e.g. the thread count) rewrites the file with the union of the
    columns; appending it to the old header would shift every value of the new rows."""
    import csv

    harness = bench("_harness")
    harness.append_csv("t", [{"a": 1, "b": 2}], folder=tmp_path)
    harness.append_csv("t", [{"b": 4, "a": 3}], folder=tmp_path)
    harness.append_csv("t", [{"a": 5, "threads": 2, "b": 6}], folder=tmp_path)
    with (tmp_path / "t.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows == [{"a": "1", "b": "2", "threads": ""}, {"a": "3", "b": "4", "threads": ""},
                    {"a": "5", "b": "6", "threads": "2"}]
    assert "threads" in harness.machine()
