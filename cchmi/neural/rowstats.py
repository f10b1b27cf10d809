"""Bounds of a separable critic from per-row statistics of S = A B^T, without the n x n matrix.

For encoded batches A (n, d) and B (n, d) (scores S_ij = a_i . b_j), the statistics are

* diag_i = a_i . b_i (computed in torch: O(n d));
* lse_all_i = log sum_j exp S_ij;
* lse_off_i = log sum_{j != i} exp clip(S_ij, -tau, tau) (no clip for tau = inf);
* sp_off_i = sum_{j != i} softplus(S_ij).

:func:`row_stats` computes them with the fused Triton kernels (cchmi/_triton/rowstats.py: forward
and backward recompute the scores tile by tile) when ``fused`` is true, else with the torch
reference :func:`row_stats_reference` (which materialises S). :func:`bound_from_stats` turns them
into every bound of :mod:`cchmi.neural.bounds`, with the same values and gradients.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from cchmi.neural.bounds import mine_corrected


def row_stats_reference(a: torch.Tensor, b: torch.Tensor, tau: float = math.inf):
    """(lse_all, lse_off, sp_off) from the materialised score matrix, in float32 (or float64 input)."""
    dtype = torch.float64 if a.dtype == torch.float64 else torch.float32
    s = a.to(dtype) @ b.to(dtype).T
    n = s.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=s.device)
    clipped = s.clamp(-tau, tau) if math.isfinite(tau) else s
    lse_all = torch.logsumexp(s, dim=1)
    lse_off = torch.logsumexp(clipped.masked_fill(eye, -math.inf), dim=1)
    sp_off = F.softplus(s).masked_fill(eye, 0.0).sum(dim=1)
    return lse_all, lse_off, sp_off


def row_stats(a: torch.Tensor, b: torch.Tensor, tau: float = math.inf, fused: bool = False,
              allow_tf32: bool = False):
    """(lse_all, lse_off, sp_off), differentiable in a and b. allow_tf32 (fused, float32 input):
    score products on TF32 tensor cores, faster and accurate to about 1e-3 relative."""
    if a.ndim != 2 or a.shape != b.shape or a.shape[0] < 2:
        raise ValueError(f"a and b must both be (n, d) with n >= 2, got {tuple(a.shape)} and {tuple(b.shape)}")
    if not fused:
        return row_stats_reference(a, b, tau)
    from cchmi._triton.rowstats import RowStats

    return RowStats.apply(a, b, float(tau), bool(allow_tf32))


def bound_from_stats(name: str, a: torch.Tensor, b: torch.Tensor, *, tau: float = 5.0, fused: bool = False,
                     allow_tf32: bool = False, state: dict | None = None, objective: bool = False) -> torch.Tensor:
    """The estimate (objective=False) or the training objective (True) of bound `name` for the
    separable scores a_i . b_j, as :func:`cchmi.neural.bounds.estimate` / ``training_objective``."""
    n = a.shape[0]
    log_pairs = math.log(n * (n - 1))
    diag = (a.float() * b.float()).sum(dim=1) if a.dtype != torch.float64 else (a * b).sum(dim=1)
    clip = tau if name == "smile" else math.inf
    lse_all, lse_off, sp_off = row_stats(a, b, clip, fused, allow_tf32)
    if name == "infonce":
        return (diag - lse_all).mean() + math.log(n)
    log_mean_exp_off = torch.logsumexp(lse_off, dim=0) - log_pairs
    if name == "nwj":
        return diag.mean() - torch.exp(log_mean_exp_off - 1.0)
    dv = diag.mean() - log_mean_exp_off  # clipped for smile
    if name == "mine":
        if not objective:
            return dv
        return mine_corrected(diag.mean(), torch.exp(log_mean_exp_off), dv, state)
    js = -F.softplus(-diag).mean() - sp_off.sum() / (n * (n - 1))
    if name == "smile":
        return js + (dv - js).detach()
    # js: trained on the JS objective, reported as NWJ of f + 1
    return js if objective else diag.mean() + 1.0 - torch.exp(log_mean_exp_off)
