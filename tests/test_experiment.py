"""The experiment runner and the report (torch, small sizes)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cchmi.distill import TrainConfig
from cchmi.distill.sweep import expand_jobs, run_experiment
from cchmi.distill.report import (aggregate, agreement, auroc, predictor_report, spearman, spearman_interval,
                                  t975, wilson, write_report)

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


def _fake_summary(teacher_view, seed, gain, gap, pairing="aligned", predictors=None, point=None, val_kd=None):
    """A run summary as run_kd writes it; with `predictors` (name -> value), a job `point` and the
    KD student's validation accuracy `val_kd` when given (newer summaries)."""
    summary = {
        "dataset": "toy", "teacher_view": teacher_view, "student_view": "s", "pairing": pairing, "p": 0.0,
        "seed": seed, "accuracy": {"teacher": 0.9, "baseline": 0.8, "kd": 0.8 + gain}, "gain": gain,
        "cch": {"i_ts": 1.0 + gap, "i_sy": 1.0, "gap": gap, "gap_ci_low": gap - 0.1, "gap_ci_high": gap + 0.1,
                "verdict": "distil" if gap > 0.1 else "undecided"},
        "seconds": 1.0, "config_hash": f"{teacher_view}{seed}",
    }
    if predictors is not None:
        summary["predictors"] = {k: {"value": v, "ci_low": None, "ci_high": None} for k, v in predictors.items()}
    if point is not None:
        summary["job"] = {"key": f"{teacher_view}{seed}{json.dumps(point, sort_keys=True)}", "point": point}
    if val_kd is not None:
        summary["val_accuracy"] = {"teacher": 0.9, "baseline": 0.8, "kd": val_kd}
    return summary


@pytest.mark.slow
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


def test_the_report_reads_the_trainers_predictors():
    from cchmi.distill import predictors, report

    assert report.PREDICTORS == predictors.PREDICTORS


def test_spearman_interval_ranks_all_resamples_at_once():
    rng = np.random.default_rng(5)
    a = np.round(rng.standard_normal(23), 1)
    b = np.round(a + rng.standard_normal(23), 1)  # ties on both sides
    idx = np.random.default_rng(0).integers(0, 23, (1000, 23))
    boots = np.array([spearman(a[i], b[i]) for i in idx])  # one at a time: the slow oracle
    rho, lo, hi = spearman_interval(a, b)
    assert rho == spearman(a, b)
    assert (lo, hi) == pytest.approx(tuple(np.quantile(boots[~np.isnan(boots)], [0.025, 0.975])), abs=1e-12)
    assert all(math.isnan(v) for v in spearman_interval(a, np.ones(23)))


def _auroc_reference(scores, positive):
    """AUROC and the DeLong variance from the pairwise kernel psi (O(m n)): the slow oracle."""
    s, y = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    psi = (s[y][:, None] > s[~y][None, :]) + 0.5 * (s[y][:, None] == s[~y][None, :])
    m, n = psi.shape
    return psi.mean(), psi.mean(axis=1).var(ddof=1) / m + psi.mean(axis=0).var(ddof=1) / n


def test_auroc_against_the_pairwise_reference():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    for size in (5, 17, 64):
        scores = np.round(rng.standard_normal(size), 1)  # rounded: many ties
        positive = rng.random(size) < 0.4
        positive[:2] = [True, False]
        auc, lo, hi = auroc(scores, positive)
        ref, var = _auroc_reference(scores, positive)
        assert auc == pytest.approx(ref, abs=1e-12)
        assert auc == pytest.approx(metrics.roc_auc_score(positive, scores), abs=1e-12)
        if positive.sum() >= 2 and (~positive).sum() >= 2:
            assert lo == pytest.approx(max(0.0, ref - 1.96 * var**0.5), abs=1e-12)
            assert hi == pytest.approx(min(1.0, ref + 1.96 * var**0.5), abs=1e-12)
    assert auroc([1.0, 1.0, 1.0, 1.0], [True, True, False, False])[0] == 0.5  # all tied
    assert auroc([3.0, 2.0, 1.0, 0.0], [True, True, False, False])[:1] == (1.0,)
    assert math.isnan(auroc([1.0, 2.0], [True, True])[0])  # one class only
    assert math.isnan(auroc([1.0, 2.0, 3.0], [True, False, False])[1])  # a single positive: no interval


