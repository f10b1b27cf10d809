"""The two passes of a sharded estimate, over any source of reference blocks.

A *layout* says which queries this worker answers and how it sees the reference points:

* :func:`replicate_layout`: every worker holds all the points (gathered once), sorts them along a
  Morton curve (:func:`cchmi.ops._spatial.morton_order`, the kernels' sort) and answers the tiles
  of ``TILE_ROWS`` sorted points numbered ``worker, worker + workers, ...``: interleaved tiles, so
  that every worker gets a share of every region (balance) and each tile's queries are close in
  space (what the kernels' pruning needs). The references are all the points, as one block.
* :func:`ring_layout`: a worker answers its own shard and sees the others' shards one block at a
  time as they pass around the ring (:meth:`Comm.ring`); per worker O(N/P (d + k)) memory.

:func:`knn_pass` then keeps a running top-k per query over the reference blocks, and
:func:`count_pass` counts per query within radii, in one or several subspaces, in a second sweep
over the same blocks. Both are exact (:mod:`cchmi.ops.blocks`): the results do not depend on the
layout, the number of workers or the order of blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from cchmi.ops._spatial import morton_order
from cchmi.ops.blocks import Block, Neighbours, count_update, knn_update

# Rows of a query tile of replicate mode.
TILE_ROWS = 256


@dataclass
class Layout:
    """The queries a worker answers and a factory of the reference blocks they must see."""

    queries: Block
    references: Callable[[], Iterable[Block]]


def tile_rows(points: torch.Tensor, worker: int, workers: int) -> torch.Tensor:
    """Rows (of `points`) of the Morton-sorted tiles numbered worker, worker + workers, ..."""
    order = morton_order(points[None])[0] if points.shape[0] else torch.zeros(0, dtype=torch.int64,
                                                                              device=points.device)
    tiles = order.split(TILE_ROWS)
    mine = [tiles[t] for t in range(worker, len(tiles), workers)]
    return torch.cat(mine) if mine else order[:0]


def replicate_layout(all_points: Block, worker: int, workers: int) -> Layout:
    """Replicate mode: `all_points` (every row of the problem) on this worker."""
    rows = tile_rows(all_points.points, worker, workers)
    return Layout(all_points.rows(rows), lambda: [all_points])


def ring_layout(shard: Block, comm) -> Layout:
    """Ring mode: this rank's shard as the queries; the blocks of every rank as the references."""
    return Layout(shard, lambda: comm.ring(shard))


def knn_pass(layout: Layout, k: int, widths: tuple[int, ...], same_label: bool = False) -> Neighbours:
    """The k nearest points (other than itself; of its own label when same_label) of every query."""
    q = layout.queries
    state = Neighbours.empty(q.points.shape[0], k, len(widths), q.points.dtype, q.points.device)
    for block in layout.references():
        state = knn_update(state, q, block, widths, same_label)
    return state


def count_pass(layout: Layout, radius: torch.Tensor, widths: tuple[int, ...],
               groups: tuple[tuple[tuple[int, ...], bool], ...], inclusive: bool) -> torch.Tensor:
    """(m, G) int64: per query and group, the points within radius[:, g] (see
    :func:`cchmi.ops.blocks.count_update`)."""
    q = layout.queries
    counts = torch.zeros((q.points.shape[0], len(groups)), dtype=torch.int64, device=q.points.device)
    radius = radius.to(device=q.points.device, dtype=q.points.dtype).reshape(q.points.shape[0], len(groups))
    for block in layout.references():
        counts = count_update(counts, q, radius, block, widths, groups, inclusive)
    return counts
