"""Variational lower bounds on I(X; Y) from a critic's score matrix: the readable torch references.

``scores[i, j] = f(x_i, y_j)`` for a batch of n pairs: the diagonal holds the n joint (positive)
pairs, the n (n - 1) off-diagonal entries stand for samples of the product of the marginals.
Values are in nats.

* InfoNCE (van den Oord et al. 2018): mean_i [S_ii - log sum_j exp S_ij] + log n; never above log n.
* NWJ (Nguyen, Wainwright, Jordan 2010): mean_i S_ii - mean_{i != j} exp(S_ij - 1).
* DV / MINE (Donsker-Varadhan; Belghazi et al. 2018): mean_i S_ii - log mean_{i != j} exp S_ij.
  Trained with MINE's moving-average correction of the biased mini-batch gradient
  (:func:`mine_surrogate`).
* SMILE (Song and Ermon 2020): the DV value with the scores in the partition term clipped to
  [-tau, tau]; trained with the JS gradient (value of SMILE, gradient of JS, as in the paper's code).
* JS (f-GAN Jensen-Shannon, Nowozin et al. 2016): mean_i -softplus(-S_ii) - mean_{i != j}
  softplus(S_ij). It is a training objective, not an MI bound; as an estimate it is reported as NWJ
  of the shifted critic f + 1 (Poole et al. 2019), whose optimum is the density ratio's log.

Every bound is written twice: from the score matrix here, and from per-row statistics (row
log-sum-exps and off-diagonal sums, :mod:`cchmi.neural.rowstats`), which the fused kernels compute
without the n x n matrix. Both give the same value and gradients (tested).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

BOUNDS = ("infonce", "nwj", "mine", "smile", "js")


def _off_diagonal(scores: torch.Tensor) -> torch.Tensor:
    n = scores.shape[0]
    return scores.masked_select(~torch.eye(n, dtype=torch.bool, device=scores.device))


def _check(scores: torch.Tensor) -> int:
    if scores.ndim != 2 or scores.shape[0] != scores.shape[1] or scores.shape[0] < 2:
        raise ValueError(f"scores must be a square (n, n) matrix with n >= 2, got shape {tuple(scores.shape)}")
    return scores.shape[0]


def infonce(scores: torch.Tensor) -> torch.Tensor:
    n = _check(scores)
    return (scores.diagonal() - torch.logsumexp(scores, dim=1)).mean() + math.log(n)


def nwj(scores: torch.Tensor) -> torch.Tensor:
    _check(scores)
    return scores.diagonal().mean() - torch.exp(_off_diagonal(scores) - 1.0).mean()


def dv(scores: torch.Tensor) -> torch.Tensor:
    n = _check(scores)
    off = _off_diagonal(scores)
    return scores.diagonal().mean() - (torch.logsumexp(off, dim=0) - math.log(n * (n - 1)))


def js(scores: torch.Tensor) -> torch.Tensor:
    """The f-GAN JS objective (not an MI bound)."""
    _check(scores)
    return -F.softplus(-scores.diagonal()).mean() - F.softplus(_off_diagonal(scores)).mean()


def smile(scores: torch.Tensor, tau: float = 5.0) -> torch.Tensor:
    """Clipped DV value, JS gradient."""
    n = _check(scores)
    clipped = torch.clamp(_off_diagonal(scores), -tau, tau)
    value = scores.diagonal().mean() - (torch.logsumexp(clipped, dim=0) - math.log(n * (n - 1)))
    objective = js(scores)
    return objective + (value - objective).detach()


def js_estimate(scores: torch.Tensor) -> torch.Tensor:
    """The MI estimate of a JS-trained critic: NWJ of f + 1."""
    return nwj(scores + 1.0)


def mine_surrogate(scores: torch.Tensor, state: dict, alpha: float = 0.01) -> torch.Tensor:
    """A loss-free surrogate whose value is the DV bound and whose gradient uses a moving average
    of E_q exp(f) in the denominator (MINE's bias correction). `state` holds the average between
    calls ({} to start)."""
    _check(scores)
    return mine_corrected(scores.diagonal().mean(), torch.exp(_off_diagonal(scores)).mean(), dv(scores), state, alpha)


def mine_corrected(diag_mean, batch_mean, value, state: dict, alpha: float = 0.01) -> torch.Tensor:
    """Value `value` (the DV bound), gradient of mean f_joint - E_q exp f / ma, ma the moving
    average of the batch means E_q exp f (updated in `state`)."""
    ma = state.get("ma")
    ma = batch_mean.detach() if ma is None else (1 - alpha) * ma + alpha * batch_mean.detach()
    state["ma"] = ma
    corrected = diag_mean - batch_mean / ma
    return corrected + (value - corrected).detach()


def training_objective(name: str, scores: torch.Tensor, *, tau: float, state: dict) -> torch.Tensor:
    """What a critic maximises for each bound."""
    if name == "infonce":
        return infonce(scores)
    if name == "nwj":
        return nwj(scores)
    if name == "mine":
        return mine_surrogate(scores, state)
    if name == "smile":
        return smile(scores, tau)
    return js(scores)


def estimate(name: str, scores: torch.Tensor, *, tau: float) -> torch.Tensor:
    """The MI estimate (nats) a trained critic gives on a batch."""
    if name == "infonce":
        return infonce(scores)
    if name == "nwj":
        return nwj(scores)
    if name == "mine":
        return dv(scores)
    if name == "smile":
        return smile(scores, tau)
    return js_estimate(scores)
