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
5. keeps every network's best validation evaluation and reports validation and test accuracy;
6. estimates the CCH and the other predictors of the KD gain on held-out rows only (validation +
   test) from the teacher's and the baseline student's representations, with intervals.

Each evaluation of each network is one line of run.jsonl; summary.json holds the result.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cchmi import _validate as V
from cchmi._scaling import standardise
from cchmi._torch import resolve_device
from cchmi.cch import ESTIMATORS as CCH_ESTIMATORS
from cchmi.cch import cch
from cchmi.data.multiview import MultiView
from cchmi.distill.losses import feature_kd_loss, kd_loss
from cchmi.distill.models import build_model
from cchmi.distill.pairing import PAIRINGS, pairing_index, random_pairing
from cchmi.distill.summary import PREDICTORS, config_hash
from cchmi.estimators.label_terms import interval_entry, label_mi_terms

TEACHER_ROWS = ("disjoint", "crossfit", "shared")
CONTROLS = ("label_pairing", "within_class_shuffle", "random_transfer_pairing", "same_modality_teacher",
            "transfer_labels")
PREDICTOR_PCA = 8  # principal components of the penultimate features for cch_gap_features
DEFAULT_CROSSFIT_FOLDS = 5
# pairing= names of the controls that re-pair the student's labelled rows within their class
PAIRING_CONTROLS = {"label": "label_pairing", "shuffled": "within_class_shuffle"}


@dataclass(frozen=True)
class TrainConfig:
    """One network and its optimisation (the teacher's or the students'), and the KD loss (read
    from the students' config).

    Length of training: ``epochs`` passes over the network's labelled rows, or, when ``steps`` is
    set, exactly ``steps`` optimiser steps (epochs is then ignored; the labelled rows are still
    visited in whole shuffled passes). A step takes ``batch_size`` labelled rows (all of them when
    there are fewer) and, for a KD student with a transfer set, ``batch_size`` transfer rows.
    The network is evaluated on the validation rows every ``eval_every`` steps, or once per pass
    over the labelled rows when eval_every is None (and after the last step); training stops
    after ``patience`` evaluations without a better validation accuracy, and the best evaluation's
    weights are kept. With 10 labels per class a pass is one or two steps, so state budgets there
    in steps.
    """

    model: str = "mlp"  # "mlp", "cnn" (image views only) or "auto" (cnn for image views, else mlp)
    hidden: int = 128
    depth: int = 2
    dropout: float = 0.1
    epochs: int = 60
    steps: int | None = None  # optimiser steps; overrides epochs when set
    eval_every: int | None = None  # steps between evaluations; None: one per pass over the labelled rows
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 15  # evaluations without a better validation accuracy before stopping
    ce_weight: float = 1.0
    kd_weight: float = 1.0
    temperature: float = 4.0
    feature_kd_weight: float = 0.0

    def __post_init__(self):
        for name in ("hidden", "depth", "epochs", "batch_size", "patience"):
            V.as_int(getattr(self, name), name, 1)
        for name in ("steps", "eval_every"):
            if getattr(self, name) is not None:
                V.as_int(getattr(self, name), name, 1)
        for name in ("lr", "weight_decay", "ce_weight", "kd_weight", "temperature", "feature_kd_weight", "dropout"):
            value = getattr(self, name)
            V.as_real(value, name, 0)
        if self.temperature <= 0 or self.lr <= 0:
            raise ValueError("temperature and lr must be > 0")
        if self.dropout >= 1:
            raise ValueError(f"dropout must be < 1, got {self.dropout}")
        V.choice(self.model, "model", ("mlp", "cnn", "auto"))

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**values)


@dataclass(frozen=True)
class SplitConfig:
    """Fractions of all samples (per class): validation and test; teacher (rows only the teacher
    trains on); unlabelled (a transfer set: rows whose labels the student does not see; they enter
    the KD term only). The budgets of :func:`run_kd` (rows per class, transfer rows) replace the
    teacher and unlabelled fractions."""

    val: float = 0.2
    test: float = 0.3
    teacher: float = 0.0
    unlabelled: float = 0.0

    def __post_init__(self):
        for name in ("val", "test", "teacher", "unlabelled"):
            value = getattr(self, name)
            V.as_real(value, f"split fraction {name}", 0, 1, high_open=True)
        if self.val <= 0 or self.test <= 0:
            raise ValueError("split fractions val and test must be > 0")
        # No percentage floor (small label budgets are the point of some sweeps); the rows left for
        # training are checked per class when the split is drawn. Compared with a tolerance: .1 +
        # .2 + .3 + .3 is 0.9000000000000001 in floating point.
        total = self.val + self.test + self.teacher + self.unlabelled
        if total > 1 - 1e-9:
            raise ValueError(f"split fractions val + test + teacher + unlabelled sum to {total:.6g}: they must leave "
                             "rows for training (a sum below 1)")


