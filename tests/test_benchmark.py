"""The benchmark suite: the task catalogue's true MI values, the runners' bookkeeping (failures,
timeouts, missing peers are rows, never dropped), the summaries, and `cchmi bench` end to end.

The runners are the package cchmi.bench (the checkout's bench/ folder, shipped in the wheel under that
name): they are imported the way `cchmi bench` imports them (cchmi.cli._bench_module)."""

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
    """cchmi.bench.<name>, as `cchmi bench` imports it."""
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


def _with_interval(x, y, labels, device):
    return {"estimate": 0.45, "ci_low": 0.4, "ci_high": 0.6, "estimator": "ksg1-extrapolated", "bias": 0.05,
            "model_spread": 0.2}


def test_interval_methods_and_seed_offset(bench, tmp_path):
    """A method that reports an interval (a dict, as cchmi.mi's do) gets its interval, coverage and
    bias into the row; seeds start at seed_offset; methods are chosen by name."""
    accuracy = bench("bench_accuracy")
    task = Task("toy", "toy", "continuous", 1, 1, 0.5, lambda n, seed: catalogue()["gauss-1x1-1"].sample(n, seed))
    methods = [("plain", "numpy", _ok, lambda t: True), ("interval", "numpy", _with_interval, lambda t: True)]
    rows = accuracy.run_accuracy([task], [100], 2, method_list=methods, timeout=60, progress=False, seed_offset=1000)
    assert [(r["method"], r["seed"]) for r in rows] == [("plain", 1000), ("interval", 1000), ("plain", 1001),
                                                         ("interval", 1001)]
    plain, interval = rows[0], rows[1]
    assert plain["covered"] == "" and math.isnan(plain["ci_low"]) and plain["ran"] == ""
    assert interval["estimate"] == 0.45 and (interval["ci_low"], interval["ci_high"]) == (0.4, 0.6)
    assert interval["covered"] == 1 and interval["confidence"] == 0.95 and interval["bias"] == 0.05
    assert interval["ran"] == "ksg1-extrapolated" and interval["model_spread"] == 0.2
    peers = bench("peers")
    assert [m[0] for m in peers.by_name(["cchmi.mi auto", "cchmi KSG-1 / Ross"])] == ["cchmi.mi auto",
                                                                                       "cchmi KSG-1 / Ross"]
    with pytest.raises(ValueError, match="methods: unknown method.s. 'nope'"):
        peers.by_name(["cchmi.mi auto", "nope"])
    with pytest.raises(ValueError, match="seed_offset must be an integer >= 0"):
        accuracy.main_accuracy(Path("unused"), quick=True, seeds=1, tasks=None, neural=False, device=None, timeout=1,
                               progress=False, seed_offset=-1)
    harness = bench("_harness")
    harness.append_csv("accuracy", [{**harness.machine(), **r, "command": "cmd"} for r in rows], folder=tmp_path)
    text = accuracy.main_accuracy(tmp_path, quick=True, seeds=None, tasks=None, neural=False, device=None, timeout=1,
                                  progress=False, report_only=True)  # from the CSV, numbers parsed again
    assert "| 100 | interval | 2/2 | 1 | 0.050 | - | 2/2 (1.00) |" in text and "Commands: `cmd`" in text
    assert "| interval, n = 100 | 2 |" in (tmp_path / "accuracy.md").read_text()
    rerun = [{**r, "estimate": r["estimate"] + 1, "error": r["error"] + 1} if r["method"] == "interval" else r
             for r in rows]  # the same runs again (error -0.05 now +0.95): they supersede the first ones
    harness.append_csv("accuracy", [{**harness.machine(), **r, "command": "cmd"} for r in rerun], folder=tmp_path)
    text = accuracy.main_accuracy(tmp_path, quick=True, seeds=None, tasks=None, neural=False, device=None, timeout=1,
                                  progress=False, report_only=True)
    assert "4 rows (4 earlier rows superseded by reruns)" in text and "| 100 | interval | 2/2 | 1 | 0.950 |" in text
    methods = ["cchmi KSG-1 / Ross", "cchmi.mi auto"]
    text = accuracy.command_line([5000], 1, 1000, methods, None, False, False, None, 900)
    assert text == ("cchmi bench accuracy --n 5000 --seeds 1 --seed-offset 1000 --methods 'cchmi KSG-1 / Ross' "
                    "'cchmi.mi auto' --timeout 900")


def _acc_row(task, method, error, seed=0, status="ok", low=math.nan, high=math.nan, ran="", bias=math.nan,
             spread=math.nan):
    truth = 1.0
    interval = math.isfinite(low)
    return {"task": task, "n": 100, "seed": seed, "method": method, "estimate": truth + error, "truth": truth,
            "error": error, "seconds": 1.0, "status": status, "ran": ran, "ci_low": low, "ci_high": high,
            "confidence": 0.95 if interval else math.nan,
            "covered": int(low <= truth <= high) if interval else "", "bias": bias, "model_spread": spread}


