"""The sweep's check that its ``[cch] estimator`` can run on every job's held-out rows, before any
job trains (a job would otherwise train fully and then fail in its predictors)."""

from __future__ import annotations

import json

from cchmi.distill.sweep.config import SweepConfig, job_config, load_dataset

# The [cch] estimators that refuse rows rather than fall back: checked on every job's held-out rows.
REFUSING_ESTIMATORS = ("ksg-extrapolated", "neural")


def held_out_obstacle(estimator: str, labels) -> str | None:
    """Why the trainer's CCH (with its interval) by `estimator` cannot run on held-out rows with
    these labels (None: it can): the estimators' own rules (the extrapolation's rows per class and
    per half-sample, the neural bound's test batches), without the features (ties show only there)."""
    import numpy as np

    from cchmi.estimators.cch_terms import neural_batch_size
    from cchmi.estimators.extrapolate import obstacle

    codes = np.unique(np.asarray(labels), return_inverse=True)[1]
    if estimator == "ksg-extrapolated":
        return obstacle({}, codes.size, codes, True)
    if estimator == "neural":
        try:
            neural_batch_size(codes.size, True)
        except ValueError as exc:
            return str(exc)
    return None


def check_held_out(config: SweepConfig) -> None:
    """Before any job trains: a ValueError naming the first job whose ``[cch] estimator`` (one of
    :data:`REFUSING_ESTIMATORS`) cannot run on its held-out rows (validation + test: the rows and
    labels the trainer's :func:`~cchmi.distill.rows.split_indices` gives it, from its dataset and
    seed), so that no job trains fully and then fails. A dataset that cannot be loaded here is left
    to its jobs, which report it."""
    import numpy as np

    from cchmi.distill.rows import split_indices

    labels_of = {}
    for job in config.jobs:
        estimator = job["cch"].get("estimator", "auto")
        if estimator not in REFUSING_ESTIMATORS:
            continue
        data_key = json.dumps([job["data"], job["seed"] if job["data"].get("name") == "mfh" else None], sort_keys=True)
        if data_key not in labels_of:
            try:
                labels_of[data_key] = np.asarray(load_dataset(job["data"], job["seed"]).labels)
            except (OSError, ValueError, ImportError):
                labels_of[data_key] = None
        labels = labels_of[data_key]
        if labels is None:
            continue
        kd = job_config(job)
        rows = split_indices(labels, kd.split, np.random.default_rng(kd.seed), teacher_rows=kd.kd.teacher_rows,
                             **kd.budget.as_dict())
        held = np.concatenate([rows["val"], rows["test"]])
        reason = held_out_obstacle(estimator, labels[held])
        if reason is not None:
            point = f", sweep point {json.dumps(job['point'], sort_keys=True)}" if job["point"] else ""
            raise ValueError(f"cch.estimator = {estimator!r} cannot run on the {held.size} held-out rows (split.val + "
                             f"split.test) of job {job['key']} ({job['teacher_view']} -> {job['student_view']}, seed "
                             f"{job['seed']}{point}): {reason}; use estimator = \"auto\" (it falls back) or give the "
                             "jobs more held-out rows")