def _budget(value, name: str, low: int) -> int | None:
    return None if value is None else V.as_int(value, name, low)


def _per_class(counts: dict) -> str:
    return "{" + ", ".join(f"{c}: {v}" for c, v in counts.items()) + "}"


def split_indices(labels: np.ndarray, split: SplitConfig, rng, *, teacher_rows: str = "disjoint",
                  student_labels_per_class: int | None = None, teacher_labels_per_class: int | None = None,
                  transfer_size: int | None = None) -> dict:
    """Disjoint row sets (sorted int64 indices): val, test, student_train (the student's labelled
    rows), teacher_only, transfer, unused, and teacher_train (the rows the teacher trains on).

    Per class, in a random order: validation and test rows (fractions), the teacher's own rows
    (``teacher_labels_per_class``, else the fraction split.teacher), the fraction split.unlabelled
    (transfer rows), the student's ``student_labels_per_class`` rows. Then ``transfer_size`` rows
    are drawn at random from the rows left (all classes together: a transfer set is unlabelled).
    The rows still left go to the student when it has no budget; with teacher_rows "disjoint" and
    no teacher rows asked for, they go to the teacher when the student has a budget, else they are
    halved per class (teacher first); otherwise they are unused.
    teacher_train: teacher_only ("disjoint"), teacher_only + student_train ("crossfit") or
    student_train ("shared"). A budget larger than the rows a class has left is refused, naming
    the budget and the rows available per class.
    """
    V.choice(teacher_rows, "teacher_rows", TEACHER_ROWS)
    s_budget = _budget(student_labels_per_class, "student_labels_per_class", 1)
    t_budget = _budget(teacher_labels_per_class, "teacher_labels_per_class", 1)
    x_budget = _budget(transfer_size, "transfer_size", 0)
    if t_budget is not None and split.teacher > 0:
        raise ValueError("give teacher_labels_per_class or the split fraction teacher, not both")
    if x_budget is not None and split.unlabelled > 0:
        raise ValueError("give transfer_size or the split fraction unlabelled, not both")
    teacher_fixed = t_budget is not None or split.teacher > 0
    if teacher_rows == "shared" and teacher_fixed:
        raise ValueError("teacher_rows='shared' trains the teacher on the student's labelled rows: leave "
                         "teacher_labels_per_class and the split fraction teacher unset")
    labels = np.asarray(labels)
    parts = {name: [] for name in ("val", "test", "teacher_only", "transfer", "student_train", "unused")}
    order, available, sizes = {}, {}, {}
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        start = 0
        for name, frac in (("val", split.val), ("test", split.test)):
            take = int(round(frac * members.size))
            parts[name].append(members[start : start + take])
            start += take
        order[c], available[c], sizes[c] = members[start:], members.size - start, members.size
    left = {}
    for c, members in order.items():
        takes = (("teacher_only", t_budget if t_budget is not None else int(round(split.teacher * sizes[c]))),
                 ("transfer", int(round(split.unlabelled * sizes[c]))), ("student_train", s_budget or 0))
        if sum(t for _, t in takes) > members.size:
            asked = " and ".join(f"{name}={value}" for name, value in (
                ("teacher_labels_per_class", t_budget), ("student_labels_per_class", s_budget)) if value is not None)
            raise ValueError(f"{asked or 'the split fractions'} ask for {sum(t for _, t in takes)} rows of class {c}, "
                             f"which has {members.size} left after the validation and test rows; rows available per "
                             f"class: {_per_class(available)}")
        start = 0
        for name, take in takes:
            parts[name].append(members[start : start + take])
            start += take
        left[c] = members[start:]
    if x_budget:
        pool = np.concatenate(list(left.values()))
        if x_budget > pool.size:
            counts = {c: int(v.size) for c, v in left.items()}
            raise ValueError(f"transfer_size={x_budget} is more than the {pool.size} rows left after the validation, "
                             f"test, teacher and student rows (per class: {_per_class(counts)})")
        drawn = np.zeros(labels.size, dtype=bool)
        drawn[rng.choice(pool, size=x_budget, replace=False)] = True
        parts["transfer"].append(np.flatnonzero(drawn))
        left = {c: rest[~drawn[rest]] for c, rest in left.items()}
    for rest in left.values():
        if s_budget is None:
            half = rest.size // 2 if teacher_rows == "disjoint" and not teacher_fixed else 0
            parts["teacher_only"].append(rest[:half])
            parts["student_train"].append(rest[half:])
        elif teacher_rows == "disjoint" and not teacher_fixed:
            parts["teacher_only"].append(rest)
        else:
            parts["unused"].append(rest)
    out = {name: np.sort(np.concatenate(chunks or [np.empty(0, np.int64)])).astype(np.int64)
           for name, chunks in parts.items()}
    out["teacher_train"] = {"disjoint": out["teacher_only"], "shared": out["student_train"],
                            "crossfit": np.union1d(out["teacher_only"], out["student_train"])}[teacher_rows]
    for name in ("student_train", "teacher_train", "val", "test"):
        if np.unique(labels[out[name]]).size < 2:
            raise ValueError(f"the {name} rows have fewer than two classes: the dataset is too small for these "
                             "fractions and budgets")
    return out


