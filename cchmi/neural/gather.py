"""Negatives gathered from every rank of a torch.distributed process group (contrastive training
at a global batch).

With W ranks of m pairs each, rank r holds the encoded rows a_r, b_r (m, d); the global batch is
their concatenation in rank order (N = W m pairs). Each rank scores its own rows against the
columns of every rank (a rectangular m x N tile, row i's positive at column r m + i) and the
bounds' batch-wide sums and log-sum-exps are combined over the ranks, so every rank holds the value
of the bound on the global batch.

Gradients: the gathered columns keep their autograd graph (:func:`all_gather_with_grad`: the
backward pass sums over the ranks the gradient of every gathered block and hands each rank its own
block), and the rank-wide sums pass their gradient through unchanged (:func:`sum_over_ranks`). So
on rank r, backward gives the full gradient of the global bound with respect to a_r and b_r, and
the parameter gradients of the ranks sum to the one-process gradient at the global batch:
all-reduce them with SUM (:func:`sum_gradients`), or, under DistributedDataParallel (which
averages), multiply the loss by W.

All ranks must make the same calls in the same order (collectives). Local batches of unequal sizes
are refused (ValueError naming every rank's size): the positives' columns are rank * m.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def group_rank_world(group=None) -> tuple[int, int]:
    """(rank, world size) in `group` (None: the default group); a ValueError when no process group
    is initialised."""
    if not dist.is_available() or not dist.is_initialized():
        raise ValueError("gather_negatives=True needs an initialised torch.distributed process group "
                         "(torch.distributed.init_process_group); without one, use gather_negatives=False")
    return dist.get_rank(group), dist.get_world_size(group)


class _AllGather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, t, group, rank, world):
        parts = [torch.empty_like(t) for _ in range(world)]
        dist.all_gather(parts, t, group=group)
        ctx.group, ctx.rank, ctx.m = group, rank, t.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, g):
        g = g.contiguous().clone()
        dist.all_reduce(g, op=dist.ReduceOp.SUM, group=ctx.group)
        return g[ctx.rank * ctx.m : (ctx.rank + 1) * ctx.m], None, None, None


def all_gather_with_grad(t: torch.Tensor, group=None) -> torch.Tensor:
    """The ranks' (m, ...) tensors concatenated in rank order, (W m, ...), differentiable: the
    backward pass all-reduces (SUM) the gradient of the gathered tensor and returns this rank's
    block. Every rank must pass the same m (checked: a ValueError listing the sizes)."""
    rank, world = group_rank_world(group)
    t = t.contiguous()
    size = torch.tensor([t.shape[0]], dtype=torch.int64, device=t.device)
    sizes = [torch.empty_like(size) for _ in range(world)]
    dist.all_gather(sizes, size, group=group)
    sizes = [int(s) for s in sizes]
    if len(set(sizes)) != 1:
        raise ValueError(f"gathered negatives need the same local batch on every rank, got sizes {sizes} "
                         "(rank order); drop the last incomplete batch or pad every rank to one size")
    return _AllGather.apply(t, group, rank, world)


class _SumOverRanks(torch.autograd.Function):
    @staticmethod
    def forward(ctx, t, group):
        out = t.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM, group=group)
        return out

    @staticmethod
    def backward(ctx, g):
        return g, None


def sum_over_ranks(t: torch.Tensor, group=None) -> torch.Tensor:
    """The sum of `t` over the ranks; its gradient is passed to this rank's `t` unchanged (each
    rank's share of the gradient of a function of the sum: the shares add up to the full one)."""
    return _SumOverRanks.apply(t, group)


def sum_gradients(parameters, group=None) -> None:
    """All-reduce (SUM) the .grad of every parameter that has one: the ranks' shares become the
    gradient of the global-batch bound on every rank."""
    for p in parameters:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM, group=group)


class LocalBatch:
    """The reductions of a one-process batch: the bounds' sums over its own rows and columns."""

    rank, world = 0, 1

    def __init__(self, m: int):
        self.n, self.offset = m, 0

    def columns(self, b: torch.Tensor) -> torch.Tensor:
        return b

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        return t.mean()

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        return t.sum()

    def logsumexp(self, t: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(t, dim=0)


class GatheredBatch(LocalBatch):
    """The reductions of the global batch of a process group: columns gathered from every rank,
    row sums added over the ranks (see the module's docstring for the gradients)."""

    def __init__(self, m: int, group=None):
        self.group = group
        self.rank, self.world = group_rank_world(group)
        self.n, self.offset = self.world * m, self.rank * m

    def columns(self, b: torch.Tensor) -> torch.Tensor:
        return all_gather_with_grad(b, self.group)

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        return self.sum(t) / self.n

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        return sum_over_ranks(t.sum(), self.group)

    def logsumexp(self, t: torch.Tensor) -> torch.Tensor:
        top = t.detach().max().clone()
        dist.all_reduce(top, op=dist.ReduceOp.MAX, group=self.group)
        top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
        return torch.log(sum_over_ranks(torch.exp(t - top).sum(), self.group)) + top


def batch_reductions(m: int, gather_negatives: bool, group=None) -> LocalBatch:
    """LocalBatch(m), or GatheredBatch(m, group) when gathering in a group of two ranks or more (a
    group of one has nothing to gather: the local path, bit for bit)."""
    if not gather_negatives:
        return LocalBatch(m)
    _, world = group_rank_world(group)
    return GatheredBatch(m, group) if world > 1 else LocalBatch(m)


def check_same_on_every_rank(fingerprint: int, what: str, device, group=None) -> None:
    """A ValueError on every rank when the ranks' int64 `fingerprint`s of `what` differ."""
    _, world = group_rank_world(group)
    mine = torch.tensor([fingerprint], dtype=torch.int64, device=device)
    every = [torch.empty_like(mine) for _ in range(world)]
    dist.all_gather(every, mine, group=group)
    differ = [r for r, f in enumerate(every) if int(f) != int(every[0])]
    if differ:
        raise ValueError(f"gather_negatives=True needs {what} on every rank; rank(s) {differ} differ from rank 0")


__all__ = ["all_gather_with_grad", "sum_over_ranks", "sum_gradients", "group_rank_world", "LocalBatch",
           "GatheredBatch", "batch_reductions", "check_same_on_every_rank"]
