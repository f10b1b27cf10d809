"""Neural bounds with negatives gathered from every rank: the rectangular row statistics (torch
reference and the fused Triton kernels under TRITON_INTERPRET=1) against the rows of the square
float64 reference; then 1, 2 and 3 gloo processes (one spawn each, several checks per spawn): the
value and the summed parameter gradients of every bound equal those of one process at the global
batch, MINE's moving average, unequal local batches refused, a group of one is the local path, and
neural_mi(gather_negatives=True) trained in 2 processes equals one process with the doubled batch."""

from __future__ import annotations

import math
import os
import re
import socket

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():  # before triton is imported: its kernels then run on the CPU
    os.environ.setdefault("TRITON_INTERPRET", "1")

import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
from _dist_worker import exit_without_teardown  # noqa: E402

import cchmi  # noqa: E402
from cchmi.data import correlated_gaussian  # noqa: E402
from cchmi.neural import bounds as B  # noqa: E402
from cchmi.neural.critics import BilinearCritic, SeparableCritic  # noqa: E402
from cchmi.neural.gather import sum_gradients  # noqa: E402
from cchmi.neural.rowstats import bound_from_stats, row_stats, row_stats_reference  # noqa: E402

# Tolerances (reasons):
FP64 = 1e-12  # the same formulas in float64, sums in another order (per rank, then over the ranks)
FP32 = 2e-5  # float32 sums in another order (and the fused kernel's tiles): a few ulps of the largest terms
FP32_GRAD = 2e-4  # float32 gradients: differences of nearly equal terms (sigmoids, softmax weights)
TRAINED = 1e-4  # neural_mi after a few Adam steps in float32: the per-step float32 differences carried on

# (m rows, n columns, offset, d, tau): odd sizes that fill no 32-wide tile, a single row, the last block
RECTANGLES = [(1, 2, 1, 3, math.inf), (5, 37, 11, 4, math.inf), (33, 70, 37, 20, 1.5), (13, 39, 0, 7, 0.5),
              (40, 40, 0, 9, math.inf)]


def _pair(m, n, d, seed, dtype=torch.float64, scale=0.8):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(m, d, generator=gen, dtype=dtype) * scale,
            torch.randn(n, d, generator=gen, dtype=dtype) * scale)


@pytest.mark.parametrize("m,n,offset,d,tau", RECTANGLES)
def test_rectangular_reference_is_the_rows_of_the_square_one(m, n, offset, d, tau):
    # the m x n tile of queries offset..offset+m against every column, positives at offset + i:
    # the same rows of the square n x n statistics, values and gradients
    a_full, b = _pair(n, n, d, seed=m * 7 + n)
    a = a_full[offset : offset + m]
    square = row_stats_reference(a_full, b, tau)
    rect = row_stats_reference(a, b, tau, offset)
    for s, r in zip(square, rect):
        assert torch.allclose(s[offset : offset + m], r, rtol=FP64, atol=FP64)
    # against a loop over the pairs
    for i in range(m):
        s = a[i] @ b.T
        others = torch.cat([s[: offset + i], s[offset + i + 1 :]])
        clipped = others.clamp(-tau, tau) if math.isfinite(tau) else others
        assert float(rect[0][i]) == pytest.approx(float(torch.logsumexp(s, 0)), rel=FP64)
        assert float(rect[1][i]) == pytest.approx(float(torch.logsumexp(clipped, 0)), rel=FP64)
        assert float(rect[2][i]) == pytest.approx(float(torch.nn.functional.softplus(others).sum()), rel=FP64)


triton = pytest.importorskip("triton")


