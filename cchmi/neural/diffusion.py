"""Diffusion MI: I(X; Y) from a denoiser of X that is trained with and without Y (the MMSE gap).

Theory (Guo, Shamai and Verdu 2005; Kong et al. 2023; MINDE, Franzese et al. 2024; MMG, Yu et al.
2025). Observe X through the Gaussian channel Z_g = sqrt(g) X + N, N ~ N(0, I), at signal-to-noise
ratio g. The I-MMSE relation d/dg I(X; Z_g) = mmse(g) / 2, with mmse(g) = E|X - E[X | Z_g]|^2, holds
also given Y: d/dg I(X; Z_g | Y) = mmse(g | Y) / 2. The chain rule I(X; Z_g, Y) = I(X; Y) +
I(X; Z_g | Y) = I(X; Z_g) + I(X; Y | Z_g), with I(X; Y | Z_g) -> 0 as g -> inf (Z_g reveals X)
and every term 0 at g = 0, gives

    I(X; Y) = 1/2 int_0^inf [mmse(g) - mmse(g | Y)] dg,
    mmse(g) - mmse(g | Y) = E|E[X | Z_g, Y] - E[X | Z_g]|^2        (orthogonality of the MMSE error).

The denoiser here is the variance-preserving one of diffusion models: x_t = alpha x + sigma eps,
alpha^2 + sigma^2 = 1, log-SNR lam = log(alpha^2 / sigma^2) (so g = e^lam and x_t / sigma is the
channel above), predicting the noise: eps_hat(x_t, lam, y) (y replaced by a null token for the
unconditional one). Since x = (x_t - sigma eps) / alpha, the two posterior means differ by
x_hat_c - x_hat_u = -(sigma / alpha) (eps_hat_c - eps_hat_u), so |x_hat_c - x_hat_u|^2 =
|eps_hat_c - eps_hat_u|^2 / g; with dg / g = d lam,

    I(X; Y) = 1/2 int_{-inf}^{inf} E|eps_hat_c(x_t, lam) - eps_hat_u(x_t, lam)|^2 d lam

(the weight is exactly 1/2 per unit of log-SNR, |.|^2 the squared norm summed over X's columns,
nats). A Gaussian check: one coordinate with conditional variance s^2 has the integrand
g (1 - s^2) / ((1 + g)(1 + g s^2)) in lam, whose integral is log(1 / s^2), twice -1/2 log(1 - rho^2).

Estimator. The columns are standardised with the training rows' mean and s.d. One network (an MLP
with residual blocks on [x_t, y or 0, the conditioning bit, Fourier features of lam]) predicts
eps_hat = sigma x_t + net(...) (sigma x_t is the exact denoiser of white Gaussian data, so the net
learns the departure from it); it is trained on the denoising loss |eps - eps_hat|^2 with lam
uniform on ``log_snr`` = (lam_min, lam_max) and Y dropped (the null token) with probability
``p_uncond`` (classifier-free conditioning: one network is both denoisers). Early stopping on the
validation rows' denoising loss (conditional and unconditional, on noise drawn once, so that the
score changes only with the weights). On each test row, ``n_levels`` log-SNRs are drawn stratified
on the range (one uniformly in each of n_levels equal strata), one noise draw each, and the row's
term is (lam_max - lam_min) / 2 times the mean of |eps_hat_c - eps_hat_u|^2 over them: an unbiased
Monte Carlo estimate of the integral over the range for that row. The estimate is the mean of the
terms, its standard error their s.d. / sqrt(test rows), the interval normal. With ``symmetric``
a second network denoises Y given X and each row's term is the mean of the two directions.

The floor, and the permuted-Y control. A denoiser that has learned nothing about Y still gives
c = 1 and c = 0 outputs that differ: it uses y as noise (fitted to the training rows' accidental
pairing), and |eps_hat_c - eps_hat_u|^2 counts that disagreement at every log-SNR of the range, so
the estimate has a positive floor. Measured with Y's rows permuted (true MI 0; 64+64 dims, n = 5000,
the defaults): 0.78-1.17 nats on Gaussians, 3.4-13 on data near a low-dimensional manifold
(bench/README.md, "The diffusion estimator's floor"). ``control`` (on by default for the single run)
fits the same denoiser, on the same split and seeds, to X and a seeded permutation of Y's rows; its
estimate is the result's ``floor``, and a floor above :data:`FLOOR_SHARE` of the estimate marks the
result unreliable (``reliability``): the floor alone could then account for more than the 25% error
the flag is meant to catch. The floor is reported, not subtracted: the permuted fit's use of y is not
the paired fit's (where y carries signal the network spends capacity on it), so estimate - floor is
no estimate (-2.4 nats of a true 2 on a 1-dimensional lift). Training two denoisers on disjoint
halves of the rows and averaging the inner product of their gaps (``_row_terms`` with a partner)
removes the floor where it is noise (within 0.05 nats of 0 on the permuted Gaussians) but shows how
little of the gap the denoisers learn at this size (0.42 of 2 nats, 1.74 of 8): the single-network
estimate's closeness on Gaussians is a floor plus an underfit gap.

Early stopping: the validation denoising loss flattens while the gap between the two denoisers is
still being learned (the gap is a small part of the loss), and a network stopped early underestimates;
hence the long default patience (50 epochs; 20 stopped too early on 64+64-dim Gaussians at 4-10 nats).

What the interval covers: the test rows' and the noise's sampling spread for the trained network;
not the network's own error, nor its spread over seeds (the split and the initial weights), which at
n = 3,000 to 10,000 rows is several times the standard error (``repeats`` >= 2 adds that spread:
the protocol of :mod:`cchmi.neural.estimator`). The network's error has a sign: a
perfect conditional denoiser and an imperfect unconditional one overestimate by the latter's excess
error (the orthogonality above), an imperfect conditional one pulls toward 0. Truncating the range
drops 1/2 int_{-inf}^{lam_min}, at most e^lam_min |E[X | Y] - E[X]|^2 / 2 <= e^lam_min d_x / 2 for
standardised X, and the part above lam_max, which for a Gaussian coordinate with conditional
variance s^2 is about e^-lam_max / (2 s^2): large only where Y nearly determines a direction of X.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import torch
from torch import nn

from cchmi import _validate as V
from cchmi._progress import Progress
from cchmi._scaling import standardise
from cchmi._torch import resolve_device
from cchmi.estimators.base import ParamsMixin
from cchmi.estimators.interval import unit_name
from cchmi.estimators.reliability import Reliability
from cchmi.neural.estimator import check_protocol, split_rows, with_protocol
from cchmi.neural.training import EarlyStopping, Position, fit
from cchmi.results import MIResult

FLOOR_SHARE = 0.25
"""The permuted-Y control's estimate (the floor), as a share of the estimate, above which the result
is unreliable: the share of error the unreliability flag is meant to catch (issue 24: every estimate
more than 25% off flagged), not a tuned value."""

CONTROL_SEED = 104729
"""Offset of the seed of the control's permutation of Y's rows from ``random_state``."""

FOURIER = 8
"""Sine and cosine pairs of the log-SNR fed to the denoiser (frequencies pi/2 * 2^k, k < FOURIER,
on the log-SNR mapped to [-1, 1])."""


@dataclass(frozen=True)
class DiffusionMIResult(MIResult):
    """The :class:`~cchmi.results.MIResult` of a single :func:`diffusion_mi` run with the permuted-Y
    control (module docstring). floor: the control's estimate (in ``unit``), the same training on X
    and Y's rows permuted; reliability: unreliable when the floor is above :data:`FLOOR_SHARE` of the
    estimate, with the reason."""

    floor: float | None = None
    reliability: Reliability | None = None

    def __str__(self) -> str:
        text = super().__str__()
        if self.floor is not None:
            text += f"\n  permuted-Y control (the floor): {self.floor:.4f} {self.unit}"
        if self.reliability is not None and not self.reliability.reliable:
            text += f"\n  {self.reliability}"
        return text


def floor_reason(estimate: float, floor: float, unit: str) -> str | None:
    """Why an estimate with this permuted-Y control `floor` is unreliable (None when the floor is
    at most :data:`FLOOR_SHARE` of it)."""
    if floor <= FLOOR_SHARE * estimate:
        return None
    share = f"{floor / estimate:.0%} of the estimate" if estimate > 0 else f"at least the estimate {estimate:.3g}"
    return (f"the permuted-Y control gave {floor:.3g} {unit}, {share} (more than {FLOOR_SHARE:.0%}): the "
            f"denoisers' use of y is mostly noise at this size (more rows, or fewer columns first)")


class Denoiser(nn.Module):
    """eps_hat(x_t, lam, y, c) = sigma(lam) x_t + MLP([x_t, c y, c, features(lam)]): the noise
    predicted from x_t at log-SNR lam, given y where c = 1 and unconditionally where c = 0."""

    def __init__(self, dx: int, dy: int, hidden: int, layers: int, log_snr: tuple[float, float]):
        super().__init__()
        self.low, self.high = log_snr
        self.register_buffer("freqs", math.pi / 2 * 2.0 ** torch.arange(FOURIER, dtype=torch.float32))
        self.inp = nn.Linear(dx + dy + 1 + 1 + 2 * FOURIER, hidden)
        self.blocks = nn.ModuleList(nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden)) for _ in range(layers))
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, dx))

    def forward(self, xt: torch.Tensor, lam: torch.Tensor, y: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        u = (2 * lam - (self.low + self.high)) / (self.high - self.low)  # [-1, 1] on the range
        angles = u[:, None] * self.freqs
        h = self.inp(torch.cat([xt, y * c[:, None], c[:, None], u[:, None], angles.sin(), angles.cos()], dim=1))
        for block in self.blocks:
            h = h + block(h)
        sigma = torch.sigmoid(-lam).sqrt()  # sigma^2 = 1 / (1 + e^lam)
        return sigma[:, None] * xt + self.out(h)


def _noised(x: torch.Tensor, lam: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """x_t = alpha x + sigma eps with alpha^2 = sigmoid(lam), sigma^2 = sigmoid(-lam)."""
    return torch.sigmoid(lam).sqrt()[:, None] * x + torch.sigmoid(-lam).sqrt()[:, None] * eps


def _uniform(n: int, low: float, high: float, gen: torch.Generator, dev: torch.device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen, device=dev)


def _train(X: torch.Tensor, Y: torch.Tensor, train: np.ndarray, val: np.ndarray, *, hidden: int, layers: int,
           log_snr: tuple[float, float], p_uncond: float, batch_size: int, epochs: int, lr: float, patience: int,
           seed: int, progress: bool, label: str) -> tuple[Denoiser, list[float]]:
    """A Denoiser of X given Y trained on the rows `train` (early stopping on the denoising loss of
    `val`, best weights kept): (model in eval mode, validation losses)."""
    dev = X.device
    torch.manual_seed(seed)
    model = Denoiser(X.shape[1], Y.shape[1], hidden, layers, log_snr).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.Generator(device=dev).manual_seed(seed + 1)
    tr = torch.as_tensor(train, device=dev)

    # validation noise drawn once: every row denoised with and without y at the same x_t
    va = torch.as_tensor(val, device=dev)
    v_lam = _uniform(va.numel(), *log_snr, noise, dev)
    v_eps = torch.randn(va.numel(), X.shape[1], generator=noise, device=dev)
    v_xt = _noised(X[va], v_lam, v_eps)

    def step(idx: torch.Tensor, at: Position) -> None:
        rows = tr[idx.to(dev)]
        lam = _uniform(rows.numel(), *log_snr, noise, dev)
        eps = torch.randn(rows.numel(), X.shape[1], generator=noise, device=dev)
        c = (torch.rand(rows.numel(), generator=noise, device=dev) >= p_uncond).to(X.dtype)
        loss = (model(_noised(X[rows], lam, eps), lam, Y[rows], c) - eps).square().sum(1).mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the denoising loss became non-finite at epoch {at.epoch}: lower lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def evaluate(at: Position) -> float:
        model.eval()
        total = 0.0
        for c in (0.0, 1.0):
            cond = torch.full_like(v_lam, c)
            total += float((model(v_xt, v_lam, Y[va], cond) - v_eps).square().sum(1).mean())
        bar.step(f"validation loss {total / 2:.4f}")
        return total / 2

    stopping = EarlyStopping(model, patience=patience, maximize=False, what=f"the validation denoising loss ({label})")
    bar = Progress(epochs, f"diffusion MI, {label} (epochs)", progress)
    size = min(batch_size, train.size)
    try:
        fit(model, step, evaluate, stopping, n_rows=train.size, batch_size=size, generator=gen, epochs=epochs,
            min_batch=size)
    finally:
        bar.close()
    model.eval()
    return model, stopping.history


def _row_terms(model: Denoiser, X: torch.Tensor, Y: torch.Tensor, rows: np.ndarray, *, n_levels: int,
               log_snr: tuple[float, float], seed: int, chunk: int = 4096,
               partner: Denoiser | None = None) -> np.ndarray:
    """Each row's Monte Carlo estimate (nats) of 1/2 int |eps_hat_c - eps_hat_u|^2 d lam over the
    range: n_levels stratified log-SNRs, one noise draw each. With a `partner` (a second denoiser,
    trained on other rows), the square is the inner product of the two networks' gaps at the same
    draws: the cross-fit form, whose noise parts are independent and average out (module docstring)."""
    dev = X.device
    low, high = log_snr
    noise = torch.Generator(device=dev).manual_seed(seed)
    strata = torch.arange(n_levels, device=dev, dtype=X.dtype)
    per_chunk = max(1, chunk // n_levels)
    out = []
    with torch.no_grad():
        for start in range(0, rows.size, per_chunk):
            r = torch.as_tensor(rows[start : start + per_chunk], device=dev)
            m = r.numel()
            frac = (strata[None, :] + torch.rand(m, n_levels, generator=noise, device=dev, dtype=X.dtype)) / n_levels
            lam = (low + (high - low) * frac).reshape(-1)
            rep = r.repeat_interleave(n_levels)
            xt = _noised(X[rep], lam, torch.randn(rep.numel(), X.shape[1], generator=noise, device=dev))
            ones = torch.ones_like(lam)
            diff = (model(xt, lam, Y[rep], ones) - model(xt, lam, Y[rep], 0 * ones)).double()
            if partner is not None:
                sq = (diff * (partner(xt, lam, Y[rep], ones) - partner(xt, lam, Y[rep], 0 * ones))).sum(1)
            else:
                sq = diff.square().sum(1)
            sq = sq.reshape(m, n_levels)
            out.append((0.5 * (high - low) * sq.mean(1)).cpu().numpy())
    return np.concatenate(out)


def _check_log_snr(log_snr) -> tuple[float, float]:
    try:
        low, high = log_snr
    except (TypeError, ValueError):
        raise TypeError(f"log_snr must be a pair (low, high) of log signal-to-noise ratios, got {log_snr!r}") from None
    low, high = V.as_real(low, "log_snr[0]"), V.as_real(high, "log_snr[1]")
    if not low < high:
        raise ValueError(f"log_snr must be (low, high) with low < high, got {log_snr!r}")
    return low, high


def _fit_diffusion(x, y, *, hidden: int, layers: int, log_snr, n_levels: int, p_uncond: float, symmetric: bool,
                   batch_size: int, epochs: int, lr: float, patience: int, val_fraction: float, test_fraction: float,
                   device, random_state: int, confidence: float | None, base: float, progress: bool,
                   control: bool = False, tag: str = ""):
    """Validate, split, train, estimate: (MIResult, denoisers, validation histories); with `control`
    the permuted-Y control runs after (the same split and seeds) and the result is a
    DiffusionMIResult. `tag` is appended to the progress bars' labels."""
    start = time.perf_counter()
    xa, ya = V.as_samples(x, "x"), V.as_samples(y, "y")
    n = V.same_length(x=xa, y=ya)
    base, confidence = V.check_base(base), V.check_confidence(confidence)
    hidden, layers = V.as_int(hidden, "hidden", 1), V.as_int(layers, "layers", 0)
    n_levels, epochs, patience = V.as_int(n_levels, "n_levels", 1), V.as_int(epochs, "epochs", 1), V.as_int(
        patience, "patience", 1)
    batch_size = V.as_int(batch_size, "batch_size", 1)
    random_state = V.as_int(random_state, "random_state", 0)
    V.as_real(lr, "lr", 0, low_open=True)
    p_uncond = V.as_real(p_uncond, "p_uncond", 0, 1, low_open=True, high_open=True)
    if not isinstance(symmetric, (bool, np.bool_)):
        raise TypeError(f"symmetric must be True or False, got {symmetric!r}")
    log_snr = _check_log_snr(log_snr)
    dev = resolve_device(device)
    rng = np.random.default_rng(random_state)
    train, val, test = split_rows(n, val_fraction, test_fraction, rng)
    if min(val.size, test.size) < 2:
        raise ValueError(f"n={n} leaves {val.size} validation and {test.size} test rows; at least 2 each are needed: "
                         "give more rows or raise val_fraction / test_fraction")

    X = torch.as_tensor(standardise(xa, train), device=dev)
    Y = torch.as_tensor(standardise(ya, train), device=dev)
    directions = [("X given Y", X, Y)] + ([("Y given X", Y, X)] if symmetric else [])
    models, histories, terms = [], [], []
    for i, (label, a, b) in enumerate(directions):
        model, history = _train(a, b, train, val, hidden=hidden, layers=layers, log_snr=log_snr, p_uncond=p_uncond,
                                batch_size=batch_size, epochs=epochs, lr=lr, patience=patience,
                                seed=random_state + 2 * i, progress=progress, label=label + tag)
        terms.append(_row_terms(model, a, b, test, n_levels=n_levels, log_snr=log_snr, seed=random_state + 7919))
        models.append(model)
        histories.append(history)
    per_row = np.mean(terms, axis=0)
    if not np.isfinite(per_row).all():
        raise FloatingPointError("the denoisers gave a non-finite MI term on the test rows: lower lr")

    scale = 1.0 / math.log(base)
    estimate = float(per_row.mean()) * scale
    se = lo = hi = None
    if confidence is not None:
        se = float(per_row.std(ddof=1) / math.sqrt(per_row.size)) * scale
        z = NormalDist().inv_cdf(0.5 + confidence / 2)
        lo, hi = estimate - z * se, estimate + z * se
    result = MIResult(estimate=estimate, n=int(test.size), k=0, estimator="diffusion" + ("-sym" if symmetric else ""),
                      backend=f"torch-{dev.type}", seconds=time.perf_counter() - start, unit=unit_name(base),
                      stderr=se, ci_low=lo, ci_high=hi, confidence=confidence if se is not None else None,
                      n_subsamples=int(per_row.size) if se is not None else None)
    if control:
        perm = np.random.default_rng(random_state + CONTROL_SEED).permutation(n)
        floor = _fit_diffusion(
            xa, ya[perm], hidden=hidden, layers=layers, log_snr=log_snr, n_levels=n_levels, p_uncond=p_uncond,
            symmetric=symmetric, batch_size=batch_size, epochs=epochs, lr=lr, patience=patience,
            val_fraction=val_fraction, test_fraction=test_fraction, device=device, random_state=random_state,
            confidence=None, base=base, progress=progress, tag=", permuted-Y control")[0].estimate
        fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
        fields["seconds"] = time.perf_counter() - start
        result = DiffusionMIResult(**fields, floor=floor,
                                   reliability=Reliability.of([floor_reason(estimate, floor, result.unit)]))
    return result, models, histories


