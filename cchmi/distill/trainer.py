"""The reference cross-modal KD trainer: one configuration, end to end.

:func:`run_kd` takes a multi-view dataset, a teacher view and a student view, and

1. splits the samples (stratified) into train / validation / test, optionally with a teacher split
   disjoint from the student's training rows and an unlabelled transfer set;
2. pairs teacher rows with student rows (aligned, within-class shuffled, label-paired);
3. trains the teacher on its view, then freezes it;
4. trains the student without KD (the baseline) and with KD, from the same initial weights and the
   same batch order: loss = ce_weight * CE + kd_weight * T^2 KL(teacher_T || student_T)
   (+ feature_kd_weight * MSE(projector(student features), teacher features));
5. picks every network's epoch by validation accuracy and reports test accuracy;
6. estimates the CCH on held-out rows (validation + test): H1 = the teacher's representation,
   H2 = the baseline student's, with intervals (:func:`cchmi.cch`).

Each epoch of each phase is one line of run.jsonl; summary.json holds the result.
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
from cchmi.cch import cch
from cchmi.data.multiview import MultiView
from cchmi.distill.losses import feature_kd_loss, kd_loss
from cchmi.distill.models import build_model
from cchmi.distill.pairing import PAIRINGS, pairing_index


@dataclass(frozen=True)
class TrainConfig:
    """Networks and optimisation (shared by teacher and students) and the KD loss."""

    model: str = "mlp"  # "mlp", "cnn" (image views only) or "auto" (cnn for image views, else mlp)
    hidden: int = 128
    depth: int = 2
    dropout: float = 0.1
    epochs: int = 60
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 15  # epochs without a better validation accuracy before stopping
    ce_weight: float = 1.0
    kd_weight: float = 1.0
    temperature: float = 4.0
    feature_kd_weight: float = 0.0

    def __post_init__(self):
        for name in ("hidden", "depth", "epochs", "batch_size", "patience"):
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
    """Fractions of all samples: validation and test; teacher (rows only the teacher trains on,
    0: the teacher trains on the student's training rows); unlabelled (training rows whose labels
    the student does not see: they enter the KD term only)."""

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


def split_indices(labels: np.ndarray, split: SplitConfig, rng) -> dict:
    """Stratified disjoint row sets: train (labelled student rows), unlabelled, teacher_only, val, test;
    teacher_train = teacher_only if split.teacher > 0 else train."""
    parts = {name: [] for name in ("val", "test", "teacher_only", "unlabelled", "train")}
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        m, start = members.size, 0
        for name, frac in (("val", split.val), ("test", split.test), ("teacher_only", split.teacher),
                           ("unlabelled", split.unlabelled)):
            take = int(round(frac * m))
            parts[name].append(members[start : start + take])
            start += take
        parts["train"].append(members[start:])
    out = {name: np.sort(np.concatenate(chunks)).astype(np.int64) for name, chunks in parts.items()}
    for name in ("train", "val", "test"):
        if np.unique(labels[out[name]]).size < 2:
            raise ValueError(f"the {name} split has fewer than two classes: the dataset is too small for these fractions")
    out["teacher_train"] = out["teacher_only"] if split.teacher > 0 else out["train"]
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


def train_network(model, x, y, x_val, y_val, cfg: TrainConfig, *, seed: int, log, phase: str,
                  teacher_logits=None, teacher_features=None, x_transfer=None, transfer_logits=None,
                  transfer_features=None, projector=None):
    """Trains `model` (in place, best validation epoch restored). KD terms are on when teacher_logits
    (for the rows x) are given; x_transfer rows (unlabelled) then join each batch for the KD terms only.

    `seed` fixes the batch order and the dropout masks, so two calls with the same seed and initial
    weights differ only through the loss: with kd_weight = 0 the KD student is the baseline.
    Under torchrun (an initialised process group) every process takes its share of each batch and
    DistributedDataParallel averages the gradients; all processes select the same epoch."""
    kd_on = teacher_logits is not None
    rank, world = distributed()
    net = _Student(model, projector)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(net, device_ids=[x.device.index] if x.device.type == "cuda" else None)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    transfer_gen = torch.Generator().manual_seed(seed + 1)  # apart, so the labelled batches match the baseline's
    torch.manual_seed(seed)  # dropout masks: the same for the baseline and the KD student
    n = x.shape[0]
    best, best_state, since = -1.0, None, 0
    for epoch in range(cfg.epochs):
        net.train()
        order = torch.randperm(n, generator=gen)
        t_order = torch.randperm(x_transfer.shape[0], generator=transfer_gen) if x_transfer is not None else None
        sums = {"ce": 0.0, "kd": 0.0, "feature_kd": 0.0}
        steps = 0
        for b, s in enumerate(range(0, n, cfg.batch_size)):
            idx = order[s : s + cfg.batch_size]
            if idx.numel() < world:  # a last batch too small to give every process a row
                continue
            idx = idx[rank::world].to(x.device)
            inputs, n_lab = x[idx], idx.numel()
            if kd_on and x_transfer is not None:
                lo = (b * cfg.batch_size) % x_transfer.shape[0]
                tidx = t_order[lo : lo + cfg.batch_size][rank::world].to(x.device)
                inputs = torch.cat([inputs, x_transfer[tidx]])
            logits, _, projected = net(inputs)
            ce = F.cross_entropy(logits[:n_lab], y[idx])
            loss = cfg.ce_weight * ce if kd_on else ce
            sums["ce"] += float(ce.detach())
            if kd_on:
                t_logits, t_feats = teacher_logits[idx], teacher_features[idx]
                if x_transfer is not None:
                    t_logits = torch.cat([t_logits, transfer_logits[tidx]])
                    t_feats = torch.cat([t_feats, transfer_features[tidx]])
                kd = kd_loss(logits, t_logits, cfg.temperature)
                loss = loss + cfg.kd_weight * kd
                sums["kd"] += float(kd.detach())
                if projected is not None:
                    fkd = feature_kd_loss(projected, t_feats)
                    loss = loss + cfg.feature_kd_weight * fkd
                    sums["feature_kd"] += float(fkd.detach())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
        val_acc = _accuracy(model, x_val, y_val)
        record = {"phase": phase, "epoch": epoch, "val_acc": val_acc}
        record.update({f"loss_{k}": v / max(steps, 1) for k, v in sums.items() if k == "ce" or kd_on})
        log(record)
        if val_acc > best:
            best, best_state, since = val_acc, copy.deepcopy(model.state_dict()), 0
        else:
            since += 1
            if since >= cfg.patience:
                break
    model.load_state_dict(best_state)
    return best


def run_kd(
    data: MultiView,
    teacher_view: str,
    student_view: str,
    *,
    pairing: str = "aligned",
    p: float = 0.0,
    train: TrainConfig | None = None,
    split: SplitConfig | None = None,
    seed: int = 0,
    device=None,
    cch_representation: str = "logits",
    cch_k: int = 3,
    cch_pca: int | None = None,
    out_dir=None,
) -> dict:
    """One teacher -> student KD configuration; returns the summary (also written to out_dir).

    The CCH is estimated on the held-out rows (validation + test) from the teacher's and the
    baseline student's representations: "logits" (default) or "features" (penultimate layer; set
    cch_pca for wide layers).
    """
    start = time.perf_counter()
    train = train or TrainConfig()
    split = split or SplitConfig()
    if pairing not in PAIRINGS:
        raise ValueError(f"pairing must be one of {', '.join(map(repr, PAIRINGS))}; got {pairing!r}")
    V.choice(cch_representation, "cch_representation", ("logits", "features"))
    xt_raw, xs_raw = data.view(teacher_view), data.view(student_view)
    labels = np.asarray(data.labels)
    seed = V.as_int(seed, "seed", 0)
    dev = resolve_device(device)
    rng = np.random.default_rng(seed)
    rows = split_indices(labels, split, rng)
    pair = pairing_index(labels, pairing, p, random_state=rng)
    xt_raw = xt_raw[pair]  # teacher row paired with student row i; same class as i
    kinds = {view: _model_kind(train.model, data, view) for view in (teacher_view, student_view)}
    # MLP inputs are standardised with their training rows' statistics; CNN inputs stay as given.
    xt = standardise(xt_raw, rows["teacher_train"]) if kinds[teacher_view] == "mlp" else xt_raw.astype(np.float32)
    xs = standardise(xs_raw, rows["train"]) if kinds[student_view] == "mlp" else xs_raw.astype(np.float32)

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

        def make(x, view):
            return build_model(kinds[view], x.shape[1], n_classes, hidden=train.hidden, depth=train.depth,
                               dropout=train.dropout, image_shape=data.image_shapes.get(view))

        tr, va, te = (torch.as_tensor(rows[k], device=dev) for k in ("train", "val", "test"))
        tt = torch.as_tensor(rows["teacher_train"], device=dev)

        torch.manual_seed(seed)
        teacher = make(xt, teacher_view).to(dev)
        train_network(teacher, XT[tt], Y[tt], XT[va], Y[va], train, seed=seed, log=log, phase="teacher")
        teacher.requires_grad_(False)
        t_logits, t_feats = predict(teacher, XT)

        torch.manual_seed(seed + 1)
        baseline = make(xs, student_view).to(dev)
        init_state = copy.deepcopy(baseline.state_dict())
        train_network(baseline, XS[tr], Y[tr], XS[va], Y[va], train, seed=seed + 1, log=log, phase="baseline")

        student = make(xs, student_view).to(dev)
        student.load_state_dict(init_state)
        projector = None
        if train.feature_kd_weight > 0:
            torch.manual_seed(seed + 2)
            projector = torch.nn.Linear(student.feature_dim, teacher.feature_dim).to(dev)
        ul = torch.as_tensor(rows["unlabelled"], device=dev)
        transfer = {"x_transfer": XS[ul], "transfer_logits": t_logits[ul], "transfer_features": t_feats[ul]} \
            if ul.numel() else {}
        train_network(student, XS[tr], Y[tr], XS[va], Y[va], train, seed=seed + 1, log=log, phase="kd",
                      teacher_logits=t_logits[tr], teacher_features=t_feats[tr], projector=projector, **transfer)

        acc = {name: _accuracy(m, x[te], Y[te]) for name, m, x in
               (("teacher", teacher, XT), ("baseline", baseline, XS), ("kd", student, XS))}
        held = torch.cat([va, te])
        b_logits, b_feats = predict(baseline, XS[held])
        pick = 0 if cch_representation == "logits" else 1
        h1 = (t_logits, t_feats)[pick][held].float().cpu().numpy()
        h2 = (b_logits, b_feats)[pick].float().cpu().numpy()
        crit = cch(h1, h2, labels[held.cpu().numpy()], k=cch_k, pca=cch_pca, random_state=seed)
    finally:
        if log_file is not None:
            log_file.close()

    summary = {
        "dataset": data.name,
        "teacher_view": teacher_view,
        "student_view": student_view,
        "pairing": pairing,
        "p": p,
        "seed": seed,
        "train": asdict(train),
        "split": asdict(split),
        "n": {k: int(v.size) for k, v in rows.items()},
        "accuracy": acc,
        "gain": acc["kd"] - acc["baseline"],
        "cch": crit.as_dict(),
        "cch_representation": cch_representation,
        "data_fingerprint": fingerprint(data.view(teacher_view), data.view(student_view), labels),
        "device": str(dev),
        "torch": torch.__version__,
        "seconds": time.perf_counter() - start,
    }
    summary["config_hash"] = config_hash(summary)
    if out is not None:
        (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def config_hash(summary: dict) -> str:
    """Hash of what defines a run (dataset, views, pairing, options, seed), not of its results."""
    keys = ("dataset", "teacher_view", "student_view", "pairing", "p", "seed", "train", "split", "cch_representation")
    text = json.dumps({k: summary[k] for k in keys}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