def crossfit_assignment(labels: np.ndarray, rows: np.ndarray, folds: int, rng) -> np.ndarray:
    """The fold (0 .. folds - 1) of each of `rows`, stratified: each class's rows, in a random order,
    are dealt round the folds from where the previous class stopped (fold sizes differ by at most 1)."""
    labels, rows = np.asarray(labels), np.asarray(rows)
    folds = V.as_int(folds, "crossfit_folds", 2, max(2, rows.size), " (at most the student's labelled rows)")
    out = np.empty(rows.size, dtype=np.int64)
    start = 0
    for c in np.unique(labels[rows]):
        pos = rng.permutation(np.flatnonzero(labels[rows] == c))
        out[pos] = (start + np.arange(pos.size)) % folds
        start = (start + pos.size) % folds
    return out


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


@torch.no_grad()
def predict(model, x: torch.Tensor, batch: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, features) of a network in eval mode."""
    model.eval()
    outs = [model(x[s : s + batch]) for s in range(0, x.shape[0], batch)]
    return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])


def _accuracy(model, x: torch.Tensor, y: torch.Tensor) -> float:
    logits, _ = predict(model, x)
    return float((logits.argmax(dim=1) == y).float().mean())


def distributed() -> tuple[int, int]:
    """(rank, world size) under torchrun with an initialised process group, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _Student(torch.nn.Module):
    """The network and, for feature KD, its projector, as one module (one forward pass, one DDP wrapper)."""

    def __init__(self, model, projector=None):
        super().__init__()
        self.model, self.projector = model, projector

    def forward(self, x):
        logits, feats = self.model(x)
        return logits, feats, (self.projector(feats) if self.projector is not None else None)


