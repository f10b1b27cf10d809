"""I(X; labels) as a variational lower bound: H(Y) minus the held-out cross-entropy of a probe.

For any classifier q(y | x), E[log q(Y | X)] - E[log p(Y)] = I(X; Y) - E_x KL(p(. | x) || q(. | x))
<= I(X; Y): the bound of Barber and Agakov (2003), tight when q is the true posterior.
:func:`probe_terms` trains q on a fit split (softmax regression to the optimum of its convex loss, or
a one-hidden-layer MLP with early stopping on a part of the split) and returns
``log q(y_i | x_i) - log p(y_i)`` on the held-out rows, p the class frequencies of all rows; their
mean is the estimate. It is the same kind of estimate as the neural bounds of I(T; S) (a learned
function evaluated on held-out rows, below the truth by what the function misses), which is why
cch's "neural" estimator pairs the two: their errors have the same sign.

Assumptions: the held-out rows are i.i.d. with the fit rows; the bound is only as tight as the probe
family (a linear probe is exact for Gaussian classes with a shared covariance; other class shapes
need the MLP); the interval (standard error of the mean over held-out rows) covers the evaluation's
sampling error, not the probe's gap to the posterior, which lowers the estimate in expectation
(the plug-in class frequencies add an error of order C / n either way).
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np

from cchmi import _validate as V
from cchmi._extras import require
from cchmi._scaling import standardise
from cchmi.estimators import interval
from cchmi.results import MIResult

PROBES = ("linear", "mlp")

MIN_HELD_OUT = 20
"""Fewest held-out rows (and at least 2 per class) the probe's estimate is averaged over: below it
the mean and its standard error of a few rows say nothing (n = 6 gave a negative MI from 2 rows)."""

OVERFIT_SE = 3.0
"""An estimate more than this many standard errors below 0 is impossible for the bound of a probe
that generalises (a bound is >= 0 up to sampling error): the probe overfits, and a warning says so."""


def stratified_parts(codes: np.ndarray, fractions: tuple[float, ...], rng) -> list[np.ndarray]:
    """Rows split by class into len(fractions) + 1 sorted parts: `fractions` of every class (at
    least one row of each class with 3 or more rows) in the first parts, the rest in the last."""
    parts = [[] for _ in range(len(fractions) + 1)]
    for c in np.unique(codes):
        members = rng.permutation(np.flatnonzero(codes == c))
        start = 0
        for i, f in enumerate(fractions):
            take = min(members.size - start - 1, max(1, round(f * members.size))) if members.size > 2 else 0
            parts[i].append(members[start:start + take])
            start += take
        parts[-1].append(members[start:])
    return [np.sort(np.concatenate(p)) for p in parts]


def probe_log_likelihoods(x: np.ndarray, codes: np.ndarray, train: np.ndarray, val: np.ndarray, rows: np.ndarray, *,
                          probe: str = "linear", hidden: int = 64, ridge: float = 1e-5, lr: float = 3e-3,
                          batch_size: int = 256, epochs: int = 200, patience: int = 10, seed: int = 0,
                          device=None) -> tuple[np.ndarray, str]:
    """(log q(y_i | x_i) at `rows`, the torch device type that ran) of a probe trained on `train`:
    the linear probe to the optimum of its convex loss (cross-entropy + ridge |W|^2, L-BFGS; `val`
    unused), the MLP by Adam with early stopping on the cross-entropy of `val`. x is standardised
    with the `train` rows' statistics. Validated input expected: x (n, d) real, codes 0..C-1."""
    torch = require("torch", "torch", "the probe estimate of I(S; Y)")
    from torch import nn
    from torch.nn import functional as F

    from cchmi._torch import resolve_device

    dev = resolve_device(device)
    n_classes = int(codes.max()) + 1
    # float64 for the linear probe: L-BFGS's stopping tests need a loss resolved below float32's spacing.
    dtype = torch.float64 if probe == "linear" else torch.float32
    z = torch.as_tensor(standardise(x, train, np.float64), dtype=dtype, device=dev)
    y = torch.as_tensor(codes, dtype=torch.long, device=dev)
    torch.manual_seed(seed)
    if probe == "linear":
        model = nn.Linear(z.shape[1], n_classes)
    else:
        model = nn.Sequential(nn.Linear(z.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, n_classes))
    model = model.to(device=dev, dtype=dtype)
    train_t, val_t = torch.as_tensor(train, device=dev), torch.as_tensor(val, device=dev)
    if probe == "linear":
        _fit_convex(torch, F, model, z[train_t], y[train_t], ridge)
    else:
        _fit_early_stopped(torch, F, model, z, y, train_t, val_t, lr=lr, batch_size=batch_size, epochs=epochs,
                           patience=patience, seed=seed)
    with torch.no_grad():
        rows_t = torch.as_tensor(rows, device=dev)
        logq = torch.log_softmax(model(z[rows_t]), dim=1).gather(1, y[rows_t, None])[:, 0]
    return logq.double().cpu().numpy(), dev.type


