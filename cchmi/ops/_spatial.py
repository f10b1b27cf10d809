"""Spatial sort and tile bounding boxes for the GPU kernels' pruning (torch, on the data's device).

The cuda and triton kernels visit candidates a tile at a time. After the points of a problem are
sorted along a Morton (Z-order) curve, a tile holds nearby points and its bounding box is small;
a kernel then skips a candidate tile for a query whose distance to the box already exceeds what
it is looking for (its k-th neighbour distance so far, or its counting radius), and counts a whole
tile without looking at it when the box lies entirely inside the radius.

The bounds are exact, not approximate: for p in a box [lo, hi] and any q, rounding is monotonic,
so fl(p_c - q_c) >= fl(lo_c - q_c) and fl(p_c - q_c) <= fl(hi_c - q_c). The kernels compute the
box distances with the same one-rounding arithmetic as the pair distances, so a pruned tile never
holds a neighbour and an all-in tile never holds an outsider: results are the same as without
pruning, bit for bit. Neighbour indices and tie-breaking use the original indices.
"""

from __future__ import annotations

import torch

CODE_BITS = 60  # bits of the Morton code (int64, with room to spare)


def morton_codes(points: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """(..., n, d) -> (..., n) int64: the Morton code of each point over the box lo, hi (float32,
    shape (..., 1, dims) or (dims,)) of its first dims = min(d, 60) coordinates, each quantised
    over the box to max(1, 60 // d) bits (at most 16), in float32."""
    d = points.shape[-1]
    dims = min(d, CODE_BITS)
    bits = max(1, min(16, CODE_BITS // dims))
    p = points[..., :dims].to(torch.float32)
    top = float(2**bits - 1)
    q = ((p - lo) * (top / torch.clamp(hi - lo, min=torch.finfo(torch.float32).tiny))).clamp_(0, top).to(torch.int64)
    code = torch.zeros(points.shape[:-1], dtype=torch.int64, device=points.device)
    for level in range(bits - 1, -1, -1):
        for c in range(dims):
            code = (code << 1) | ((q[..., c] >> level) & 1)
    return code


def morton_order(points: torch.Tensor) -> torch.Tensor:
    """(B, n, d) -> (B, n) int64: for each problem, the permutation sorting its points along a
    Morton curve (:func:`morton_codes` over the problem's own bounding box); ties by row."""
    p = points[..., :min(points.shape[-1], CODE_BITS)].to(torch.float32)
    code = morton_codes(points, p.amin(dim=1, keepdim=True), p.amax(dim=1, keepdim=True))
    return torch.argsort(code, dim=1, stable=True)


def tile_boxes(sorted_points: torch.Tensor, tile: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, n, d) -> lo, hi of shape (B, ceil(n / tile), d): the bounding box of each run of `tile`
    consecutive points (the last run may be shorter)."""
    b, n, d = sorted_points.shape
    tiles = -(-n // tile)
    pad = tiles * tile - n
    if pad:
        # Repeat the last point: it is inside its own tile's box already.
        sorted_points = torch.cat([sorted_points, sorted_points[:, -1:, :].expand(b, pad, d)], dim=1)
    runs = sorted_points.reshape(b, tiles, tile, d)
    return runs.amin(dim=2).contiguous(), runs.amax(dim=2).contiguous()


def to_sorted(values: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Per-point values (B, n) into sorted order."""
    return torch.gather(values, 1, order).contiguous()


def from_sorted(values: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Per-point values (B, n) or rows (B, n, k) in sorted order back to the original order."""
    out = torch.empty_like(values)
    index = order if values.dim() == 2 else order.unsqueeze(-1).expand_as(values)
    return out.scatter_(1, index, values)


def sorted_with_boxes(points: torch.Tensor, tile: int, order: torch.Tensor | None = None, prune: bool = True):
    """(B, n, d) -> (sorted points, order, lo, hi): the inputs of a pruning kernel whose candidate
    tiles hold `tile` points. `order` (from another space's sort) may be given. prune=False keeps
    the points in their order with infinite boxes: the kernels then do brute force (benchmarks)."""
    if not prune:
        b, n, d = points.shape
        order = torch.arange(n, device=points.device).expand(b, n).contiguous()
        tiles = -(-n // tile)
        inf = torch.full((b, tiles, d), float("inf"), dtype=points.dtype, device=points.device)
        return points.contiguous(), order, -inf, inf
    if order is None:
        order = morton_order(points)
    sp = torch.gather(points, 1, order.unsqueeze(-1).expand_as(points)).contiguous()
    lo, hi = tile_boxes(sp, tile)
    return sp, order, lo, hi


def sorted_for_counts(x: torch.Tensor, radius_x: torch.Tensor, y: torch.Tensor | None, radius_y: torch.Tensor | None,
                      tile: int, prune: bool = True):
    """Inputs of a counting kernel: one spatial order for x and y (that of the joint points, so both
    spaces' boxes stay tight). x (B, n, dx), radii (B, n); y and radius_y may be None.
    Returns (order, [(sorted points, lo, hi, sorted radii) for x, and for y when given])."""
    order = morton_order(x if y is None else torch.cat([x, y], dim=-1)) if prune else None
    spaces = []
    for points, radius in ((x, radius_x), (y, radius_y)):
        if points is None:
            break
        sp, order, lo, hi = sorted_with_boxes(points, tile, order, prune)
        spaces.append((sp, lo, hi, to_sorted(radius.to(points.dtype), order)))
    return order, spaces
