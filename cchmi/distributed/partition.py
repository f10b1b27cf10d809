"""Ring mode's range partitioning: rows to ranks by global Morton code (sample sort, one all_to_all).

Each row gets the key (Morton code, global index): the code is that of
:func:`cchmi.ops._spatial.morton_order` computed with the bounding box of *all* the points (an
all-reduce of the per-rank float32 minima and maxima, then the same float32 quantisation, element
by element), so sorting every row by its key gives exactly ``morton_order`` of the whole problem
(``morton_order`` sorts stably, i.e. ties in the code by row). Keys are unique (the global index
breaks ties), so heavy duplication (even every row equal) cannot put more rows on a rank than the
bound below.

Sample sort: each rank sorts its keys and takes a regular sample of ``s = OVERSAMPLE * P`` keys
(positions ``floor(j m / s)``; every key when it has fewer rows), each weighted by the number of
rows from it to the next sample; the samples of all ranks are gathered, and every rank chooses the
same P - 1 splitters: splitter t is the smallest sampled key whose preceding sample weight reaches
t N / P. Rank t then receives the rows with splitter t <= key < splitter t + 1 (one
``all_to_all_single``, :meth:`cchmi.distributed.comm.Comm.all_to_all`), with their global indices
and labels. The rows a rank receives are fewer than ``N / P + ceil(max_r m_r / s) + sum_r
ceil(m_r / s)``, at most ``N / P + 2 N / s + P + 1`` (m_r: the rows rank r holds): between two
samples of rank r lie at most ceil(m_r / s) of its rows, and the sample weight between two
consecutive splitters is below N / P plus one sample's weight. With OVERSAMPLE = 16: under
``1.125 N / P + P + 1`` rows. The samples gathered cost every rank O(OVERSAMPLE P^2) keys.

:class:`Route` remembers the exchange, so that per-row results of the received rows go back to
the rows' owners (:meth:`Route.back`: a second all_to_all, results in the owner's row order), and
per-row inputs of the owners' rows follow them (:meth:`Route.forward`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cchmi.ops._spatial import CODE_BITS, morton_codes
from cchmi.ops.blocks import Block

# Regular samples per rank, per destination rank (the balance bound in the module docstring).
OVERSAMPLE = 16
# A splitter above every key (a part left empty when the samples run out).
_TOP = np.iinfo(np.int64).max


def key_order(codes: np.ndarray, index: np.ndarray) -> np.ndarray:
    """The permutation sorting rows by (code, global index)."""
    return np.lexsort((index, codes))


def regular_sample(codes: np.ndarray, index: np.ndarray, s: int) -> np.ndarray:
    """(c, 3) int64 rows (code, index, weight): keys of the rows at positions floor(j m / s),
    j < s, of rows already sorted by key (all of them when m <= s), each weighted by the rows from
    it to the next sample (the weights add up to m)."""
    m = codes.shape[0]
    at = np.unique(np.arange(s, dtype=np.int64) * m // s) if m > s else np.arange(m, dtype=np.int64)
    weights = np.diff(np.append(at, m))
    return np.stack([codes[at], index[at], weights], axis=1)


def splitters(samples: np.ndarray, n: int, parts: int) -> np.ndarray:
    """(parts - 1, 2) int64 keys from the samples (c, 3) of every rank: splitter t is the smallest
    sampled key whose preceding sample weight is at least t n / parts (a key above every key when
    there is none). Deterministic: every rank computes the same splitters from the same samples."""
    ordered = samples[key_order(samples[:, 0], samples[:, 1])]
    before = np.cumsum(ordered[:, 2]) - ordered[:, 2]
    out = np.full((parts - 1, 2), _TOP, dtype=np.int64)
    for t in range(1, parts):
        first = np.searchsorted(before * parts, t * n, side="left")  # exact integers
        if first < ordered.shape[0]:
            out[t - 1] = ordered[first, :2]
    return out


def destinations(codes: np.ndarray, index: np.ndarray, split: np.ndarray) -> np.ndarray:
    """(m,) int64: the part of each key, the number of splitters not above it (lexicographic)."""
    dest = np.zeros(codes.shape[0], dtype=np.int64)
    for code, row in split:
        dest += (codes > code) | ((codes == code) & (index >= row))
    return dest


@dataclass
class Route:
    """Where this rank's rows went in a range partition, and which rows it received."""

    comm: object  # the Comm of the exchange
    order: np.ndarray  # this rank's rows (positions in its block) in the order they were sent
    sent: list[int]  # rows sent to each rank
    received: list[int]  # rows received from each rank

    def back(self, values: torch.Tensor) -> torch.Tensor:
        """Per-row values (r, ...) of the received rows -> those of this rank's own rows, in the
        order of its block (the inverse exchange). Collective."""
        (got,) = self.comm.all_to_all([values], self.received, self.sent)
        out = torch.empty_like(got)
        out[torch.from_numpy(self.order).to(got.device)] = got
        return out

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        """Per-row values (m, ...) of this rank's own rows -> those of the rows it received, in the
        received order. Collective."""
        order = torch.from_numpy(self.order).to(values.device)
        return self.comm.all_to_all([values[order]], self.sent, self.received)[0]


def range_partition(block: Block, comm) -> tuple[Block, Route]:
    """This rank's rows after the range partition of all ranks' blocks by Morton key (module
    docstring): the received rows (points, global index, labels), grouped by sender rank, each
    sender's rows in key order; and the Route back. Collective."""
    points = block.points
    dims = min(points.shape[1], CODE_BITS)
    p = points[:, :dims].to(torch.float32).cpu().numpy()
    lo = comm.all_reduce(p.min(axis=0) if p.shape[0] else np.full(dims, np.inf, np.float32), "min")
    hi = comm.all_reduce(p.max(axis=0) if p.shape[0] else np.full(dims, -np.inf, np.float32), "max")
    codes = morton_codes(points.cpu(), torch.from_numpy(lo), torch.from_numpy(hi)).numpy()
    index = block.index.cpu().numpy()
    order = key_order(codes, index)
    codes, index = codes[order], index[order]
    total = int(comm.all_reduce(np.array([codes.shape[0]], dtype=np.int64))[0])
    samples = np.concatenate(comm.all_gather_object(regular_sample(codes, index, OVERSAMPLE * comm.size)))
    dest = destinations(codes, index, splitters(samples, total, comm.size))  # ascending: keys are sorted
    sent = np.bincount(dest, minlength=comm.size).tolist()
    received = comm.exchange_counts(sent)
    device_order = torch.from_numpy(order).to(points.device)
    tensors = [points[device_order], block.index[device_order]]
    if block.labels is not None:
        tensors.append(block.labels[device_order])
    moved = comm.all_to_all(tensors, sent, received)
    mine = Block(moved[0], moved[1], moved[2] if len(moved) > 2 else None)
    return mine, Route(comm, order, sent, received)
