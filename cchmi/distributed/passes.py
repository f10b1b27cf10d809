"""The two passes of a sharded estimate, over any source of reference blocks.

A *layout* says which queries this worker answers and how it sees the reference points:

* :func:`replicate_layout`: every worker holds all the points (gathered once), sorts them along a
  Morton curve (:func:`cchmi.ops._spatial.morton_order`, the kernels' sort) and answers the tiles
  of ``TILE_ROWS`` sorted points numbered ``worker, worker + workers, ...``: interleaved tiles, so
  that every worker gets a share of every region (balance) and each tile's queries are close in
  space (what the kernels' pruning needs). The references are all the points, as one block.
* :func:`ring_layout`: the rows are first range-partitioned by global Morton code
  (:mod:`cchmi.distributed.partition`: sample sort, one all_to_all), so that each rank holds a
  compact region of space; a rank answers the rows it received and sees the other ranks' rows one
  block at a time as they pass around the ring (:meth:`Comm.ring`, its own block first). Per-row
  results go back to the rows' owners through the layout's ``route`` where a caller needs them
  there (:mod:`cchmi.distributed.knn`); the estimators only add row terms, which needs no return.

:func:`knn_pass` then keeps a running top-k per query over the reference blocks, and
:func:`count_pass` counts per query within radii, in one or several subspaces, in a second sweep
over the same blocks. Both are exact: the results do not depend on the layout, the number of
workers or the order of blocks.

Kernels. A layout may carry a compiled ops backend that answers a subset of queries
(``takes_queries``, :func:`cchmi.distributed.local.kernel_backend`: the cpu backend on the CPU,
cuda, else triton, on a GPU). Replicate mode calls the pruned kernels on the worker's query rows of all the
points (``ops.knn(be, points, k, queries=rows)``, ``ops.count_within(..., queries=rows)`` per
group's subspace). Ring mode calls them once per step: for the reference block B, on the points
U = (queries u B) in global index order (so the kernels' (distance, index) tie order is the global
order), with ``queries=`` the query rows; the step's top-k is merged into the running top-k
(:func:`cchmi.ops.blocks.merge_neighbours`, the queries' own points seen at every step dropped),
and a step's counts are count(U) - count(queries) per query (the queries' own block counted once,
at its own step): integers, exact. A search restricted to the query's label (``same_label``), a k
above the backend's limit and a layout without a kernel use the block ops (:mod:`cchmi.ops.blocks`,
brute force), which are also the tests' reference.

Pruning (ring mode). A step's queries are only those a reference block can change: the block's
bounding box (:func:`cchmi.ops.blocks.box_distance`, exact bounds) must not be farther than the
query's current k-th distance (kNN: a box strictly farther holds no point of the top-k by
(distance, index)), nor at or beyond its radius (strict counts; beyond it for inclusive counts) in
the group's subspace. A block no query needs costs no kernel or block work (it still travels the
ring: the others need it); ``Layout.stats`` counts the steps and the skipped ones. Skipping changes
no bit of the results (tests).

Memory per rank in ring mode: the received rows, under 1.125 N / P + P + 1 of them
(:mod:`cchmi.distributed.partition`), with d values, an index and a label each; two ring buffers of
as many rows; the running top-k (k distances, indices and per-atom distances per query) or the
counts; per step the union U (at most two blocks) and the kernel's outputs for the step's queries
(k per query): O(N / P (d + k)). No rank holds N x d or a block of N x N.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

from cchmi import ops
from cchmi.distributed.partition import Route, range_partition
from cchmi.ops._spatial import morton_order
from cchmi.ops.blocks import Block, Neighbours, box_distance, count_update, knn_update, merge_neighbours

# Rows of a query tile of replicate mode.
TILE_ROWS = 256
# Ring mode: skip the queries (and blocks) a reference block cannot change (module docstring).
PRUNE_BLOCKS = True


@dataclass
class Layout:
    """The queries a worker answers and a factory of the reference blocks they must see."""

    queries: Block
    references: Callable[[], Iterable[Block]]
    kernel: ops.Backend | None = None  # a backend taking queries=, else None (the block ops)
    everything: np.ndarray | None = None  # replicate mode with `kernel`: all the points (n, d), host
    rows: np.ndarray | None = None  # replicate mode with `kernel`: the queries' rows of `everything`
    route: Route | None = None  # ring mode: where the queries came from (results back to owners)
    prune: bool = False  # ring mode: skip what a block's bounding box rules out
    # Ring mode: steps (query block x reference block, per pass and group), those skipped whole, and
    # the query rows of the steps (each query once per step) and those pruned.
    stats: dict = field(default_factory=lambda: dict.fromkeys(
        ("knn_steps", "knn_skipped", "knn_rows", "knn_rows_skipped", "count_steps", "count_skipped", "count_rows",
         "count_rows_skipped"), 0))


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


def ring_layout(shard: Block, comm, kernel: ops.Backend | None = None, prune: bool | None = None) -> Layout:
    """Ring mode: this rank's shard range-partitioned with the others' (collective); the rows
    received are the queries, the blocks of every rank (this rank's first) the references.
    kernel: a backend taking queries= (None: the block ops); prune: None reads PRUNE_BLOCKS."""
    mine, route = range_partition(shard, comm)
    return Layout(mine, lambda: comm.ring(mine), kernel=kernel, route=route,
                  prune=PRUNE_BLOCKS if prune is None else prune)


def knn_pass(layout: Layout, k: int, widths: tuple[int, ...], same_label: bool = False) -> Neighbours:
    """The k nearest points (other than itself; of its own label when same_label) of every query."""
    q = layout.queries
    m = q.points.shape[0]
    if layout.everything is not None and not same_label and m and _fits(layout.kernel, k):
        return _kernel_knn(layout, k, widths)
    state = Neighbours.empty(m, k, len(widths), q.points.dtype, q.points.device)
    kernel = None if same_label or not _fits(layout.kernel, k) else layout.kernel
    every = tuple(range(len(widths)))  # the subspace of the kNN search: all the atoms
    for block in layout.references():
        if m == 0 or block.points.shape[0] == 0:
            continue
        layout.stats["knn_steps"] += 1
        layout.stats["knn_rows"] += m
        need = _needed(layout, q, block, state.dist[:, -1], widths, [every], lambda bound, kth: bound <= kth)[0]
        layout.stats["knn_rows_skipped"] += 0 if need is None else m - need.numel()
        if need is not None and need.numel() == 0:
            layout.stats["knn_skipped"] += 1
        elif need is None and kernel is None:
            state = knn_update(state, q, block, widths, same_label)
        elif need is None:
            state = merge_neighbours(state, _kernel_step_knn(kernel, q, slice(None), block, k, widths))
        elif kernel is None:
            state.put(need, knn_update(state.rows(need), q.rows(need), block, widths, same_label))
        else:
            state.put(need, merge_neighbours(state.rows(need), _kernel_step_knn(kernel, q, need, block, k, widths)))
    return state


def count_pass(layout: Layout, radius: torch.Tensor, widths: tuple[int, ...],
               groups: tuple[tuple[tuple[int, ...], bool], ...], inclusive: bool) -> torch.Tensor:
    """(m, G) int64: per query and group, the points within radius[:, g] (see
    :func:`cchmi.ops.blocks.count_update`)."""
    q = layout.queries
    m = q.points.shape[0]
    counts = torch.zeros((m, len(groups)), dtype=torch.int64, device=q.points.device)
    radius = radius.to(device=q.points.device, dtype=q.points.dtype).reshape(m, len(groups))
    same = any(same for _, same in groups)
    if layout.everything is not None and not same and m:
        rad = radius.cpu().numpy()
        for g, (members, _) in enumerate(groups):
            sub = np.ascontiguousarray(layout.everything[:, _columns(widths, members)])
            got = ops.count_within(layout.kernel, sub, np.ascontiguousarray(rad[:, g]), inclusive, queries=layout.rows)
            counts[:, g] = torch.from_numpy(layout.kernel.host(got)).to(counts.device)
        return counts
    kernel = None if same else layout.kernel
    subspaces = [_columns(widths, members) for members, _ in groups]
    own = {}  # kernel steps: group -> count(queries) of every query (the queries' own points)
    host = (radius.cpu().numpy(), q.points.cpu().numpy()) if kernel is not None else None  # once per pass
    for block in layout.references():
        if m == 0 or block.points.shape[0] == 0:
            continue
        layout.stats["count_steps"] += len(groups)
        needs = _needed(layout, q, block, radius.T, widths, [members for members, _ in groups],
                        (lambda bound, r: bound <= r) if inclusive else (lambda bound, r: bound < r))
        layout.stats["count_skipped"] += sum(need is not None and need.numel() == 0 for need in needs)
        layout.stats["count_rows"] += m * len(groups)
        layout.stats["count_rows_skipped"] += sum(0 if need is None else m - need.numel() for need in needs)
        if kernel is None and all(need is None for need in needs):
            counts = count_update(counts, q, radius, block, widths, groups, inclusive)
        elif kernel is None:
            for g, need in enumerate(needs):
                rows = slice(None) if need is None else need
                if need is None or need.numel():
                    counts[rows, g:g + 1] = count_update(counts[rows, g:g + 1], q.rows(rows), radius[rows, g:g + 1],
                                                         block, widths, groups[g:g + 1], inclusive)
        else:
            _kernel_step_counts(kernel, q, block, host, subspaces, needs, inclusive, counts, own)
    return counts


def _needed(layout: Layout, q: Block, block: Block, limits: torch.Tensor, widths: tuple[int, ...], subspaces,
            keep) -> list:
    """Per subspace (a tuple of atoms of `widths`): the query rows (int64 tensor) the block can
    change, keep(box distance in the subspace, limit) being true, with limits (m,) or
    (len(subspaces), m); None when that is every row (always when the layout does not prune). The
    box distance in a subspace is the max of its atoms' (exact)."""
    if not layout.prune:
        return [None] * len(subspaces)
    lo, hi = block.points.amin(dim=0), block.points.amax(dim=0)
    starts = np.cumsum((0,) + widths)
    atoms = [box_distance(q.points[:, a:b], lo[a:b], hi[a:b]) for a, b in zip(starts[:-1], starts[1:])]
    out = []
    for s, members in enumerate(subspaces):
        bound = atoms[members[0]]
        for a in members[1:]:
            bound = torch.maximum(bound, atoms[a])
        limit = limits if limits.dim() == 1 else limits[s]
        rows = torch.nonzero(keep(bound, limit)).flatten()
        out.append(None if rows.numel() == q.points.shape[0] else rows)
    return out


def _fits(kernel, k: int) -> bool:
    return kernel is not None and (kernel.max_k is None or k <= kernel.max_k)


def _union(q: Block, block: Block) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """(points of U = queries u block, host, in global index order; their global indices; the
    position in U of each query; whether the block is the queries' own). The block must be the
    queries' own rows or disjoint from them (ring mode: a partition)."""
    index = torch.cat([q.index, block.index]).cpu().numpy()
    order = np.argsort(index, kind="stable")
    keep = np.ones(order.size, dtype=bool)
    keep[1:] = index[order[1:]] != index[order[:-1]]
    order = order[keep]
    m, b = q.index.shape[0], block.index.shape[0]
    own = order.size == m == b
    if not (own or order.size == m + b):
        raise RuntimeError(f"a reference block of {b} rows shares {m + b - order.size} rows with the {m} queries: "
                           "the ring steps need the queries' own block or a disjoint one")
    points = np.ascontiguousarray(torch.cat([q.points, block.points]).cpu().numpy()[order])
    return points, index[order], np.searchsorted(index[order], index[:m]), own


def _kernel_step_knn(kernel, q: Block, rows, block: Block, k: int, widths: tuple[int, ...]) -> Neighbours:
    """The top-k (distance, global index, per-atom distances) of the queries `rows` among U = queries
    u block by the kernel (k limited to |U| - 1, the rest of the list empty)."""
    points, index, at, _ = _union(q, block)
    at = at[rows.cpu().numpy() if isinstance(rows, torch.Tensor) else rows]
    found = Neighbours.empty(at.size, k, len(widths), q.points.dtype, q.points.device)
    kk = min(k, points.shape[0] - 1)
    if kk < 1:
        return found
    dist, idx = map(kernel.host, ops.knn(kernel, points, kk, queries=at))
    atoms = _atom_distances(points, at, idx, widths)
    device = q.points.device
    found.dist[:, :kk] = torch.from_numpy(np.ascontiguousarray(dist)).to(device)
    found.index[:, :kk] = torch.from_numpy(index[idx]).to(device)
    found.atoms[:, :kk] = torch.from_numpy(np.ascontiguousarray(atoms)).to(device)
    return found


def _kernel_step_counts(kernel, q: Block, block: Block, host: tuple[np.ndarray, np.ndarray], subspaces, needs,
                        inclusive: bool, counts: torch.Tensor, own: dict) -> None:
    """counts (m, G) plus the block's points within the radii, per group, by the kernel: at the
    queries' own block, count(queries); at another, count(U) - count(queries) for the rows in
    needs[g] (None: every row). host: the radii (m, G) and the queries' points on the host; `own`
    caches count(queries) per group."""
    points, _, at, is_own = _union(q, block)
    rad, mine = host
    for g, (cols, need) in enumerate(zip(subspaces, needs)):
        if g not in own:
            got = ops.count_within(kernel, np.ascontiguousarray(mine[:, cols]), np.ascontiguousarray(rad[:, g]),
                                   inclusive, queries=np.arange(mine.shape[0]))
            own[g] = torch.from_numpy(kernel.host(got).astype(np.int64)).to(counts.device)
        if is_own:
            counts[:, g] += own[g]
            continue
        rows = np.arange(at.size) if need is None else need.cpu().numpy()
        if rows.size == 0:
            continue
        got = ops.count_within(kernel, np.ascontiguousarray(points[:, cols]), np.ascontiguousarray(rad[rows, g]),
                               inclusive, queries=at[rows])
        sel = torch.from_numpy(rows).to(counts.device)
        counts[sel, g] += torch.from_numpy(kernel.host(got).astype(np.int64)).to(counts.device) - own[g][sel]


def _columns(widths: tuple[int, ...], atoms) -> np.ndarray:
    """Column indices of the subspace made of `atoms` (consecutive column ranges of `widths`)."""
    starts = np.cumsum((0,) + widths)
    return np.concatenate([np.arange(starts[a], starts[a + 1]) for a in atoms])


def _atom_distances(p: np.ndarray, rows: np.ndarray, idx: np.ndarray, widths: tuple[int, ...]) -> np.ndarray:
    """(m, k, A): each kept neighbour idx[i, j] of the point p[rows[i]] at its distance in every
    atom: max |difference| over the atom's columns, the block ops' arithmetic (exact)."""
    diff = np.abs(p[idx] - p[rows, None])
    starts = np.cumsum((0,) + widths)
    return np.stack([diff[..., a:b].max(axis=-1) for a, b in zip(starts[:-1], starts[1:])], axis=-1)


def _kernel_knn(layout: Layout, k: int, widths: tuple[int, ...]) -> Neighbours:
    """knn_pass by the layout's kernel backend: the neighbours of the query rows, then each kept
    neighbour's distance in every atom (max |difference| over the atom's columns: the block ops'
    arithmetic, exact), on the host (O(m k d))."""
    p, rows = layout.everything, layout.rows
    dist, idx = map(layout.kernel.host, ops.knn(layout.kernel, p, k, queries=rows))
    atoms = _atom_distances(p, rows, idx, widths)
    device = layout.queries.points.device
    return Neighbours(*(torch.from_numpy(np.ascontiguousarray(t)).to(device) for t in (dist, idx, atoms)))
