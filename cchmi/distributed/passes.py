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

A replicate layout may carry a compiled ops backend that answers a subset of queries
(``takes_queries``, :func:`cchmi.distributed.local.kernel_backend`: the cpu backend on the CPU,
triton on a GPU).
The passes then call the pruned kernels on the worker's query rows instead of the block ops
(``ops.knn(be, points, k, queries=rows)``, ``ops.count_within(..., queries=rows)`` per group's
subspace), with the same results bit for bit; a search restricted to the query's label
(``same_label``) and ring mode use the block ops.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch

from cchmi import ops
from cchmi.ops._spatial import morton_order
from cchmi.ops.blocks import Block, Neighbours, count_update, knn_update

# Rows of a query tile of replicate mode.
TILE_ROWS = 256


@dataclass
class Layout:
    """The queries a worker answers and a factory of the reference blocks they must see."""

    queries: Block
    references: Callable[[], Iterable[Block]]
    kernel: ops.Backend | None = None  # a backend taking queries= (replicate mode), else None
    everything: np.ndarray | None = None  # with `kernel`: all the points (n, d), C-contiguous, host
    rows: np.ndarray | None = None  # with `kernel`: the queries' rows of `everything` (int64)


def tile_rows(points: torch.Tensor, worker: int, workers: int) -> torch.Tensor:
    """Rows (of `points`) of the Morton-sorted tiles numbered worker, worker + workers, ..."""
    order = morton_order(points[None])[0] if points.shape[0] else torch.zeros(0, dtype=torch.int64,
                                                                              device=points.device)
    tiles = order.split(TILE_ROWS)
    mine = [tiles[t] for t in range(worker, len(tiles), workers)]
    return torch.cat(mine) if mine else order[:0]


def replicate_layout(all_points: Block, worker: int, workers: int, kernel: ops.Backend | None = None) -> Layout:
    """Replicate mode: `all_points` (every row of the problem, in global row order) on this worker;
    `kernel`: a backend taking queries= to run the passes with (None: the block ops)."""
    rows = tile_rows(all_points.points, worker, workers)
    layout = Layout(all_points.rows(rows), lambda: [all_points])
    if kernel is not None:
        layout.kernel = kernel
        layout.everything = np.ascontiguousarray(all_points.points.cpu().numpy())
        layout.rows = rows.cpu().numpy()
    return layout


def ring_layout(shard: Block, comm) -> Layout:
    """Ring mode: this rank's shard as the queries; the blocks of every rank as the references."""
    return Layout(shard, lambda: comm.ring(shard))


def knn_pass(layout: Layout, k: int, widths: tuple[int, ...], same_label: bool = False) -> Neighbours:
    """The k nearest points (other than itself; of its own label when same_label) of every query."""
    q = layout.queries
    if layout.kernel is not None and not same_label and q.points.shape[0]:
        return _kernel_knn(layout, k, widths)
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
    if layout.kernel is not None and not any(same for _, same in groups) and q.points.shape[0]:
        rad = radius.cpu().numpy()
        for g, (members, _) in enumerate(groups):
            sub = np.ascontiguousarray(layout.everything[:, _columns(widths, members)])
            got = ops.count_within(layout.kernel, sub, np.ascontiguousarray(rad[:, g]), inclusive, queries=layout.rows)
            counts[:, g] = torch.from_numpy(layout.kernel.host(got)).to(counts.device)
        return counts
    for block in layout.references():
        counts = count_update(counts, q, radius, block, widths, groups, inclusive)
    return counts


def _columns(widths: tuple[int, ...], atoms) -> np.ndarray:
    """Column indices of the subspace made of `atoms` (consecutive column ranges of `widths`)."""
    starts = np.cumsum((0,) + widths)
    return np.concatenate([np.arange(starts[a], starts[a + 1]) for a in atoms])


def _kernel_knn(layout: Layout, k: int, widths: tuple[int, ...]) -> Neighbours:
    """knn_pass by the layout's kernel backend: the neighbours of the query rows, then each kept
    neighbour's distance in every atom (max |difference| over the atom's columns: the block ops'
    arithmetic, exact), on the host (O(m k d))."""
    p, rows = layout.everything, layout.rows
    dist, idx = map(layout.kernel.host, ops.knn(layout.kernel, p, k, queries=rows))
    atoms = np.stack([np.abs(p[idx][..., _columns(widths, (a,))] - p[rows, None][..., _columns(widths, (a,))])
                      .max(axis=-1) for a in range(len(widths))], axis=-1)
    device = layout.queries.points.device
    return Neighbours(*(torch.from_numpy(np.ascontiguousarray(t)).to(device) for t in (dist, idx, atoms)))
