"""The reference cross-modal KD trainer: one configuration, end to end.

:func:`run_kd` takes a multi-view dataset, a teacher view and a student view, and

1. splits the samples, stratified by class, into held-out validation and test rows (fractions of
   the data), the student's labelled rows, the teacher's rows and a transfer set (paired rows
   without student labels, scored by the teacher), by fractions or by exact budgets per class
   (:func:`split_indices`);
2. trains the teacher on its view and scores every row with a model that did not train on it
   (``teacher_rows``: "disjoint", "crossfit"; "shared" is the in-sample control), then freezes it;
3. pairs the teacher's scores with student rows: aligned, or re-paired by a ``control``;
4. trains the student without KD (the baseline) and with KD, from the same initial weights and the
   same batch order: loss = ce_weight * CE + kd_weight * T^2 KL(teacher_T || student_T)
   (+ feature_kd_weight * MSE(projector(student features), teacher features)), the KD terms on
   the labelled rows and on a batch of transfer rows per step;
5. keeps every network's best validation evaluation and reports validation and test accuracy
   (the gain: KD minus baseline test accuracy, scored on the test rows only);
6. computes the CCH and the other predictors of the KD gain on the VALIDATION rows only, never
   the test rows (:mod:`cchmi.distill.predictors`): the MI estimates from the teacher's and the
   baseline student's representations, with intervals; teacher accuracy and the teacher - student
   accuracy difference on validation; a KD pilot (a tenth of the students' training, scored on
   validation); the a-priori criterion on the raw views; a random draw.

Each evaluation of each network is one line of run.jsonl; summary.json holds the result.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from cchmi._scaling import standardise
from cchmi._torch import resolve_device
from cchmi.data.multiview import MultiView
from cchmi.distill.config import TRANSFER_CONTROLS, KDConfig, TrainConfig
from cchmi.distill.models import build_model
from cchmi.distill.predictors import (
    apriori_gap,
    estimate_step,
    failed_cch,
    held_out_estimates,
    ordered,
    random_predictor,
    teacher_minus_student_acc,
)
from cchmi.distill.rows import crossfit_split, pairings, split_indices
from cchmi.distill.summary import RunSummary
from cchmi.distill.training import accuracy, predict, process_group_rank_world, teacher_outputs, train_network
from cchmi.estimators.label_terms import interval_entry

__all__ = ["run_kd", "fingerprint"]
# The parts of a run's rows counted in the summary's "n".
COUNTED_ROWS = ("student_train", "teacher_train", "transfer", "val", "test", "teacher_only", "unused")


def fingerprint(*arrays: np.ndarray) -> str:
    """sha256 of the arrays' shapes, dtypes and bytes (16 hex digits): which data a run used."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def _model_kind(model: str, data: MultiView, view: str) -> str:
    if model == "auto":
        return "cnn" if view in data.image_shapes else "mlp"
    return model


def _as_config(config, student_view, keywords: dict) -> KDConfig:
    """The run's KDConfig: `config` itself, or the one the keyword form's arguments build."""
    if isinstance(config, KDConfig):
        if student_view is not None or keywords:
            given = ", ".join(["student_view"] * (student_view is not None) + sorted(keywords))
            raise TypeError(f"run_kd(data, config) takes its options from the KDConfig; also given: {given}")
        return config
    return KDConfig.from_keywords(config, student_view, **keywords)


@contextlib.contextmanager
def _run_log(out: Path | None):
    """Yields log(record): one JSON line of out/run.jsonl per record (nothing without `out`)."""
    if out is None:
        yield lambda record: None
        return
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "run.jsonl", "w") as log_file:
        yield lambda record: log_file.write(json.dumps(record) + "\n")