def train_network(model, x, y, rows, val_rows, cfg: TrainConfig, *, seed: int, log, phase: str,
                  targets=None, transfer_rows=None, transfer_ce: bool = False, projector=None) -> float:
    """Trains `model` on the rows `rows` of (x, y) (in place, the best evaluation's weights
    restored); returns its best validation accuracy (on `val_rows`). Length, evaluation and early
    stopping as documented in :class:`TrainConfig`.

    targets: (logits, features) of the teacher for every row of x (row i: the KD target of
    student row i), or None (no KD). transfer_rows: rows without labels; with targets, a batch of
    them joins each step for the KD terms; with transfer_ce (and no targets) they enter the
    cross-entropy with their true labels (the transfer_labels control).

    `seed` fixes the batch order and the dropout masks, so two calls with the same seed and initial
    weights differ only through the loss: with kd_weight = 0 and no transfer rows the KD student is
    the baseline. Under torchrun (an initialised process group) every process takes its share of
    each batch and DistributedDataParallel averages the gradients; all processes take the same
    steps and keep the same evaluation."""
    kd_on = targets is not None
    if kd_on and transfer_ce:
        raise ValueError("transfer rows enter either the KD terms (targets) or the cross-entropy (transfer_ce)")
    rank, world = distributed()
    n, bs = int(rows.numel()), cfg.batch_size
    if world > 1 and min(n, bs) < world:
        raise ValueError(f"{phase}: {world} processes need batches of at least {world} rows; there are {n} "
                         f"training rows and batch_size is {bs}")
    use_transfer = transfer_rows is not None and transfer_rows.numel() > 0 and (kd_on or transfer_ce)
    n_t = int(transfer_rows.numel()) if use_transfer else 0
    bt = min(bs, n_t)
    net = _Student(model, projector)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(net, device_ids=[x.device.index] if x.device.type == "cuda" else None)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    transfer_gen = torch.Generator().manual_seed(seed + 1)  # apart, so the labelled batches match the baseline's
    torch.manual_seed(seed)  # dropout masks: the same for the baseline and the KD student
    x_val, y_val = x[val_rows], y[val_rows]
    state = {"best": -1.0, "weights": None, "since": 0, "step": 0, "last_eval": -1, "epoch": 0,
             "sums": dict.fromkeys(("ce", "kd", "feature_kd"), 0.0), "steps_since": 0}

    def evaluate() -> bool:
        """Evaluate, log, keep the best weights; True when patience has run out."""
        val_acc = _accuracy(model, x_val, y_val)
        record = {"phase": phase, "epoch": state["epoch"], "step": state["step"], "val_acc": val_acc}
        record.update({f"loss_{k}": float(v) / max(state["steps_since"], 1) for k, v in state["sums"].items()
                       if k == "ce" or kd_on})
        log(record)
        state.update(sums=dict.fromkeys(state["sums"], 0.0), steps_since=0, last_eval=state["step"])
        if val_acc > state["best"]:
            state.update(best=val_acc, weights=copy.deepcopy(model.state_dict()), since=0)
            return False
        state["since"] += 1
        return state["since"] >= cfg.patience

    t_order, t_pos = None, n_t
    done = False
    while not done and (cfg.steps is not None or state["epoch"] < cfg.epochs):
        net.train()
        order = torch.randperm(n, generator=gen)
        for s in range(0, n, bs):
            idx = order[s : s + bs]
            if idx.numel() < world:  # a last batch too small to give every process a row
                continue
            lab = rows[idx[rank::world].to(rows.device)]
            batch, n_lab = lab, lab.numel()
            if use_transfer:
                if t_pos + bt > n_t:  # a new pass over the transfer set
                    t_order, t_pos = torch.randperm(n_t, generator=transfer_gen), 0
                batch = torch.cat([lab, transfer_rows[t_order[t_pos : t_pos + bt][rank::world].to(rows.device)]])
                t_pos += bt
            logits, _, projected = net(x[batch])
            ce = F.cross_entropy(logits, y[batch]) if transfer_ce else F.cross_entropy(logits[:n_lab], y[lab])
            loss = cfg.ce_weight * ce if kd_on else ce
            state["sums"]["ce"] += ce.detach()  # summed as tensors: no device sync per step
            if kd_on:
                kd = kd_loss(logits, targets[0][batch], cfg.temperature)
                loss = loss + cfg.kd_weight * kd
                state["sums"]["kd"] += kd.detach()
                if projected is not None:
                    fkd = feature_kd_loss(projected, targets[1][batch])
                    loss = loss + cfg.feature_kd_weight * fkd
                    state["sums"]["feature_kd"] += fkd.detach()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            state["step"] += 1
            state["steps_since"] += 1
            if cfg.eval_every is not None and state["step"] % cfg.eval_every == 0 and evaluate():
                done = True
                break
            if cfg.steps is not None and state["step"] >= cfg.steps:
                done = True
                break
        if not done and cfg.eval_every is None:
            done = evaluate()
        if not done:
            state["epoch"] += 1
    if state["last_eval"] != state["step"]:  # stopped by the step budget between two evaluations
        evaluate()
    model.load_state_dict(state["weights"])
    return state["best"]


