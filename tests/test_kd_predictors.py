"""The KD run's predictors (issue 29): every predictor from the validation rows only, never a test
row (spies on the estimators, the a-priori criterion and the networks' training); cross-fitted
targets never from a model that saw the row; the re-pairing controls keep every class's rows and
the teacher; the pilot, the random predictor, the sensitivity set, the regime and schema 3
(torch, tiny runs)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import cchmi.distill.apriori as apriori  # noqa: E402
import cchmi.distill.predictors as predictors  # noqa: E402
import cchmi.distill.trainer as trainer  # noqa: E402
import cchmi.distill.training as training  # noqa: E402
from cchmi.data.multiview import load_mfeat  # noqa: E402
from cchmi.distill import TrainConfig, run_kd  # noqa: E402
from conftest import toy_multiview  # noqa: E402
from cchmi.distill.config import SplitConfig  # noqa: E402
from cchmi.distill.predictors import random_predictor  # noqa: E402
from cchmi.distill.rows import pairings, split_indices  # noqa: E402
from cchmi.distill.summary import PREDICTORS, SCHEMA_VERSION, check_summary, schema_version  # noqa: E402
from cchmi.distill.sweep.jobs import read_summary  # noqa: E402
from cchmi.distill.trainer import pilot_config  # noqa: E402

STEPS = TrainConfig(steps=20, eval_every=5, hidden=16, batch_size=16, patience=3)


def toy(n=300, seed=0):
    return toy_multiview(n, seed)


class Spy:
    """Records the rows of a run (split_indices), and what every estimator, the a-priori criterion
    and every network's training read, by wrapping them where the trainer and predictors call them."""

    def __init__(self, monkeypatch):
        self.rows, self.estimates, self.apriori, self.trained, self.sources = None, [], [], [], None
        self.n_predictor_rows = []

        def split(*args, **kwargs):
            self.rows = split_indices(*args, **kwargs)
            return self.rows

        def held(teacher, baseline, labels, rows, **kwargs):
            self.estimates.append(np.asarray(rows))
            return held_out(teacher, baseline, labels, rows, **kwargs)

        def shape_spy(name, function):
            def wrapped(*args, **kwargs):
                self.n_predictor_rows.append((name, np.asarray(args[0]).shape[0]))
                return function(*args, **kwargs)
            monkeypatch.setattr(predictors, name, wrapped)

        def terms(teacher_x, student_x, labels, fit_rows, score_rows, **kwargs):
            self.apriori.append((np.asarray(fit_rows), np.asarray(score_rows)))
            return apriori_terms(teacher_x, student_x, labels, fit_rows, score_rows, **kwargs)

        def train(model, x, y, rows, val_rows, cfg, *, phase, transfer_rows=None, **kwargs):
            self.trained.append((phase, rows.cpu().numpy(), val_rows.cpu().numpy(),
                                 None if transfer_rows is None else transfer_rows.cpu().numpy()))
            return train_network(model, x, y, rows, val_rows, cfg, phase=phase, transfer_rows=transfer_rows, **kwargs)

        def outputs(*args, **kwargs):
            out = teacher_outputs(*args, **kwargs)
            self.sources = out[3]
            return out

        held_out, apriori_terms, train_network = (predictors.held_out_estimates, apriori.apriori_terms,
                                                  training.train_network)
        teacher_outputs = trainer.teacher_outputs
        monkeypatch.setattr(trainer, "split_indices", split)
        monkeypatch.setattr(trainer, "held_out_estimates", held)
        monkeypatch.setattr(trainer, "teacher_outputs", outputs)
        monkeypatch.setattr(apriori, "apriori_terms", terms)
        monkeypatch.setattr(trainer, "train_network", train)
        monkeypatch.setattr(training, "train_network", train)
        for name in ("cch", "mixed_mi", "label_mi_terms"):
            shape_spy(name, getattr(predictors, name))

    def check_no_test_rows(self) -> None:
        """AssertionError unless every predictor read validation rows only and no network saw a test row."""
        val, test = self.rows["val"], self.rows["test"]
        assert self.estimates and self.apriori and self.n_predictor_rows and self.trained
        for rows in self.estimates:
            assert np.isin(rows, val).all() and not np.isin(rows, test).any()
        assert all(n == val.size for _, n in self.n_predictor_rows), self.n_predictor_rows
        for fit, score in self.apriori:
            assert np.isin(score, val).all() and not np.isin(score, test).any()
            assert not np.isin(fit, test).any() and not np.isin(fit, val).any()
        for phase, rows, val_rows, transfer in self.trained:
            seen = [rows, val_rows] + ([] if transfer is None else [transfer])
            assert not any(np.isin(part, test).any() for part in seen), phase
            assert np.array_equal(np.sort(val_rows), val), phase