def probe_terms(x: np.ndarray, codes: np.ndarray, *, fit_fraction: float = 0.5, probe: str = "linear",
                hidden: int = 64, rng, device=None) -> tuple[np.ndarray, np.ndarray, str]:
    """(held-out rows, their terms log q(y_i | x_i) - log p(y_i), the torch device type): the mean
    of the terms is the bound. A stratified `fit_fraction` of the rows trains the probe (the MLP's
    early stopping watches a fifth of them); p is the class frequencies of all rows."""
    val_part = fit_fraction / 5
    val, train, rows = stratified_parts(codes, (val_part, fit_fraction - val_part), rng)
    if min(train.size, val.size, rows.size) == 0:
        raise ValueError(f"too few rows per class for the probe's fit, validation and held-out parts (n={codes.size})")
    n_classes = int(np.count_nonzero(np.bincount(codes)))
    needed = max(MIN_HELD_OUT, 2 * n_classes)
    if rows.size < needed:
        raise ValueError(f"the probe's estimate would average {rows.size} held-out rows (n={codes.size}, {n_classes} "
                         f"classes, fit_fraction={fit_fraction:g}); it needs {needed} or more "
                         f"(at least {MIN_HELD_OUT}, and 2 per class): give more rows or lower fit_fraction, or use "
                         f"cchmi.mixed_mi")
    if probe == "linear":  # trained to its optimum, no early stopping: every fit row trains
        train = np.union1d(train, val)
    log_p = np.log(np.bincount(codes) / codes.size)
    logq, device_type = probe_log_likelihoods(x, codes, train, val, rows, probe=probe, hidden=hidden,
                                              seed=int(rng.integers(2**31)), device=device)
    return rows, logq - log_p[codes[rows]], device_type


