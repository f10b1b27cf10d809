"""The trainer's predictor step keeps the estimators' warnings on the held-out rows: recorded in the
summary's ``warnings`` (each prefixed by its predictor) and logged by "cchmi.distill", never raised
(pytest runs with filterwarnings=error, so an escaping warning fails these tests)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

pytest.importorskip("torch")

from test_trainer import BUDGET, STEPS, TINY, toy  # noqa: E402

from cchmi.distill import run_kd  # noqa: E402
from cchmi.distill.predictors import held_out_estimates, recording  # noqa: E402
from cchmi.distill.summary import check_summary  # noqa: E402

ROBUST = "have a standard deviation"  # the robust-scaling warning of cchmi._scaling


def test_recording_keeps_distinct_messages_and_logs_them(caplog):
    import warnings

    sink = []
    with caplog.at_level(logging.WARNING, logger="cchmi.distill"):
        with recording("cch_gap_logits", sink):
            for _ in range(3):
                warnings.warn("same text", RuntimeWarning)
            warnings.warn("other text", UserWarning)
    assert sink == ["cch_gap_logits: same text", "cch_gap_logits: other text"]
    assert [r.getMessage() for r in caplog.records] == sink


def test_held_out_outliers_are_recorded_not_raised():
    rng = np.random.default_rng(0)
    n = 200
    y = np.arange(n) % 4
    teacher = {"logits": rng.standard_normal((n, 4)) + y[:, None], "features": rng.standard_normal((n, 6))}
    student = {"logits": rng.standard_normal((n, 4)) + 0.5 * y[:, None], "features": rng.standard_normal((n, 6))}
    student["logits"][:3, 1] = 1e4  # three far rows set column 1's standard deviation
    crit, out, warned, failed = held_out_estimates(teacher, student, y, np.arange(n), representation="logits", k=3,
                                           pca=None, seed=0, predictors=True)
    assert np.isfinite(crit.gap) and set(out) == {"cch_gap_logits", "cch_gap_features", "neg_student_label_mi",
                                                  "label_mi_gap", "conditional_mi"}
    assert any(w.startswith("cch: ") and ROBUST in w for w in warned)
    assert all(w.split(": ")[0] in ("cch", "cch_gap_features", "neg_student_label_mi", "label_mi_gap/conditional_mi")
               for w in warned)
    assert len(set(warned)) == len(warned) and failed == {}


def test_run_kd_summary_holds_the_warnings(tmp_path, caplog):
    """The run of test_trainer.test_run_kd_writes_logs_and_summary: its 105 held-out feature rows trip
    the robust-scaling rule."""
    with caplog.at_level(logging.WARNING, logger="cchmi.distill"):
        s = run_kd(toy(), "teacher", "student", teacher_train=TINY, student_train=STEPS, seed=1, out_dir=tmp_path,
                   teacher_rows="crossfit", crossfit_folds=2, **BUDGET)
    assert any(w.startswith("cch_gap_features: ") and ROBUST in w for w in s["warnings"])
    assert [r.getMessage() for r in caplog.records if r.name == "cchmi.distill"] == s["warnings"]
    older = {k: v for k, v in s.items() if k != "warnings"}
    check_summary(older)  # optional: a summary without it is still valid
    with pytest.raises(ValueError, match="warnings must be a list of str"):
        check_summary({**s, "warnings": "x"})


def test_a_failed_estimate_after_training_keeps_the_accuracies(tmp_path, monkeypatch):
    """A CCH or predictor that raised after training threw the run's accuracies away (the job failed);
    now the summary keeps them, names the failed step in predictor_errors, and the report counts it."""
    from cchmi.distill import predictors
    from cchmi.distill.report import aggregate, format_run_notes, write_report
    from cchmi.distill.sweep.jobs import read_summary

    real = predictors.cch

    def features_fail(teacher, student, y, **options):
        if options.get("pca") is not None:
            raise ValueError("the extrapolation cannot run on these rows")
        return real(teacher, student, y, **options)

    monkeypatch.setattr(predictors, "cch", features_fail)
    s = run_kd(toy(), "teacher", "student", train=TINY, seed=1, **BUDGET)
    assert s["predictor_errors"] == {"cch_gap_features": "ValueError: the extrapolation cannot run on these rows"}
    assert "cch_gap_features" not in s["predictors"] and "cch_gap_logits" in s["predictors"]
    assert s["cch"]["verdict"] != "failed" and np.isfinite(s["accuracy"]["kd"])

    def all_fail(*args, **options):
        raise ValueError("tied rows")

    monkeypatch.setattr(predictors, "cch", all_fail)
    out = tmp_path / "run"
    s = run_kd(toy(), "teacher", "student", train=TINY, seed=1, out_dir=out, **BUDGET)
    assert s["cch"]["verdict"] == "failed" and s["cch"]["gap"] is None and s["cch"]["error"] == "ValueError: tied rows"
    assert set(s["predictor_errors"]) == {"cch", "cch_gap_features"} and np.isfinite(s["gain"])
    assert "cch_gap_logits" not in s["predictors"] and "label_mi_gap" in s["predictors"]
    written = {**s.as_dict(), "job": {"key": "k"}}
    check_summary(written)
    (tmp_path / "runs" / "k").mkdir(parents=True)
    (tmp_path / "runs" / "k" / "summary.json").write_text(__import__("json").dumps(written))
    assert read_summary(tmp_path, {"key": "k"})[0] is not None  # a finished run: a rerun keeps it
    configs = aggregate([written])
    assert configs[0]["verdict"] == "failed" and configs[0]["agree"] == ""
    assert "1 runs whose estimates failed after training (cch, cch_gap_features" in format_run_notes([written])
    write_report([written], tmp_path / "report")
    assert "estimates failed after training" in (tmp_path / "report" / "report.md").read_text()


def test_a_failed_estimate_does_not_change_the_config_hash():
    from cchmi.distill.summary import PREDICTORS, config_hash

    summary = {"dataset": "toy", "teacher_view": "t", "student_view": "s", "pairing": "aligned", "p": 0.0, "seed": 1,
               "teacher_train": {}, "student_train": {}, "split": {}, "budget": {}, "teacher_rows": "disjoint",
               "crossfit_folds": None, "control": None, "cch_representation": "logits",
               "cch": {"k": 3, "pca": None}, "predictors": dict.fromkeys(PREDICTORS, {"value": 0.0})}
    whole = config_hash(summary)
    failed = {**summary, "predictors": {k: v for k, v in summary["predictors"].items()
                                        if k not in ("cch_gap_logits", "label_mi_gap", "conditional_mi")},
              "predictor_errors": {"cch": "ValueError: x", "label_mi_gap/conditional_mi": "ValueError: y"}}
    assert config_hash(failed) == whole
    teacher_only = {**summary, "predictors": {"teacher_minus_student_acc": {"value": 0.1}}}
    assert config_hash({**teacher_only, "predictor_errors": {"cch": "ValueError: x"}}) == config_hash(teacher_only)
