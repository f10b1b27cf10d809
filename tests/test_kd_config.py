"""KDConfig (one frozen config however it is built, the KD rules checked where it is made),
RunSummary (the one summary schema) and the predictors' list (torch, tiny runs)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import toy_multiview  # noqa: E402
from cchmi.distill import KDConfig, RunSummary, TrainConfig, run_kd  # noqa: E402
from cchmi.distill.config import Budget, CCHSettings, KDOptions, SplitConfig  # noqa: E402
from cchmi.distill.predictors import GAP_PREDICTORS, LABEL_PREDICTORS  # noqa: E402
from cchmi.distill.summary import (  # noqa: E402
    CURRENT_SUMMARY_KEYS,
    PREDICTORS,
    SCHEMA_VERSION,
    TEACHER_PREDICTOR,
    schema_version,
)

STEPS = TrainConfig(steps=6, eval_every=3, hidden=16, batch_size=16, patience=3)
# summary.json's keys, in the order every trainer since the budgets has written them (regime: schema 3).
SUMMARY_KEYS = ["dataset", "teacher_view", "student_view", "pairing", "p", "seed", "train", "teacher_train",
                "student_train", "split", "budget", "teacher_rows", "crossfit_folds", "control", "regime", "n",
                "accuracy", "val_accuracy", "gain", "cch", "cch_representation", "cch_estimator", "predictors",
                "data_fingerprint", "device", "torch", "seconds", "config_hash", "warnings",
                "predictor_errors"]


def toy(n=240, seed=0):
    return toy_multiview(n, seed)


def test_keywords_and_sections_build_the_same_config():
    kw = KDConfig.from_keywords("t", "s", pairing="label", teacher_train=TrainConfig(epochs=2),
                                student_train=TrainConfig(epochs=2, kd_weight=0.5), split=SplitConfig(val=0.1),
                                student_labels_per_class=5, transfer_size=20, teacher_rows="crossfit", seed=3,
                                cch_k=5, cch_estimator="ksg")
    toml = KDConfig.from_sections("t", "s", 3, pairing="label", train={"epochs": 2}, student={"kd_weight": 0.5},
                                  split={"val": 0.1}, budget={"student_labels_per_class": 5, "transfer_size": 20},
                                  kd={"teacher_rows": "crossfit"}, cch={"k": 5, "estimator": "ksg"})
    direct = KDConfig("t", "s", seed=3, teacher_train=TrainConfig(epochs=2),
                      student_train=TrainConfig(epochs=2, kd_weight=0.5), split=SplitConfig(val=0.1),
                      budget=Budget(5, None, 20), kd=KDOptions("label_pairing", 0.0, "crossfit"),
                      cch=CCHSettings(k=5, estimator="ksg"))
    assert kw == toml == direct
    assert kw.kd.crossfit_folds == 5 and kw.pairing == "label" and kw.kd.control == "label_pairing"
    assert KDConfig.from_keywords("t", "s", **kw.keywords()) == kw
    assert KDConfig.from_keywords("t", "s").keywords() == {"train": TrainConfig()}


@pytest.mark.parametrize("keywords,sections,python,toml", [
    ({"pairing": "label", "control": "label_pairing"}, {"pairing": "label", "kd": {"control": "label_pairing"}},
     "give pairing='label' or control='label_pairing', not both",
     "give pairing = 'label' or control = 'label_pairing', not both"),
    ({"p": 0.5}, {"p": 0.5}, r"p \(here 0.5\) is the re-pairing probability of pairing='shuffled'",
     r"p \(here 0.5\) is the re-pairing probability of pairing = 'shuffled'"),
    ({"crossfit_folds": 3}, {"kd": {"crossfit_folds": 3}}, "crossfit_folds applies to teacher_rows='crossfit' only",
     "crossfit_folds applies to teacher_rows = 'crossfit' only"),
    ({"cch_k": 0}, {"cch": {"k": 0}}, "cch_k must be >= 1", "cch.k must be >= 1"),
])
def test_one_rule_spelt_as_its_source(keywords, sections, python, toml):
    """Each KD rule is written once (KDConfig.validated); its message spells the setting as the user
    wrote it: keyword=value from Python, key = value from a TOML config."""
    with pytest.raises(ValueError, match=python):
        KDConfig.from_keywords("t", "s", **keywords)
    with pytest.raises(ValueError, match=toml):
        KDConfig.from_sections("t", "s", 0, **sections)


def test_a_kd_config_is_valid_once_made():
    with pytest.raises(ValueError, match="control must be one of"):
        KDConfig("t", "s", kd=KDOptions(control="label"))
    with pytest.raises(ValueError, match="teacher_labels_per_class or the split fraction teacher"):
        KDConfig("t", "s", split=SplitConfig(teacher=0.1), budget=Budget(teacher_labels_per_class=3))
    with pytest.raises(TypeError, match="budget must be a Budget"):
        KDConfig("t", "s", budget={"transfer_size": 3})
    with pytest.raises(ValueError, match="transfer_size must be >= 0"):
        Budget(transfer_size=-1)
    with pytest.raises(ValueError, match=r"\[teacher\] unknown training option"):
        KDConfig.from_sections("t", "s", 0, teacher={"epoch": 2})
    numpy_ints = KDConfig.from_keywords("t", "s", seed=np.int64(3), transfer_size=np.int32(5))
    assert type(numpy_ints.seed) is int and type(numpy_ints.budget.transfer_size) is int  # summary.json takes them


def test_run_kd_takes_a_config_and_the_keyword_form_alike(tmp_path):
    data = toy()
    config = KDConfig.from_keywords("teacher", "student", train=STEPS, control="within_class_shuffle", p=0.5,
                                    student_labels_per_class=10, transfer_size=40, seed=1, predictors=False)
    typed = run_kd(data, config, out_dir=tmp_path)
    keywords = run_kd(data, "teacher", "student", train=STEPS, pairing="shuffled", p=0.5, student_labels_per_class=10,
                      transfer_size=40, seed=1, predictors=False)
    assert isinstance(typed, RunSummary) and list(typed) == SUMMARY_KEYS
    drop = ("seconds", "cch")
    assert {k: v for k, v in typed.items() if k not in drop} == {k: v for k, v in keywords.items() if k not in drop}
    assert typed["pairing"] == "shuffled" and typed["control"] == "within_class_shuffle" and typed.gain == typed["gain"]
    written = json.loads((tmp_path / "summary.json").read_text())
    assert list(written) == SUMMARY_KEYS and written == json.loads(json.dumps(typed.as_dict()))
    assert written["config_hash"] == typed.config_hash and schema_version(written) == SCHEMA_VERSION
    with pytest.raises(TypeError, match="also given: seed"):
        run_kd(data, config, seed=2)


def test_run_summary_is_checked_and_versioned():
    data = toy()
    summary = run_kd(data, KDConfig("teacher", "student", teacher_train=STEPS, student_train=STEPS,
                                    budget=Budget(10, None, 40), predictors=False))
    fields = {name: getattr(summary, name) for name in RunSummary.__dataclass_fields__}
    assert RunSummary(**fields) == summary
    with pytest.raises(ValueError, match="seed must be an int"):
        RunSummary(**{**fields, "seed": "0"})
    older = {k: v for k, v in summary.items() if k not in CURRENT_SUMMARY_KEYS}
    version_2 = {k: v for k, v in summary.items() if k != "regime"}
    assert schema_version(older) == 1 and schema_version(version_2) == 2
    assert schema_version(summary) == SCHEMA_VERSION == 3 and summary["regime"] == "transfer"


def test_the_predictors_computed_are_the_listed_ones():
    # the contract of the session plan: these names, in this order
    assert PREDICTORS == ("cch_gap_logits", "cch_gap_features", "neg_student_label_mi", "label_mi_gap",
                          "conditional_mi", "teacher_acc", "teacher_minus_student_acc", "kd_pilot", "apriori_gap",
                          "random")
    assert {*GAP_PREDICTORS, *LABEL_PREDICTORS, TEACHER_PREDICTOR} < set(PREDICTORS)


def test_the_regime_comes_from_the_config():
    primary = KDConfig.from_keywords("t", "s", student_labels_per_class=20, teacher_rows="crossfit", transfer_size=0)
    assert primary.regime == "primary"
    assert KDConfig.from_keywords("t", "s", teacher_rows="crossfit").regime == "primary"
    for transfer in (dict(teacher_rows="crossfit", transfer_size=10), dict(teacher_rows="crossfit",
                                                                           teacher_labels_per_class=5),
                     dict(teacher_rows="crossfit", split=SplitConfig(unlabelled=0.1)), dict(teacher_rows="disjoint"),
                     dict(teacher_rows="shared")):
        assert KDConfig.from_keywords("t", "s", **transfer).regime == "transfer", transfer


def test_the_sensitivity_set_is_checked_by_name():
    config = KDConfig.from_sections("t", "s", 0, cch={"sensitivity": ["ksg", "gaussian"]})
    assert config.cch.sensitivity == ("ksg", "gaussian")
    assert KDConfig.from_keywords("t", "s", **config.keywords()) == config
    with pytest.raises(ValueError, match=r"cch\.sensitivity entry must be one of .*'gaussian'; got 'kde'"):
        KDConfig.from_sections("t", "s", 0, cch={"sensitivity": ["ksg", "kde"]})
    with pytest.raises(ValueError, match=r"cch\.sensitivity names 'ksg' more than once"):
        KDConfig.from_sections("t", "s", 0, cch={"sensitivity": ["ksg", "ksg"]})
    with pytest.raises(TypeError, match=r"cch\.sensitivity must be a list"):
        KDConfig.from_sections("t", "s", 0, cch={"sensitivity": "ksg"})
    with pytest.raises(ValueError, match=r"cch_sensitivity entry must be one of"):
        KDConfig.from_keywords("t", "s", cch_sensitivity=("nope",))


def test_transfer_within_class_shuffle_takes_p_and_needs_a_transfer_set():
    config = KDConfig.from_keywords("t", "s", control="transfer_within_class_shuffle", p=0.5, transfer_size=10)
    assert config.kd.p == 0.5 and config.pairing == "aligned"
    with pytest.raises(ValueError, match="transfer_within_class_shuffle"):
        KDConfig.from_keywords("t", "s", control="random_transfer_pairing", p=0.5)
    with pytest.raises(ValueError, match="control 'transfer_within_class_shuffle' needs a transfer set"):
        run_kd(toy(), "teacher", "student", train=STEPS, control="transfer_within_class_shuffle", p=1.0,
               student_labels_per_class=10, predictors=False)
