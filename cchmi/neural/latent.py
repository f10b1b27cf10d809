"""Latent MI (after Gowri et al. 2024): compress each variable to a few learned dimensions that keep
what it shares with the other, then estimate MI with cchmi's KSG on held-out embeddings.

For continuous X and Y, encoders e_x, e_y map to ``embed_dim`` dimensions and are trained with
reconstruction of each variable from its own embedding and cross-prediction of the other:
``|x - d_x(z_x)|^2 + |y - d_y(z_y)|^2 + |y - c_y(z_x)|^2 + |x - c_x(z_y)|^2`` (mean squared errors
of standardised data). For labels (``labels=True``), only X is embedded, trained with
reconstruction plus cross-entropy of a classifier on z_x, and I(z_x; labels) is estimated with the
Ross mixed estimator. By data processing the latent MI is at most I(X; Y) (up to the kNN
estimator's error); it is the tool for representations too wide for KSG directly.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cchmi import _validate as V
from cchmi._scaling import standardise
from cchmi._torch import resolve_device
from cchmi.estimators import ksg_mi, mixed_mi
from cchmi.neural.critics import mlp
from cchmi.neural.estimator import check_protocol, repeated, split_rows
from cchmi.neural.training import EarlyStopping, Position, fit
from cchmi.results import MIResult


class _CrossPredictive(nn.Module):
    def __init__(self, dx: int, dy: int, embed_dim: int, hidden: int, layers: int, n_classes: int = 0,
                 reconstruction_weight: float = 1.0, cross_weight: float = 1.0):
        super().__init__()
        self.w_rec, self.w_cross = reconstruction_weight, cross_weight
        self.ex, self.dx_ = mlp(dx, embed_dim, hidden, layers), mlp(embed_dim, dx, hidden, layers)
        if n_classes:
            self.classify = mlp(embed_dim, n_classes, hidden, layers)
        else:
            self.ey, self.dy_ = mlp(dy, embed_dim, hidden, layers), mlp(embed_dim, dy, hidden, layers)
            self.cy, self.cx = mlp(embed_dim, dy, hidden, layers), mlp(embed_dim, dx, hidden, layers)
        self.labels = bool(n_classes)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        zx = self.ex(x)
        if self.labels:
            return self.w_rec * F.mse_loss(self.dx_(zx), x) + self.w_cross * F.cross_entropy(self.classify(zx), y)
        zy = self.ey(y)
        return (self.w_rec * (F.mse_loss(self.dx_(zx), x) + F.mse_loss(self.dy_(zy), y))
                + self.w_cross * (F.mse_loss(self.cy(zx), y) + F.mse_loss(self.cx(zy), x)))


def embed(x: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray, rows: np.ndarray, *, n_classes: int,
          embed_dim: int, hidden: int, layers: int, reconstruction_weight: float, cross_weight: float,
          batch_size: int, epochs: int, lr: float, patience: int, device, seed: int):
    """Train the cross-predictive model on `train` (early stopping on `val`) and embed `rows`:
    (z_x, z_y) as float64 arrays, z_y None for labels (n_classes > 0: y holds label codes).
    Validated input expected; the scaler is fitted on `train`."""
    dev = resolve_device(device)
    if n_classes:
        xs = standardise(x, train)
        Y = torch.as_tensor(y, device=dev)
    else:
        xs, ys = standardise(x, train), standardise(y, train)
        Y = torch.as_tensor(ys, device=dev)
    X = torch.as_tensor(xs, device=dev)
    torch.manual_seed(seed)
    model = _CrossPredictive(X.shape[1], 0 if n_classes else Y.shape[1], embed_dim, hidden, layers, n_classes,
                             reconstruction_weight, cross_weight).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    tr, va = torch.as_tensor(train, device=dev), torch.as_tensor(val, device=dev)

    def step(idx: torch.Tensor, at: Position) -> None:
        sel = tr[idx.to(dev)]
        loss = model.loss(X[sel], Y[sel])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def evaluate(at: Position) -> float:
        model.eval()
        return float(model.loss(X[va], Y[va]))

    stopping = EarlyStopping(model, patience=patience, maximize=False, what="the validation loss")
    size = min(batch_size, train.size)
    fit(model, step, evaluate, stopping, n_rows=train.size, batch_size=size, generator=gen, epochs=epochs,
        min_batch=size)
    model.eval()
    sel = torch.as_tensor(rows, device=dev)
    with torch.no_grad():
        zx = model.ex(X[sel]).double().cpu().numpy()
        zy = None if n_classes else model.ey(Y[sel]).double().cpu().numpy()
    return zx, zy


def latent_mi(
    x,
    y,
    *,
    labels: bool = False,
    embed_dim: int = 8,
    hidden: int = 128,
    layers: int = 2,
    k: int = 3,
    reconstruction_weight: float = 1.0,
    cross_weight: float = 1.0,
    batch_size: int = 128,
    epochs: int = 200,
    lr: float = 1e-3,
    patience: int = 15,
    val_fraction: float = 0.2,
    test_fraction: float = 0.3,
    device=None,
    random_state: int = 0,
    confidence: float | None = 0.95,
    base: float = math.e,
    repeats: int = 1,
    extrapolate: bool = False,
) -> MIResult:
    """I(X; Y) through learned ``embed_dim``-dimensional embeddings, KSG-1 (or Ross for labels=True)
    on the test rows, with its half-sample interval. Early stopping on the validation loss.
    reconstruction_weight and cross_weight weigh the two kinds of loss terms (latentmi's alpha, lam).
    repeats, extrapolate: the neural protocol (:mod:`cchmi.neural.estimator`): ``repeats`` >= 2
    independent splits and initial weights combined by Rubin's rules, ``extrapolate`` the estimate at
    n/2 and n extrapolated in 1/n; a :class:`~cchmi.neural.estimator.RepeatedMIResult` then.
    Default: the single run."""
    xa = V.as_samples(x, "x")
    if labels:
        codes, n_classes = V.as_labels(y, "y", xa.shape[0])
        ya = codes
    else:
        ya, n_classes = V.as_samples(y, "y"), 0
    V.same_length(x=xa, y=ya)
    embed_dim, hidden, layers = V.as_int(embed_dim, "embed_dim", 1), V.as_int(hidden, "hidden", 1), V.as_int(
        layers, "layers", 0)
    epochs, patience = V.as_int(epochs, "epochs", 1), V.as_int(patience, "patience", 1)
    batch_size = V.as_int(batch_size, "batch_size", 2)
    random_state = V.as_int(random_state, "random_state", 0)
    for name, value in (("lr", lr), ("reconstruction_weight", reconstruction_weight), ("cross_weight", cross_weight)):
        V.as_real(value, name, 0, low_open=True)
    repeats = check_protocol(repeats, extrapolate)

    def once(xs: np.ndarray, ys: np.ndarray, seed: int) -> MIResult:
        begin = time.perf_counter()
        m = xs.shape[0]
        train, val, test = split_rows(m, val_fraction, test_fraction, np.random.default_rng(seed))
        if batch_size > train.size:
            raise ValueError(f"batch_size={batch_size} is above the {train.size} training rows (n={m}); lower it")
        V.check_k(k, test.size, "the number of test rows")
        zx, zy = embed(xs, ys, train, val, test, n_classes=n_classes, embed_dim=embed_dim, hidden=hidden,
                       layers=layers, reconstruction_weight=reconstruction_weight, cross_weight=cross_weight,
                       batch_size=batch_size, epochs=epochs, lr=lr, patience=patience, device=device, seed=seed)
        if labels:
            result = mixed_mi(zx, ys[test], k=k, confidence=confidence, base=base, random_state=seed)
        else:
            result = ksg_mi(zx, zy, k=k, confidence=confidence, base=base, random_state=seed)
        return MIResult(**{**result.__dict__, "estimator": f"latent-{result.estimator}",
                           "seconds": time.perf_counter() - begin})

    if repeats == 1 and not extrapolate:
        return once(xa, ya, random_state)
    return repeated(once, xa, ya, repeats=repeats, extrapolate=extrapolate, random_state=random_state,
                    confidence=V.check_confidence(confidence))