def test_method_summary_mae_ratio_and_coverage(bench):
    accuracy = bench("bench_accuracy")
    ref = accuracy.REFERENCE
    rows = [
        _acc_row("a", ref, -0.4), _acc_row("b", ref, -0.2), _acc_row("c", ref, -0.6),
        _acc_row("a", "m", 0.1, low=0.9, high=1.2), _acc_row("b", "m", -0.1, low=0.7, high=0.95),
        _acc_row("c", "m", math.nan, status="timeout > 1 s"),
        _acc_row("d", "m", 0.3),  # no KSG-1 run on d: in the MAE, not in the ratio
    ]
    summary = {s["method"]: s for s in accuracy.method_summary(rows)}
    assert [s["method"] for s in accuracy.method_summary(rows)] == [ref, "m"]  # the reference first
    m = summary["m"]
    assert (m["runs"], m["ok"], m["tasks"], m["paired"]) == (4, 3, 3, 2)
    assert m["mae"] == pytest.approx((0.1 + 0.1 + 0.3) / 3)
    assert m["ratio"] == pytest.approx(0.2 / 0.6)  # a and b: (0.1 + 0.1) / (0.4 + 0.2)
    assert (m["interval_runs"], m["covered"]) == (2, 1)
    assert summary[ref]["ratio"] == pytest.approx(1.0) and summary[ref]["interval_runs"] == 0
    table = accuracy.method_table(accuracy.method_summary(rows))
    assert "| 100 | m | 3/4 | 3 | 0.167 | 0.33 (2 runs) | 1/2 (0.50) |" in table


def _refuses(x, y, labels, device):
    return {"estimate": math.nan, "status": "refused", "note": "compressed_mi refuses: too wide"}


def _flagged(x, y, labels, device):
    return {"estimate": 0.7, "ci_low": 0.55, "ci_high": 0.75, "confidence": 0.9, "flag": "unreliable",
            "reasons": "a check failed"}


def test_refusals_flags_levels_and_versions_are_row_columns(bench):
    """A dict's status ("refused") replaces "ok" with its note; its interval level, flag and reasons
    reach the row; every row names the version of the package that ran."""
    accuracy = bench("bench_accuracy")
    task = Task("toy", "toy", "continuous", 1, 1, 0.5, lambda n, seed: catalogue()["gauss-1x1-1"].sample(n, seed))
    methods = [("refuses", "numpy", _refuses, lambda t: True), ("flagged", "numpy", _flagged, lambda t: True)]
    refused, flagged = accuracy.run_accuracy([task], [100], 1, method_list=methods, timeout=60, progress=False)
    assert refused["status"] == "refused" and refused["note"].startswith("compressed_mi refuses")
    assert math.isnan(refused["estimate"]) and refused["covered"] == "" and refused["flag"] == ""
    assert flagged["confidence"] == 0.9 and flagged["covered"] == 0 and flagged["flag"] == "unreliable"
    assert flagged["reasons"] == "a check failed" and flagged["version"] == np.__version__


def _goal_row(task, method, error, truth=2.0, flag="", covered="", status="ok"):
    return {"task": task, "dims": "64+64", "n": 5000, "seed": 0, "method": method, "truth": truth,
            "estimate": truth + error, "error": error, "seconds": 1.0, "status": status, "flag": flag, "reasons": "",
            "note": "", "covered": covered, "confidence": 0.9 if covered != "" else math.nan,
            "ci_low": truth - 0.1, "ci_high": truth + 0.1}