def _check_control(control, protocol: bool) -> bool:
    """`control` as a bool: None is on without the protocol, off with it; True with it is refused."""
    if control is None:
        return not protocol
    if not isinstance(control, (bool, np.bool_)):
        raise TypeError(f"control must be True, False or None, got {control!r}")
    if control and protocol:
        raise ValueError("control=True runs with the single run only (repeats=1, extrapolate=False); with the "
                         "protocol leave control=None or pass False")
    return bool(control)


def diffusion_mi(
    x,
    y,
    *,
    hidden: int = 256,
    layers: int = 3,
    log_snr: tuple[float, float] = (-10.0, 12.0),
    n_levels: int = 32,
    p_uncond: float = 0.5,
    symmetric: bool = False,
    batch_size: int = 256,
    epochs: int = 300,
    lr: float = 1e-3,
    patience: int = 50,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    device=None,
    random_state: int = 0,
    confidence: float | None = 0.95,
    base: float = math.e,
    progress: bool = False,
    repeats: int = 1,
    extrapolate: bool = False,
    control: bool | None = None,
) -> MIResult:
    """I(X; Y) as half the integrated gap between a conditional and an unconditional denoiser of X
    (module docstring: the derivation, the weighting and what the interval covers).

    hidden, layers : width and residual blocks of the denoiser's MLP.
    log_snr : (low, high) range of log signal-to-noise ratios integrated over (and trained on).
    n_levels : stratified log-SNR draws per test row.
    p_uncond : probability that a training row's y is replaced by the null token.
    symmetric : also denoise Y given X (a second network) and average the two directions per row.
    batch_size, epochs, lr, patience : Adam on the denoising loss; early stopping after `patience`
        epochs without a lower validation loss, the best epoch's weights kept (a short patience
        stops before the conditional denoiser has learned the gap: module docstring).
    val_fraction, test_fraction : the seeded split of the rows; the estimate is on the test rows.
    device : "cuda", "cpu" or None (CUDA when available).
    random_state : seed of the split, the initial weights, the batches and the noise (an int).
    confidence : level of the normal interval from the per-row terms (None: no interval).
    repeats, extrapolate : the neural protocol (:mod:`cchmi.neural.estimator`): ``repeats`` >= 2
        independent splits, initial weights and noise combined by Rubin's rules (the interval then
        includes the seed spread that one run's misses), ``extrapolate`` the estimate at n/2 and n
        extrapolated in 1/n. Default: the single run.
    control : fit the same denoiser to X and a permutation of Y's rows too (twice the time) and report
        its estimate as ``floor``, marking the result unreliable when the floor is above
        :data:`FLOOR_SHARE` of the estimate (module docstring). None (default): on for the single
        run, off with the protocol (whose repeats carry their own spread); True with the protocol is
        refused.
    Returns a :class:`DiffusionMIResult` (``floor``, ``reliability``) with the control, else an
    MIResult: ``n`` and ``n_subsamples`` the test rows, ``k`` 0; a
    :class:`~cchmi.neural.estimator.RepeatedMIResult` (``n_subsamples`` the repeats) with repeats >= 2
    or extrapolate.
    """
    repeats = check_protocol(repeats, extrapolate)
    control = _check_control(control, repeats != 1 or extrapolate)

    def once(xs, ys, seed):
        return _fit_diffusion(
            xs, ys, hidden=hidden, layers=layers, log_snr=log_snr, n_levels=n_levels, p_uncond=p_uncond,
            symmetric=symmetric, batch_size=batch_size, epochs=epochs, lr=lr, patience=patience,
            val_fraction=val_fraction, test_fraction=test_fraction, device=device, random_state=seed,
            confidence=confidence, base=base, progress=progress, control=control)[0]

    return with_protocol(once, x, y, repeats=repeats, extrapolate=extrapolate, random_state=random_state,
                         confidence=confidence)