def _predictor_sweep(seeds=(0, 1, 2)):
    """Eight configurations over a regime axis "budget.student_labels_per_class" (10 or 250): the
    gain's sign follows teacher accuracy exactly; the CCH gap is right on 3 of the 4 definite gains at
    10 labels and wrong on all at 250; label_mi_gap is missing; one configuration has no definite gain."""
    plan = [  # (teacher view, labels, mean gain, cch gap, teacher - student accuracy)
        ("a", 10, 0.05, 0.4, 0.3), ("b", 10, 0.04, 0.2, 0.2), ("c", 10, -0.03, -0.1, -0.1), ("d", 10, 0.03, -0.3, 0.1),
        ("a", 250, -0.02, 0.3, -0.2), ("b", 250, -0.03, 0.1, -0.1), ("c", 250, 0.02, -0.2, 0.1),
        ("d", 250, 0.0, 0.1, 0.0),
    ]
    summaries = []
    for view, labels, gain, gap, teacher in plan:
        for seed in seeds:
            noise = 0.002 * (seed - 1) if gain else [0.05, -0.05, 0.0][seed]
            summaries.append(_fake_summary(
                view, seed, gain + noise, gap, point={"budget.student_labels_per_class": labels},
                predictors={"cch_gap_logits": gap, "cch_gap_features": -gap, "conditional_mi": gap + 1.0,
                            "teacher_minus_student_acc": teacher}))
    return summaries


def test_predictor_report_pooled_and_per_regime(tmp_path):
    configs = aggregate(_predictor_sweep())
    stats = predictor_report(configs, "budget.student_labels_per_class")
    assert set(stats) == {"cch_gap_logits", "cch_gap_features", "neg_student_label_mi", "label_mi_gap",
                          "conditional_mi", "teacher_acc", "teacher_minus_student_acc", "kd_pilot", "apriori_gap",
                          "random", "majority_sign"}
    assert all(stats[name]["configurations"] == 0  # predictors these summaries do not have
               for name in ("neg_student_label_mi", "teacher_acc", "kd_pilot", "apriori_gap", "random"))
    gap, teacher, majority = stats["cch_gap_logits"], stats["teacher_minus_student_acc"], stats["majority_sign"]
    assert (gap["agree"], gap["with_definite_gain"]) == (3, 7)
    assert gap["agreement_ci"] == pytest.approx(list(wilson(3, 7)))
    assert (teacher["agree"], teacher["agreement"], teacher["auroc"]) == (7, 1.0, 1.0)
    assert (majority["agree"], majority["auroc"]) == (4, 0.5)  # 4 positive and 3 negative definite gains
    assert math.isnan(majority["spearman"]) and stats["label_mi_gap"]["configurations"] == 0
    assert stats["cch_gap_features"]["agree"] == 7 - 3  # the gap's opposite
    assert stats["conditional_mi"]["agree"] == 4 and stats["conditional_mi"]["auroc"] == gap["auroc"]  # gap + 1
    ten, many = gap["regimes"]["10"], gap["regimes"]["250"]
    assert (ten["agree"], ten["with_definite_gain"], many["agree"], many["with_definite_gain"]) == (3, 4, 0, 3)
    assert ten["auroc"] == pytest.approx(2 / 3) and many["auroc"] == 0.0  # the one positive scores lowest
    assert stats["majority_sign"]["regimes"]["250"]["agree"] == 2  # its own base rate: "-" twice of three
    # Rank correlations over every configuration (eight, the undecided one included).
    gains = [c["gain"] for c in configs]
    assert gap["spearman"] == pytest.approx(spearman([c["pred_cch_gap_logits"] for c in configs], gains))
    write_report(_predictor_sweep(), tmp_path, regime="budget.student_labels_per_class")
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["predictors"]["cch_gap_logits"]["regimes"]["250"]["agree"] == 0
    assert report["predictors"]["label_mi_gap"]["agreement"] is None
    text = (tmp_path / "report.md").read_text()
    assert text.count("no predictor beats teacher-minus-student accuracy or the majority sign") == 3 * 2  # pooled + 2 regimes
    assert "### budget.student_labels_per_class = 250" in text and "selected" not in text


def test_older_summaries_get_the_gap_and_teacher_accuracy(tmp_path):
    summaries = [_fake_summary(v, seed, g + 0.001 * seed, gap) for seed in range(3)
                 for v, g, gap in (("a", 0.05, 0.5), ("b", -0.04, -0.3), ("c", 0.03, -0.2))]
    stats = predictor_report(aggregate(summaries))
    assert (stats["cch_gap_logits"]["agree"], stats["cch_gap_logits"]["with_definite_gain"]) == (2, 3)
    assert stats["teacher_minus_student_acc"]["agree"] == 2  # 0.9 - 0.8 > 0 everywhere: "+" for all
    assert stats["cch_gap_features"]["configurations"] == 0
    assert stats["cch_gap_logits"]["regimes"] == {}
    write_report(summaries, tmp_path)  # the report as before, with the predictors' section
    assert "## Predictors" in (tmp_path / "report.md").read_text()
    with pytest.raises(ValueError, match="regime 'p' is not a sweep axis"):
        predictor_report(aggregate(summaries), "p")