@pytest.mark.parametrize("m,n,offset,d,tau", RECTANGLES)
def test_fused_rectangular_row_stats_match_the_float64_reference(m, n, offset, d, tau):
    a64, b64 = _pair(m, n, d, seed=m + 100 * n)
    a, b = a64.float().requires_grad_(True), b64.float().requires_grad_(True)
    a64.requires_grad_(True)
    b64.requires_grad_(True)
    fused = row_stats(a, b, tau, fused=True, offset=offset)
    ref = row_stats_reference(a64, b64, tau, offset)
    for f, r in zip(fused, ref):
        assert f.shape == (m,) and torch.allclose(f.double(), r, atol=FP32, rtol=FP32)
    gen = torch.Generator().manual_seed(1)
    weights = [torch.randn(m, generator=gen, dtype=torch.float64) for _ in range(3)]
    g_fused = torch.autograd.grad(sum((f * w.float()).sum() for f, w in zip(fused, weights)), (a, b))
    g_ref = torch.autograd.grad(sum((r * w).sum() for r, w in zip(ref, weights)), (a64, b64))
    for f, r in zip(g_fused, g_ref):
        assert f.shape == r.shape and torch.allclose(f.double(), r, atol=FP32_GRAD, rtol=FP32_GRAD)


def test_fused_rectangular_ties():
    a, b = torch.ones(7, 4) * 3.0, torch.ones(45, 4) * 3.0  # every score equal and large
    for f, r in zip(row_stats(a, b, math.inf, fused=True, offset=38), row_stats_reference(a, b, math.inf, 38)):
        assert torch.isfinite(f).all() and torch.allclose(f, r, rtol=1e-6)


@pytest.mark.parametrize("a_shape,b_shape,offset,message", [
    ((4, 3), (9, 2), 0, "a must be"),
    ((4, 3), (1, 3), 0, "n >= 2"),
    ((4, 3), (9, 3), 6, r"offset must be an integer in \[0, n - m\] = \[0, 5\]"),
    ((4, 3), (9, 3), -1, "offset must be"),
    ((4, 3), (9, 3), True, "offset must be"),
])
def test_row_stats_argument_errors(a_shape, b_shape, offset, message):
    with pytest.raises(ValueError, match=message):
        row_stats(torch.zeros(a_shape), torch.zeros(b_shape), offset=offset)


def test_gather_negatives_needs_a_process_group():
    assert not dist.is_initialized()
    a, b = _pair(4, 4, 3, seed=0)
    with pytest.raises(ValueError, match="initialised torch.distributed process group"):
        bound_from_stats("infonce", a, b, gather_negatives=True)
    s = correlated_gaussian(400, 2, 2, mi=0.5, random_state=0)
    with pytest.raises(ValueError, match="initialised torch.distributed process group"):
        cchmi.neural_mi(s.x, s.y, batch_size=16, epochs=1, gather_negatives=True)
    with pytest.raises(ValueError, match="separable critic"):
        cchmi.neural_mi(s.x, s.y, critic="joint", batch_size=16, epochs=1, gather_negatives=True)
    with pytest.raises(TypeError, match="gather_negatives must be True or False"):
        cchmi.neural_mi(s.x, s.y, batch_size=16, epochs=1, gather_negatives="yes")


# -- gloo process groups --------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(worker, world: int, *args):
    port = _free_port()
    mp.spawn(worker, args=(world, port, *args), nprocs=world, join=True)


def _init(rank: int, world: int, port: int) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)


def _one_step(critic, name, x, y, *, objective, fused, state, gather, rank=0, m=None):
    """Value and parameter gradients (summed over the ranks when gathering) of one bound evaluation."""
    critic.zero_grad(set_to_none=True)
    if gather:
        x, y = x[rank * m : (rank + 1) * m], y[rank * m : (rank + 1) * m]
    a, b = critic.encode(x, y)
    value = bound_from_stats(name, a, b, tau=1.0, fused=fused, state=state, objective=objective,
                             gather_negatives=gather)
    value.backward()
    if gather:
        sum_gradients(critic.parameters())
    return value.detach(), [p.grad.clone() for p in critic.parameters()]


def _close(x, y, tol):
    return torch.allclose(x.double(), y.double(), rtol=tol, atol=tol)