def _inputs(data: MultiView, config: KDConfig, rows: dict):
    """(teacher inputs, student inputs, the teacher's view, {"teacher", "student"}: model kind).
    MLP inputs are standardised with the statistics of the rows their network trains on (the
    student's: its labelled and transfer rows, whose features it sees); CNN inputs stay as given.
    The same_modality_teacher control gives the teacher the student's view."""
    teacher_view = config.teacher_view
    if config.kd.control == "same_modality_teacher":
        teacher_view = config.student_view
    teacher_raw, student_raw = data.view(teacher_view), data.view(config.student_view)
    kinds = {"teacher": _model_kind(config.teacher_train.model, data, teacher_view),
             "student": _model_kind(config.student_train.model, data, config.student_view)}
    student_fit = np.union1d(rows["student_train"], rows["transfer"])
    teacher_x = (standardise(teacher_raw, rows["teacher_train"]) if kinds["teacher"] == "mlp"
                 else teacher_raw.astype(np.float32))
    student_x = standardise(student_raw, student_fit) if kinds["student"] == "mlp" else student_raw.astype(np.float32)
    return teacher_x, student_x, teacher_view, kinds


def _kd_terms(student, x, parts: dict, config: KDConfig, teacher, targets, train_pair) -> dict:
    """The KD keywords of :func:`~cchmi.distill.training.train_network` for a KD student (its
    projector, for feature KD, made with seed + 2)."""
    if config.kd.control == "transfer_labels":
        return {"transfer_rows": parts["transfer"], "transfer_ce": True}
    pair = torch.as_tensor(train_pair, device=x.device)
    projector = None
    if config.student_train.feature_kd_weight > 0:
        torch.manual_seed(config.seed + 2)
        projector = torch.nn.Linear(student.feature_dim, teacher.feature_dim).to(x.device)
    return {"targets": (targets[0][pair], targets[1][pair]), "transfer_rows": parts["transfer"],
            "projector": projector}


def _train_students(make, x, y, parts: dict, config: KDConfig, teacher, targets, train_pair, log):
    """The baseline student (no KD) and the KD student, from the same initial weights and seed;
    returns (baseline, kd student, their best validation accuracies). `parts`: the student's
    labelled, validation and transfer rows as tensors; targets: the teacher's (logits, features)."""
    cfg, seed = config.student_train, config.seed
    torch.manual_seed(seed + 1)
    baseline = make()
    init_state = copy.deepcopy(baseline.state_dict())
    baseline_val = train_network(baseline, x, y, parts["labelled"], parts["val"], cfg, seed=seed + 1, log=log,
                                 phase="baseline")
    student = make()
    student.load_state_dict(init_state)
    kd = _kd_terms(student, x, parts, config, teacher, targets, train_pair)
    kd_val = train_network(student, x, y, parts["labelled"], parts["val"], cfg, seed=seed + 1, log=log, phase="kd",
                           **kd)
    return baseline, student, baseline_val, kd_val


