"""Exact max-norm kNN in Triton: the `triton` backend's kNN kernel and its launcher.

The kernel takes a batch of problems, points of shape (B, n, d) (float32 or float64, contiguous,
sorted along a Morton curve by the backend, with a bounding box per tile of BLOCK_N points), and
launches one program per block of BLOCK_M queries of one problem (grid (n / BLOCK_M, B)). No n x n
matrix exists: memory is O(B n (d + k)). Offsets are 64-bit.

It keeps the k best candidates of every query in registers as unsorted slots (distance, index),
ordered lexicographically (ties: the smaller index is nearer), and tracks the worst slot. A tile is
merged only while one of its candidates beats some query's worst: merging extracts each query's
best remaining candidate, at most k rounds, and none for most tiles once the slots are filled. A
tile whose box is farther from every query of the block than its k-th distance so far is skipped;
the bounds are exact, so results equal brute force's bit for bit. The launcher sorts the k slots at
the end. k is limited to MAX_K (the slots live in registers).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from cchmi._triton.tiles import BLOCK_M, BLOCK_N, box_bounds, distance_tile

MAX_K = 64  # slots are registers of every query: beyond this they spill
_BIG_INIT = tl.constexpr(2**62)  # index of an empty slot: larger than every point index
_BIG_GONE = tl.constexpr(2**62 + 1)  # index of a masked candidate (self, padding, extracted): never enters a slot


@triton.jit
def _worst(top_d, top_i, slots, KP: tl.constexpr):
    """Lexicographically largest (distance, index) slot of each row, and its position."""
    wd = tl.max(top_d, 1)
    at_wd = top_d == wd[:, None]
    wi = tl.max(tl.where(at_wd, top_i, -1), 1)
    wpos = tl.min(tl.where(at_wd & (top_i == wi[:, None]), slots[None, :], KP), 1)
    return wd, wi, wpos


@triton.jit
def _knn_kernel(P, IDX, LO, HI, OUT_D, OUT_I, n, d, k, n_tiles,
                KP: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """Program (i, b): query block i of problem b."""
    _knn_block(P, IDX, LO, HI, OUT_D, OUT_I, n, d, k, n_tiles, tl.program_id(0), KP, BLOCK_M, BLOCK_N)


@triton.jit
def _knn_blocks_kernel(P, IDX, LO, HI, OUT_D, OUT_I, BLOCKS, n, d, k, n_tiles,
                       KP: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """Program (i, b): query block BLOCKS[i] of problem b (a list of query blocks)."""
    _knn_block(P, IDX, LO, HI, OUT_D, OUT_I, n, d, k, n_tiles, tl.load(BLOCKS + tl.program_id(0)), KP, BLOCK_M,
               BLOCK_N)


@triton.jit
def _knn_block(P, IDX, LO, HI, OUT_D, OUT_I, n, d, k, n_tiles, block,
               KP: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """The k nearest of the BLOCK_M sorted rows of query block `block` of problem program_id(1)."""
    problem = tl.program_id(1).to(tl.int64)
    P = P + problem * n * d
    IDX = IDX + problem * n
    LO = LO + problem * n_tiles * d
    HI = HI + problem * n_tiles * d
    rows = block * BLOCK_M + tl.arange(0, BLOCK_M)
    rmask = rows < n
    slots = tl.arange(0, KP)
    inf = float("inf")
    # Slots s < k start empty (inf, _BIG_INIT); padding slots s >= k hold (-inf, -1): never the worst.
    live = slots[None, :] < k
    zero_d = tl.zeros([BLOCK_M, KP], dtype=P.dtype.element_ty)
    top_d = tl.where(live, zero_d + inf, zero_d - inf)
    top_i = tl.where(live, tl.full([BLOCK_M, KP], _BIG_INIT, tl.int64), -1)
    wd, wi, wpos = _worst(top_d, top_i, slots, KP)
    # Candidate tiles from the block's own one onwards (nearby first: the k-th distances tighten fast).
    first = (block * BLOCK_M) // BLOCK_N
    for step in range(n_tiles):
        tile = (first + step) % n_tiles
        near, _ = box_bounds(P, LO, HI, rows, tile, n, d, rmask)
        # A tile is needed by a row unless its box is farther than the row's k-th distance so far
        # (at equal distance a smaller original index could still enter).
        needed = rmask & (near <= wd)
        if tl.max(needed.to(tl.int32), 0) > 0:
            cols = tile * BLOCK_N + tl.arange(0, BLOCK_N)
            cmask = cols < n
            dist = distance_tile(P, rows, cols, n, d, rmask, cmask)
            gone = (cols[None, :] == rows[:, None]) | (cmask[None, :] == 0)
            dist = tl.where(gone, inf, dist)
            orig = tl.load(IDX + cols, mask=cmask, other=0)
            cand = tl.where(gone, _BIG_GONE, orig[None, :])
            # Extract each row's best remaining candidate while some row's beats its worst slot: at
            # most k rounds, none at all for a tile that only the box bound could not rule out.
            m = tl.min(dist, 1)
            jm = tl.min(tl.where(dist == m[:, None], cand, _BIG_GONE), 1)
            better = (m < wd) | ((m == wd) & (jm < wi))
            while tl.max(better.to(tl.int32), 0) > 0:
                put = better[:, None] & (slots[None, :] == wpos[:, None])
                top_d = tl.where(put, m[:, None], top_d)
                top_i = tl.where(put, jm[:, None], top_i)
                taken = cand == jm[:, None]
                dist = tl.where(taken, inf, dist)
                cand = tl.where(taken, _BIG_GONE, cand)
                wd, wi, wpos = _worst(top_d, top_i, slots, KP)
                m = tl.min(dist, 1)
                jm = tl.min(tl.where(dist == m[:, None], cand, _BIG_GONE), 1)
                better = (m < wd) | ((m == wd) & (jm < wi))
    out = (problem * n + rows.to(tl.int64))[:, None] * k + slots[None, :]
    omask = rmask[:, None] & live
    tl.store(OUT_D + out, top_d, mask=omask)
    tl.store(OUT_I + out, top_i, mask=omask)


def launch(sp: torch.Tensor, order: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, k: int, dist: torch.Tensor,
           idx: torch.Tensor, blocks: torch.Tensor | None = None) -> None:
    """Fills dist, idx (B, n, k) for the sorted points sp (B, n, d) with original indices `order`
    and tile boxes lo, hi (B, n_tiles, d): ascending by (distance, original index). blocks: None
    (every query) or the numbers of the query blocks of BLOCK_M sorted rows to answer (int64 on
    the device; the other rows of the outputs are left unspecified)."""
    b, n, d = sp.shape
    # KP (k rounded up to a power of two) is the only compile-time size: one compiled kernel per KP.
    sizes = dict(KP=triton.next_power_of_2(k), BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N)
    if blocks is None:
        _knn_kernel[(triton.cdiv(n, BLOCK_M), b)](sp, order, lo, hi, dist, idx, n, d, k, lo.shape[1], **sizes)
    elif blocks.numel():
        _knn_blocks_kernel[(blocks.numel(), b)](sp, order, lo, hi, dist, idx, blocks, n, d, k, lo.shape[1], **sizes)
    # Sort the slots by (distance, index): by index first, then stably by distance.
    slots_i, by_index = torch.sort(idx, dim=-1)
    slots_d, by_dist = torch.sort(torch.gather(dist, -1, by_index), dim=-1, stable=True)
    dist.copy_(slots_d)
    idx.copy_(torch.gather(slots_i, -1, by_dist))
