"""What the sharded estimators need from torch.distributed, in one place.

:class:`Comm` wraps a process group and the device its tensors live on (CPU for gloo, the rank's
CUDA device for NCCL): reductions of small NumPy vectors, errors raised on every rank at once,
column sums in global row order (the order NumPy adds rows in one process), the gathering of all
shards (replicate mode), the all_to_all of rows (ring mode's range partition,
:mod:`cchmi.distributed.partition`) and the ring of reference blocks (ring mode), with the bytes
each rank sends.

The global problem is the concatenation of the shards in rank order: rank 0's rows first. Every
call here is collective: every rank of the group must make it, in the same order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
import torch.distributed as dist

from cchmi.ops.blocks import Block

_OPS = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}


class Comm:
    """A process group (None: the default one) and the device of its tensors."""

    def __init__(self, group=None, device=None):
        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError("cchmi.distributed needs an initialised torch.distributed process group (start the "
                               "processes with torchrun or srun and call torch.distributed.init_process_group); in "
                               "one process, use devices=[...] of cchmi.ksg_mi and the other estimators instead")
        self.group = group
        self.rank = dist.get_rank(group)
        self.size = dist.get_world_size(group)
        if device is None:
            nccl = dist.get_backend(group) == "nccl"
            device = torch.device("cuda", torch.cuda.current_device()) if nccl else torch.device("cpu")
        self.device = torch.device(device)
        self.bytes_sent = 0  # by this rank, in the ring and the gathers (not counting small reductions)

    def _peer(self, rank: int) -> int:
        return rank if self.group is None else dist.get_global_rank(self.group, rank)

    # -- small collectives ----------------------------------------------------------------------
    def all_reduce(self, values, op: str = "sum") -> np.ndarray:
        """Element-wise sum, max or min over the ranks of a NumPy vector (float64 or int64: exact
        for max, min and integer sums)."""
        t = torch.as_tensor(np.ascontiguousarray(values)).to(self.device)
        dist.all_reduce(t, op=_OPS[op], group=self.group)
        return t.cpu().numpy()

    def all_gather_object(self, obj) -> list:
        out = [None] * self.size
        dist.all_gather_object(out, obj, group=self.group)
        return out

    def broadcast_object(self, obj, src: int = 0):
        box = [obj]
        dist.broadcast_object_list(box, src=self._peer(src), group=self.group)
        return box[0]

    def check(self, error: Exception | None) -> None:
        """Raise on every rank when any rank had an error (so that none waits for the others in
        a collective): the first failing rank's exception type and message, naming the rank."""
        reports = self.all_gather_object(None if error is None else (type(error).__name__, str(error)))
        for rank, report in enumerate(reports):
            if report is not None:
                kind = {"TypeError": TypeError, "ImportError": ImportError}.get(report[0], ValueError)
                if error is not None and rank == self.rank:
                    raise error
                raise kind(f"rank {rank}: {report[1]}")

    # -- sums in global row order ---------------------------------------------------------------
    def ordered_sum(self, a: np.ndarray) -> np.ndarray:
        """Column sums of the float64 rows of every shard, added one row after another in global
        order (a scan along the ranks: rank r continues the partial sum of rank r - 1). The
        result does not depend on how the rows are split, and equals NumPy's ``a.sum(axis=0)`` of
        the whole C-ordered array when it has 2+ columns (NumPy then adds rows in order; a single
        column, or a Fortran-ordered array, it sums pairwise). Broadcast to every rank."""
        d = a.shape[1]
        partial = None
        if self.rank > 0:
            box = torch.empty(d + 1, dtype=torch.float64, device=self.device)
            dist.recv(box, src=self._peer(self.rank - 1), group=self.group)
            box = box.cpu().numpy()
            partial = box[1:] if box[0] else None
        if a.shape[0]:
            rows = a if partial is None else np.concatenate([partial[None, :], a])
            partial = np.add.accumulate(rows, axis=0)[-1]
        if self.rank < self.size - 1:
            box = np.concatenate([[0.0], np.zeros(d)] if partial is None else [[1.0], partial])
            dist.send(torch.from_numpy(box).to(self.device), dst=self._peer(self.rank + 1), group=self.group)
        last = torch.empty(d + 1, dtype=torch.float64, device=self.device)
        if self.rank == self.size - 1:
            last = torch.from_numpy(np.concatenate([[1.0], partial if partial is not None else np.zeros(d)]))
            last = last.to(self.device)
        dist.broadcast(last, src=self._peer(self.size - 1), group=self.group)
        return last.cpu().numpy()[1:]

    # -- blocks ---------------------------------------------------------------------------------
    def _padded(self, block: Block, rows: int) -> list[torch.Tensor]:
        """The block's tensors padded to `rows` rows (padding rows have global index -1)."""
        m = block.points.shape[0]
        points = torch.zeros((rows, block.points.shape[1]), dtype=block.points.dtype, device=self.device)
        index = torch.full((rows,), -1, dtype=torch.int64, device=self.device)
        points[:m], index[:m] = block.points, block.index
        out = [points, index]
        if block.labels is not None:
            labels = torch.zeros(rows, dtype=torch.int64, device=self.device)
            labels[:m] = block.labels
            out.append(labels)
        return out

    def _max_rows(self, block: Block) -> int:
        return int(self.all_reduce(np.array([block.points.shape[0]], dtype=np.int64), "max")[0])

    @staticmethod
    def _unpad(tensors: list[torch.Tensor]) -> Block:
        valid = tensors[1] >= 0
        return Block(tensors[0][valid], tensors[1][valid], tensors[2][valid] if len(tensors) > 2 else None)

    def gather(self, block: Block) -> Block:
        """Every rank's block, in rank order (replicate mode: all the points on every rank)."""
        rows = self._max_rows(block)
        mine = self._padded(block, rows)
        parts = []
        for t in mine:
            out = [torch.empty_like(t) for _ in range(self.size)]
            dist.all_gather(out, t, group=self.group)
            parts.append(torch.cat(out))
            self.bytes_sent += t.numel() * t.element_size() * (self.size - 1)
        return self._unpad(parts)

    def exchange_counts(self, sent: list[int]) -> list[int]:
        """Rows each rank sends this rank, given the rows this rank sends each rank."""
        received = torch.empty(self.size, dtype=torch.int64, device=self.device)
        dist.all_to_all_single(received, torch.tensor(sent, dtype=torch.int64, device=self.device), group=self.group)
        return received.tolist()

    def all_to_all(self, tensors: list[torch.Tensor], sent: list[int], received: list[int]) -> list[torch.Tensor]:
        """Rows of `tensors` (each (m, ...), the same m) to the ranks: the first sent[0] rows to rank
        0, the next sent[1] to rank 1, ...; returns the rows received, rank 0's first (received[r]
        from rank r). One ``all_to_all_single`` of the rows' bytes (the tensors packed side by side
        as uint8, so that points, indices and labels travel together)."""
        m = tensors[0].shape[0]
        parts = [t.reshape(m, math.prod(t.shape[1:])).contiguous().view(torch.uint8) for t in tensors]
        widths = [part.shape[1] for part in parts]
        packed = torch.cat(parts, dim=1)
        out = torch.empty((sum(received), packed.shape[1]), dtype=torch.uint8, device=packed.device)
        dist.all_to_all_single(out, packed, output_split_sizes=list(received), input_split_sizes=list(sent),
                               group=self.group)
        self.bytes_sent += (m - sent[self.rank]) * packed.shape[1]
        got, first = [], 0
        for t, width in zip(tensors, widths):
            raw = out[:, first:first + width].contiguous()
            got.append(raw.view(t.dtype).reshape(raw.shape[0], *t.shape[1:]))
            first += width
        return got

    def ring(self, block: Block) -> Iterator[Block]:
        """The blocks of every rank, this rank's first, then those of rank - 1, rank - 2, ...:
        each step sends the current block to rank + 1 and receives the next from rank - 1
        (batch_isend_irecv, posted before the current block is handed out: the transfer overlaps
        the work on it; two buffers). Blocks travel padded to the largest block's rows."""
        if self.size == 1:
            yield block
            return
        rows = self._max_rows(block)
        current = self._padded(block, rows)
        spare = [torch.empty_like(t) for t in current]
        dst, src = self._peer((self.rank + 1) % self.size), self._peer((self.rank - 1) % self.size)
        for step in range(self.size):
            requests = []
            if step < self.size - 1:
                ops = [dist.P2POp(dist.isend, t, dst, self.group) for t in current]
                ops += [dist.P2POp(dist.irecv, t, src, self.group) for t in spare]
                requests = dist.batch_isend_irecv(ops)
                self.bytes_sent += sum(t.numel() * t.element_size() for t in current)
            yield self._unpad(current)
            for request in requests:
                request.wait()
            current, spare = spare, current
