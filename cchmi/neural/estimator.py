"""Neural MI estimation: train a critic on one part of the data, report a bound on held-out data.

The rows are split (seeded) into train / validation / test. Columns are standardised with the
training part's mean and s.d. only. The critic maximises the bound's training objective on
mini-batches of ``batch_size`` training pairs; after every epoch the bound is evaluated on the
validation batches, and training stops when it has not improved for ``patience`` epochs (the best
epoch's weights are kept). The estimate is the mean of the bound over disjoint test batches of
``batch_size`` pairs (the bounds depend on the batch size: InfoNCE cannot exceed log(batch_size)),
and its standard error is their standard deviation over sqrt(number of batches).

With ``gather_negatives=True`` (inside a torch.distributed process group of W ranks) every rank
passes the same data and arguments; each batch is a global batch of W * batch_size rows, rank r
encodes its slice of batch_size rows and scores it against the embeddings gathered from every rank
(:mod:`cchmi.neural.gather`), the parameter gradients are summed over the ranks before each step,
and every rank returns the same result: the one-process estimate at batch size W * batch_size (up
to the order of floating-point sums).

The protocol shared by the neural estimators (:func:`repeated`, used by :func:`neural_mi`,
:func:`cchmi.neural.latent_mi` and :func:`cchmi.neural.diffusion_mi`): one run's interval comes
from the spread of its test rows (or batches) only, and misses the spread over seeds (the split
and the initial weights), which at n = 3,000 to 10,000 rows is several times that standard error.
``repeats=R`` (R >= 2) runs the estimator R times on independent splits and initial weights
(repeat r with ``random_state + r * REPEAT_STRIDE``, so repeat 0 is the single run), reports the
mean and combines the spreads by Rubin's rules for repeated randomised analyses of the same data
(Rubin 1987): total variance T = W + (1 + 1/R) B, W the mean of the repeats' squared standard
errors, B the variance of their estimates (ddof 1), and a Student-t interval with
(R - 1) (1 + W / ((1 + 1/R) B))^2 degrees of freedom. ``extrapolate=True`` also fits each repeat on
a random half of the rows and reports 2 I(n) - I(n/2), the intercept of a line in 1/n through the
two sizes (the subsample extrapolation of a bias that decays as 1/n); its within variance is
4 s(n)^2 + s(n/2)^2 (the two fits share rows, so this ignores a positive covariance and is wider).
The default ``repeats=1, extrapolate=False`` is the single run, unchanged.
"""

from __future__ import annotations

import hashlib
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import torch

from cchmi import _validate as V
from cchmi._progress import Progress
from cchmi._scaling import standardise
from cchmi._torch import resolve_device
from cchmi.estimators.base import ParamsMixin
from cchmi.estimators.interval import unit_name
from cchmi.neural import bounds as B
from cchmi.neural import gather as G
from cchmi.neural.critics import CRITICS, build_critic
from cchmi.neural.rowstats import bound_from_stats
from cchmi.neural.training import EarlyStopping, Position, batches, fit
from cchmi.results import MIResult


def _fused_allowed(dev: torch.device) -> bool:
    import os

    if dev.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


REPEAT_STRIDE = 1_000_003
"""Seed offset between repeats: repeat r runs with ``random_state + r * REPEAT_STRIDE`` (a prime
far above the offsets the estimators add to their seed inside one run)."""


@dataclass(frozen=True)
class RepeatedMIResult(MIResult):
    """The :class:`~cchmi.results.MIResult` of a neural estimator with ``repeats`` >= 2 or
    ``extrapolate=True`` (module docstring: the protocol). ``estimate`` is the mean over the repeats
    (each extrapolated with ``extrapolate``); ``n`` the test rows of one full-size run;
    ``n_subsamples`` the repeats.

    repeats: R; repeat_estimates: each repeat's estimate (in ``unit``), repeat_stderrs: their own
    standard errors (None without an interval); half_estimates: with ``extrapolate``, each repeat's
    estimate on half the rows (else None); within_stderr: sqrt(W), between_stderr: sqrt(B) (None with
    one repeat); df: the interval's degrees of freedom (inf: normal); interval_note: what the
    interval covers.
    """

    repeats: int = 1
    repeat_estimates: tuple[float, ...] = ()
    repeat_stderrs: tuple[float, ...] | None = None
    half_estimates: tuple[float, ...] | None = None
    within_stderr: float | None = None
    between_stderr: float | None = None
    df: float | None = None
    interval_note: str | None = None