def test_no_predictor_reads_a_test_row(monkeypatch):
    spy = Spy(monkeypatch)
    summary = run_kd(toy(), "teacher", "student", train=STEPS, student_labels_per_class=20, teacher_rows="crossfit",
                     transfer_size=0, cch_sensitivity=("ksg", "gaussian"))
    spy.check_no_test_rows()
    assert {name for name, _ in spy.n_predictor_rows} == {"cch", "mixed_mi", "label_mi_terms"}
    assert summary["cch"]["n"] == spy.rows["val"].size
    # the spy can fail: the same records with the test rows in place of the validation rows
    spy.estimates.append(spy.rows["test"])
    with pytest.raises(AssertionError):
        spy.check_no_test_rows()


def test_the_primary_regime_runs_every_predictor_on_mfeat(monkeypatch):
    spy = Spy(monkeypatch)
    data = load_mfeat(["pixel", "fourier"])
    summary = run_kd(data, "pixel", "fourier", student_labels_per_class=20, teacher_rows="crossfit", transfer_size=0,
                     train=TrainConfig(steps=20, eval_every=10, hidden=16, patience=2))
    spy.check_no_test_rows()
    assert summary["regime"] == "primary" and summary["n"]["transfer"] == summary["n"]["teacher_only"] == 0
    assert list(summary["predictors"]) == list(PREDICTORS), summary["predictor_errors"]
    val = summary["val_accuracy"]
    assert summary["predictors"]["teacher_acc"]["value"] == val["teacher"]
    assert summary["predictors"]["teacher_minus_student_acc"]["value"] == pytest.approx(
        val["teacher"] - val["baseline"])
    assert summary["predictors"]["random"]["ci_low"] is None


def test_crossfit_targets_never_come_from_a_model_that_saw_the_row(monkeypatch):
    spy = Spy(monkeypatch)
    run_kd(toy(), "teacher", "student", train=STEPS, student_labels_per_class=20, teacher_rows="crossfit",
           crossfit_folds=4, transfer_size=0, predictors=False)
    trained = {phase: rows for phase, rows, _, _ in spy.trained}
    student = spy.rows["student_train"]
    assert np.array_equal(np.sort(trained["teacher"]), spy.rows["teacher_train"])
    assert set(spy.sources[student]) == {0, 1, 2, 3}
    for row in student:
        assert row not in trained[f"teacher_fold{spy.sources[row]}"]
    others = np.setdiff1d(np.arange(spy.sources.size), student)
    assert (spy.sources[others] == -1).all()  # rows no teacher trained on: the full teacher


def test_kd_pilot_trains_a_tenth_on_the_students_rows_and_scores_on_validation(monkeypatch):
    assert pilot_config(STEPS).steps == 2 and pilot_config(TrainConfig(steps=5)).steps == 1
    assert pilot_config(TrainConfig(epochs=30)).epochs == 3 and pilot_config(TrainConfig(epochs=30)).steps is None
    spy = Spy(monkeypatch)
    summary = run_kd(toy(), "teacher", "student", train=STEPS, student_labels_per_class=20, transfer_size=30)
    pilots = {phase: (rows, val_rows, transfer) for phase, rows, val_rows, transfer in spy.trained
              if phase.startswith("pilot")}
    assert set(pilots) == {"pilot_baseline", "pilot_kd"}
    for rows, val_rows, _ in pilots.values():
        assert np.array_equal(np.sort(rows), spy.rows["student_train"])
        assert np.array_equal(np.sort(val_rows), spy.rows["val"])
    assert np.array_equal(np.sort(pilots["pilot_kd"][2]), spy.rows["transfer"])
    assert -1 <= summary["predictors"]["kd_pilot"]["value"] <= 1
    spy.check_no_test_rows()


def test_random_is_stable_per_seed_and_views_and_differs_between_teachers():
    first = random_predictor(3, "pixel", "fourier")
    assert first == random_predictor(3, "pixel", "fourier") and 0 <= first["value"] < 1
    assert first["ci_low"] is None and first["ci_high"] is None
    others = {random_predictor(3, teacher, "fourier")["value"] for teacher in ("karhunen", "zernike", "profile")}
    assert first["value"] not in others and len(others) == 3
    assert random_predictor(4, "pixel", "fourier") != first
    assert first["value"] == 0.8782056199609899  # the same in every process and release (sha256 of the triple)


