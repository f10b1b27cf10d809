"""Neural MI: the fused kernels against the materialised score matrix (GPU), and the accuracy and
time of the neural and latent estimators against KSG and the latentmi package (CPU or GPU).

    python -m bench.bench_neural            # both parts (the GPU part only where CUDA is usable)
    python -m bench.bench_neural --quick    # small sizes (a few minutes on 2 CPU cores)
    python -m bench.bench_neural --part kernels|accuracy|gathered

Kernels (GPU only): forward + backward of InfoNCE for encoded batches A, B (n, d=128): the torch
path materialises S = A B^T (what a user writes: ``infonce(a @ b.T)``), the fused path computes
the row log-sum-exps tile by tile. Median of 5 timed calls (CUDA events) after a warm-up; peak
memory from torch.cuda.max_memory_allocated; ratio torch / fused in the same run.

Accuracy: correlated Gaussians with true MI 2 nats and 2 to 256 dims per side, the same sample for
every method: cchmi KSG-1 (k=3), cchmi neural_mi (SMILE, separable critic, defaults), cchmi
latent_mi (defaults), and latentmi's ``lmi.estimate`` with its defaults (optional; a crash is
recorded as such; called as bench/peers.py says).

Gathered (CPU, gloo): forward + backward of InfoNCE on a global batch of N pairs (d=64, float32),
one process with one thread against W processes of one thread each, every rank scoring its N / W
rows against the N gathered columns (``bound_from_stats(..., gather_negatives=True)``) with the
gradient all-reduce; median of 5 timed steps after a warm-up, the slowest rank's; ratio one process
/ gathered; |error| is the gathered bound's distance to the one-process value.

Rows go to bench/results/bench_neural.csv with the machine and the git SHA.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from . import peers
from ._harness import append_csv, gpu_name, machine, markdown_table, require_compiled, run_with_timeout


def bench_kernels(sizes: list[int], d: int = 128) -> list[dict]:
    import torch

    from cchmi.neural.bounds import infonce
    from cchmi.neural.rowstats import bound_from_stats

    rows = []
    for n in sizes:
        for dtype, tf32 in ((torch.float32, False), (torch.float32, True), (torch.bfloat16, False)):
            gen = torch.Generator(device="cuda").manual_seed(0)
            a0 = (torch.randn(n, d, device="cuda", generator=gen) / d**0.25).to(dtype)
            b0 = (torch.randn(n, d, device="cuda", generator=gen) / d**0.25).to(dtype)
            paths = {
                "torch (materialised)": lambda a, b: infonce((a @ b.T).float()),  # torch's default matmul precision
                "fused (triton)": lambda a, b: bound_from_stats("infonce", a, b, fused=True, allow_tf32=tf32),
            }
            result = {}
            for name, fn in paths.items():
                a, b = a0.clone().requires_grad_(True), b0.clone().requires_grad_(True)

                def step(a=a, b=b, fn=fn):
                    value = fn(a, b)
                    value.backward()
                    return value

                try:
                    torch.cuda.synchronize()
                    step()
                    torch.cuda.reset_peak_memory_stats()
                    times = []
                    for _ in range(5):
                        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                        start.record()
                        value = step()
                        end.record()
                        torch.cuda.synchronize()
                        times.append(start.elapsed_time(end) / 1e3)
                    peak = torch.cuda.max_memory_allocated() / 2**30
                    result[name] = (float(np.median(times)), peak, float(value), "")
                except torch.cuda.OutOfMemoryError:
                    result[name] = (math.nan, math.nan, math.nan, "out of memory")
                    torch.cuda.empty_cache()
            base = result["torch (materialised)"][0]
            for name, (seconds, peak, value, note) in result.items():
                label = f"n={n}, d={d}, {str(dtype)[6:]}{' (tf32 allowed)' if tf32 else ''}"
                rows.append({"part": "kernels", "case": label, "method": name,
                             "estimate": value, "truth": "", "abs_error": "", "seconds": seconds,
                             "peak_gib": peak, "ratio": base / seconds if seconds == seconds else "", "note": note})
    return rows


def _gathered_worker(rank, world, port, n, d, queue):
    import torch
    import torch.distributed as dist

    from cchmi.neural.rowstats import bound_from_stats

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        gen = torch.Generator().manual_seed(0)
        a0, b0 = torch.randn(n, d, generator=gen) / d**0.25, torch.randn(n, d, generator=gen) / d**0.25
        m = n // world
        a, b = a0[rank * m : (rank + 1) * m].clone().requires_grad_(True), b0[rank * m : (rank + 1) * m].clone()
        b.requires_grad_(True)
        times = []
        for i in range(6):
            dist.barrier()
            start = time.perf_counter()
            value = bound_from_stats("infonce", a, b, gather_negatives=world > 1)
            value.backward()
            if i:
                times.append(time.perf_counter() - start)
        slowest = torch.tensor([float(np.median(times))], dtype=torch.float64)
        dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
        if rank == 0:
            queue.put((float(slowest), float(value.detach())))
    finally:
        dist.destroy_process_group()


def bench_gathered(sizes: list[int], worlds: list[int], d: int = 64) -> list[dict]:
    import socket

    import torch.multiprocessing as mp

    rows = []
    ctx = mp.get_context("spawn")
    for n in sizes:
        result = {}
        for world in [1, *worlds]:
            queue = ctx.SimpleQueue()
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            mp.spawn(_gathered_worker, args=(world, port, n, d, queue), nprocs=world, join=True)
            result[world] = queue.get()
        base = result[1][0]
        for world, (seconds, value) in result.items():
            method = "one process, 1 thread" if world == 1 else f"gathered, {world} gloo ranks x 1 thread"
            rows.append({"part": "gathered", "case": f"infonce N={n}, d={d}, float32", "method": method,
                         "estimate": value, "truth": "", "abs_error": abs(value - result[1][1]), "seconds": seconds,
                         "peak_gib": "", "ratio": base / seconds, "note": ""})
    return rows


def bench_accuracy(dims: list[int], n: int, timeout: float) -> list[dict]:
    import cchmi
    from cchmi.data import correlated_gaussian

    methods = {
        "cchmi KSG-1": lambda x, y: cchmi.ksg_mi(x, y).estimate,
        "cchmi neural_mi (smile)": lambda x, y: cchmi.neural_mi(x, y).estimate,
        "cchmi latent_mi": lambda x, y: cchmi.latent_mi(x, y).estimate,
    }
    if peers.installed("latentmi"):
        methods["latentmi (defaults)"] = peers.latentmi
    rows = []
    for dim in dims:
        s = correlated_gaussian(n, dim, dim, mi=2.0, random_state=0)
        for name, fn in methods.items():
            t = run_with_timeout(lambda fn=fn: fn(s.x, s.y), timeout)
            value = t.value if t.value is not None else math.nan
            rows.append({"part": "accuracy", "case": f"n={n}, {dim}+{dim} dims, MI 2 nats", "method": name,
                         "estimate": value, "truth": s.mi, "abs_error": abs(value - s.mi), "seconds": t.median,
                         "peak_gib": "", "ratio": "", "note": "" if t.status == "ok" else t.status})
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--part", choices=("kernels", "accuracy", "gathered", "all"), default="all")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per accuracy run (default 1200)")
    args = parser.parse_args(argv)
    require_compiled()
    import torch

    facts = machine()
    facts["gpu"] = gpu_name()
    rows = []
    if args.part in ("kernels", "all"):
        if torch.cuda.is_available():
            rows += bench_kernels([16384] if args.quick else [16384, 65536])
        else:
            print("kernels: no CUDA device, skipped")
    if args.part in ("gathered", "all"):
        rows += bench_gathered([512, 2048] if args.quick else [2048, 8192], [2] if args.quick else [2, 4])
    if args.part in ("accuracy", "all"):
        rows += bench_accuracy([2, 8, 32] if args.quick else [2, 8, 32, 128, 256], 4000 if args.quick else 10000,
                               args.timeout)
    if not rows:
        return
    append_csv("bench_neural", [{**facts, **r} for r in rows])
    print(f"machine: {facts['cpu']} ({facts['cores']} cores) {facts['gpu']}, git {facts['git']}, {time.strftime('%Y-%m-%d')}")
    table = [[r["case"], r["method"], f"{r['estimate']:.3f}" if r["estimate"] == r["estimate"] else "-",
              f"{r['abs_error']:.3f}" if r["abs_error"] not in ("", None) and r["abs_error"] == r["abs_error"] else "-",
              f"{r['seconds']:.3g}" if r["seconds"] == r["seconds"] else "-",
              f"{r['peak_gib']:.2f}" if r["peak_gib"] not in ("",) and r["peak_gib"] == r["peak_gib"] else "",
              f"{r['ratio']:.1f}x" if r["ratio"] not in ("",) else "", r["note"]] for r in rows]
    print(markdown_table(["case", "method", "estimate", "|error|", "seconds", "peak GiB", "ratio", "note"],
                         table))


if __name__ == "__main__":
    main()