def t_quantile(p: float, df: float) -> float:
    """The p-quantile (p in (0.5, 1)) of Student's t with `df` >= 1 degrees of freedom (normal for
    df = inf): bisection on the CDF, the density integrated by Simpson's rule (error < 1e-7)."""
    if math.isinf(df):
        return NormalDist().inv_cdf(p)
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def cdf(t: float) -> float:
        u = np.linspace(0.0, t, 4001)
        f = np.exp(log_c - (df + 1) / 2 * np.log1p(u * u / df))
        h = t / 4000
        return 0.5 + h / 3 * float(f[0] + f[-1] + 4 * f[1:-1:2].sum() + 2 * f[2:-1:2].sum())

    lo, hi = 0.0, 1.0
    while cdf(hi) < p:
        lo, hi = hi, 2 * hi
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
    return 0.5 * (lo + hi)


def check_protocol(repeats, extrapolate) -> int:
    """`repeats` as an int >= 1 and `extrapolate` as a bool, each refused by name."""
    if not isinstance(extrapolate, (bool, np.bool_)):
        raise TypeError(f"extrapolate must be True or False, got {extrapolate!r}")
    return V.as_int(repeats, "repeats", 1)


def with_protocol(fit_once: Callable[[np.ndarray, np.ndarray, int], MIResult], x, y, *, repeats: int,
                  extrapolate: bool, random_state, confidence) -> MIResult:
    """``fit_once(x, y, random_state)`` itself (the single run, as without the protocol) when
    repeats == 1 and not extrapolate, else :func:`repeated` on the validated samples."""
    if repeats == 1 and not extrapolate:
        return fit_once(x, y, random_state)
    xa, ya = V.as_samples(x, "x"), V.as_samples(y, "y")
    V.same_length(x=xa, y=ya)
    return repeated(fit_once, xa, ya, repeats=repeats, extrapolate=extrapolate,
                    random_state=V.as_int(random_state, "random_state", 0), confidence=V.check_confidence(confidence))