def test_goal_summary_scores_the_issue_goals(bench):
    """Truths outside [0.5, 10] are not scored; the flag's hits are flagged runs among those over 25%
    relative error, its false alarms flagged runs among the others; each peer's ratio is taken on the
    runs both returned, and the goal against the largest (the peer that did best there)."""
    accuracy = bench("bench_accuracy")
    rows = [
        _goal_row("a", "cchmi m", 0.2, flag="reliable", covered=1),
        _goal_row("b", "cchmi m", -1.0, flag="unreliable", covered=0),  # 50% off, flagged: a hit
        _goal_row("c", "cchmi m", 0.1, flag="unreliable", covered=1),  # 5% off, flagged: a false alarm
        _goal_row("d", "cchmi m", 0.0, status="refused"),
        _goal_row("e", "cchmi m", 5.0, truth=20.0, flag="reliable"),  # truth above 10: not scored
        _goal_row("a", "peer p", 0.4), _goal_row("b", "peer p", 0.8),
        _goal_row("a", "peer q", 1.0), _goal_row("b", "peer q", 1.0), _goal_row("c", "peer q", 0.0),
    ]
    goals = {g["method"]: g for g in accuracy.goal_summary(rows)}
    m = goals["cchmi m"]
    assert (m["runs"], m["ok"], m["other"]) == (4, 3, "refused 1")
    assert m["mae"] == pytest.approx(1.3 / 3) and m["median_rel"] == pytest.approx(0.1)
    assert (m["interval_runs"], m["covered"], m["levels"]) == (3, 2, [0.9])
    assert (m["bad"], m["hits"], m["good"], m["false_alarms"]) == (1, 1, 2, 1)
    # peer p on a, b: mean 0.6 (m there: 0.6); peer q on a, b, c: mean 2/3 (m there: 1.3/3)
    assert m["best_peer"] == "peer p" and m["peer_runs"] == 2 and m["peer_ratio"] == pytest.approx(1.0)
    assert [(p, runs) for _, p, runs in m["peers"]] == [("peer p", 2), ("peer q", 3)]
    assert m["peers"][1][0] == pytest.approx(0.65)
    assert goals["peer p"]["best_peer"] == ""
    table = accuracy.goal_table(accuracy.goal_summary(rows))
    assert ("| 5000 | 64+64 | cchmi m | 3/4 (refused 1) | 0.433 (not met on the 3 runs that returned) | 10.0% (met on "
            "the 3 runs that returned) | 2/3 = 0.67 at 90% (not met) |" in table)
    assert "false alarms (not met) | 1.00 vs peer p (2 runs), 0.65 vs peer q (3 runs) (not met) |" in table
    assert "| d | 64+64 | 5000 | cchmi m | 2.000 | 2.000 | +0.000 | - | - | - | 1 | refused |" in (
        accuracy.run_table(rows))


def test_widened_coverage_swaps_the_model_spread(bench):
    """The reported s.e. carries MODEL_SPREAD * correction in quadrature; the table replaces it by c."""
    harness = bench("_harness")
    z = 2.0
    # rest 0.03, correction 0.2, run with spread 0.2: reported s.e. = sqrt(0.03^2 + 0.04^2) = 0.05
    row = {"error": 0.1, "stderr": 0.05, "correction": 0.2, "model_spread": 0.2, "z": z, "slack": 0.0}
    cov = harness.widened_coverage([row], (0.0, 0.2, 0.25, 0.4))
    # c = 0: z * 0.03 = 0.06 < 0.1; c = 0.2: z * 0.05 = 0.1, covered (<=); c = 0.4: z * sqrt(0.03^2 + 0.08^2) > 0.1
    assert cov == {0.0: (0, 1), 0.2: (1, 1), 0.25: (1, 1), 0.4: (1, 1)}
    assert harness.widened_coverage([{**row, "slack": 0.05}], (0.0,)) == {0.0: (1, 1)}  # 0.06 + 0.05 >= 0.1
    assert harness.widened_coverage([], (0.1,)) == {0.1: (0, 0)}
    text = harness.calibration_table({"g": [row, {**row, "error": 0.0}]}, (0.0, 0.2))
    assert "| g | 2 | 1/2 (0.50) | 2/2 (1.00) |" in text
    accuracy = bench("bench_accuracy")
    rows = [_acc_row("a", "m", 0.1, low=0.9, high=1.3, ran="ksg1-extrapolated", bias=-0.2, spread=0.2),
            _acc_row("b", "m", 0.1, low=0.9, high=1.3, ran="ksg1"),  # auto chose plain KSG: not extrapolated
            _acc_row("c", "k", 0.1)]
    groups = accuracy.calibration_rows(rows)
    assert list(groups) == ["m, n = 100"] and groups["m, n = 100"][0]["correction"] == 0.2
    assert groups["m, n = 100"][0]["stderr"] == pytest.approx(0.2 / 1.959963984540054)
    assert "Calibration of MODEL_SPREAD" in accuracy.report_text(rows, "cmd")
    assert "Calibration" not in accuracy.report_text(rows[1:], "cmd")


def test_slopes(bench):
    rows = [{"method": "m", "dims": "1+1", "n": n, "seconds": 1e-6 * n**2, "status": "ok"} for n in (100, 1000, 10000)]
    rows.append({"method": "m", "dims": "1+1", "n": 100000, "seconds": math.nan, "status": "timeout > 1 s"})
    assert bench("bench_ksg").fit_slopes(rows)[("m", "1+1")] == pytest.approx(2.0)


