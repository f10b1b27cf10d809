"""The one schema of a KD run's summary.json: its fields and their kinds, the predictors it holds,
the keys that mark a current summary, and the config hash of what defines a run.

The trainer writes summaries with these fields, the sweep reads them back (resume), the report
aggregates them; each of them imports the schema from here.
"""

from __future__ import annotations

import hashlib
import json

# What the report reads from a summary: (key, kind) with kind "str", "int", "number" (None allowed:
# summaries are strict JSON, where a NaN is written as null) or a table of such entries.
SUMMARY_FIELDS = {
    "dataset": "str", "teacher_view": "str", "student_view": "str", "pairing": "str", "p": "number", "seed": "int",
    "accuracy": {"teacher": "number", "baseline": "number", "kd": "number"}, "gain": "number",
    "cch": {"i_ts": "number", "i_sy": "number", "gap": "number", "gap_ci_low": "number", "gap_ci_high": "number",
            "verdict": "str"},
    "seconds": "number", "config_hash": "str",
}


# Entries that newer summaries have and older ones lack, checked when present.
OPTIONAL_FIELDS = {"val_accuracy": {"teacher": "number", "baseline": "number", "kd": "number"}}
PREDICTORS = ("cch_gap_logits", "cch_gap_features", "label_mi_gap", "conditional_mi", "teacher_minus_student_acc")
TEACHER_PREDICTOR = "teacher_minus_student_acc"


def _kind_ok(value, kind: str) -> bool:
    if isinstance(value, bool):
        return False
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int)
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
            raise ValueError(f"{name} must be a {'number or null' if kind == 'number' else kind}, "
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
# teacher trained on the student's labelled rows), so a resumed sweep runs its job again.
CURRENT_SUMMARY_KEYS = ("teacher_rows", "budget", "val_accuracy", "predictors")

# What defines a run (with the cch settings added by config_hash): the hash ignores everything else.
HASH_KEYS = ("dataset", "teacher_view", "student_view", "pairing", "p", "seed", "teacher_train", "student_train",
             "split", "budget", "teacher_rows", "crossfit_folds", "control", "cch_representation")


def config_hash(summary: dict) -> str:
    """Hash of what defines a run (dataset, views, pairing and control, networks, rows and budgets,
    seed, CCH settings, which predictors were computed), not of its results."""
    defining = {k: summary[k] for k in HASH_KEYS}
    defining.update(cch_k=summary["cch"]["k"], cch_pca=summary["cch"]["pca"], predictors=sorted(summary["predictors"]))
    if summary.get("cch_estimator", "ksg") != "ksg":  # summaries from before the option ran "ksg": their hashes hold
        defining["cch_estimator"] = summary["cch_estimator"]
    text = json.dumps(defining, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
