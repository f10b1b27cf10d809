"""The one schema of a KD run's summary.json: its fields and their kinds, the predictors it holds,
the keys that mark a current summary (its schema version), the config hash of what defines a run,
and :class:`RunSummary`, the typed summary that :func:`cchmi.distill.run_kd` returns.

The trainer writes summaries with these fields, the sweep reads them back (resume), the report
aggregates them; each of them imports the schema from here.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

# What the report reads from a summary: (key, kind) with kind "str", "int", "number" (None allowed:
# summaries are strict JSON, where a NaN is written as null) or a table of such entries.
SUMMARY_FIELDS = {
    "dataset": "str", "teacher_view": "str", "student_view": "str", "pairing": "str", "p": "number", "seed": "int",
    "accuracy": {"teacher": "number", "baseline": "number", "kd": "number"}, "gain": "number",
    "cch": {"i_ts": "number", "i_sy": "number", "gap": "number", "gap_ci_low": "number", "gap_ci_high": "number",
            "verdict": "str"},
    "seconds": "number", "config_hash": "str",
}


# Entries that newer summaries have and older ones lack, checked when present. warnings: what the
# estimators warned of on the validation rows, "<predictor>: <message>" (cchmi.distill.predictors).
# predictor_errors: {step: error} of the estimation steps that failed after training ("cch": the CCH,
# whose entry then has null numbers and verdict "failed"; a predictor's name: it is missing).
# regime: "primary" or "transfer" (cchmi.distill.config.KDConfig.regime).
OPTIONAL_FIELDS = {"val_accuracy": {"teacher": "number", "baseline": "number", "kd": "number"}, "warnings": "strs",
                   "predictor_errors": "str_table", "regime": "str"}
# The predictors, in the summary's order (each computed from validation rows only; see
# cchmi.distill.predictors). Sensitivity entries "cch_gap_logits@<estimator>" follow them.
PREDICTORS = ("cch_gap_logits", "cch_gap_features", "neg_student_label_mi", "label_mi_gap", "conditional_mi",
              "teacher_acc", "teacher_minus_student_acc", "kd_pilot", "apriori_gap", "random")
TEACHER_PREDICTOR = "teacher_minus_student_acc"
# The predictors every run reports, predictors=True or not (no estimate, no extra training).
ALWAYS_PREDICTORS = ("teacher_acc", "teacher_minus_student_acc", "random")
SENSITIVITY_PREFIX = "cch_gap_logits@"  # + an estimator name: a sensitivity entry


_KIND_NAMES = {"str": "a str", "int": "an int", "number": "a number or null", "strs": "a list of str",
               "str_table": "a table of str"}


def _kind_ok(value, kind: str) -> bool:
    if isinstance(value, bool):
        return False
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int)
    if kind == "strs":
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    if kind == "str_table":
        return isinstance(value, dict) and all(isinstance(item, str) for item in value.values())
    return value is None or isinstance(value, (int, float))


def check_summary(summary, fields: dict = SUMMARY_FIELDS, where: str = "") -> None:
    """ValueError naming the first missing or mistyped entry of a run summary."""
    if not isinstance(summary, dict):
        raise ValueError(f"{where or 'the summary'} is not a JSON object")
    for key, kind in fields.items():
        name = f"{where}.{key}" if where else key
        if key not in summary:
            raise ValueError(f"{name} is missing")
        if isinstance(kind, dict):
            check_summary(summary[key], kind, name)
        elif not _kind_ok(summary[key], kind):
            raise ValueError(f"{name} must be {_KIND_NAMES[kind]}, "
                             f"got {summary[key]!r}")
    if fields is SUMMARY_FIELDS:
        check_summary({k: v for k, v in summary.items() if k in OPTIONAL_FIELDS},
                      {k: v for k, v in OPTIONAL_FIELDS.items() if k in summary})
        predictors = summary.get("predictors", {})
        if not isinstance(predictors, dict):
            raise ValueError(f"predictors must be a table, got {predictors!r}")
        for name, entry in predictors.items():
            check_summary(entry, {"value": "number"}, f"predictors.{name}")


# Entries of every summary of the current trainer: one without them ran under older defaults (the
# teacher trained on the student's labelled rows; before schema 3, predictors read test rows too),
# so a resumed sweep runs its job again.
CURRENT_SUMMARY_KEYS = ("teacher_rows", "budget", "val_accuracy", "predictors", "regime")

# What defines a run (with the cch settings added by config_hash): the hash ignores everything else.
HASH_KEYS = ("dataset", "teacher_view", "student_view", "pairing", "p", "seed", "teacher_train", "student_train",
             "split", "budget", "teacher_rows", "crossfit_folds", "control", "cch_representation")


def _requested(summary: dict) -> list[str]:
    """The predictors a run was asked for: those it computed, or (with its sensitivity entries,
    computed or failed) every one of :data:`PREDICTORS` when some of them failed after training
    (``predictor_errors``) and the run asked for more than :data:`ALWAYS_PREDICTORS`, so that a
    failed estimate does not change what the run is."""
    computed = set(summary["predictors"])
    errors = summary.get("predictor_errors", {})
    failed = {name for step in errors for name in step.split("/")
              if name in PREDICTORS or name.startswith(SENSITIVITY_PREFIX)}
    if failed or ("cch" in errors and computed - {TEACHER_PREDICTOR, *ALWAYS_PREDICTORS}):
        return sorted(set(PREDICTORS) | {name for name in computed | failed if name.startswith(SENSITIVITY_PREFIX)})
    return sorted(computed)


def config_hash(summary: dict) -> str:
    """Hash of what defines a run (dataset, views, pairing and control, networks, rows and budgets,
    seed, CCH settings, which predictors were computed), not of its results."""
    defining = {k: summary[k] for k in HASH_KEYS}
    defining.update(cch_k=summary["cch"]["k"], cch_pca=summary["cch"]["pca"], predictors=_requested(summary))
    if summary.get("cch_estimator", "ksg") != "ksg":  # summaries from before the option ran "ksg": their hashes hold
        defining["cch_estimator"] = summary["cch_estimator"]
    text = json.dumps(defining, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# The version of the schema RunSummary writes: 3 since the predictors read validation rows only
# (and the summary has its regime), 2 since the trainer's budgets and teacher_rows; a summary
# without those entries is version 1 (:func:`schema_version`).
SCHEMA_VERSION = 3
_VERSION_2_KEYS = ("teacher_rows", "budget", "val_accuracy", "predictors")


def schema_version(summary: Mapping) -> int:
    """The schema version a summary was written under: 3 when it has every current key
    (:data:`CURRENT_SUMMARY_KEYS`), 2 when it lacks only the regime, else 1."""
    if all(key in summary for key in CURRENT_SUMMARY_KEYS):
        return SCHEMA_VERSION
    return 2 if all(key in summary for key in _VERSION_2_KEYS) else 1


@dataclass(frozen=True)
class RunSummary(Mapping):
    """What one KD run found, typed; summary.json is :meth:`as_dict` (key order included).

    The networks, split and budget are stored as the dicts summary.json holds (asdict of the
    configs), cch as :meth:`cchmi.CCHResult.as_dict`, predictors as {name: {value, ci_low,
    ci_high}} in :data:`PREDICTORS` order (then the sensitivity entries), regime as
    :attr:`cchmi.distill.config.KDConfig.regime`, warnings as the list of the estimators' distinct
    warnings on the validation rows and predictor_errors as {step: error} of the estimation steps that failed
    (:func:`cchmi.distill.predictors.held_out_estimates`). train (=
    student_train), gain (kd - baseline test accuracy) and config_hash (:func:`config_hash`) are
    derived. Checked at construction with :func:`check_summary`.

    A RunSummary is also a read-only mapping over as_dict(), so ``summary["gain"]``, ``dict(summary)``
    and ``{**summary}`` read it as the summary dict that :func:`cchmi.distill.run_kd` returned before
    it returned this type."""

    dataset: str
    teacher_view: str
    student_view: str
    pairing: str
    p: float
    seed: int
    teacher_train: dict
    student_train: dict
    split: dict
    budget: dict
    teacher_rows: str
    crossfit_folds: int | None
    control: str | None
    regime: str
    n: dict
    accuracy: dict
    val_accuracy: dict
    cch: dict
    cch_representation: str
    cch_estimator: str
    predictors: dict
    data_fingerprint: str
    device: str
    torch: str
    seconds: float
    warnings: tuple[str, ...] = ()
    predictor_errors: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        values = {}
        for item in fields(self):
            if item.name == "split":
                values.update(train=self.student_train, teacher_train=self.teacher_train,
                              student_train=self.student_train)
            if item.name not in ("teacher_train", "student_train", "warnings", "predictor_errors"):
                values[item.name] = getattr(self, item.name)
            if item.name == "val_accuracy":
                values["gain"] = self.accuracy["kd"] - self.accuracy["baseline"]
        values["config_hash"] = config_hash(values)
        values["warnings"] = list(self.warnings)  # last: the keys before them keep their order
        values["predictor_errors"] = dict(self.predictor_errors)
        check_summary(values)
        object.__setattr__(self, "_values", values)

    @property
    def gain(self) -> float:
        """Test accuracy of the KD student minus the baseline student's."""
        return self._values["gain"]

    @property
    def config_hash(self) -> str:
        """:func:`config_hash` of this run."""
        return self._values["config_hash"]

    def as_dict(self) -> dict:
        """The summary.json dict (a copy), keys in the order summary.json has always had."""
        return copy.deepcopy(self._values)

    def __getitem__(self, key):
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)