@pytest.mark.slow
def test_validation_selected_kd_weight(tmp_path):
    summaries = []
    for seed in range(3):
        for weight, gain, val in ((0.1, 0.01, 0.70), (1.0, 0.04, 0.75), (4.0, -0.02, 0.75)):
            best = seed == 2 and weight == 4.0  # seed 2's best validation accuracy is at weight 4.0
            summaries.append(_fake_summary("a", seed, gain + 0.001 * seed, 0.2, val_kd=val + 0.1 * best,
                                           point={"student.kd_weight": weight, "pairing": "aligned"}))
    write_report(summaries, tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    chosen = report["selected"]
    assert chosen["axes"] == ["student.kd_weight"]
    # Seeds 0 and 1: a tie at 0.75 goes to the first in sweep order (1.0); seed 2: 4.0 is best.
    assert [r["selected"]["student.kd_weight"] for r in chosen["runs"]] == [1.0, 1.0, 4.0]
    assert [c["seeds"] for c in chosen["configurations"]] == [3]
    assert chosen["configurations"][0]["gain"] == pytest.approx((0.04 + 0.041 - 0.018) / 3)
    text = (tmp_path / "report.md").read_text()
    assert "selected by validation accuracy over student.kd_weight" in text and "| +4.00 |" in text
    assert "Predictors of the selected students' gain" in text
    del summaries[0]["val_accuracy"]  # an older run among them: no selection, said so
    write_report(summaries, tmp_path)
    assert "Not available" in (tmp_path / "report.md").read_text()


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
    fashion = expand_jobs({"data": {"name": "fashion_mnist", "views": ["teacher", "student"]}, "seeds": [0]})
    assert [(j["teacher_view"], j["student_view"]) for j in fashion] == [("teacher", "student"), ("student", "teacher")]
    for bad, message in [
        ({**CONFIG, "colour": 1}, "unknown config key"),
        ({**CONFIG, "seeds": 0}, "seeds must be"),
        ({**CONFIG, "pairs": [["teacher", "audio"]]}, "is not a view"),
        ({**CONFIG, "sweep": {"lr": [1e-3]}}, "sweep key"),
        ({**CONFIG, "sweep": {"pairing": []}}, "non-empty list"),
        ({**CONFIG, "data": {"name": "imagenet"}}, "data.name must be one of"),
        ({**CONFIG, "cch": {"estimators": "ksg"}}, "unknown cch option"),
        ({**CONFIG, "cch": {"estimator": "mine"}}, "cch.estimator must be one of"),
        ({**CONFIG, "teacher": {"kd_weight": 1.0}}, "teacher.kd_weight has no effect"),
        ({**CONFIG, "student": {"epoch": 1}}, r"\[student\] unknown training option.*known: "),
        ({**CONFIG, "budget": {"labels": 10}}, "unknown budget option.*known: student_labels_per_class"),
        ({**CONFIG, "budget": {"student_labels_per_class": 0}}, "student_labels_per_class must be >= 1"),
        ({**CONFIG, "budget": {"transfer_size": -1}}, "transfer_size must be >= 0"),
        ({**CONFIG, "kd": {"mode": 1}}, "unknown kd option.*known: teacher_rows"),
        ({**CONFIG, "teacher_rows": "half"}, "teacher_rows must be one of"),
        ({**CONFIG, "crossfit_folds": 1}, "crossfit_folds must be >= 2"),
        ({**CONFIG, "control": "shuffle"}, "control must be one of"),
        ({**CONFIG, "control": "none", "kd": {"control": "none"}}, "given twice"),
        ({**CONFIG, "sweep": {"control": ["none"], "kd.control": ["none"]}}, "given twice"),
        ({**CONFIG, "sweep": {"budget.transfer_size": [10, -5]}}, "transfer_size.*sweep point"),
        ({**CONFIG, "sweep": {"teacher.": [1]}}, "sweep key"),
        ({**CONFIG, "report": {"regime": "p"}}, "report.regime must be one of the sweep axes"),
        ({**CONFIG, "report": {"regimes": "p"}}, "unknown report option"),
        ({**CONFIG, "control": "label_pairing"}, "give pairing = 'label' or control = 'label_pairing', not both"),
        ({**CONFIG, "sweep": {"p": [0.0, 0.5]}}, r"p \(here 0.5\) is the re-pairing probability"),
        ({**CONFIG, "crossfit_folds": 3}, "crossfit_folds applies to teacher_rows = 'crossfit' only"),
        ({**CONFIG, "kd": {"teacher_rows": "crossfit"}, "student": {"feature_kd_weight": 1.0}}, "feature KD needs"),
        ({"data": {"name": "fashion_mnist", "views": ["top", "top"]}}, "data: views must be .*distinct"),
        ({"data": {"name": "fashion_mnist", "views": ["top", "bottom"], "overlap": 3}}, "data: overlap shape"),
        ({"data": {"name": "fashion_mnist", "views": ["teacher", "student"]}, "sweep": {"data.overlap": [0, 15]}},
         "overlap must be between 0 and 14"),
    ]:
        with pytest.raises(ValueError, match=message):
            expand_jobs(bad)


def test_config_sections_are_sweep_axes():
    config = {**CONFIG, "student": {"kd_weight": 0.5}, "teacher": {"epochs": 3}, "budget": {"transfer_size": 50},
              "control": "none", "report": {"regime": "budget.student_labels_per_class"},
              "sweep": {"student.temperature": [2.0, 4.0], "budget.student_labels_per_class": [10, 50],
                        "kd.teacher_rows": ["disjoint", "crossfit"]}}
    jobs = expand_jobs(config)
    assert len(jobs) == 2 * 2 * 2 * 2 and len({j["key"] for j in jobs}) == 16
    job = jobs[-1]
    assert job["student"] == {"kd_weight": 0.5, "temperature": 4.0} and job["teacher"] == {"epochs": 3}
    assert job["budget"] == {"transfer_size": 50, "student_labels_per_class": 50}
    assert job["kd"] == {"control": None, "teacher_rows": "crossfit"}
    assert job["point"] == {"student.temperature": 4.0, "budget.student_labels_per_class": 50,
                            "teacher_rows": "crossfit"}
    # The same axis spelt "kd.<key>" or plain, in [kd] or at the top level: the same jobs.
    moved = {**config, "kd": {"control": "none"}, "sweep": {**config["sweep"]}}
    del moved["control"]
    moved["sweep"]["teacher_rows"] = moved["sweep"].pop("kd.teacher_rows")
    assert [j["key"] for j in expand_jobs(moved)] == [j["key"] for j in jobs]
    # Sections a config leaves out stay out of its jobs: older configs keep their keys.
    assert not {"teacher", "student", "budget", "kd"} & set(expand_jobs(CONFIG)[0])
    sweep = expand_jobs({**CONFIG, "sweep": {"control": ["none", "label_pairing"]}})
    assert [j["kd"]["control"] for j in sweep[::2]] == [None, "label_pairing"]


def test_run_job_hands_each_section_to_run_kd(tmp_path, monkeypatch):
    """What run_kd receives from a job: a TrainConfig per network (over [train]), the budget and
    the kd options as keywords."""
    from cchmi.distill.sweep import jobs as sweep_jobs
    from cchmi.distill.sweep import run_job

    seen = {}

    def fake_run_kd(data, config, *, device=None, out_dir=None):
        seen.update(config.keywords())  # what run_kd's keyword form would be given
        out_dir.mkdir(parents=True, exist_ok=True)  # as run_kd does
        return _fake_summary(config.teacher_view, config.seed, 0.01, 0.1)

    config = {**CONFIG, "seeds": 1, "student": {"kd_weight": 0.25}, "budget": {"student_labels_per_class": 5},
              "kd": {"teacher_rows": "crossfit", "crossfit_folds": 3, "control": "label_pairing"}, "sweep": {}}
    split, shared = expand_jobs(config)[0], expand_jobs({**CONFIG, "seeds": 1, "sweep": {}})[0]
    monkeypatch.setattr(sweep_jobs, "run_kd", fake_run_kd)
    summary = run_job(split, str(tmp_path))
    assert "train" not in seen
    assert seen["teacher_train"] == TrainConfig(epochs=2, hidden=16)
    assert seen["student_train"] == TrainConfig(epochs=2, hidden=16, kd_weight=0.25)
    assert (seen["student_labels_per_class"], seen["teacher_rows"], seen["crossfit_folds"], seen["control"]) == \
        (5, "crossfit", 3, "label_pairing")
    assert json.loads(next(tmp_path.glob("runs/*/summary.json")).read_text()) == json.loads(json.dumps(summary))
    seen.clear()
    run_job(shared, str(tmp_path))
    assert seen["train"] == TrainConfig(epochs=2, hidden=16) and "student_train" not in seen and "control" not in seen


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


def test_worker_blas_threads_are_set_only_where_the_user_set_none(monkeypatch):
    from cchmi.distill.sweep import runner

    monkeypatch.setenv("MKL_NUM_THREADS", "7")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with runner.worker_blas_threads(1):
        import os

        assert (os.environ["OPENBLAS_NUM_THREADS"], os.environ["OMP_NUM_THREADS"]) == ("1", "1")
        assert os.environ["MKL_NUM_THREADS"] == "7"
    assert "OPENBLAS_NUM_THREADS" not in os.environ and "OMP_NUM_THREADS" not in os.environ
    assert os.environ["MKL_NUM_THREADS"] == "7"
