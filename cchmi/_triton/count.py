"""Per-point-radius counts in Triton: the `triton` backend's counting kernel and its launcher.

One pass counts both marginal spaces (x and y) of a KSG estimate: strict ``<`` (KSG-1, Ross,
Frenzel-Pompe) or ``<=`` (KSG-2 extents, Gao et al.). Points come sorted along a Morton curve with
a bounding box per tile of BLOCK_N points (the backend's job): a tile whose box lies outside a
query's radius adds nothing, one inside it is counted whole without reading its points; the bounds
are exact, so counts equal brute force's. Grid (n / BLOCK_M, B); offsets 64-bit.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from cchmi._triton.tiles import BLOCK_M, BLOCK_N, box_bounds, distance_tile


@triton.jit
def _tile_counts(P, LO, HI, R, rows, tile, n, d, rmask, cols, cmask, other,
                 INCLUSIVE: tl.constexpr, BLOCK_N: tl.constexpr):
    """Per row, the number of points of candidate tile `tile` within its radius: whole tiles are
    settled from their box (all inside, or none), the others by their distances."""
    near, far = box_bounds(P, LO, HI, rows, tile, n, d, rmask)
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
        dist = distance_tile(P, rows, cols, n, d, rmask, cmask)
        if INCLUSIVE:
            inside = dist <= R[:, None]
        else:
            inside = dist < R[:, None]
        counts += tl.where(scan, tl.sum((inside & other).to(tl.int32), 1), 0)
    return counts


@triton.jit
def _count_kernel(X, Y, LOX, HIX, LOY, HIY, RX, RY, OUT_X, OUT_Y, n, dx, dy, n_tiles,
                  HAS_Y: tl.constexpr, INCLUSIVE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """Program (i, b): query block i of problem b."""
    _count_block(X, Y, LOX, HIX, LOY, HIY, RX, RY, OUT_X, OUT_Y, n, dx, dy, n_tiles, tl.program_id(0), HAS_Y,
                 INCLUSIVE, BLOCK_M, BLOCK_N)


@triton.jit
def _count_blocks_kernel(X, Y, LOX, HIX, LOY, HIY, RX, RY, OUT_X, OUT_Y, BLOCKS, n, dx, dy, n_tiles,
                         HAS_Y: tl.constexpr, INCLUSIVE: tl.constexpr, BLOCK_M: tl.constexpr,
                         BLOCK_N: tl.constexpr):
    """Program (i, b): query block BLOCKS[i] of problem b (a list of query blocks)."""
    _count_block(X, Y, LOX, HIX, LOY, HIY, RX, RY, OUT_X, OUT_Y, n, dx, dy, n_tiles,
                 tl.load(BLOCKS + tl.program_id(0)), HAS_Y, INCLUSIVE, BLOCK_M, BLOCK_N)


@triton.jit
def _count_block(X, Y, LOX, HIX, LOY, HIY, RX, RY, OUT_X, OUT_Y, n, dx, dy, n_tiles, block,
                 HAS_Y: tl.constexpr, INCLUSIVE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """The counts of the BLOCK_M sorted rows of query block `block` of problem program_id(1)."""
    problem = tl.program_id(1).to(tl.int64)
    X = X + problem * n * dx
    LOX = LOX + problem * n_tiles * dx
    HIX = HIX + problem * n_tiles * dx
    rows = block * BLOCK_M + tl.arange(0, BLOCK_M)
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


def launch(x_space, y_space, inclusive: bool, out_x: torch.Tensor, out_y: torch.Tensor | None,
           blocks: torch.Tensor | None = None) -> None:
    """Fills out_x (and out_y) (B, n) int64 with the counts of the sorted spaces x_space and
    y_space, each (points (B, n, d), lo, hi (B, n_tiles, d), radii (B, n)); y_space may be None.
    blocks: None (every query) or the numbers of the query blocks of BLOCK_M sorted rows to answer
    (int64 on the device; the other entries of the outputs are left unspecified)."""
    xs, lox, hix, rx = x_space
    ys, loy, hiy, ry = y_space if y_space is not None else x_space  # HAS_Y=False: unused
    b, n, dx = xs.shape
    dy = ys.shape[2] if y_space is not None else 0
    args = (xs, ys, lox, hix, loy, hiy, rx, ry, out_x, out_x if out_y is None else out_y)
    sizes = (n, dx, dy, lox.shape[1])
    flags = dict(HAS_Y=y_space is not None, INCLUSIVE=inclusive, BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N)
    if blocks is None:
        _count_kernel[(triton.cdiv(n, BLOCK_M), b)](*args, *sizes, **flags)
    elif blocks.numel():
        _count_blocks_kernel[(blocks.numel(), b)](*args, blocks, *sizes, **flags)