def teacher_outputs(make, x, y, rows: dict, val_rows, cfg: TrainConfig, *, folds, seed: int, log):
    """Train the teacher on rows["teacher_train"] and score every row of x with a model that did
    not train on it where possible.

    folds: None, or a list of row arrays (crossfit): fold f's rows are scored by a model trained on
    the teacher's rows less fold f (all with the teacher's initial weights and seed); every other
    row is scored by the full teacher. Returns (teacher, logits, features, source, val_acc):
    source[i] is the fold of the model that scored row i, -1 for the full teacher."""
    torch.manual_seed(seed)
    teacher = make()
    tt = torch.as_tensor(rows["teacher_train"], device=x.device)
    val_acc = train_network(teacher, x, y, tt, val_rows, cfg, seed=seed, log=log, phase="teacher")
    teacher.requires_grad_(False)
    logits, feats = predict(teacher, x)
    source = np.full(x.shape[0], -1, dtype=np.int64)
    for f, fold in enumerate(folds or ()):
        keep = torch.as_tensor(np.setdiff1d(rows["teacher_train"], fold), device=x.device)
        torch.manual_seed(seed)
        model = make()
        train_network(model, x, y, keep, val_rows, cfg, seed=seed, log=log, phase=f"teacher_fold{f}")
        fold_t = torch.as_tensor(fold, device=x.device)
        logits[fold_t], feats[fold_t] = predict(model, x[fold_t])
        source[fold] = f
    return teacher, logits, feats, source, val_acc


def _kd_share(n_labelled: int, n_transfer: int, batch_size: int) -> float:
    """The share of the KD targets of a full step that come from labelled rows."""
    b_lab, b_tr = min(batch_size, n_labelled), min(batch_size, n_transfer)
    return b_lab / (b_lab + b_tr)


def pairings(labels: np.ndarray, rows: dict, control: str | None, p: float, batch_size: int, rng):
    """(train_pair, held_pair): the teacher row whose score is paired with each student row in
    training, and on the held-out rows for the predictors.

    label_pairing / within_class_shuffle (with probability p) re-pair the student's labelled rows
    within their class, among themselves; random_transfer_pairing re-pairs the transfer rows at
    random, across classes. Transfer rows are never re-paired by class, labelled rows never at
    random. The held-out rows get the same kind of re-pairing with probability q, the share of the
    KD targets of a training step that come from re-paired rows (labelled rows: b_l / (b_l + b_t)
    times p, b the rows of each kind in a step; transfer rows: b_t / (b_l + b_t)), so that the
    predictors see the mixture of pairs the KD loss averages over."""
    n = labels.size
    identity = np.arange(n)
    held = np.concatenate([rows["val"], rows["test"]])
    share = _kd_share(rows["student_train"].size, rows["transfer"].size, batch_size)
    if control in ("label_pairing", "within_class_shuffle"):
        p_rows = 1.0 if control == "label_pairing" else p
        mode = "label" if control == "label_pairing" else "shuffled"
        train_pair = pairing_index(labels, mode, p_rows, random_state=rng, rows=rows["student_train"])
        held_pair = pairing_index(labels, "shuffled", p_rows * share, random_state=rng, rows=held)
        return train_pair, held_pair
    if control == "random_transfer_pairing":
        train_pair = random_pairing(n, rows["transfer"], random_state=rng)
        return train_pair, random_pairing(n, held, 1.0 - share, random_state=rng)
    return identity, identity


def held_out_estimates(teacher: dict, baseline: dict, labels, rows, *, representation: str, k: int,
                       pca: int | None, seed: int, predictors: bool, estimator: str = "auto"):
    """The CCH of `representation` and (predictors=True) the MI predictors, from the rows `rows`
    only. teacher and baseline map "logits" and "features" to arrays with a row per sample (the
    teacher's already paired with the student's rows); `estimator`: :func:`cchmi.cch`'s, for the
    CCH and the two gap predictors. Returns (CCHResult, {name: interval dict})."""
    y = np.asarray(labels)[rows]

    def gap(rep, pca_dim):
        return cch(teacher[rep][rows], baseline[rep][rows], y, k=k, pca=pca_dim, random_state=seed,
                   estimator=estimator)

    crit = gap(representation, pca)
    out = {}
    if predictors:
        for name, rep, dim in (("cch_gap_logits", "logits", None), ("cch_gap_features", "features", PREDICTOR_PCA)):
            r = crit if (rep, dim) == (representation, pca) else gap(rep, dim)
            out[name] = interval_entry(r.gap, r.gap_ci_low, r.gap_ci_high)
        out.update(label_mi_terms(teacher["logits"][rows], baseline["logits"][rows], y, k=k, random_state=seed))
    return crit, out