class DiffusionMI(ParamsMixin):
    """scikit-learn-shaped :func:`diffusion_mi`: ``fit(x, y)`` stores ``mi_`` (the estimate),
    ``result_`` (the MIResult), ``denoisers_`` (the trained networks: X given Y, then Y given X when
    symmetric) and ``history_`` (each network's validation losses per epoch); with ``control`` (the
    default) ``result_`` is a :class:`DiffusionMIResult` and the control's networks are not kept."""

    def __init__(self, *, hidden: int = 256, layers: int = 3, log_snr: tuple[float, float] = (-10.0, 12.0),
                 n_levels: int = 32, p_uncond: float = 0.5, symmetric: bool = False, batch_size: int = 256,
                 epochs: int = 300, lr: float = 1e-3, patience: int = 50, val_fraction: float = 0.2,
                 test_fraction: float = 0.2, device=None, random_state: int = 0, confidence: float | None = 0.95,
                 base: float = math.e, progress: bool = False, control: bool = True):
        self.hidden, self.layers, self.log_snr, self.n_levels = hidden, layers, log_snr, n_levels
        self.p_uncond, self.symmetric, self.batch_size, self.epochs = p_uncond, symmetric, batch_size, epochs
        self.lr, self.patience, self.val_fraction, self.test_fraction = lr, patience, val_fraction, test_fraction
        self.device, self.random_state, self.confidence, self.base = device, random_state, confidence, base
        self.progress, self.control = progress, control

    def fit(self, x, y) -> DiffusionMI:
        self.result_, self.denoisers_, self.history_ = _fit_diffusion(
            x, y, hidden=self.hidden, layers=self.layers, log_snr=self.log_snr, n_levels=self.n_levels,
            p_uncond=self.p_uncond, symmetric=self.symmetric, batch_size=self.batch_size, epochs=self.epochs,
            lr=self.lr, patience=self.patience, val_fraction=self.val_fraction, test_fraction=self.test_fraction,
            device=self.device, random_state=self.random_state, confidence=self.confidence, base=self.base,
            progress=self.progress, control=_check_control(self.control, False))
        self.mi_ = self.result_.estimate
        return self