def pilot_config(cfg: TrainConfig) -> TrainConfig:
    """The KD pilot's training: a tenth of the students' length (of ``steps``, or of ``epochs``
    when steps is None), at least 1; everything else as the students'."""
    if cfg.steps is not None:
        return replace(cfg, steps=max(1, cfg.steps // 10))
    return replace(cfg, epochs=max(1, cfg.epochs // 10))


def _kd_pilot(make, x, y, parts: dict, config: KDConfig, teacher, targets, train_pair, log) -> dict:
    """The kd_pilot predictor: a baseline and a KD student trained from the same initial weights
    (seed + 3) and batch order for :func:`pilot_config`'s length on the student's labelled (and
    transfer) rows, each scored on the validation rows (its best evaluation); the value is the KD
    student's validation accuracy minus the baseline's. It reads no test row."""
    cfg, seed = pilot_config(config.student_train), config.seed + 3
    torch.manual_seed(seed)
    baseline = make()
    init_state = copy.deepcopy(baseline.state_dict())
    base_val = train_network(baseline, x, y, parts["labelled"], parts["val"], cfg, seed=seed, log=log,
                             phase="pilot_baseline")
    student = make()
    student.load_state_dict(init_state)
    kd = _kd_terms(student, x, parts, config, teacher, targets, train_pair)
    kd_val = train_network(student, x, y, parts["labelled"], parts["val"], cfg, seed=seed, log=log, phase="pilot_kd",
                           **kd)
    return interval_entry(kd_val - base_val)


def _representations(logits: torch.Tensor, features: torch.Tensor) -> dict:
    return {"logits": logits.float().cpu().numpy(), "features": features.float().cpu().numpy()}


def run_kd(data: MultiView, config, student_view: str | None = None, /, *, device=None, out_dir=None,
           **keywords) -> RunSummary:
    """One teacher -> student KD run; returns its :class:`RunSummary` (also written to out_dir as
    summary.json, with each evaluation of each network a line of run.jsonl).

    ``run_kd(data, config)`` takes a :class:`KDConfig`. The keyword form ``run_kd(data,
    teacher_view, student_view, pairing=..., p=..., control=..., train=..., teacher_train=...,
    student_train=..., split=..., student_labels_per_class=..., teacher_labels_per_class=...,
    transfer_size=..., teacher_rows=..., crossfit_folds=..., seed=..., cch_representation=...,
    cch_k=..., cch_pca=..., cch_estimator=..., cch_sensitivity=..., predictors=...)`` is kept for one release: it builds
    ``KDConfig.from_keywords(teacher_view, student_view, ...)`` (the same options, same defaults).
    device: torch device (None: the default one); out_dir: where the files go (rank 0 writes them
    under torchrun). The summary is a mapping too: ``summary["gain"]`` reads as before.

    Rows (:func:`~cchmi.distill.rows.split_indices`): validation and test are fractions of the data
    (``split``); the student's labelled rows, the teacher's rows and the transfer set are
    fractions too, or exact budgets: ``student_labels_per_class``, ``teacher_labels_per_class``
    (rows per class) and ``transfer_size`` (paired rows without student labels, scored by the
    teacher, any class).

    teacher_rows: where the KD targets come from, so that they are out of sample:
    "disjoint" (default): the teacher trains on rows disjoint from the student's labelled rows and
    from the transfer set (teacher_labels_per_class or split.teacher of them; else see
    split_indices); "crossfit": the teacher trains on its own rows (if any) and the
    student's labelled rows, whose targets come from ``crossfit_folds`` (default 5) fold models
    that did not train on them (the reported teacher is the full one); "shared": the teacher
    trains on the student's labelled rows and scores them in sample (the old behaviour, a control).

    Networks: ``teacher_train`` and ``student_train`` (TrainConfig each; the KD weight,
    temperature and feature KD weight are read from student_train); ``train`` sets both.

    control (None: aligned pairs): "label_pairing" or "within_class_shuffle" (probability p)
    re-pair the student's labelled rows within their class (transfer rows stay aligned);
    "random_transfer_pairing" pairs the transfer rows at random across classes (I(T; S) = 0 on
    them); "same_modality_teacher" trains the teacher on the student's view; "transfer_labels"
    (upper bound) gives the student the transfer rows' true labels (cross-entropy, no KD).
    pairing='label' is control='label_pairing' and pairing='shuffled' with p is
    control='within_class_shuffle' (giving both is an error; p is refused elsewhere).

    control "transfer_within_class_shuffle" (probability p) re-pairs the transfer rows within their
    class (the labelled rows stay aligned), to split a transfer-regime gain into its pseudo-label
    and pairing parts. The transfer controls are refused without transfer rows.

    Regime (the summary's "regime", :attr:`~cchmi.distill.config.KDConfig.regime`): "primary",
    the paper's, is teacher_rows="crossfit" with no rows of the teacher's own and no transfer rows
    (e.g. ``student_labels_per_class=20, teacher_rows="crossfit", transfer_size=0``: teacher and
    students train on the same labelled rows, every KD target cross-fitted); anything else is
    "transfer".

    Predictors on the VALIDATION rows only (the gain is scored on the test rows only, so the two
    share no noise), each validation student row paired with a teacher row as the KD rows are
    (:func:`~cchmi.distill.rows.pairings`): the CCH of ``cch_representation`` ("logits", or
    "features" with cch_pca for wide layers) by ``cch_estimator`` (:func:`cchmi.cch`'s
    ``estimator``; "auto", the default, is KSG below 1024 rows and the bias-extrapolated KSG from
    there, see its rule table) and, with predictors=True, the predictors of
    :mod:`cchmi.distill.predictors` (nats, 95% intervals; the KD pilot trains two more students
    for a tenth of the students' length, :func:`pilot_config`; the a-priori criterion is fitted
    on the rows the networks train on) and the sensitivity entries of ``cch_sensitivity``;
    teacher_acc, teacher_minus_student_acc (validation accuracy) and random are always reported.

    The summary (:class:`RunSummary`): dataset, teacher_view, student_view, pairing ("aligned",
    "label", "shuffled": how the labelled rows are paired), p, seed, teacher_train and
    student_train (the configs; train = student_train), split, budget (the three budgets, null when
    not given), teacher_rows, crossfit_folds (null unless crossfit), control, regime, n (rows per part:
    student_train, teacher_train, transfer, val, test, teacher_only, unused), accuracy and
    val_accuracy (teacher, baseline, kd; test and validation, fractions), gain (kd - baseline test
    accuracy), cch (:class:`CCHResult` as a dict), cch_representation, cch_estimator (as asked; the
    one each term used is in cch; computed on the validation rows), predictors ({name: {value,
    ci_low, ci_high}}; only teacher_acc, teacher_minus_student_acc and random when
    predictors=False), data_fingerprint, device, torch, seconds,
    config_hash (:func:`~cchmi.distill.summary.config_hash`), warnings (what the estimators warned
    of on the validation rows, each "<predictor>: <message>", also logged by the logger
    "cchmi.distill"; they do not escape as Python warnings), predictor_errors ({step: error} of the
    estimates that failed after training: the run keeps its accuracies; a failed CCH has null
    numbers and verdict "failed", a failed predictor is missing from predictors).
    """
    start = time.perf_counter()
    config = _as_config(config, student_view, keywords)
    for view in (config.teacher_view, config.student_view):
        data.view(view)  # an unknown view is refused first, by name
    labels = np.asarray(data.labels)
    dev = resolve_device(device)
    rng = np.random.default_rng(config.seed)
    rows = split_indices(labels, config.split, rng, teacher_rows=config.kd.teacher_rows, **config.budget.as_dict())
    if config.kd.control in TRANSFER_CONTROLS and rows["transfer"].size == 0:
        raise ValueError(f"control {config.kd.control!r} needs a transfer set: set transfer_size or the split "
                         "fraction unlabelled")
    folds = None
    if config.kd.teacher_rows == "crossfit":
        folds = crossfit_split(labels, rows["student_train"], config.kd.crossfit_folds, rng)
    train_pair, held_pair = pairings(labels, rows, config.kd.control, config.kd.p, config.student_train.batch_size, rng)
    teacher_x, student_x, teacher_view, kinds = _inputs(data, config, rows)
    out = Path(out_dir) if out_dir is not None and process_group_rank_world()[0] == 0 else None  # one writer
    with _run_log(out) as log:
        x_teacher, x_student, y = (torch.as_tensor(a, device=dev) for a in (teacher_x, student_x, labels))
        n_classes = int(labels.max()) + 1

        def make(x, kind, view, cfg):
            return build_model(kind, x.shape[1], n_classes, hidden=cfg.hidden, depth=cfg.depth,
                               dropout=cfg.dropout, image_shape=data.image_shapes.get(view)).to(dev)

        parts = {name: torch.as_tensor(rows[key], device=dev) for name, key in
                 (("labelled", "student_train"), ("val", "val"), ("test", "test"), ("transfer", "transfer"))}
        teacher, t_logits, t_feats, _, teacher_val = teacher_outputs(
            lambda: make(teacher_x, kinds["teacher"], teacher_view, config.teacher_train), x_teacher, y, rows,
            parts["val"], config.teacher_train, folds=folds, seed=config.seed, log=log)
        baseline, student, baseline_val, kd_val = _train_students(
            lambda: make(student_x, kinds["student"], config.student_view, config.student_train), x_student, y,
            parts, config, teacher, (t_logits, t_feats), train_pair, log)
        test = parts["test"]
        acc = {name: accuracy(m, x[test], y[test]) for name, m, x in
               (("teacher", teacher, x_teacher), ("baseline", baseline, x_student), ("kd", student, x_student))}
        val_acc = {"teacher": teacher_val, "baseline": baseline_val, "kd": kd_val}
        held = rows["val"]  # the predictors' rows: never the test rows, which score the gain
        held_pairing = torch.as_tensor(held_pair, device=dev)
        teacher_rep = _representations(t_logits[held_pairing], t_feats[held_pairing])
        crit, predicted, warned, failed = held_out_estimates(
            teacher_rep, _representations(*predict(baseline, x_student)), labels, held,
            representation=config.cch.representation, k=config.cch.k, pca=config.cch.pca, seed=config.seed,
            predictors=config.predictors, estimator=config.cch.estimator, sensitivity=config.cch.sensitivity)
        if config.predictors:
            with estimate_step("kd_pilot", warned, failed):
                predicted["kd_pilot"] = _kd_pilot(
                    lambda: make(student_x, kinds["student"], config.student_view, config.student_train), x_student,
                    y, parts, config, teacher, (t_logits, t_feats), train_pair, log)
            with estimate_step("apriori_gap", warned, failed):
                raw = [data.view(view).reshape(labels.size, -1) for view in (teacher_view, config.student_view)]
                predicted.update(apriori_gap(*raw, labels,
                                             np.union1d(rows["teacher_train"], rows["student_train"]), held,
                                             seed=config.seed))
    predicted["teacher_acc"] = interval_entry(teacher_val)
    predicted["teacher_minus_student_acc"] = teacher_minus_student_acc(val_acc)
    predicted["random"] = random_predictor(config.seed, config.teacher_view, config.student_view)
    summary = RunSummary(
        dataset=data.name, teacher_view=config.teacher_view, student_view=config.student_view,
        pairing=config.pairing, p=config.kd.p, seed=config.seed, teacher_train=asdict(config.teacher_train),
        student_train=asdict(config.student_train), split=asdict(config.split), budget=config.budget.as_dict(),
        teacher_rows=config.kd.teacher_rows, crossfit_folds=config.kd.crossfit_folds, control=config.kd.control,
        regime=config.regime, n={k: int(rows[k].size) for k in COUNTED_ROWS}, accuracy=acc, val_accuracy=val_acc,
        cch=crit.as_dict() if crit is not None else failed_cch(k=config.cch.k, pca=config.cch.pca, n=int(held.size),
                                                                estimator=config.cch.estimator, error=failed["cch"]),
        cch_representation=config.cch.representation, cch_estimator=config.cch.estimator,
        predictors=ordered(predicted, config.cch.sensitivity),
        data_fingerprint=fingerprint(data.view(config.teacher_view), data.view(config.student_view), labels),
        device=str(dev), torch=torch.__version__, seconds=time.perf_counter() - start, warnings=tuple(warned),
        predictor_errors=failed)
    if out is not None:
        (out / "summary.json").write_text(json.dumps(summary.as_dict(), indent=1) + "\n")
    return summary