def repeated(fit_once: Callable[[np.ndarray, np.ndarray, int], MIResult], x: np.ndarray, y: np.ndarray, *,
             repeats: int, extrapolate: bool, random_state: int, confidence: float | None) -> RepeatedMIResult:
    """The protocol (module docstring) around ``fit_once(x_rows, y_rows, seed) -> MIResult``: R
    repeats with seeds ``random_state + r * REPEAT_STRIDE``, each also on a seeded random half of the
    rows with `extrapolate`, combined by Rubin's rules. x, y validated, same length."""
    start = time.perf_counter()
    n = x.shape[0]
    full, half = [], []
    for r in range(repeats):
        seed = random_state + r * REPEAT_STRIDE
        full.append(fit_once(x, y, seed))
        if extrapolate:
            rows = np.sort(np.random.default_rng(seed).permutation(n)[: n // 2])
            try:
                half.append(fit_once(x[rows], y[rows], seed))
            except ValueError as e:
                raise ValueError(f"extrapolate=True fits on half the rows ({n // 2} of n={n}) too, and there: "
                                 f"{e}") from e
    values = np.array([f.estimate for f in full])
    if extrapolate:
        values = 2 * values - np.array([h.estimate for h in half])
    estimate = float(values.mean())
    parts = full + half
    with_interval = confidence is not None and all(p.stderr is not None for p in parts)
    within = between = se = lo = hi = df = note = None
    if with_interval:
        var = np.array([f.stderr**2 for f in full])
        if extrapolate:
            var = 4 * var + np.array([h.stderr**2 for h in half])
        w = float(var.mean())
        b = float(values.var(ddof=1)) if repeats > 1 else 0.0
        total = w + (1 + 1 / repeats) * b
        df = math.inf if b == 0 else (repeats - 1) * (1 + w / ((1 + 1 / repeats) * b)) ** 2
        within, between = math.sqrt(w), (math.sqrt(b) if repeats > 1 else None)
        se = math.sqrt(total)
        q = t_quantile(0.5 + confidence / 2, df)
        lo, hi = estimate - q * se, estimate + q * se
        what = (f"{repeats} repeats (independent splits and initial weights)" if repeats > 1 else "one repeat")
        how = " of 2 I(n) - I(n/2) (extrapolated in 1/n)" if extrapolate else ""
        note = (f"mean{how} over {what}; Rubin's rules: within s.e. {within:.3g}"
                + (f", between-repeat s.d. {between:.3g}" if between is not None else "")
                + f", t with {df:.3g} degrees of freedom")
    first = full[0]
    return RepeatedMIResult(
        estimate=estimate, n=first.n, k=first.k, estimator=first.estimator, backend=first.backend,
        seconds=time.perf_counter() - start, unit=first.unit, stderr=se, ci_low=lo, ci_high=hi,
        confidence=confidence if se is not None else None, n_subsamples=repeats if se is not None else None,
        repeats=repeats, repeat_estimates=tuple(float(f.estimate) for f in full),
        repeat_stderrs=tuple(f.stderr for f in full) if with_interval else None,
        half_estimates=tuple(float(h.estimate) for h in half) if extrapolate else None,
        within_stderr=within, between_stderr=between, df=df, interval_note=note)


def split_rows(n: int, val_fraction: float, test_fraction: float, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    for name, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        V.as_real(f, name, 0, 1, low_open=True, high_open=True)
    if val_fraction + test_fraction >= 0.9:
        raise ValueError("val_fraction + test_fraction must leave at least 10% of the rows for training")
    order = rng.permutation(n)
    n_val, n_test = int(round(val_fraction * n)), int(round(test_fraction * n))
    return np.sort(order[n_val + n_test :]), np.sort(order[:n_val]), np.sort(order[n_val : n_val + n_test])


def _fingerprint(x: np.ndarray, y: np.ndarray, *args) -> int:
    """An int64 digest of the data and the arguments (to check that every rank has the same)."""
    h = hashlib.blake2b(digest_size=8)
    for a in (x, y):
        a = np.ascontiguousarray(a)
        h.update(repr((a.shape, a.dtype.str)).encode())
        h.update(a.tobytes())
    h.update(repr(args).encode())
    return int.from_bytes(h.digest(), "little", signed=True)


def _check_converged(bound: str, nats: float, batch_size: int, n: int) -> None:
    """Refuse the estimate of a critic that diverged instead of returning a wild number: non-finite,
    above what the bound can reach (InfoNCE: log(batch_size)) or than n samples can certify (log n,
    McAllester and Stratos 2020), or far below 0 (a lower bound of a non-negative quantity: a
    trained critic gives at least about 0)."""
    ceiling = math.log(batch_size) if bound == "infonce" else math.log(n)
    if not math.isfinite(nats) or nats > ceiling + 1e-6 or nats < -1.0:
        raise FloatingPointError(
            f"the {bound} critic diverged: its test estimate is {nats:.4g} nats, outside [-1, {ceiling:.4g}] "
            f"({'log(batch_size)' if bound == 'infonce' else 'log(n)'}); lower lr or raise batch_size")


def _resolve_fused(fused: bool | None, separable: bool, dev: torch.device) -> bool:
    """Whether the fused Triton kernels run: `fused` checked against the critic and the device,
    None: on for a separable critic on a CUDA device with Triton."""
    if fused and not separable:
        raise ValueError("fused kernels need a separable critic ('separable' or 'bilinear'), not 'joint'")
    if fused is None:
        return separable and dev.type == "cuda" and _fused_allowed(dev)
    if fused and not _fused_allowed(dev):
        raise ValueError("fused=True needs Triton and a CUDA device (or TRITON_INTERPRET=1 to run it on the CPU)")
    return fused


def _process_group(gather_negatives, separable: bool, dev: torch.device, fingerprint) -> tuple[int, int]:
    """(rank, world size) of the ranks that share negatives: (0, 1) without gather_negatives; with
    it, the default process group's, after checking that every rank has the same ``fingerprint()``."""
    if not isinstance(gather_negatives, (bool, np.bool_)):
        raise TypeError(f"gather_negatives must be True or False, got {gather_negatives!r}")
    if not gather_negatives:
        return 0, 1
    if not separable:
        raise ValueError("gather_negatives=True needs a separable critic ('separable' or 'bilinear'): a joint "
                         "critic scores every pair through its MLP, so the other ranks' embeddings are of no use")
    rank, world = G.group_rank_world()
    if world > 1:
        G.check_same_on_every_rank(fingerprint(), "the same x, y and arguments", dev)
    return rank, world


def _split(n: int, val_fraction: float, test_fraction: float, random_state: int, batch_size: int, world: int,
           confidence: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The seeded train / validation / test rows, each with room for a global batch of
    world * batch_size rows (a warning when the test rows give no interval)."""
    rng = np.random.default_rng(random_state)
    train, val, test = split_rows(n, val_fraction, test_fraction, rng)
    global_batch, smallest = world * batch_size, min(train.size, val.size, test.size)
    what = f"batch_size={batch_size}" if world == 1 else f"the global batch {world} x batch_size={batch_size}"
    if global_batch > smallest:
        raise ValueError(f"{what} is above the smallest split ({smallest} rows of n={n}: "
                         f"{train.size} train, {val.size} validation, {test.size} test); lower it or give more rows")
    if confidence is not None and test.size // global_batch < 2:
        warnings.warn(f"no interval: confidence needs at least two test batches of {what}, and the "
                      f"test split has {test.size} rows; lower batch_size or raise test_fraction", RuntimeWarning,
                      stacklevel=4)
    return train, val, test


class _Bound:
    """A critic's bound on batches of rows of (X, Y): its training objective on one global batch,
    its estimate on every full global batch of a split. Each rank scores its slice of batch_size
    rows of a global batch of world * batch_size (against every rank's embeddings when world > 1)."""

    def __init__(self, model, X: torch.Tensor, Y: torch.Tensor, *, bound: str, tau: float, fused: bool,
                 separable: bool, batch_size: int, rank: int, world: int):
        self.model, self.X, self.Y, self.bound, self.tau, self.fused = model, X, Y, bound, tau, fused
        self.separable, self.batch_size, self.rank, self.world = separable, batch_size, rank, world
        self.global_batch = world * batch_size
        self.state: dict = {}  # MINE's moving average

    def value(self, rows: torch.Tensor, objective: bool) -> torch.Tensor:
        """The training objective (objective=True) or the estimate on one global batch of rows."""
        rows = rows[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]  # this rank's slice
        dev = self.X.device
        xb, yb = self.X[rows.to(dev)], self.Y[rows.to(dev)]
        if self.separable:
            a, b = self.model.encode(xb, yb)
            return bound_from_stats(self.bound, a, b, tau=self.tau, fused=self.fused, state=self.state,
                                    objective=objective, gather_negatives=self.world > 1)
        scores = self.model(xb, yb)
        if objective:
            return B.training_objective(self.bound, scores, tau=self.tau, state=self.state)
        return B.estimate(self.bound, scores, tau=self.tau)

    def evaluate(self, rows: np.ndarray) -> np.ndarray:
        """The estimate on each full global batch of `rows` (in order), the model in eval mode."""
        self.model.eval()
        with torch.no_grad():
            out = [float(self.value(torch.as_tensor(rows)[idx], False))
                   for idx in batches(rows.size, self.global_batch, None)]
        self.model.train()
        return np.asarray(out)


def _train_critic(bound: _Bound, train: np.ndarray, val: np.ndarray, *, epochs: int, lr: float, patience: int,
                  seed: int, progress: bool) -> list[float]:
    """Adam on the negated objective over shuffled global batches of `train`, early stopping on the
    mean validation estimate (the best epoch's weights kept); returns the validation estimates."""
    model = bound.model
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    train_t = torch.as_tensor(train)

    def step(idx: torch.Tensor, at: Position) -> None:
        loss = -bound.value(train_t[idx], True)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the {bound.bound} objective became non-finite at epoch {at.epoch}: lower lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if bound.world > 1:
            G.sum_gradients(model.parameters())
        opt.step()

    def evaluate(at: Position) -> float:
        current = float(bound.evaluate(val).mean())
        bar.step(f"validation estimate {current:.4f} nats")
        return current

    stopping = EarlyStopping(model, patience=patience, maximize=True,
                             what=f"the {bound.bound} bound on the validation rows")
    bar = Progress(epochs, "neural MI (epochs)", progress)
    try:
        fit(model, step, evaluate, stopping, n_rows=train.size, batch_size=bound.global_batch, generator=gen,
            epochs=epochs, min_batch=bound.global_batch)
    finally:
        bar.close()
    return stopping.history


def _result(per_batch: np.ndarray, *, n_test: int, estimator: str, backend: str, base: float,
            confidence: float | None, start: float) -> MIResult:
    """The MIResult of the test batches' estimates (nats): their mean in the unit of `base`, and
    the normal interval from their spread when confidence is set and there are two or more."""
    scale = 1.0 / math.log(base)
    estimate = float(per_batch.mean()) * scale
    se = lo = hi = None
    if confidence is not None and per_batch.size >= 2:
        se = float(per_batch.std(ddof=1) / math.sqrt(per_batch.size)) * scale
        z = NormalDist().inv_cdf(0.5 + confidence / 2)
        lo, hi = estimate - z * se, estimate + z * se
    return MIResult(
        estimate=estimate, n=n_test, k=0, estimator=estimator, backend=backend,
        seconds=time.perf_counter() - start, unit=unit_name(base),
        stderr=se, ci_low=lo, ci_high=hi, confidence=confidence if se is not None else None,
        n_subsamples=int(per_batch.size) if se is not None else None,
    )


def _fit_neural(
    x,
    y,
    *,
    bound: str,
    critic: str,
    tau: float,
    hidden: int,
    layers: int,
    embed_dim: int,
    batch_size: int,
    epochs: int,
    lr: float,
    patience: int,
    val_fraction: float,
    test_fraction: float,
    fused: bool | None,
    device,
    random_state: int,
    confidence: float | None,
    base: float,
    progress: bool,
    gather_negatives: bool = False,
):
    """Validate, split, train, estimate: (MIResult, trained critic, validation history)."""
    start = time.perf_counter()
    xa, ya = V.as_samples(x, "x"), V.as_samples(y, "y")
    n = V.same_length(x=xa, y=ya)
    bound = V.choice(bound, "bound", B.BOUNDS)
    critic = V.choice(critic, "critic", CRITICS)
    base, confidence = V.check_base(base), V.check_confidence(confidence)
    for name, value in (("hidden", hidden), ("layers", layers), ("embed_dim", embed_dim), ("epochs", epochs),
                        ("patience", patience)):
        V.as_int(value, name, 0 if name == "layers" else 1)
    batch_size = V.as_int(batch_size, "batch_size", 2)
    random_state = V.as_int(random_state, "random_state", 0)
    V.as_real(tau, "tau", 0, low_open=True)
    V.as_real(lr, "lr", 0, low_open=True)
    dev = resolve_device(device)
    separable = critic != "joint"
    fused = _resolve_fused(fused, separable, dev)
    rank, world = _process_group(
        gather_negatives, separable, dev,
        lambda: _fingerprint(xa, ya, bound, critic, tau, hidden, layers, embed_dim, batch_size, epochs, lr, patience,
                             val_fraction, test_fraction, fused, random_state))
    train, val, test = _split(n, val_fraction, test_fraction, random_state, batch_size, world, confidence)

    xs, ys = standardise(xa, train), standardise(ya, train)
    X, Y = torch.as_tensor(xs, device=dev), torch.as_tensor(ys, device=dev)
    torch.manual_seed(random_state)
    model = build_critic(critic, X.shape[1], Y.shape[1], hidden=hidden, layers=layers, embed_dim=embed_dim).to(dev)
    scorer = _Bound(model, X, Y, bound=bound, tau=tau, fused=fused, separable=separable, batch_size=batch_size,
                    rank=rank, world=world)
    history = _train_critic(scorer, train, val, epochs=epochs, lr=lr, patience=patience, seed=random_state,
                            progress=progress)

    per_batch = scorer.evaluate(test)
    _check_converged(bound, float(per_batch.mean()), scorer.global_batch, n)
    result = _result(per_batch, n_test=int(test.size), estimator=f"{bound}/{critic}",
                     backend="triton" if fused else f"torch-{dev.type}", base=base, confidence=confidence,
                     start=start)
    return result, model, history


def neural_mi(
    x,
    y,
    *,
    bound: str = "smile",
    critic: str = "separable",
    tau: float = 5.0,
    hidden: int = 256,
    layers: int = 2,
    embed_dim: int = 32,
    batch_size: int = 256,
    epochs: int = 200,
    lr: float = 5e-4,
    patience: int = 20,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    fused: bool | None = None,
    device=None,
    random_state: int = 0,
    confidence: float | None = 0.95,
    base: float = math.e,
    progress: bool = False,
    gather_negatives: bool = False,
    repeats: int = 1,
    extrapolate: bool = False,
) -> MIResult:
    """I(X; Y) from a variational bound with a learned critic (see :mod:`cchmi.neural.bounds`).

    bound : "infonce", "nwj", "mine", "smile" (default; clip ``tau``) or "js".
    critic : "separable" (default), "bilinear" or "joint"; hidden, layers, embed_dim size the MLPs.
    fused : use the fused Triton row-statistics kernels (separable and bilinear critics only);
        None (default) uses them when the data are on a CUDA device and Triton is installed.
    device : "cuda", "cpu" or None (CUDA when available).
    random_state : seed of the split, the initial weights and the batches (an int).
    confidence : interval level from the spread over test batches (None: no interval).
    gather_negatives : inside an initialised torch.distributed process group (the default group) of
        W ranks, score each rank's batch_size pairs against the embeddings of all W ranks: the
        bounds of the global batch of W * batch_size pairs (InfoNCE's ceiling log(W * batch_size)),
        gradients summed over the ranks. Every rank passes the same x, y and arguments (checked);
        the group's backend must handle tensors on ``device`` (gloo: CPU, NCCL: CUDA); separable
        and bilinear critics only. Without a process group it is a ValueError; W = 1 is the local
        path.
    repeats, extrapolate : the protocol of the module docstring: ``repeats`` >= 2 independent
        splits and initial weights combined by Rubin's rules (an interval that includes the seed
        spread), ``extrapolate`` the estimate at n/2 and n extrapolated linearly in 1/n; each
        repeat costs one training (two with extrapolate). Default: the single run.
    Returns an MIResult: ``n`` the test rows, ``n_subsamples`` the test batches, ``k`` 0; a
    :class:`RepeatedMIResult` (``n_subsamples`` the repeats) with repeats >= 2 or extrapolate.
    """
    repeats = check_protocol(repeats, extrapolate)

    def once(xs, ys, seed):
        return _fit_neural(
            xs, ys, bound=bound, critic=critic, tau=tau, hidden=hidden, layers=layers, embed_dim=embed_dim,
            batch_size=batch_size, epochs=epochs, lr=lr, patience=patience, val_fraction=val_fraction,
            test_fraction=test_fraction, fused=fused, device=device, random_state=seed, confidence=confidence,
            base=base, progress=progress, gather_negatives=gather_negatives)[0]

    return with_protocol(once, x, y, repeats=repeats, extrapolate=extrapolate, random_state=random_state,
                         confidence=confidence)


class NeuralMI(ParamsMixin):
    """scikit-learn-shaped :func:`neural_mi`: ``fit(x, y)`` stores ``mi_`` (the estimate),
    ``result_`` (the MIResult), ``critic_`` (the trained critic, on its device) and ``history_``
    (the validation estimate after each epoch); ``get_params`` / ``set_params`` as in scikit-learn."""

    def __init__(self, bound: str = "smile", critic: str = "separable", *, tau: float = 5.0, hidden: int = 256,
                 layers: int = 2, embed_dim: int = 32, batch_size: int = 256, epochs: int = 200, lr: float = 5e-4,
                 patience: int = 20, val_fraction: float = 0.2, test_fraction: float = 0.2, fused: bool | None = None,
                 device=None, random_state: int = 0, confidence: float | None = 0.95, base: float = math.e,
                 progress: bool = False, gather_negatives: bool = False):
        self.bound, self.critic, self.tau, self.hidden, self.layers = bound, critic, tau, hidden, layers
        self.embed_dim, self.batch_size, self.epochs = embed_dim, batch_size, epochs
        self.lr, self.patience = lr, patience
        self.val_fraction, self.test_fraction, self.fused, self.device = val_fraction, test_fraction, fused, device
        self.random_state, self.confidence, self.base, self.progress = random_state, confidence, base, progress
        self.gather_negatives = gather_negatives

    def fit(self, x, y) -> NeuralMI:
        self.result_, self.critic_, self.history_ = _fit_neural(
            x, y, bound=self.bound, critic=self.critic, tau=self.tau, hidden=self.hidden, layers=self.layers,
            embed_dim=self.embed_dim, batch_size=self.batch_size, epochs=self.epochs, lr=self.lr,
            patience=self.patience, val_fraction=self.val_fraction, test_fraction=self.test_fraction,
            fused=self.fused, device=self.device, random_state=self.random_state, confidence=self.confidence,
            base=self.base, progress=self.progress, gather_negatives=self.gather_negatives)
        self.mi_ = self.result_.estimate
        return self
