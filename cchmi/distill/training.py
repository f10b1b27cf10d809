"""Training the KD trainer's networks: :func:`train_network`'s steps on the one loop of the learned
estimators (:func:`cchmi.neural.training.fit`, early stopping on validation accuracy), the teacher
and its out-of-sample scores (:func:`teacher_outputs`), predictions, and the process group a run
trains in under torchrun.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from cchmi.distill.config import TrainConfig
from cchmi.distill.losses import feature_kd_loss, kd_loss
from cchmi.neural.training import EarlyStopping, Position, fit

__all__ = ["train_network", "teacher_outputs", "predict", "accuracy", "process_group_rank_world"]


@torch.no_grad()
def predict(model, x: torch.Tensor, batch: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, features) of a network in eval mode."""
    model.eval()
    outs = [model(x[s : s + batch]) for s in range(0, x.shape[0], batch)]
    return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])


def accuracy(model, x: torch.Tensor, y: torch.Tensor) -> float:
    """The fraction of rows of x whose predicted class (eval mode) is y's."""
    logits, _ = predict(model, x)
    return float((logits.argmax(dim=1) == y).float().mean())


def process_group_rank_world() -> tuple[int, int]:
    """(rank, world size) of this process under torchrun with an initialised process group, else
    (0, 1). (Not :mod:`cchmi.distributed`, the sharded kNN path.)"""
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


class _LossLog:
    """The loss sums of one network since its last evaluation, logged with each evaluation's
    validation accuracy (one record per evaluation: phase, epoch, step, val_acc, loss_<term>)."""

    def __init__(self, model, x_val, y_val, phase: str, log, kd_on: bool):
        self.model, self.x_val, self.y_val, self.phase, self.log, self.kd_on = model, x_val, y_val, phase, log, kd_on
        self.steps_since = 0
        self.sums = dict.fromkeys(("ce", "kd", "feature_kd"), 0.0)

    def evaluate(self, at: Position) -> float:
        """The validation accuracy, logged with the mean losses since the last evaluation."""
        val_acc = accuracy(self.model, self.x_val, self.y_val)
        record = {"phase": self.phase, "epoch": at.epoch, "step": at.step, "val_acc": val_acc}
        record.update({f"loss_{k}": float(v) / max(self.steps_since, 1) for k, v in self.sums.items()
                       if k == "ce" or self.kd_on})
        self.log(record)
        self.sums, self.steps_since = dict.fromkeys(self.sums, 0.0), 0
        return val_acc


def _step_loss(net, x, y, labelled, batch, cfg: TrainConfig, sums: dict, *, targets, transfer_ce: bool):
    """The loss of one step on the rows `batch` (the `labelled` rows first, then transfer rows):
    cross-entropy on the labelled rows (on every row with transfer_ce), plus with `targets` the KD
    terms on every row; the terms are added to `sums` (as tensors: no device sync per step)."""
    logits, _, projected = net(x[batch])
    n_labelled = labelled.numel()
    ce = F.cross_entropy(logits, y[batch]) if transfer_ce else F.cross_entropy(logits[:n_labelled], y[labelled])
    kd_on = targets is not None
    loss = cfg.ce_weight * ce if kd_on else ce
    sums["ce"] += ce.detach()
    if kd_on:
        kd = kd_loss(logits, targets[0][batch], cfg.temperature)
        loss = loss + cfg.kd_weight * kd
        sums["kd"] += kd.detach()
        if projected is not None:
            fkd = feature_kd_loss(projected, targets[1][batch])
            loss = loss + cfg.feature_kd_weight * fkd
            sums["feature_kd"] += fkd.detach()
    return loss


def _network(model, projector, x, world: int):
    """The module that trains: network and projector, wrapped in DistributedDataParallel under torchrun."""
    net = _Student(model, projector)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(net, device_ids=[x.device.index] if x.device.type == "cuda" else None)
    return net


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
    rank, world = process_group_rank_world()
    n, bs = int(rows.numel()), cfg.batch_size
    if world > 1 and min(n, bs) < world:
        raise ValueError(f"{phase}: {world} processes need batches of at least {world} rows; there are {n} "
                         f"training rows and batch_size is {bs}")
    use_transfer = transfer_rows is not None and transfer_rows.numel() > 0 and (kd_on or transfer_ce)
    n_t = int(transfer_rows.numel()) if use_transfer else 0
    bt = min(bs, n_t)
    net = _network(model, projector, x, world)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    transfer_gen = torch.Generator().manual_seed(seed + 1)  # apart, so the labelled batches match the baseline's
    torch.manual_seed(seed)  # dropout masks: the same for the baseline and the KD student
    losses = _LossLog(model, x[val_rows], y[val_rows], phase, log, kd_on)
    transfer = {"order": None, "pos": n_t}

    def step(idx: torch.Tensor, at: Position) -> None:
        labelled = rows[idx[rank::world].to(rows.device)]
        batch = labelled
        if use_transfer:
            if transfer["pos"] + bt > n_t:  # a new pass over the transfer set
                transfer.update(order=torch.randperm(n_t, generator=transfer_gen), pos=0)
            take = transfer["order"][transfer["pos"] : transfer["pos"] + bt]
            batch = torch.cat([labelled, transfer_rows[take[rank::world].to(rows.device)]])
            transfer["pos"] += bt
        loss = _step_loss(net, x, y, labelled, batch, cfg, losses.sums, targets=targets, transfer_ce=transfer_ce)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.steps_since += 1

    stopping = EarlyStopping(model, patience=cfg.patience, maximize=True, what="the validation accuracy")
    fit(net, step, losses.evaluate, stopping, n_rows=n, batch_size=bs, generator=gen,
        epochs=cfg.epochs if cfg.steps is None else None, steps=cfg.steps, eval_every=cfg.eval_every,
        min_batch=world)  # a last batch too small to give every process a row is skipped
    return stopping.best


def teacher_outputs(make, x, y, rows: dict, val_rows, cfg: TrainConfig, *, folds, seed: int, log):
    """Train the teacher on rows["teacher_train"] and score every row of x with a model that did
    not train on it where possible.

    folds: None, or a list of row arrays (crossfit): fold f's rows are scored by a model trained on
    the teacher's rows less fold f (all with the teacher's initial weights and seed); every other
    row is scored by the full teacher. Returns (teacher, logits, features, source, val_acc):
    source[i] is the fold of the model that scored row i, -1 for the full teacher."""
    torch.manual_seed(seed)
    teacher = make()
    teacher_rows = torch.as_tensor(rows["teacher_train"], device=x.device)
    val_acc = train_network(teacher, x, y, teacher_rows, val_rows, cfg, seed=seed, log=log, phase="teacher")
    teacher.requires_grad_(False)
    logits, feats = predict(teacher, x)
    source = np.full(x.shape[0], -1, dtype=np.int64)
    for f, fold in enumerate(folds or ()):
        keep = torch.as_tensor(np.setdiff1d(rows["teacher_train"], fold), device=x.device)
        torch.manual_seed(seed)
        model = make()
        train_network(model, x, y, keep, val_rows, cfg, seed=seed, log=log, phase=f"teacher_fold{f}")
        fold_rows = torch.as_tensor(fold, device=x.device)
        logits[fold_rows], feats[fold_rows] = predict(model, x[fold_rows])
        source[fold] = f
    return teacher, logits, feats, source, val_acc