def _check_options(pairing, p, control, teacher_rows, crossfit_folds, train, teacher_train, student_train):
    """(control, summary pairing, p, crossfit folds, teacher config, student config), or an error."""
    if pairing not in PAIRINGS:
        raise ValueError(f"pairing must be one of {', '.join(map(repr, PAIRINGS))}; got {pairing!r}")
    if control is not None:
        V.choice(control, "control", CONTROLS)
        if pairing != "aligned":
            raise ValueError(f"give pairing={pairing!r} or control={control!r}, not both (pairing 'label' is "
                             "control 'label_pairing', 'shuffled' is 'within_class_shuffle')")
    control = control or PAIRING_CONTROLS.get(pairing)
    p = V.as_real(p, "pairing probability p", 0, 1)
    if p != 0 and control != "within_class_shuffle":
        raise ValueError(f"p (here {p:g}) is the re-pairing probability of pairing='shuffled' / "
                         "control='within_class_shuffle' only")
    pairing = {"label_pairing": "label", "within_class_shuffle": "shuffled"}.get(control, "aligned")
    V.choice(teacher_rows, "teacher_rows", TEACHER_ROWS)
    if teacher_rows == "crossfit":
        crossfit_folds = V.as_int(DEFAULT_CROSSFIT_FOLDS if crossfit_folds is None else crossfit_folds,
                                  "crossfit_folds", 2)
    elif crossfit_folds is not None:
        raise ValueError(f"crossfit_folds applies to teacher_rows='crossfit' only (teacher_rows={teacher_rows!r})")
    if train is not None and (teacher_train is not None or student_train is not None):
        raise ValueError("give train (the same config for teacher and students) or teacher_train/student_train, "
                         "not both")
    configs = []
    for name, cfg in (("teacher_train", teacher_train if train is None else train),
                      ("student_train", student_train if train is None else train)):
        cfg = TrainConfig() if cfg is None else cfg
        if not isinstance(cfg, TrainConfig):
            raise TypeError(f"{name} must be a TrainConfig, got {type(cfg).__name__}")
        configs.append(cfg)
    if teacher_rows == "crossfit" and configs[1].feature_kd_weight > 0:
        raise ValueError("feature KD needs one teacher feature space; teacher_rows='crossfit' scores rows with "
                         "several fold models: use teacher_rows='disjoint' or feature_kd_weight=0")
    return control, pairing, p, crossfit_folds, configs[0], configs[1]