def probe_mi(x, labels, *, probe: str = "linear", hidden: int = 64, fit_fraction: float = 0.5, confidence=0.95,
             base: float = math.e, random_state=0, device=None) -> MIResult:
    """I(X; labels) >= H(labels) - held-out cross-entropy of a probe q(labels | X) (see the module).

    x : (n, d) real; labels : (n,) discrete, two or more classes.
    probe : "linear" (softmax regression: exact for Gaussian classes with a shared covariance) or
        "mlp" (one hidden layer of `hidden` ReLU units).
    fit_fraction : stratified share of the rows that trains the probe (the MLP's early stopping
        watches a fifth of it); the estimate and its interval come from the other rows.
    confidence : interval level from the standard error of the mean over the held-out rows.
    Returns an MIResult with ``n`` the held-out rows and ``k`` 0; ``estimator`` "probe-linear" or
    "probe-mlp". Refuses (ValueError) fewer than :data:`MIN_HELD_OUT` held-out rows or 2 per class;
    warns (RuntimeWarning) when the estimate is more than :data:`OVERFIT_SE` standard errors below 0
    (an overfit probe: 1,000 independent classes of 5 rows gave -3.1 nats).
    """
    start = time.perf_counter()
    xa = V.as_samples(x, "x")
    codes, _ = V.as_labels(labels, "labels", xa.shape[0])
    V.same_length(x=xa, labels=codes)
    probe = V.choice(probe, "probe", PROBES)
    hidden = V.as_int(hidden, "hidden", 1)
    fit_fraction = V.as_real(fit_fraction, "fit_fraction", 0, 1, low_open=True, high_open=True)
    base, confidence = V.check_base(base), V.check_confidence(confidence)
    if np.count_nonzero(np.bincount(codes) >= 3) < 2:
        raise ValueError("labels needs at least two classes with 3 or more samples (fit, validation and held-out rows)")
    rows, terms, device_type = probe_terms(xa, codes, fit_fraction=fit_fraction, probe=probe, hidden=hidden,
                                           rng=V.as_rng(random_state), device=device)
    scale = 1.0 / math.log(base)
    value = float(terms.mean()) * scale
    warn_if_overfit(terms, f"probe_mi (probe={probe!r}, {np.count_nonzero(np.bincount(codes))} classes, "
                           f"{xa.shape[1]} dims, n={xa.shape[0]})")
    se = lo = hi = None
    if confidence is not None:
        se = float(terms.std(ddof=1) / math.sqrt(terms.size)) * scale
        z = interval.z_value(confidence)
        lo, hi = value - z * se, value + z * se
    return MIResult(estimate=value, n=int(rows.size), k=0, estimator=f"probe-{probe}", backend=f"torch-{device_type}",
                    seconds=time.perf_counter() - start, unit=interval.unit_name(base), stderr=se, ci_low=lo,
                    ci_high=hi, confidence=confidence if se is not None else None)


def warn_if_overfit(terms: np.ndarray, what: str) -> None:
    """A RuntimeWarning when the mean of the held-out `terms` (nats) is more than OVERFIT_SE standard
    errors below 0: the probe that produced them overfits its fit rows."""
    se = float(terms.std(ddof=1) / math.sqrt(terms.size))
    if terms.mean() < -OVERFIT_SE * se:
        warnings.warn(f"{what}: the held-out estimate {terms.mean():.4g} nats is {-terms.mean() / se:.1f} standard "
                      f"errors below 0, which no generalising probe gives: the probe overfits its fit rows (too many "
                      f"classes or dimensions for them) and its bound is no estimate of I(X; labels); use "
                      f"cchmi.mixed_mi or more rows", RuntimeWarning, stacklevel=3)


def _fit_convex(torch, F, model, z, y, ridge: float) -> None:
    """Softmax regression to the optimum: full-batch L-BFGS on cross-entropy + ridge |W|^2 (the
    ridge keeps separable classes from driving the weights to infinity)."""
    opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=500, tolerance_grad=1e-7, tolerance_change=1e-10,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(z), y) + ridge * model.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)


def _fit_early_stopped(torch, F, model, z, y, train_t, val_t, *, lr, batch_size, epochs, patience, seed) -> None:
    """Adam on minibatches of `train_t`; keeps the weights of the epoch with the lowest validation
    cross-entropy (the initial ones if none is finite), stops after `patience` epochs without an
    improvement of more than 1e-6."""
    from cchmi.neural.training import EarlyStopping, fit

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    n_train = train_t.numel()

    def step(idx, at) -> None:
        rows = train_t[idx.to(train_t.device)]
        loss = F.cross_entropy(model(z[rows]), y[rows])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def evaluate(at) -> float:
        return float(F.cross_entropy(model(z[val_t]), y[val_t]))

    stopping = EarlyStopping(model, patience=patience, maximize=False, min_delta=1e-6, keep_initial=True)
    fit(model, step, evaluate, stopping, n_rows=n_train, batch_size=min(batch_size, n_train), generator=gen,
        epochs=epochs)
