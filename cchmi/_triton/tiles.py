"""What the Triton kNN and counting kernels share: the block sizes, the distance tile and the tile
box bounds.

A program owns BLOCK_M queries of one problem; candidate tiles of BLOCK_N points stream past it
(so the backend's tile boxes are over BLOCK_N points). A distance tile is built one coordinate at a
time as max_c |fl(p_jc - q_ic)| (one rounding, then exact abs and max): the numerical contract
shared with the C++ and CUDA kernels, so neighbour counts are bit-identical. Box bounds use the
same arithmetic, hence are exact (see cchmi/ops/_spatial.py).
"""

from __future__ import annotations

import triton
import triton.language as tl

BLOCK_M = 32
BLOCK_N = 32


@triton.jit
def distance_tile(P, rows, cols, n, d, rmask, cmask):
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
def box_bounds(P, LO, HI, rows, tile, n, d, rmask):
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
