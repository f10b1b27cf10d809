"""The sharded kNN and counting ops on points used as given (no standardisation, no jitter).

:func:`knn` and :func:`count_pair` are what the sharded estimators run, exposed for checking and
for users who prepare their own arrays: each rank passes its rows and gets the results of its
rows, with global neighbour indices (rows of the concatenation of the shards in rank order).
They equal :func:`cchmi.ops.knn` and :func:`cchmi.ops.count_pair` on the whole array, bit for bit.
A rank answers other ranks' rows in both modes; their results go back to their owners: in
replicate mode gathered (O(N k) per rank, as the points themselves in that mode), in ring mode by
the all_to_all of the range partition's route (O(N / P k) per rank).
"""

from __future__ import annotations

import numpy as np
import torch

from cchmi import _validate as V
from cchmi.distributed.estimators import Run, setup
from cchmi.distributed.passes import Layout, count_pass, knn_pass
from cchmi.estimators.options import KnnOptions
from cchmi.ops.blocks import Block

# Points as given: no standardisation, no jitter (the preparation then only casts).
_AS_GIVEN = dict(ties="none", standardize=False)


def _own_rows(run: Run, layout: Layout, mode: str, values: torch.Tensor) -> np.ndarray:
    """Per-query values (m, w) of this rank's queries -> those of this rank's rows, in row order."""
    rows = run.block.points.shape[0]
    if mode == "replicate":
        every = run.comm.gather(Block(values, layout.queries.index))
        mine = (every.index >= run.offset) & (every.index < run.offset + rows)
        out = torch.empty((rows, values.shape[1]), dtype=values.dtype, device=values.device)
        out[every.index[mine] - run.offset] = every.points[mine]
        values = out
    else:
        values = layout.route.back(values)
    return values.cpu().numpy()


def knn(points, k: int, *, group=None, mode: str = "auto", device=None) -> tuple[np.ndarray, np.ndarray]:
    """(dist, idx), each (rows, k), of the k nearest other points of this rank's rows among the
    rows of all ranks, ascending by (distance, global index); idx are global rows. Collective."""
    run, _ = setup({"points": points}, KnnOptions(k=k, **_AS_GIVEN), group, mode, device)
    layout, mode = run.layout(run.block)
    state = knn_pass(layout, run.k, run.widths)
    return _own_rows(run, layout, mode, state.dist), _own_rows(run, layout, mode, state.index)


def count_pair(x, y, radius_x, radius_y, inclusive: bool, *, group=None, mode: str = "auto",
               device=None) -> tuple[np.ndarray, np.ndarray]:
    """(counts in x, counts in y) of this rank's rows: the other points of all ranks within
    radius_x (resp. radius_y) of the row, strictly (``<=`` when inclusive), as
    :func:`cchmi.ops.count_pair`. Radii (rows,) are cast to the points' dtype. Collective."""
    run, _ = setup({"x": x, "y": y}, KnnOptions(k=1, **_AS_GIVEN), group, mode, device)
    rows = run.block.points.shape[0]
    error = None
    try:
        radius = np.stack([V.as_samples(r, name)[:, 0] if rows else np.empty(0) for r, name in
                           ((radius_x, "radius_x"), (radius_y, "radius_y"))], axis=1).astype(run.dtype)
        if radius.shape[0] != rows:
            raise ValueError(f"radius_x and radius_y need one entry per row of this rank ({rows}), got "
                             f"{radius.shape[0]}")
    except (ValueError, TypeError) as exc:
        error = exc
    run.comm.check(error)
    layout, mode = run.layout(run.block)
    if mode == "replicate":
        every = run.comm.gather(Block(torch.from_numpy(radius).to(run.comm.device), run.block.index))
        full = torch.empty((run.n, 2), dtype=every.points.dtype, device=every.points.device)
        full[every.index] = every.points
        rad = full[layout.queries.index]
    else:
        rad = layout.route.forward(torch.from_numpy(radius).to(run.comm.device))
    counts = count_pass(layout, rad, run.widths, (((0,), False), ((1,), False)), bool(inclusive))
    own = _own_rows(run, layout, mode, counts)
    return own[:, 0], own[:, 1]
