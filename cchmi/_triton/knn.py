"""Exact max-norm kNN and per-point-radius counts in Triton: the `triton` backend's kernels.

Both kernels take a batch of problems, ``points`` of shape (B, n, d) (float32 or float64,
contiguous), and launch one program per block of BLOCK_M queries of one problem (grid (n / BLOCK_M,
B)). Candidate tiles of BLOCK_N points stream past the block; a distance tile is built one
coordinate at a time as max_c |fl(p_jc - q_ic)| (one rounding, then exact abs and max), the
numerical contract shared with the C++ and CUDA kernels, so neighbour counts are bit-identical.
No n x n matrix exists: memory is O(B n (d + k)). Offsets are 64-bit.

kNN keeps the k best candidates of every query in registers as unsorted slots (distance, index),
ordered lexicographically (ties: the smaller index is nearer), and tracks the worst slot. A tile is
merged only while one of its candidates beats some query's worst: merging extracts each query's
best remaining candidate, at most k rounds, and none for most tiles once the slots are filled.
The wrapper sorts the k slots at the end. k is limited to MAX_K (the slots live in registers).

Counting counts both marginal spaces (x and y) in the same pass: strict ``<`` (KSG-1, Ross,
Frenzel-Pompe) or ``<=`` (KSG-2 extents, Gao et al.).

Both kernels run on points sorted along a Morton curve, with a bounding box per candidate tile
(cchmi/_spatial.py): a tile farther from every query of the block than what it looks for is skipped
(kNN: the k-th distance so far; counts: the radius), and, for counts, a tile whose box lies inside
a query's radius is counted whole. The bounds are exact, so results equal brute force's
(``prune=False``, kept for benchmarks) bit for bit. Results come back in the original order.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from cchmi import _spatial as spatial

BLOCK_M = 32
BLOCK_N = 32
MAX_K = 64  # slots are registers of every query: beyond this they spill (checked in the wrappers)
_BIG_INIT = tl.constexpr(2**62)  # index of an empty slot: larger than every point index
_BIG_GONE = tl.constexpr(2**62 + 1)  # index of a masked candidate (self, padding, extracted): never enters a slot


@triton.jit
def _distance_tile(P, rows, cols, n, d, rmask, cmask):
    """(BLOCK_M, BLOCK_N) max-norm distances between rows `rows` and `cols` of one (n, d) problem."""
    dist = tl.zeros([rows.shape[0], cols.shape[0]], dtype=P.dtype.element_ty)
    roff = rows.to(tl.int64) * d
    coff = cols.to(tl.int64) * d
    for c in range(d):
        q = tl.load(P + roff + c, mask=rmask, other=0.0)
        p = tl.load(P + coff + c, mask=cmask, other=0.0)
        dist = tl.maximum(dist, tl.abs(p[None, :] - q[:, None]))
    return dist


@triton.jit
def _worst(top_d, top_i, slots, KP: tl.constexpr):
    """Lexicographically largest (distance, index) slot of each row, and its position."""
    wd = tl.max(top_d, 1)
    at_wd = top_d == wd[:, None]
    wi = tl.max(tl.where(at_wd, top_i, -1), 1)
    wpos = tl.min(tl.where(at_wd & (top_i == wi[:, None]), slots[None, :], KP), 1)
    return wd, wi, wpos


@triton.jit
def _box_bounds(P, LO, HI, rows, tile, n, d, rmask):
    """Per row, lower and upper bounds of its distance to any point of candidate tile `tile`:
    max_c max(fl(lo_c - q_c), fl(q_c - hi_c), 0) and max_c max(fl(hi_c - q_c), fl(q_c - lo_c))."""
    near = tl.zeros([rows.shape[0]], dtype=P.dtype.element_ty)
    far = tl.zeros([rows.shape[0]], dtype=P.dtype.element_ty)
    roff = rows.to(tl.int64) * d
    boff = tile * d  # < n * d / BLOCK_N: 32-bit is enough for the box arrays
    for c in range(d):
        q = tl.load(P + roff + c, mask=rmask, other=0.0)
        lo = tl.load(LO + boff + c)
        hi = tl.load(HI + boff + c)
        near = tl.maximum(near, tl.maximum(lo - q, q - hi))
        far = tl.maximum(far, tl.maximum(hi - q, q - lo))
    return near, far


@triton.jit
def _knn_kernel(P, IDX, LO, HI, OUT_D, OUT_I, n, d, k, n_tiles,
                KP: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    problem = tl.program_id(1).to(tl.int64)
    P = P + problem * n * d
    IDX = IDX + problem * n
    LO = LO + problem * n_tiles * d
    HI = HI + problem * n_tiles * d
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
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
    first = (tl.program_id(0) * BLOCK_M) // BLOCK_N
    for step in range(n_tiles):
        tile = (first + step) % n_tiles
        near, _ = _box_bounds(P, LO, HI, rows, tile, n, d, rmask)
        # A tile is needed by a row unless its box is farther than the row's k-th distance so far
        # (at equal distance a smaller original index could still enter).
        needed = rmask & (near <= wd)
        if tl.max(needed.to(tl.int32), 0) > 0:
            cols = tile * BLOCK_N + tl.arange(0, BLOCK_N)
            cmask = cols < n
            dist = _distance_tile(P, rows, cols, n, d, rmask, cmask)
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


@triton.jit
def _tile_counts(P, LO, HI, R, rows, tile, n, d, rmask, cols, cmask, other,
                 INCLUSIVE: tl.constexpr, BLOCK_N: tl.constexpr):
    """Per row, the number of points of candidate tile `tile` within its radius: whole tiles are
    settled from their box (all inside, or none), the others by their distances."""
    near, far = _box_bounds(P, LO, HI, rows, tile, n, d, rmask)
    if INCLUSIVE:
        none = near > R
        every = far <= R
    else:
        none = near >= R
        every = far < R
    start = tile * BLOCK_N
    own = ((rows >= start) & (rows < start + BLOCK_N)).to(tl.int32)
    size = tl.minimum(n - start, BLOCK_N) - own  # points of the tile other than the row itself
    counts = tl.where(every, size, 0)
    scan = rmask & (none == 0) & (every == 0)
    if tl.max(scan.to(tl.int32), 0) > 0:
        dist = _distance_tile(P, rows, cols, n, d, rmask, cmask)
        if INCLUSIVE:
            inside = dist <= R[:, None]
        else:
            inside = dist < R[:, None]
        counts += tl.where(scan, tl.sum((inside & other).to(tl.int32), 1), 0)
    return counts


@triton.jit
def _count_kernel(X, Y, LOX, HIX, LOY, HIY, RX, RY, OUT_X, OUT_Y, n, dx, dy, n_tiles,
                  HAS_Y: tl.constexpr, INCLUSIVE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    problem = tl.program_id(1).to(tl.int64)
    X = X + problem * n * dx
    LOX = LOX + problem * n_tiles * dx
    HIX = HIX + problem * n_tiles * dx
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    rmask = rows < n
    prow = problem * n + rows.to(tl.int64)
    rx = tl.load(RX + prow, mask=rmask, other=0.0)
    cx = tl.zeros([BLOCK_M], dtype=tl.int32)
    if HAS_Y:
        Y = Y + problem * n * dy
        LOY = LOY + problem * n_tiles * dy
        HIY = HIY + problem * n_tiles * dy
        ry = tl.load(RY + prow, mask=rmask, other=0.0)
        cy = tl.zeros([BLOCK_M], dtype=tl.int32)
    for tile in range(n_tiles):
        cols = tile * BLOCK_N + tl.arange(0, BLOCK_N)
        cmask = cols < n
        other = (cols[None, :] != rows[:, None]) & (cmask[None, :] != 0)
        cx += _tile_counts(X, LOX, HIX, rx, rows, tile, n, dx, rmask, cols, cmask, other, INCLUSIVE, BLOCK_N)
        if HAS_Y:
            cy += _tile_counts(Y, LOY, HIY, ry, rows, tile, n, dy, rmask, cols, cmask, other, INCLUSIVE, BLOCK_N)
    tl.store(OUT_X + prow, cx.to(tl.int64), mask=rmask)
    if HAS_Y:
        tl.store(OUT_Y + prow, cy.to(tl.int64), mask=rmask)


def _batched(points: torch.Tensor, name: str) -> torch.Tensor:
    if points.dim() == 2:
        points = points.unsqueeze(0)
    if points.dim() != 3 or points.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"{name} must be a (n, d) or (B, n, d) float32/float64 tensor, got {tuple(points.shape)} "
                         f"{points.dtype}")
    return points.contiguous()


def check_k(k: int, n: int) -> None:
    if not 1 <= k <= n - 1:
        raise ValueError(f"k must satisfy 1 <= k <= n - 1 = {n - 1}; got k={k}")
    if k > MAX_K:
        raise ValueError(f"k={k} is above the triton backend's limit MAX_K={MAX_K} (the k best candidates live in "
                         "registers); use backend='cpu' for larger k")


def knn(points: torch.Tensor, k: int, prune: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """k nearest neighbours of every point ((n, d) or (B, n, d)), self excluded, ties by smaller index.

    Returns (dist, idx) of shape (..., n, k), ascending by (distance, index); idx is int64.
    prune=False: brute force (no spatial sort, no tile pruning), for benchmarks.
    """
    p = _batched(points, "points")
    b, n, d = p.shape
    check_k(k, n)
    out_d = torch.empty((b, n, k), dtype=p.dtype, device=p.device)
    out_i = torch.empty((b, n, k), dtype=torch.int64, device=p.device)
    kp = triton.next_power_of_2(k)
    sp, order, lo, hi = spatial.sorted_with_boxes(p, BLOCK_N, prune=prune)
    grid = (triton.cdiv(n, BLOCK_M), b)
    # KP (k rounded up to a power of two) is the only compile-time size: one compiled kernel per KP.
    _knn_kernel[grid](sp, order, lo, hi, out_d, out_i, n, d, k, lo.shape[1], KP=kp, BLOCK_M=BLOCK_M,
                      BLOCK_N=BLOCK_N)
    out_d, out_i = spatial.from_sorted(out_d, order), spatial.from_sorted(out_i, order)
    # Sort the slots by (distance, index): by index first, then stably by distance.
    out_i, order = torch.sort(out_i, dim=-1)
    out_d = torch.gather(out_d, -1, order)
    out_d, order = torch.sort(out_d, dim=-1, stable=True)
    out_i = torch.gather(out_i, -1, order)
    if points.dim() == 2:
        return out_d[0], out_i[0]
    return out_d, out_i


def count_within(x: torch.Tensor, radius_x: torch.Tensor, inclusive: bool, y: torch.Tensor | None = None,
                 radius_y: torch.Tensor | None = None, prune: bool = True):
    """#{j != i : dist(i, j) < radius[i]} (``<=`` when inclusive) for every point, in x and (when
    given) in y in the same pass. Shapes (n, d) / (n,) or batched (B, n, d) / (B, n).
    Returns counts_x, or (counts_x, counts_y), int64. prune=False: brute force (benchmarks)."""
    xb = _batched(x, "x")
    b, n, dx = xb.shape
    yb = None
    if y is not None:
        yb = _batched(y, "y")
        if yb.shape[:2] != (b, n) or yb.dtype != xb.dtype:
            raise ValueError("y must have the batch and row sizes and the dtype of x")
    order, spaces = spatial.sorted_for_counts(xb, radius_x.reshape(b, n), yb,
                                              None if yb is None else radius_y.reshape(b, n), BLOCK_N, prune)
    xs, lox, hix, rx = spaces[0]
    ys, loy, hiy, ry = spaces[-1]  # x again when there is no y (HAS_Y=False: unused)
    out_x = torch.empty((b, n), dtype=torch.int64, device=xb.device)
    out_y = torch.empty((b, n), dtype=torch.int64, device=xb.device) if yb is not None else out_x
    dy = ys.shape[2] if yb is not None else 0
    grid = (triton.cdiv(n, BLOCK_M), b)
    _count_kernel[grid](xs, ys, lox, hix, loy, hiy, rx, ry, out_x, out_y, n, dx, dy, lox.shape[1],
                        HAS_Y=yb is not None, INCLUSIVE=bool(inclusive), BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N)
    shape = (n,) if x.dim() == 2 else (b, n)
    counts_x = spatial.from_sorted(out_x, order).reshape(shape)
    if yb is None:
        return counts_x
    return counts_x, spatial.from_sorted(out_y, order).reshape(shape)