def run_kd(
    data: MultiView,
    teacher_view: str,
    student_view: str,
    *,
    pairing: str = "aligned",
    p: float = 0.0,
    control: str | None = None,
    train: TrainConfig | None = None,
    teacher_train: TrainConfig | None = None,
    student_train: TrainConfig | None = None,
    split: SplitConfig | None = None,
    student_labels_per_class: int | None = None,
    teacher_labels_per_class: int | None = None,
    transfer_size: int | None = None,
    teacher_rows: str = "disjoint",
    crossfit_folds: int | None = None,
    seed: int = 0,
    device=None,
    cch_representation: str = "logits",
    cch_k: int = 3,
    cch_pca: int | None = None,
    cch_estimator: str = "auto",
    predictors: bool = True,
    out_dir=None,
) -> dict:
    """One teacher -> student KD configuration; returns the summary (also written to out_dir).

    Rows (:func:`split_indices`): validation and test are fractions of the data (``split``); the
    student's labelled rows, the teacher's rows and the transfer set are fractions too, or exact
    budgets: ``student_labels_per_class``, ``teacher_labels_per_class`` (rows per class) and
    ``transfer_size`` (paired rows without student labels, scored by the teacher, any class).

    teacher_rows: where the KD targets come from, so that they are out of sample:
    "disjoint" (default): the teacher trains on rows disjoint from the student's labelled rows and
    from the transfer set (teacher_labels_per_class or split.teacher of them; else see
    :func:`split_indices`); "crossfit": the teacher trains on its own rows (if any) and the
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

    Estimates on the held-out rows (validation + test) only, each held-out student row paired with
    a teacher row as the KD rows are (:func:`pairings`): the CCH of ``cch_representation``
    ("logits", or "features" with cch_pca for wide layers) by ``cch_estimator`` (:func:`cchmi.cch`'s
    ``estimator``; "auto", the default, is KSG below 1024 held-out rows and the bias-extrapolated
    KSG from there, see its rule table) and, with predictors=True, the
    predictors (nats, 95% intervals): cch_gap_logits and cch_gap_features (I(T;S) - I(S;Y) on
    logits, on penultimate features reduced to 8 principal components), label_mi_gap (I(T;Y) -
    I(S;Y)) and conditional_mi (I(T;Y|S)), see :func:`label_mi_terms`; teacher_minus_student_acc
    (test accuracy, teacher minus baseline student) is always reported.

    The summary: dataset, teacher_view, student_view, pairing ("aligned", "label", "shuffled": how
    the labelled rows are paired), p, seed, teacher_train and student_train (the configs; train =
    student_train), split, budget (the three budgets, null when not given), teacher_rows,
    crossfit_folds (null unless crossfit), control, n (rows per part: student_train, teacher_train,
    transfer, val, test, teacher_only, unused), accuracy and val_accuracy (teacher, baseline, kd; test
    and validation, fractions), gain (kd - baseline test accuracy), cch (:class:`CCHResult` as a
    dict), cch_representation, cch_estimator (as asked; the one each term used is in cch), predictors ({name: {value, ci_low, ci_high}}; only
    teacher_minus_student_acc when predictors=False), data_fingerprint, device, torch, seconds,
    config_hash (:func:`config_hash`).
    """
    start = time.perf_counter()
    control, pairing, p, folds_k, t_cfg, s_cfg = _check_options(pairing, p, control, teacher_rows, crossfit_folds,
                                                                train, teacher_train, student_train)
    split = split or SplitConfig()
    if not isinstance(split, SplitConfig):
        raise TypeError(f"split must be a SplitConfig, got {type(split).__name__}")
    V.choice(cch_representation, "cch_representation", ("logits", "features"))
    V.choice(cch_estimator, "cch_estimator", CCH_ESTIMATORS)
    if not isinstance(predictors, bool):
        raise TypeError(f"predictors must be True or False, got {predictors!r}")
    xt_raw, xs_raw = data.view(teacher_view), data.view(student_view)
    t_source = teacher_view
    if control == "same_modality_teacher":
        xt_raw, t_source = xs_raw, student_view
    labels = np.asarray(data.labels)
    seed = V.as_int(seed, "seed", 0)
    dev = resolve_device(device)
    rng = np.random.default_rng(seed)
    rows = split_indices(labels, split, rng, teacher_rows=teacher_rows,
                         student_labels_per_class=student_labels_per_class,
                         teacher_labels_per_class=teacher_labels_per_class, transfer_size=transfer_size)
    if control in ("random_transfer_pairing", "transfer_labels") and rows["transfer"].size == 0:
        raise ValueError(f"control {control!r} needs a transfer set: set transfer_size or the split fraction "
                         "unlabelled")
    folds = None
    if teacher_rows == "crossfit":
        if folds_k > rows["student_train"].size:
            raise ValueError(f"crossfit_folds={folds_k} is more than the student's {rows['student_train'].size} "
                             "labelled rows")
        assign = crossfit_assignment(labels, rows["student_train"], folds_k, rng)
        folds = [rows["student_train"][assign == f] for f in range(folds_k)]
    train_pair, held_pair = pairings(labels, rows, control, p, s_cfg.batch_size, rng)
    kinds = {"teacher": _model_kind(t_cfg.model, data, t_source),
             "student": _model_kind(s_cfg.model, data, student_view)}
    # MLP inputs are standardised with the statistics of the rows their network trains on (the
    # student's: its labelled and transfer rows, whose features it sees); CNN inputs stay as given.
    student_fit = np.union1d(rows["student_train"], rows["transfer"])
    xt = standardise(xt_raw, rows["teacher_train"]) if kinds["teacher"] == "mlp" else xt_raw.astype(np.float32)
    xs = standardise(xs_raw, student_fit) if kinds["student"] == "mlp" else xs_raw.astype(np.float32)

    out = Path(out_dir) if out_dir is not None and distributed()[0] == 0 else None  # one writer under torchrun
    log_file = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        log_file = open(out / "run.jsonl", "w")

    def log(record):
        if log_file is not None:
            log_file.write(json.dumps(record) + "\n")

    try:
        XT, XS, Y = (torch.as_tensor(a, device=dev) for a in (xt, xs, labels))
        n_classes = int(labels.max()) + 1

        def make(x, kind, view, cfg):
            return build_model(kind, x.shape[1], n_classes, hidden=cfg.hidden, depth=cfg.depth,
                               dropout=cfg.dropout, image_shape=data.image_shapes.get(view)).to(dev)

        tr, va, te, ul = (torch.as_tensor(rows[k], device=dev) for k in ("student_train", "val", "test", "transfer"))
        teacher, t_logits, t_feats, _, t_val = teacher_outputs(
            lambda: make(xt, kinds["teacher"], t_source, t_cfg), XT, Y, rows, va, t_cfg, folds=folds, seed=seed,
            log=log)

        torch.manual_seed(seed + 1)
        baseline = make(xs, kinds["student"], student_view, s_cfg)
        init_state = copy.deepcopy(baseline.state_dict())
        b_val = train_network(baseline, XS, Y, tr, va, s_cfg, seed=seed + 1, log=log, phase="baseline")

        student = make(xs, kinds["student"], student_view, s_cfg)
        student.load_state_dict(init_state)
        if control == "transfer_labels":
            kd = {"transfer_rows": ul, "transfer_ce": True}
        else:
            pair = torch.as_tensor(train_pair, device=dev)
            projector = None
            if s_cfg.feature_kd_weight > 0:
                torch.manual_seed(seed + 2)
                projector = torch.nn.Linear(student.feature_dim, teacher.feature_dim).to(dev)
            kd = {"targets": (t_logits[pair], t_feats[pair]), "transfer_rows": ul, "projector": projector}
        k_val = train_network(student, XS, Y, tr, va, s_cfg, seed=seed + 1, log=log, phase="kd", **kd)

        acc = {name: _accuracy(m, x[te], Y[te]) for name, m, x in
               (("teacher", teacher, XT), ("baseline", baseline, XS), ("kd", student, XS))}
        val_acc = {"teacher": t_val, "baseline": b_val, "kd": k_val}
        held = np.concatenate([rows["val"], rows["test"]])
        b_logits, b_feats = predict(baseline, XS)
        hp = torch.as_tensor(held_pair, device=dev)
        teacher_rep = {"logits": t_logits[hp].float().cpu().numpy(), "features": t_feats[hp].float().cpu().numpy()}
        baseline_rep = {"logits": b_logits.float().cpu().numpy(), "features": b_feats.float().cpu().numpy()}
        crit, predicted = held_out_estimates(teacher_rep, baseline_rep, labels, held,
                                             representation=cch_representation, k=cch_k, pca=cch_pca, seed=seed,
                                             predictors=predictors, estimator=cch_estimator)
    finally:
        if log_file is not None:
            log_file.close()
    predicted["teacher_minus_student_acc"] = interval_entry(acc["teacher"] - acc["baseline"])

    summary = {
        "dataset": data.name,
        "teacher_view": teacher_view,
        "student_view": student_view,
        "pairing": pairing,
        "p": p,
        "seed": seed,
        "train": asdict(s_cfg),
        "teacher_train": asdict(t_cfg),
        "student_train": asdict(s_cfg),
        "split": asdict(split),
        "budget": {"student_labels_per_class": student_labels_per_class,
                   "teacher_labels_per_class": teacher_labels_per_class, "transfer_size": transfer_size},
        "teacher_rows": teacher_rows,
        "crossfit_folds": folds_k,
        "control": control,
        "n": {k: int(rows[k].size) for k in ("student_train", "teacher_train", "transfer", "val", "test",
                                             "teacher_only", "unused")},
        "accuracy": acc,
        "val_accuracy": val_acc,
        "gain": acc["kd"] - acc["baseline"],
        "cch": crit.as_dict(),
        "cch_representation": cch_representation,
        "cch_estimator": cch_estimator,
        "predictors": {name: predicted[name] for name in PREDICTORS if name in predicted},
        "data_fingerprint": fingerprint(data.view(teacher_view), data.view(student_view), labels),
        "device": str(dev),
        "torch": torch.__version__,
        "seconds": time.perf_counter() - start,
    }
    summary["config_hash"] = config_hash(summary)
    if out is not None:
        (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary
