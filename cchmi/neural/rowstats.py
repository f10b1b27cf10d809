"""Bounds of a separable critic from per-row statistics of S = A B^T, without the n x n matrix.

For encoded queries A (m, d) and candidates B (n, d), m <= n, with row i's positive (joint) pair at
column offset + i (the square batch: m = n, offset 0; gathered negatives: a rank's m rows against
the n = W m columns of every rank, offset rank * m), the statistics are

* diag_i = a_i . b_{offset+i} (computed in torch: O(m d));
* lse_all_i = log sum_j exp S_ij;
* lse_off_i = log sum_{j != offset+i} exp clip(S_ij, -tau, tau) (no clip for tau = inf);
* sp_off_i = sum_{j != offset+i} softplus(S_ij).

:func:`row_stats` computes them with the fused Triton kernels (cchmi/_triton/rowstats.py: forward
and backward recompute the scores tile by tile) when ``fused`` is true, else with the torch
reference :func:`row_stats_reference` (which materialises S). :func:`bound_from_stats` turns them
into every bound of :mod:`cchmi.neural.bounds`, with the same values and gradients, on one batch or
on the global batch of a process group (``gather_negatives``, :mod:`cchmi.neural.gather`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from cchmi.neural.bounds import mine_corrected
from cchmi.neural.gather import batch_reductions


def row_stats_reference(a: torch.Tensor, b: torch.Tensor, tau: float = math.inf, offset: int = 0):
    """(lse_all, lse_off, sp_off) from the materialised (m, n) score matrix, in float32 (or float64
    input); row i's positive is column offset + i."""
    dtype = torch.float64 if a.dtype == torch.float64 else torch.float32
    s = a.to(dtype) @ b.to(dtype).T
    m = s.shape[0]
    positive = torch.zeros(s.shape, dtype=torch.bool, device=s.device)
    positive[torch.arange(m, device=s.device), offset + torch.arange(m, device=s.device)] = True
    clipped = s.clamp(-tau, tau) if math.isfinite(tau) else s
    lse_all = torch.logsumexp(s, dim=1)
    lse_off = torch.logsumexp(clipped.masked_fill(positive, -math.inf), dim=1)
    sp_off = F.softplus(s).masked_fill(positive, 0.0).sum(dim=1)
    return lse_all, lse_off, sp_off


def row_stats(a: torch.Tensor, b: torch.Tensor, tau: float = math.inf, fused: bool = False,
              allow_tf32: bool = False, offset: int = 0):
    """(lse_all, lse_off, sp_off), one per row of a, differentiable in a and b. a is (m, d), b is
    (n, d) with n >= 2 and 0 <= offset <= n - m (row i's positive at column offset + i).
    allow_tf32 (fused, float32 input): score products on TF32 tensor cores, faster and accurate to
    about 1e-3 relative."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or a.shape[0] < 1 or b.shape[0] < 2:
        raise ValueError(f"a must be (m, d) and b (n, d) with m >= 1 and n >= 2, got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= b.shape[0] - a.shape[0]:
        raise ValueError(f"offset must be an integer in [0, n - m] = [0, {b.shape[0] - a.shape[0]}] (row i's "
                         f"positive is column offset + i), got {offset!r}")
    if not fused:
        return row_stats_reference(a, b, tau, offset)
    from cchmi._triton.rowstats import RowStats

    return RowStats.apply(a, b, float(tau), bool(allow_tf32), offset)


def bound_from_stats(name: str, a: torch.Tensor, b: torch.Tensor, *, tau: float = 5.0, fused: bool = False,
                     allow_tf32: bool = False, state: dict | None = None, objective: bool = False,
                     gather_negatives: bool = False, group=None) -> torch.Tensor:
    """The estimate (objective=False) or the training objective (True) of bound `name` for the
    separable scores a_i . b_j of the pairs (a_i, b_i), as :func:`cchmi.neural.bounds.estimate` /
    ``training_objective``.

    gather_negatives: a and b are this rank's rows of the global batch of the process group
    `group` (None: the default group; every rank the same number of rows, in rank order): the value
    is the bound on the global batch (InfoNCE's ceiling is log of the global batch), identical on
    every rank; the gradient on each rank is its share, and the ranks' parameter gradients sum to
    the one-process gradient (:mod:`cchmi.neural.gather`). MINE's moving average (``state``) is then
    that of the global batches' E_q exp f, the same on every rank. Without an initialised process
    group it is a ValueError; a group of one is the local path."""
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"a and b must both be (m, d), got {tuple(a.shape)} and {tuple(b.shape)}")
    red = batch_reductions(a.shape[0], gather_negatives, group)
    n = red.n
    log_pairs = math.log(n * (n - 1))
    diag = (a.float() * b.float()).sum(dim=1) if a.dtype != torch.float64 else (a * b).sum(dim=1)
    clip = tau if name == "smile" else math.inf
    lse_all, lse_off, sp_off = row_stats(a, red.columns(b), clip, fused, allow_tf32, red.offset)
    if name == "infonce":
        return red.mean(diag - lse_all) + math.log(n)
    log_mean_exp_off = red.logsumexp(lse_off) - log_pairs
    diag_mean = red.mean(diag)
    if name == "nwj":
        return diag_mean - torch.exp(log_mean_exp_off - 1.0)
    dv = diag_mean - log_mean_exp_off  # clipped for smile
    if name == "mine":
        if not objective:
            return dv
        return mine_corrected(diag_mean, torch.exp(log_mean_exp_off), dv, state)
    js = -red.mean(F.softplus(-diag)) - red.sum(sp_off) / (n * (n - 1))
    if name == "smile":
        return js + (dv - js).detach()
    # js: trained on the JS objective, reported as NWJ of f + 1
    return js if objective else diag_mean + 1.0 - torch.exp(log_mean_exp_off)