def _check_bounds(rank, world, m, dtype, fused, tol, critics, names=B.BOUNDS):
    """Every bound, estimate and training objective: the gathered value and the ranks' summed
    gradients against one process on the global batch (the same critic, the same rows)."""
    n = world * m
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(n, 5, generator=gen, dtype=dtype)
    y = x[:, :3] + 0.5 * torch.randn(n, 3, generator=gen, dtype=dtype)
    for critic_name in critics:
        torch.manual_seed(3)
        critic = (SeparableCritic(5, 3, hidden=8, layers=1, embed_dim=6) if critic_name == "separable"
                  else BilinearCritic(5, 3)).to(dtype)
        if critic_name == "bilinear":
            torch.nn.init.normal_(critic.w, std=0.5)
        for name in names:
            for objective in (False, True):
                got = _one_step(critic, name, x, y, objective=objective, fused=fused, state={}, gather=True,
                                rank=rank, m=m)
                want = _one_step(critic, name, x, y, objective=objective, fused=False, state={}, gather=False)
                where = f"{critic_name} {name} objective={objective} world={world} rank={rank} {dtype}"
                assert _close(got[0], want[0], tol), (where, got[0], want[0])
                for g, w in zip(got[1], want[1]):
                    assert _close(g, w, 10 * tol), (where, (g - w).abs().max())
    return critic


def _check_mine_moving_average(rank, world, m, critic):
    """Two MINE training steps: the moving average is the global batches' (the same on every rank)."""
    n = world * m
    gen = torch.Generator().manual_seed(5)
    batches = [(torch.randn(n, 5, generator=gen, dtype=torch.float64),
                torch.randn(n, 3, generator=gen, dtype=torch.float64)) for _ in range(2)]
    state_g, state_1 = {}, {}
    for x, y in batches:
        got = _one_step(critic, "mine", x, y, objective=True, fused=False, state=state_g, gather=True, rank=rank,
                        m=m)
        want = _one_step(critic, "mine", x, y, objective=True, fused=False, state=state_1, gather=False)
        assert _close(got[0], want[0], FP64) and all(_close(g, w, 10 * FP64) for g, w in zip(got[1], want[1]))
        assert _close(state_g["ma"], state_1["ma"], FP64)
    every = [torch.empty(1, dtype=torch.float64) for _ in range(world)]
    dist.all_gather(every, state_g["ma"].reshape(1))
    assert all(float(e) == float(every[0]) for e in every)


TRAIN = dict(bound="infonce", hidden=16, layers=1, embed_dim=8, epochs=2, patience=2, lr=1e-3, confidence=0.9)


def _check_training(rank, world, batch_size):
    """neural_mi with gathered negatives against one process with the global batch (the same
    seeds, so the same split, initial weights and batch order); the ranks' checks of the arguments."""
    s = correlated_gaussian(400, 3, 3, mi=1.0, random_state=4)
    x, y = s.x, s.y
    one = cchmi.NeuralMI(batch_size=world * batch_size, **TRAIN).fit(x, y)
    est = cchmi.NeuralMI(batch_size=batch_size, gather_negatives=True, **TRAIN).fit(x, y)
    got, local = est.result_, one.result_
    assert got.estimate == pytest.approx(local.estimate, abs=TRAINED), (got, local)
    assert got.stderr == pytest.approx(local.stderr, abs=TRAINED)
    assert got.n == local.n and got.n_subsamples == local.n_subsamples == 3
    assert len(est.history_) == 2 and np.allclose(est.history_, one.history_, atol=TRAINED)
    every = [None] * world
    dist.all_gather_object(every, (got.estimate, got.stderr))
    assert all(e == every[0] for e in every)  # every rank returns the same result
    with pytest.raises(ValueError, match=f"global batch {world} x batch_size=50 is above the smallest split"):
        cchmi.neural_mi(x, y, batch_size=50, gather_negatives=True, **TRAIN)
    mine = x.copy()
    mine[0, 0] += rank  # the other ranks' data differ from rank 0's
    others = re.escape(str(list(range(1, world))))
    with pytest.raises(ValueError, match=rf"same x, y and arguments on every rank; rank\(s\) {others} differ"):
        cchmi.neural_mi(mine, y, batch_size=batch_size, gather_negatives=True, **TRAIN)
    with pytest.raises(ValueError, match=rf"rank\(s\) {others} differ"):
        cchmi.neural_mi(x, y, batch_size=batch_size + rank, gather_negatives=True, **TRAIN)


