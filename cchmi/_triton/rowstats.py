"""Fused row statistics of the score matrix S = A B^T of a separable critic, forward and backward.

A is (m, d) (the queries), B is (n, d) (every candidate), m <= n; row i's positive is column
offset + i (offset = 0 and m = n: the square batch; offset = rank * m: a rank's rows against the
columns gathered from every rank). Per row i: lse_all_i = log sum_j exp S_ij,
lse_off_i = log sum_{j != offset + i} exp clip(S_ij, -tau, tau),
sp_off_i = sum_{j != offset + i} softplus(S_ij). The forward pass streams tiles of B past a block of rows of
A, computing each score tile with tl.dot (float32 accumulation) and folding it into running
log-sum-exps (the flash-attention recurrence); the backward pass recomputes the tiles, so memory is
O((m + n) d), never O(m n). dA is accumulated by row blocks, dB by column blocks (two kernels, no atomics).
Offsets are 64-bit. float32 products use IEEE precision unless TF32 is allowed; bfloat16 inputs
use the bf16 tensor-core path with float32 accumulation. Under TRITON_INTERPRET=1 (the CPU tests) tiles are
upcast to float32 after loading: the interpreter's bf16 dot is unreliable, so there the bf16 path
checks the arithmetic, and the tensor-core path is checked by the GPU tests only.
"""

from __future__ import annotations

import math
import os

import torch
import triton
import triton.language as tl

BLOCK_M = 32
BLOCK_N = 32
MAX_DIM = 256  # a row tile holds all d columns: wider embeddings would spill registers (checked below)


@triton.jit
def _softplus(x):
    return tl.maximum(x, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(x)))


@triton.jit
def _load_tile(P, idx, n, d, stride, dd, UPCAST: tl.constexpr):
    """Rows `idx` of the (n, d) matrix P; float32 under the interpreter (UPCAST), whose bf16 dot is unreliable."""
    x = tl.load(P + idx[:, None].to(tl.int64) * stride + dd[None, :], mask=(idx[:, None] < n) & (dd[None, :] < d),
                other=0.0)
    if UPCAST:
        x = x.to(tl.float32)
    return x


@triton.jit
def _scores(a, B, cols, n, d, stride_b, dd, IEEE: tl.constexpr, UPCAST: tl.constexpr):
    """One tile of scores: rows of `a` (already loaded) against columns `cols` of B."""
    cmask = cols < n
    b = _load_tile(B, cols, n, d, stride_b, dd, UPCAST)
    if IEEE:
        s = tl.dot(a, tl.trans(b), input_precision="ieee")
    else:
        s = tl.dot(a, tl.trans(b))
    return s, b, cmask