@pytest.mark.slow
def test_cli_bench_end_to_end(tmp_path):
    if not BENCH.is_dir():
        pytest.skip("no bench/ folder: not a source checkout")
    out = tmp_path / "b"
    env = dict(os.environ)
    run = subprocess.run([sys.executable, "-m", "cchmi", "bench", "accuracy", "--tasks", "gauss-1x1-1,classes-2-1d",
                          "--seeds", "2", "--quick", "--out", str(out), "--no-progress"],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    assert "| gauss-1x1-1 | 1000 | cchmi KSG-1 / Ross |" in run.stdout
    text = (out / "accuracy.md").read_text()
    assert "classes-2-1d" in text and (out / "accuracy_gauss-1x1-1.png").is_file()
    lines = (out / "accuracy.csv").read_text().splitlines()
    assert lines[0].startswith("date,cchmi,git,cpu,cores,threads,gpu,versions,task")
    rules = tmp_path / "rules"  # the options of the rule-derivation run, through the CLI
    run = subprocess.run([sys.executable, "-m", "cchmi", "bench", "accuracy", "--tasks", "gauss-5x5-2", "--n", "1200",
                          "--seeds", "1", "--seed-offset", "1000", "--methods", "cchmi KSG-1 / Ross",
                          "cchmi.mi ksg-extrapolated", "--out", str(rules), "--no-progress"],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    assert "| 1200 | cchmi.mi ksg-extrapolated | 1/1 | 1 |" in run.stdout and "--seed-offset 1000" in run.stdout
    assert ",1000,cchmi.mi ksg-extrapolated," in (rules / "accuracy.csv").read_text()
    again = subprocess.run([sys.executable, "-m", "cchmi", "bench", "accuracy", "--report-only", "--out", str(rules)],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert again.returncode == 0 and "| cchmi.mi ksg-extrapolated, n = 1200 | 1 |" in again.stdout
    bad = subprocess.run([sys.executable, "-m", "cchmi", "bench", "accuracy", "--tasks", "nope"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert bad.returncode == 2 and "unknown task(s) nope" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_cli_bench_never_imports_the_working_directory(tmp_path):
    """`cchmi bench` imported ./bench/__init__.py from the working directory (or $CCHMI_BENCH_DIR):
    a planted folder ran as the user. It imports the suite installed with cchmi only."""
    planted = tmp_path / "bench"
    planted.mkdir()
    for name in ("__init__.py", "bench_ksg.py"):
        (planted / name).write_text("raise SystemExit('PLANTED CODE RAN')\n")
    env = {**os.environ, "CCHMI_BENCH_DIR": str(planted)}
    code = "from cchmi.cli import _bench_module; print(_bench_module('bench_ksg').__file__)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env=env)
    assert run.returncode == 0 and "PLANTED" not in run.stdout + run.stderr, run.stderr
    assert not Path(run.stdout.strip()).resolve().is_relative_to(tmp_path)


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


# -- bench_cch: every cch estimator setting on the CCH task catalogue ------------------------------

CCH_TASK = "cch-classes2-1x1-sep2-rho0-a0"  # true gap -0.336 nats


def _cch_row(setting="s", n=100, gap=-0.3, low=-0.4, high=-0.2, true_gap=-0.336, true_se=0.001, dims=(1, 1),
             status="ok", verdict="do not distil", task="a", family="classes"):
    return {"task": task, "family": family, "setting": setting, "n": n, "hardware": "cpu", "dim_t": dims[0],
            "dim_s": dims[1],
            "i_ts": 0.1, "i_sy": 0.1 - gap, "gap": gap, "true_i_ts": 0.0, "true_i_sy": -true_gap, "true_gap": true_gap,
            "true_gap_se": true_se, "ci_low": low, "ci_high": high, "confidence": 0.95, "verdict": verdict,
            "seconds": 1.0, "status": status}


def test_cch_settings_follow_cch_estimators(bench, monkeypatch):
    b = bench("bench_cch")
    assert b.parse_setting("ksg").label == "ksg"
    s = b.parse_setting("ksg:pca=8,k=5")
    assert s.options == (("pca", 8), ("k", 5)) and s.label == "ksg:pca=8,k=5"
    for spec, text in (("nope", "unknown estimator 'nope'"), ("ksg:q=1", "not key=value with a keyword of cch"),
                       ("ksg:random_state=1", "not key=value"), ("ksg:pca", "not key=value"), ("", "empty setting")):
        with pytest.raises(ValueError, match=text):
            b.parse_setting(spec)
    monkeypatch.setattr(b.cch_module, "ESTIMATORS", ("ksg", "latent", "newer"))  # read when the bench runs
    assert [s.label for s in b.default_settings()] == ["ksg", "ksg:pca=8", "latent", "newer"]
    assert b.parse_setting("newer").estimator == "newer"
    assert set(b.QUICK_TASKS) <= {t.name for t in b.cch_tasks()}
    monkeypatch.setattr(b.cch_module, "cch", _takes_labels_kind)
    assert len(b.applicable_tasks()) == len(b.cch_tasks())
    monkeypatch.setattr(b.cch_module, "cch", _crashes)  # no labels_kind: class labels only
    assert all(t.n_classes > 0 for t in b.applicable_tasks().values()) and CCH_TASK in b.applicable_tasks()


def test_cch_summary_counts_signs_coverage_and_failures(bench):
    b = bench("bench_cch")
    rows = [
        _cch_row(task="a"),  # sign right, covered
        _cch_row(task="b", gap=0.2, low=0.1, high=0.3, verdict="distil"),  # wrong sign, wrong verdict, not covered
        _cch_row(task="c", gap=0.01, low=-0.1, high=0.1, true_gap=0.05, verdict="undecided"),  # |gap| < 0.1
        _cch_row(task="d", low=-0.5, high=-0.3362, true_se=0.001),  # misses by 2e-4 < 1.96 s.e.: covered
        _cch_row(task="e", dims=(40, 2), low=math.nan, high=math.nan, verdict="do not distil"),  # no interval, > 32
        _cch_row(task="f", gap=math.nan, status="timeout > 1 s"),
    ]
    summary = {s["band"]: s for s in b.summarise_cch(rows)}
    assert set(summary) == {"<=8", "<=32", ">32", "all"}
    s = summary["<=8"]
    assert (s["runs"], s["ok"], s["signed_runs"], s["sign_right"], s["wrong_verdicts"]) == (5, 4, 3, 2, 1)
    assert (s["interval_runs"], s["covered"]) == (4, 3)
    assert s["sign_low"] == pytest.approx(b.wilson(2, 3)[0]) and "timeout" in s["status"]
    assert s["mae_gap"] == pytest.approx(np.mean([0.036, 0.536, 0.04, 0.036]))
    assert summary[">32"]["interval_runs"] == 0 and math.isnan(summary[">32"]["coverage"])
    assert summary["all"]["signed_runs"] == 4
    low, high = b.wilson(19, 20)
    assert low == pytest.approx(0.7639, abs=1e-4) and high == pytest.approx(0.9911, abs=1e-4)  # textbook values
    assert b.wilson(0, 0)[0] != b.wilson(0, 0)[0]  # NaN without trials
    assert not b.covers(_cch_row(low=-0.5, high=-0.3362, true_se=0.0))
    goals = b.goal_rows(b.summarise_cch([_cch_row(n=10_000, dims=(16, 32), task=t) for t in "abc"]))
    assert [(g["sign_goal"], g["coverage_goal"]) for g in goals] == [("met", "met")]


def test_cch_joint_bands_and_calibration_from_a_csv(bench, tmp_path):
    """The rule table's bands on dim T + dim S and the MODEL_SPREAD calibration, rebuilt by
    report_only from a tiny cch.csv (rows without model_spread, from older runs, are left out of it)."""
    import csv

    b = bench("bench_cch")
    rows = [
        _cch_row(task="a", dims=(4, 4)),  # joint 8
        _cch_row(task="b", dims=(4, 5), gap=0.2, low=0.1, high=0.3),  # joint 9: wrong sign, not covered
        _cch_row(task="c", dims=(32, 32)),  # joint 64
        _cch_row(task="d", dims=(40, 32)),  # joint 72
    ]
    summary = {s["band"]: s for s in b.summarise_cch(rows, joint=True)}
    assert [s["band"] for s in b.summarise_cch(rows, joint=True)] == ["<=8", "9-32", "33-64", ">64"]
    assert (summary["9-32"]["sign_right"], summary["9-32"]["covered"]) == (0, 0)
    assert summary["33-64"]["tasks"] == 1 and summary["<=8"]["coverage"] == 1.0
    # extrapolated, MODEL_SPREAD 0.2, corrections (0.06, 0.08) -> hypot 0.1: the spread's share of the s.e. is
    # 0.02; intervals +-0.049 -> s.e. 0.025, the rest 0.015; slack 1.96 x 0.001. Errors 0.036 and 0.064:
    # c = 0: 1.96 x 0.015 + 0.002 = 0.031, neither; c = 0.1: 0.037, the first; c = 0.3: 0.068, both.
    extra = {"setting": "ksg-extrapolated", "bias_ts": 0.06, "bias_sy": 0.08, "model_spread": 0.2}
    fields = ["date", "cchmi", "git", "cpu", "cores", "threads", "gpu", "command", "estimator", "n_classes", "seed",
              *rows[0], *extra]
    machine = {"date": "2026-11-30 12:00", "cchmi": "0", "git": "abc", "cpu": "cpu", "cores": 2, "threads": 2,
               "gpu": "", "command": "cmd", "estimator": "x", "n_classes": 2, "seed": 1000}
    with (tmp_path / "cch.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, restval="")
        w.writeheader()
        w.writerow({**machine, **_cch_row(task="a", low=-0.349, high=-0.251), **extra})
        w.writerow({**machine, **_cch_row(task="a", gap=-0.4, low=-0.449, high=-0.351), **extra})
        w.writerow({**machine, **_cch_row(task="a"), "setting": "ksg"})  # no model_spread: not in the calibration
    groups = b.calibration_rows(b.read_rows(tmp_path / "cch.csv"))
    assert list(groups) == ["ksg-extrapolated, n = 100, cpu"]
    first = groups["ksg-extrapolated, n = 100, cpu"][0]
    assert first["correction"] == pytest.approx(0.1) and first["slack"] == pytest.approx(1.96 * 0.001, rel=1e-3)
    assert first["error"] == pytest.approx(0.036) and first["stderr"] == pytest.approx(0.025, rel=1e-3)
    text = b.main_cch(tmp_path, quick=True, report_only=True)
    assert "| ksg-extrapolated | 100 | cpu | <=8 | 2/2 | 1 | 2/2 | 1/2 (50%) | 0.050 |" in text
    assert ("| ksg-extrapolated, n = 100, cpu | 2 | 0/2 (0.00) | 1/2 (0.50) | 1/2 (0.50) | 1/2 (0.50) | 1/2 (0.50) "
            "| 2/2 (1.00) | 2/2 (1.00) |") in text
    assert "| ksg | 100 | cpu | <=8 | 1/1 |" in text and "By joint dimension" in (tmp_path / "cch.md").read_text()


def _takes_labels_kind(teacher, student, labels, *, estimator, labels_kind="discrete", device=None):
    raise AssertionError("not called")


def _hangs(*args, **kwargs):
    time.sleep(30)


def _crashes(*args, **kwargs):
    raise RuntimeError("estimator crashed")


def test_cch_failures_are_rows(bench, monkeypatch):
    b = bench("bench_cch")
    task, settings = b.applicable_tasks()[CCH_TASK], [b.parse_setting("ksg")]
    monkeypatch.setattr(b.cch_module, "cch", _hangs)  # the forked child runs no OpenMP kernel
    hung = b.run_cch([task], [300], 1, settings, timeout=1.0, progress=False)
    monkeypatch.setattr(b.cch_module, "cch", _crashes)
    crashed = b.run_cch([task], [300], 1, settings, timeout=60, progress=False)
    assert hung[0]["status"].startswith("timeout") and math.isnan(hung[0]["gap"])
    assert "RuntimeError: estimator crashed" in crashed[0]["status"] and crashed[0]["true_gap"] == task.gap
    with pytest.raises(ValueError, match="device: cch.. has no device parameter"):  # _crashes has none
        b.run_cch([task], [300], 1, settings, timeout=60, device="cuda", progress=False)
    continuous = next(t.name for t in b.cch_tasks() if t.n_classes == 0)
    with pytest.raises(ValueError, match="continuous Y, which this cch.. does not take"):
        b.main_cch(Path("unused"), quick=True, tasks=[continuous], progress=False)
    with pytest.raises(ValueError, match="unknown CCH task"):
        b.main_cch(Path("unused"), quick=True, tasks=["nope"], progress=False)


def test_cch_hd_suite_selection_and_command(bench, monkeypatch):
    b = bench("bench_cch")
    monkeypatch.setattr(b.cch_module, "cch", _takes_labels_kind)
    assert [t.name for t in b.select_tasks()] == list(b.applicable_tasks())  # the catalogue, as before
    assert [t.name for t in b.select_tasks(quick=True)] == list(b.QUICK_TASKS)
    assert [t.name for t in b.select_tasks("hd", quick=True)] == list(b.HD_CCH_QUICK_TASKS)
    at_128 = b.select_tasks("hd", dims=[128])
    assert len(at_128) == 20 and {(t.dim_t, t.dim_s) for t in at_128} == {(128, 128)}
    assert {t.family for t in at_128} == {"lifted", "padded", "gauss"}
    assert len(b.select_tasks("hd")) == 80
    assert len(b.select_tasks(dims=[64])) == 7  # the catalogue's with a side of 64: 64x16, 16x64, 64x64 (5)
    with pytest.raises(ValueError, match="dims: no task of the selection has its larger side in .7."):
        b.select_tasks("hd", dims=[7])
    with pytest.raises(ValueError, match="suite must be one of 'catalogue', 'hd'; got 'bogus'"):
        b.select_tasks("bogus")
    with pytest.raises(ValueError, match="unknown CCH task.s. cch-classes2-1x1-sep2-rho0-a0 in suite 'hd'"):
        b.select_tasks("hd", tasks=[CCH_TASK])
    text = b.command_line([300], 1, [b.parse_setting("ksg")], None, None, "auto", 60, True, suite="hd", dims=[64, 128])
    assert text == "cchmi bench cch --suite hd --quick --n 300 --seeds 1 --estimators ksg --dims 64,128 --timeout 60"
    monkeypatch.setattr(b.cch_module, "cch", _crashes)  # no labels_kind: the continuous-Y tasks are left out
    assert {t.family for t in b.select_tasks("hd", dims=[64])} == {"lifted", "padded"}


def test_cch_hd_summary_by_family_and_dims(bench):
    b = bench("bench_cch")
    rows = [
        _cch_row(task="a", family="lifted", dims=(64, 64)),  # right, decided, covered
        _cch_row(task="b", family="lifted", dims=(64, 64), gap=0.1, low=-0.4, high=0.6, verdict="undecided"),
        _cch_row(task="c", family="padded", dims=(128, 128), gap=0.2, low=0.1, high=0.3, verdict="distil"),  # wrong
        _cch_row(task="d", family="gauss", dims=(64, 64), true_gap=0.02, gap=-0.2, low=-0.3, high=-0.1),  # near 0
        _cch_row(task="e", family="padded", dims=(128, 128), gap=math.nan, status="timeout > 1 s"),
    ]
    summary = {(s["family"], s["dims"]): s for s in b.summarise_hd(rows)}
    assert [(s["family"], s["dims"]) for s in b.summarise_hd(rows)] == [
        ("lifted", "64"), ("gauss", "64"), ("all", "64"), ("padded", "128"), ("all", "128"),
        ("lifted", "all"), ("padded", "all"), ("gauss", "all"), ("all", "all")]
    lifted = summary["lifted", "64"]
    assert (lifted["signed_runs"], lifted["sign_right"], lifted["undecided"]) == (2, 1, 1)
    assert lifted["right_or_undecided"] == 2
    assert (lifted["wrong_verdicts"], lifted["covered"], lifted["goal"]) == (0, 2, "met")
    padded = summary["padded", "all"]
    assert (padded["runs"], padded["ok"], padded["wrong_verdicts"], padded["goal"]) == (2, 1, 1, "not met")
    assert "timeout" in padded["status"]
    gauss = summary["gauss", "all"]
    assert (gauss["signed_runs"], gauss["wrong_near_zero"], gauss["goal"]) == (0, 1, "not measured")
    total = summary["all", "all"]
    assert (total["signed_runs"], total["right_or_undecided"], total["wrong_verdicts"], total["wrong_near_zero"],
            total["goal"]) == (3, 2, 1, 1, "not met")
    text = b.hd_tables(rows)
    assert "| s | 100 | cpu | lifted | all | 2/2 | 2 | 2 | 1/2 (50%) | 1 | 2/2 (100%) | 0 | 0 | 2/2 (100%) |" in text
    assert "| s | 100 | cpu | padded | 128 | 1/2 | 2 | 1 | 0/1 (0%) | 0 | 0/1 (0%) | 1 | 0 |" in text
    summary = b.summarise_cch(rows)  # the catalogue's goals (dims <= 32, n = 10,000): left out for the hd suite only
    assert "(no run at n = 10,000: goals not measured)" in b.cch_table(summary, [])
    assert "Goals at n" not in b.cch_table(summary, [], show_goals=False)


CCH_SCRIPT = """
import json, sys
from pathlib import Path
from cchmi.cli import _bench_module
b = _bench_module("bench_cch")
task = b.applicable_tasks()[sys.argv[2]]
settings = [b.parse_setting("ksg"), b.parse_setting("ksg:pca=1,k=4")]
rows = b.run_cch([task], [300], 1, settings, timeout=60, progress=False)
text = b.main_cch(Path(sys.argv[1]), quick=True, sizes=[300], seeds=1, estimators=["ksg"], tasks=[task.name],
                  timeout=60, progress=False)
again = b.main_cch(Path(sys.argv[1]), quick=True, report_only=True)
from cchmi import cch  # after the forks: a process whose OpenMP threads ran cannot fork a working child
t, s, y = task.sample(300, 0)
print(json.dumps({"rows": rows, "text": text, "again": again, "direct": cch(t, s, y, random_state=0).as_dict()}))
"""


def test_cch_runs_every_setting_on_the_same_sample_and_reports(tmp_path):
    """In a fresh interpreter: the bench forks its calls, and a pytest worker may have run the
    OpenMP kernels already (a forked child of such a process hangs in its first parallel region)."""
    if not BENCH.is_dir():
        pytest.skip("no bench/ folder: not a source checkout")
    import json

    env = dict(os.environ)
    run = subprocess.run([sys.executable, "-c", CCH_SCRIPT, str(tmp_path), CCH_TASK], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    rows, direct = out["rows"], out["direct"]
    assert [r["status"] for r in rows] == ["ok", "ok"] and [r["setting"] for r in rows] == ["ksg", "ksg:pca=1,k=4"]
    assert rows[0]["gap"] == direct["gap"] and rows[0]["ci_low"] == direct["gap_ci_low"]  # same call, same sample
    assert rows[0]["backend"] == direct["backend"] and rows[0]["hardware"] == "cpu"
    assert rows[1]["n_used"] < 300 and rows[0]["true_gap"] == pytest.approx(-0.336, abs=0.01)
    assert "| ksg | 300 | cpu | <=8 | 1/1 | 1 | 1/1 (100%) |" in out["text"]
    assert "cchmi bench cch --quick --n 300 --seeds 1 --estimators ksg" in out["text"]
    assert (tmp_path / "cch.md").read_text().count("| ksg | 300 |") == 4  # bands <=8, <=32, all; joint <=8
    assert (tmp_path / "cch_sign.png").is_file() and (tmp_path / "cch_gap.png").is_file()
    assert (tmp_path / "cch.csv").read_text().splitlines()[0].startswith("date,cchmi,git,cpu,cores,threads,gpu")
    rebuilt = (tmp_path / "cch.md").read_text()  # report_only: from the CSV, same numbers and the command
    assert out["again"].startswith("cchmi bench cch: 1 runs")
    assert "| ksg | 300 | cpu | <=8 | 1/1 | 1 | 1/1 (100%) |" in rebuilt
    assert "Commands: `cchmi bench cch --quick --n 300" in rebuilt and "without a run here" in rebuilt


@pytest.mark.slow
def test_cli_bench_cch_end_to_end(tmp_path):
    if not BENCH.is_dir():
        pytest.skip("no bench/ folder: not a source checkout")
    env = dict(os.environ)
    run = subprocess.run([sys.executable, "-m", "cchmi", "bench", "cch", "--quick", "--n", "300", "--seeds", "1",
                          "--estimators", "ksg", "--tasks", CCH_TASK, "--out", str(tmp_path / "b"), "--no-progress"],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    assert "| ksg | 300 | cpu | <=8 |" in run.stdout
    bad = subprocess.run([sys.executable, "-m", "cchmi", "bench", "cch", "--n", "1"], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path, env=env)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_cli_bench_cch_hd_suite(tmp_path):
    """`cchmi bench cch --suite hd` on one lifted task at 64 dims per side, n = 300: the high-dimensional
    tables, the command, and the suite's list of tasks without a run in the rebuilt report."""
    if not BENCH.is_dir():
        pytest.skip("no bench/ folder: not a source checkout")
    out, task = tmp_path / "hd", "lift64-cch-classes2-1x1-sep2-rho0-a0"
    run = subprocess.run([sys.executable, "-m", "cchmi", "bench", "cch", "--suite", "hd", "--quick", "--n", "300",
                          "--seeds", "1", "--estimators", "ksg", "--tasks", task, "--dims", "64", "--timeout", "60",
                          "--out", str(out), "--no-progress"], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path, env=dict(os.environ))
    assert run.returncode == 0, run.stderr
    command = f"cchmi bench cch --suite hd --quick --n 300 --seeds 1 --estimators ksg --tasks {task} --dims 64"
    assert command in run.stdout
    assert "High-dimensional suite (64-512 columns per side)" in run.stdout and "Goals at n" not in run.stdout
    for family, dim in (("lifted", "all"), ("all", "all"), ("lifted", "64"), ("all", "64")):
        assert f"| ksg | 300 | cpu | {family} | {dim} | 1/1 | 1 | 1 |" in run.stdout
    assert "| ksg | 300 | cpu | >32 | 1/1 |" in run.stdout
    again = subprocess.run([sys.executable, "-m", "cchmi", "bench", "cch", "--report-only", "--out", str(out)],
                           capture_output=True, text=True, timeout=300, cwd=tmp_path, env=dict(os.environ))
    assert again.returncode == 0, again.stderr
    assert "| ksg | 300 | cpu | lifted | 64 | 1/1 | 1 | 1 |" in again.stdout
    assert "High-dimensional suite tasks without a run here: cch-gauss-128x128y1" in again.stdout
    assert "Catalogue tasks without a run here" not in again.stdout