class _Encoder(torch.nn.Module):
    """A critic whose forward is its encoder (DistributedDataParallel hooks run on forward)."""

    def __init__(self, critic):
        super().__init__()
        self.critic = critic

    def forward(self, x, y):
        return self.critic.encode(x, y)


def _check_ddp(rank, world, m):
    """Under DistributedDataParallel (which averages the ranks' gradients), world * the gathered
    bound as the loss gives the one-process gradient."""
    n = world * m
    gen = torch.Generator().manual_seed(2)
    x, y = torch.randn(n, 5, generator=gen, dtype=torch.float64), torch.randn(n, 3, generator=gen, dtype=torch.float64)
    for name in ("infonce", "smile"):
        torch.manual_seed(3)
        critic = SeparableCritic(5, 3, hidden=8, layers=1, embed_dim=6).double()
        want = _one_step(critic, name, x, y, objective=True, fused=False, state={}, gather=False)
        critic.zero_grad(set_to_none=True)
        ddp = torch.nn.parallel.DistributedDataParallel(_Encoder(critic))
        a, b = ddp(x[rank * m : (rank + 1) * m], y[rank * m : (rank + 1) * m])
        (world * bound_from_stats(name, a, b, tau=1.0, objective=True, gather_negatives=True)).backward()
        for p, w in zip(critic.parameters(), want[1]):
            assert _close(p.grad, w, 10 * FP64), (name, (p.grad - w).abs().max())


def _worker(rank, world, port, m):
    os.environ.setdefault("TRITON_INTERPRET", "1")
    _init(rank, world, port)
    try:
        critic = _check_bounds(rank, world, m, torch.float64, False, FP64, ("separable", "bilinear"))
        _check_mine_moving_average(rank, world, m, critic)
        if world == 2:  # fused kernels (interpreter): the bounds using lse_all, lse_off (clipped or not), sp_off
            _check_bounds(rank, world, m, torch.float32, True, FP32, ("separable",), ("infonce", "nwj", "smile"))
        if world == 1:  # a group of one is the local path, bit for bit
            s = correlated_gaussian(300, 3, 3, mi=1.0, random_state=4)
            local = cchmi.neural_mi(s.x, s.y, batch_size=20, **TRAIN)
            gathered = cchmi.neural_mi(s.x, s.y, batch_size=20, gather_negatives=True, **TRAIN)
            assert gathered.estimate == local.estimate and gathered.stderr == local.stderr
        else:
            _check_ddp(rank, world, m)
            a, b = _pair(m + rank, m + rank, 3, seed=rank)  # unequal local batches
            with pytest.raises(ValueError, match=r"same local batch on every rank, got sizes \[%d, %d" % (m, m + 1)):
                bound_from_stats("infonce", a, b, gather_negatives=True)
        if world == 2:
            _check_training(rank, world, batch_size=13)
    finally:
        dist.destroy_process_group()
    exit_without_teardown()


@pytest.mark.slow
@pytest.mark.parametrize("world,m", [(1, 6), (2, 5), (3, 7)])
def test_gathered_bounds_and_training_equal_one_process_at_the_global_batch(world, m):
    """World 1: bounds and neural_mi equal the local path. Worlds 2 and 3: every bound's value and
    summed gradients (float64; world 2 also float32 through the fused kernels), MINE's moving average,
    DistributedDataParallel with the loss scaled by the world size, unequal batches refused; world 2 also trains neural_mi (one process with the doubled batch)."""
    _spawn(_worker, world, m)