@triton.jit
def _rowstats_fwd(A, B, LSE_ALL, LSE_OFF, SP_OFF, m, n, d, offset, stride_a, stride_b, tau,
                  CLIP: tl.constexpr, IEEE: tl.constexpr, UPCAST: tl.constexpr,
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    rmask = rows < m
    dd = tl.arange(0, BLOCK_D)
    a = _load_tile(A, rows, m, d, stride_a, dd, UPCAST)
    neg_inf = float("-inf")
    m_all = tl.full([BLOCK_M], neg_inf, tl.float32)
    l_all = tl.zeros([BLOCK_M], tl.float32)
    m_off = tl.full([BLOCK_M], neg_inf, tl.float32)
    l_off = tl.zeros([BLOCK_M], tl.float32)
    sp = tl.zeros([BLOCK_M], tl.float32)
    for start in range(0, n, BLOCK_N):
        cols = start + tl.arange(0, BLOCK_N)
        s, _, cmask = _scores(a, B, cols, n, d, stride_b, dd, IEEE, UPCAST)
        valid = rmask[:, None] & cmask[None, :]
        off = valid & (rows[:, None] + offset != cols[None, :])

        s_all = tl.where(valid, s, neg_inf)
        m_new = tl.maximum(m_all, tl.max(s_all, 1))
        m_safe = tl.where(m_new == neg_inf, 0.0, m_new)
        l_all = l_all * tl.exp(m_all - m_safe) + tl.sum(tl.exp(s_all - m_safe[:, None]), 1)
        m_all = m_new

        if CLIP:
            sc = tl.minimum(tl.maximum(s, -tau), tau)
        else:
            sc = s
        s_off = tl.where(off, sc, neg_inf)
        m_new = tl.maximum(m_off, tl.max(s_off, 1))
        m_safe = tl.where(m_new == neg_inf, 0.0, m_new)
        l_off = l_off * tl.exp(m_off - m_safe) + tl.sum(tl.exp(s_off - m_safe[:, None]), 1)
        m_off = m_new

        sp += tl.sum(tl.where(off, _softplus(s), 0.0), 1)
    # Padding rows (beyond m) have empty sums: log(1) there keeps them finite; they are not stored.
    tl.store(LSE_ALL + rows, m_all + tl.log(tl.where(rmask, l_all, 1.0)), mask=rmask)
    tl.store(LSE_OFF + rows, m_off + tl.log(tl.where(rmask, l_off, 1.0)), mask=rmask)
    tl.store(SP_OFF + rows, sp, mask=rmask)


@triton.jit
def _grad_scores(s, rows, cols, offset, valid, lse_all, lse_off, g_all, g_off, g_sp, tau, CLIP: tl.constexpr):
    """d loss / d S for a tile, given the row statistics and their incoming gradients."""
    off = valid & (rows[:, None] + offset != cols[None, :])
    ds = g_all[:, None] * tl.exp(s - lse_all[:, None])
    if CLIP:
        sc = tl.minimum(tl.maximum(s, -tau), tau)
        inside = (s >= -tau) & (s <= tau)
        ds += tl.where(off & inside, g_off[:, None] * tl.exp(sc - lse_off[:, None]), 0.0)
    else:
        ds += tl.where(off, g_off[:, None] * tl.exp(s - lse_off[:, None]), 0.0)
    ds += tl.where(off, g_sp[:, None] * tl.sigmoid(s), 0.0)
    return tl.where(valid, ds, 0.0)


@triton.jit
def _load_row_state(rows, rmask, LSE_ALL, LSE_OFF, G_ALL, G_OFF, G_SP):
    lse_all = tl.load(LSE_ALL + rows, mask=rmask, other=0.0)
    lse_off = tl.load(LSE_OFF + rows, mask=rmask, other=0.0)
    g_all = tl.load(G_ALL + rows, mask=rmask, other=0.0)
    g_off = tl.load(G_OFF + rows, mask=rmask, other=0.0)
    g_sp = tl.load(G_SP + rows, mask=rmask, other=0.0)
    return lse_all, lse_off, g_all, g_off, g_sp


@triton.jit
def _rowstats_bwd_a(A, B, DA, LSE_ALL, LSE_OFF, G_ALL, G_OFF, G_SP, m, n, d, offset, stride_a, stride_b, stride_da,
                    tau, CLIP: tl.constexpr, IEEE: tl.constexpr, UPCAST: tl.constexpr,
                    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    rmask = rows < m
    dd = tl.arange(0, BLOCK_D)
    amask = rmask[:, None] & (dd[None, :] < d)
    a = _load_tile(A, rows, m, d, stride_a, dd, UPCAST)
    lse_all, lse_off, g_all, g_off, g_sp = _load_row_state(rows, rmask, LSE_ALL, LSE_OFF, G_ALL, G_OFF, G_SP)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    for start in range(0, n, BLOCK_N):
        cols = start + tl.arange(0, BLOCK_N)
        s, b, cmask = _scores(a, B, cols, n, d, stride_b, dd, IEEE, UPCAST)
        ds = _grad_scores(s, rows, cols, offset, rmask[:, None] & cmask[None, :], lse_all, lse_off, g_all, g_off,
                          g_sp, tau, CLIP)
        if IEEE:
            acc += tl.dot(ds.to(b.dtype), b, input_precision="ieee")
        else:
            acc += tl.dot(ds.to(b.dtype), b)
    tl.store(DA + rows[:, None].to(tl.int64) * stride_da + dd[None, :], acc, mask=amask)


@triton.jit
def _rowstats_bwd_b(A, B, DB, LSE_ALL, LSE_OFF, G_ALL, G_OFF, G_SP, m, n, d, offset, stride_a, stride_b, stride_db,
                    tau, CLIP: tl.constexpr, IEEE: tl.constexpr, UPCAST: tl.constexpr,
                    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    cols = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    cmask = cols < n
    dd = tl.arange(0, BLOCK_D)
    bmask = cmask[:, None] & (dd[None, :] < d)
    b = _load_tile(B, cols, n, d, stride_b, dd, UPCAST)
    acc = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    for start in range(0, m, BLOCK_M):
        rows = start + tl.arange(0, BLOCK_M)
        rmask = rows < m
        a = _load_tile(A, rows, m, d, stride_a, dd, UPCAST)
        if IEEE:
            s = tl.dot(a, tl.trans(b), input_precision="ieee")
        else:
            s = tl.dot(a, tl.trans(b))
        lse_all, lse_off, g_all, g_off, g_sp = _load_row_state(rows, rmask, LSE_ALL, LSE_OFF, G_ALL, G_OFF, G_SP)
        ds = _grad_scores(s, rows, cols, offset, rmask[:, None] & cmask[None, :], lse_all, lse_off, g_all, g_off,
                          g_sp, tau, CLIP)
        if IEEE:
            acc += tl.dot(tl.trans(ds.to(a.dtype)), a, input_precision="ieee")
        else:
            acc += tl.dot(tl.trans(ds.to(a.dtype)), a)
    tl.store(DB + cols[:, None].to(tl.int64) * stride_db + dd[None, :], acc, mask=bmask)


def _launch_args(a: torch.Tensor, tau: float, allow_tf32: bool):
    d = a.shape[1]
    block_d = max(16, triton.next_power_of_2(d))
    clip = math.isfinite(tau)
    upcast = os.environ.get("TRITON_INTERPRET") == "1"
    ieee = upcast or (a.dtype == torch.float32 and not allow_tf32)
    return d, block_d, clip, ieee, upcast, (tau if clip else 0.0)


class RowStats(torch.autograd.Function):
    """(lse_all, lse_off, sp_off) of A B^T (float32 outputs, one per row of A); A (m, d) and B (n, d)
    float32 or bfloat16 of one dtype, row i's positive at column offset + i (shapes and offset
    checked by the caller, :func:`cchmi.neural.rowstats.row_stats`). allow_tf32: float32 products on
    TF32 tensor cores (about 10 bits of mantissa) instead of IEEE."""

    @staticmethod
    def forward(ctx, a, b, tau, allow_tf32=False, offset=0):
        if a.dtype not in (torch.float32, torch.bfloat16) or b.dtype != a.dtype:
            raise TypeError(f"fused row statistics take float32 or bfloat16 A and B of one dtype, got {a.dtype}, {b.dtype}")
        if a.shape[1] > MAX_DIM:
            raise ValueError(f"fused row statistics take embedding dims up to {MAX_DIM}, got {a.shape[1]}: "
                             "use a smaller embed_dim or fused=False")
        a, b = a.contiguous(), b.contiguous()
        m, n = a.shape[0], b.shape[0]
        d, block_d, clip, ieee, upcast, tau_arg = _launch_args(a, tau, allow_tf32)
        out = [torch.empty(m, dtype=torch.float32, device=a.device) for _ in range(3)]
        _rowstats_fwd[(triton.cdiv(m, BLOCK_M),)](
            a, b, *out, m, n, d, offset, a.stride(0), b.stride(0), tau_arg,
            CLIP=clip, IEEE=ieee, UPCAST=upcast, BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, BLOCK_D=block_d)
        ctx.save_for_backward(a, b, out[0], out[1])
        ctx.tau, ctx.allow_tf32, ctx.offset = tau, allow_tf32, offset
        return tuple(out)

    @staticmethod
    def backward(ctx, g_all, g_off, g_sp):
        a, b, lse_all, lse_off = ctx.saved_tensors
        m, n = a.shape[0], b.shape[0]
        d, block_d, clip, ieee, upcast, tau_arg = _launch_args(a, ctx.tau, ctx.allow_tf32)
        grads = [torch.zeros(m, dtype=torch.float32, device=a.device) if g is None else g.contiguous().float()
                 for g in (g_all, g_off, g_sp)]
        da = torch.empty((m, d), dtype=torch.float32, device=a.device)
        db = torch.empty((n, d), dtype=torch.float32, device=a.device)
        common = dict(CLIP=clip, IEEE=ieee, UPCAST=upcast, BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, BLOCK_D=block_d)
        _rowstats_bwd_a[(triton.cdiv(m, BLOCK_M),)](
            a, b, da, lse_all, lse_off, *grads, m, n, d, ctx.offset, a.stride(0), b.stride(0), da.stride(0),
            tau_arg, **common)
        _rowstats_bwd_b[(triton.cdiv(n, BLOCK_N),)](
            a, b, db, lse_all, lse_off, *grads, m, n, d, ctx.offset, a.stride(0), b.stride(0), db.stride(0),
            tau_arg, **common)
        return da.to(a.dtype), db.to(b.dtype), None, None, None