def test_within_class_re_pairing_keeps_every_class_and_the_teacher():
    labels = np.arange(300) % 3
    rows = split_indices(labels, SplitConfig(), np.random.default_rng(0), student_labels_per_class=20,
                         transfer_size=30)
    train_pair, held_pair = pairings(labels, rows, "within_class_shuffle", 1.0, 16, np.random.default_rng(1))
    student = rows["student_train"]
    assert (labels[train_pair] == labels).all()
    assert np.array_equal(np.sort(train_pair[student]), student) and (train_pair[student] != student).all()
    others = np.setdiff1d(np.arange(labels.size), student)
    assert np.array_equal(train_pair[others], others)
    assert (labels[held_pair] == labels).all() and np.isin(held_pair[rows["val"]], rows["val"]).all()
    data = toy()
    runs = [run_kd(data, "teacher", "student", train=STEPS, student_labels_per_class=20, pairing="shuffled", p=p,
                   seed=2, predictors=False) for p in (0.0, 1.0)]
    assert runs[0]["accuracy"]["teacher"] == runs[1]["accuracy"]["teacher"]
    assert runs[0]["val_accuracy"]["teacher"] == runs[1]["val_accuracy"]["teacher"]
    assert runs[0]["predictors"]["teacher_acc"] == runs[1]["predictors"]["teacher_acc"]


def test_transfer_within_class_shuffle_re_pairs_the_transfer_rows_within_their_class():
    labels = np.arange(300) % 3
    rows = split_indices(labels, SplitConfig(), np.random.default_rng(0), student_labels_per_class=20,
                         transfer_size=60)
    train_pair, held_pair = pairings(labels, rows, "transfer_within_class_shuffle", 1.0, 16, np.random.default_rng(1))
    transfer = rows["transfer"]
    assert (labels[train_pair] == labels).all() and (labels[held_pair] == labels).all()
    assert np.array_equal(np.sort(train_pair[transfer]), transfer) and (train_pair[transfer] != transfer).all()
    others = np.setdiff1d(np.arange(labels.size), transfer)
    assert np.array_equal(train_pair[others], others)  # the labelled rows stay aligned
    assert np.isin(held_pair[rows["val"]], rows["val"]).all()
    same = pairings(labels, rows, "transfer_within_class_shuffle", 0.0, 16, np.random.default_rng(1))
    assert all(np.array_equal(pair, np.arange(labels.size)) for pair in same)
    summary = run_kd(toy(), "teacher", "student", train=STEPS, student_labels_per_class=20, transfer_size=60,
                     control="transfer_within_class_shuffle", p=1.0, predictors=False)
    assert summary["control"] == "transfer_within_class_shuffle" and summary["pairing"] == "aligned"
    assert summary["regime"] == "transfer"


def test_sensitivity_entries_follow_the_predictors_and_failures_name_their_estimator(monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("no rows for you")

    monkeypatch.setattr("cchmi.estimators.gaussian.gaussian_cch", broken)
    summary = run_kd(toy(), "teacher", "student", train=STEPS, student_labels_per_class=20, teacher_rows="crossfit",
                     cch_sensitivity=("ksg", "gaussian"))
    names = list(summary["predictors"])
    assert names[:len(PREDICTORS)] == list(PREDICTORS) and names[len(PREDICTORS):] == ["cch_gap_logits@ksg"]
    assert summary["predictor_errors"] == {"cch_gap_logits@gaussian": "ValueError: no rows for you"}


def test_schema_3_summaries_validate_and_older_ones_run_again(tmp_path):
    summary = run_kd(toy(), "teacher", "student", train=STEPS, student_labels_per_class=20, teacher_rows="crossfit",
                     transfer_size=0, predictors=False).as_dict()
    check_summary(summary)
    assert schema_version(summary) == SCHEMA_VERSION == 3 and summary["regime"] == "primary"
    assert list(summary["predictors"]) == ["teacher_acc", "teacher_minus_student_acc", "random"]
    job = {"key": "job0"}
    path = tmp_path / "runs" / "job0" / "summary.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({**summary, "job": job}))
    assert read_summary(tmp_path, job)[0] is not None
    path.write_text(json.dumps({**{k: v for k, v in summary.items() if k != "regime"}, "job": job}))
    found, why = read_summary(tmp_path, job)
    assert found is None and "no regime" in why
