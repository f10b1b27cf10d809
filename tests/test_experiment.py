"""The experiment runner and the report (torch, small sizes)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cchmi.distill import TrainConfig
from cchmi.distill.experiment import expand_jobs, run_experiment
from cchmi.distill.report import aggregate, agreement, spearman, t975, wilson, write_report

TINY = TrainConfig(epochs=3, hidden=16, batch_size=32, patience=3)


# -- pairing --------------------------------------------------------------------------------------

# -- the report -----------------------------------------------------------------------------------

def test_statistics_helpers():
    scipy_stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 9, 30, 45, 200):
        assert t975(df) == pytest.approx(scipy_stats.t.ppf(0.975, df), rel=3e-3)
    lo, hi = wilson(8, 10)
    assert (lo, hi) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert all(math.isnan(v) for v in wilson(0, 0))
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(30), rng.standard_normal(30)
    b[:5] = b[0]  # ties
    assert spearman(a, b) == pytest.approx(scipy_stats.spearmanr(a, b).statistic, abs=1e-12)
    assert math.isnan(spearman(a, np.ones(30)))


def _fake_summary(teacher_view, seed, gain, gap, pairing="aligned"):
    return {
        "dataset": "toy", "teacher_view": teacher_view, "student_view": "s", "pairing": pairing, "p": 0.0,
        "seed": seed, "accuracy": {"teacher": 0.9, "baseline": 0.8, "kd": 0.8 + gain}, "gain": gain,
        "cch": {"i_ts": 1.0 + gap, "i_sy": 1.0, "gap": gap, "gap_ci_low": gap - 0.1, "gap_ci_high": gap + 0.1,
                "verdict": "distil" if gap > 0.1 else "undecided"},
        "seconds": 1.0, "config_hash": f"{teacher_view}{seed}",
    }


def test_aggregate_and_agreement(tmp_path):
    summaries = []
    for seed, noise in enumerate([-0.002, 0.0, 0.002]):
        summaries.append(_fake_summary("helps", seed, 0.05 + noise, 0.5 + noise))
        summaries.append(_fake_summary("hurts", seed, -0.04 + noise, -0.3 + noise))
        summaries.append(_fake_summary("wrong", seed, 0.03 + noise, -0.2 + noise))
        summaries.append(_fake_summary("noise", seed, [0.05, -0.05, 0.0][seed], 0.01 * seed))
    configs = {c["config"].split("->")[0]: c for c in aggregate(summaries)}
    assert configs["helps"]["gain_sign"] == "+" and configs["helps"]["verdict"] == "distil"
    assert configs["hurts"]["agree"] == "yes" and configs["wrong"]["agree"] == "no"
    assert configs["noise"]["gain_sign"] == "0" and configs["noise"]["agree"] == ""
    assert configs["helps"]["gain_sd"] == pytest.approx(0.002)
    stats = agreement(list(configs.values()))
    assert stats["with_definite_gain"] == 3 and stats["agree"] == 2
    assert stats["agreement"] == pytest.approx(2 / 3)
    assert (stats["gains_positive"], stats["gains_negative"]) == (2, 1)
    assert stats["majority_baseline"] == pytest.approx(2 / 3)
    written = write_report(summaries, tmp_path)
    assert written["agree"] == 2
    for name in ("runs.csv", "configs.csv", "report.json", "report.md", "gain_vs_gap.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "gain_vs_gap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- the experiment runner ------------------------------------------------------------------------

CONFIG = {
    "name": "tiny",
    "seeds": 2,
    "pairs": [["teacher", "student"]],
    "data": {"name": "mfh", "n": 300, "shared": 2, "teacher_only": 1, "student_only": 1, "nuisance": 1},
    "train": {"epochs": 2, "hidden": 16},
    "sweep": {"pairing": ["aligned", "label"]},
}


def test_expand_jobs():
    jobs = expand_jobs(CONFIG)
    assert len(jobs) == 4 and len({j["key"] for j in jobs}) == 4
    assert expand_jobs(CONFIG)[0]["key"] == jobs[0]["key"]  # stable
    mfeat = expand_jobs({"data": {"name": "mfeat"}, "seeds": [0]})
    assert len(mfeat) == 30  # every ordered pair of six views
    for bad, message in [
        ({**CONFIG, "colour": 1}, "unknown config key"),
        ({**CONFIG, "seeds": 0}, "seeds must be"),
        ({**CONFIG, "pairs": [["teacher", "audio"]]}, "is not a view"),
        ({**CONFIG, "sweep": {"lr": [1e-3]}}, "sweep key"),
        ({**CONFIG, "sweep": {"pairing": []}}, "non-empty list"),
        ({**CONFIG, "data": {"name": "imagenet"}}, "data.name must be one of"),
        ({**CONFIG, "cch": {"estimator": "mine"}}, "unknown cch option"),
    ]:
        with pytest.raises(ValueError, match=message):
            expand_jobs(bad)


@pytest.mark.slow
def test_run_experiment_resumes(tmp_path):
    first = run_experiment(CONFIG, tmp_path, progress=False)
    assert len(first) == 4
    stamps = sorted(p.stat().st_mtime_ns for p in tmp_path.glob("runs/*/summary.json"))
    again = run_experiment(CONFIG, tmp_path, progress=False)  # everything done: nothing reruns
    assert sorted(p.stat().st_mtime_ns for p in tmp_path.glob("runs/*/summary.json")) == stamps
    assert [s["gain"] for s in again] == [s["gain"] for s in first]
    bigger = run_experiment({**CONFIG, "seeds": 3}, tmp_path, progress=False)  # only the new seed runs
    assert len(bigger) == 6
    assert sorted(p.stat().st_mtime_ns for p in tmp_path.glob("runs/*/summary.json"))[:4] == stamps


@pytest.mark.slow
def test_torchrun_ddp_matches_one_process(tmp_path):
    """Two processes (gloo on the CPU) share each batch; without dropout the gradient average equals
    the one-process batch gradient, so the results are those of a one-process run."""
    import subprocess
    import sys

    config = tmp_path / "tiny.toml"
    config.write_text('name = "tiny"\nseeds = 1\npairs = [["teacher", "student"]]\n[data]\nname = "mfh"\nn = 300\n'
                      "[train]\nepochs = 3\nhidden = 16\ndropout = 0.0\n")
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "cchmi",
         "experiment", str(config), "--out", str(tmp_path / "ddp"), "--no-progress"],
        capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr
    assert ddp.stdout.count("teacher->student aligned") == 1  # one report, from rank 0
    single = run_experiment({"name": "tiny", "seeds": 1, "pairs": [["teacher", "student"]],
                             "data": {"name": "mfh", "n": 300}, "train": {"epochs": 3, "hidden": 16, "dropout": 0.0}},
                            tmp_path / "single", progress=False)
    summary = json.loads(next((tmp_path / "ddp").glob("runs/*/summary.json")).read_text())
    assert summary["accuracy"] == single[0]["accuracy"]
    assert summary["config_hash"] == single[0]["config_hash"]
