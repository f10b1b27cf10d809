"""Sharded KSG-1 (cchmi.distributed) on gloo process groups of P = 1, 2, 4 CPU processes.

    python -m bench.bench_distributed            # n = 8192, d = 2 + 2, float32
    python -m bench.bench_distributed --quick    # n = 2048
    python -m bench.bench_distributed --gpu      # on a GPU: devices=[0] against the cuda backend

For each P and layout the processes run the two passes of a KSG-1 estimate (the kNN pass and the
counting pass of cchmi.distributed.passes, as cchmi.distributed.ksg_mi runs them) on their shards:
replicate; ring on the cpu kernels with block pruning (what ring mode runs); ring on the kernels
without pruning; ring on the brute-force block ops (what ring mode ran before the kernels).
Reported: the slowest rank's seconds (preparation, the range partition and both passes; the median
of 3 rounds after a warm-up round), the bytes each rank sent (the most over ranks: the gathers, or
the partition's all_to_all and the ring's blocks), the communication model's bytes, the ring steps
(query block x reference block, per pass and counting group, summed over ranks) and how many
pruning skipped whole, the steps' query rows (each query once per step) and how many pruning left
out, and the most query rows a rank answered (the partition's balance). One process: cchmi.ksg_mi
on the cpu backend (the compiled, pruned kernels), with devices=["cpu"] (the sharded code path on
one device: its overhead) and with devices=["cpu", "cpu"] (two virtual shards on one device: each
answers its interleaved query tiles through the kernels' queries= path). All ranks share this
machine's cores (the cpu kernels and torch get cores / P threads each), so the times show the cost
of the sharded path and of gloo, not a speed-up.

The model: ring mode sends, per rank and pass, (P - 1) blocks of N/P rows of d values and an int64
index, after the range partition's all_to_all ((P - 1) / P of its rows, expected, for shards not
sorted in space): bytes = (2 (P - 1) + (P - 1) / P) (N / P) (d s + 8) (s: bytes per value),
against 2 N^2 d / P pair-dims of brute-force compute (the kernels' pruning does less). At
N = 2^27, d = 16, float32, P = 8: 18.0 GB per rank against 7.2e16 pair-dims, i.e. 4300 s at the
H200's 1.67e13 pair-dims/s and 0.04 s over 450 GB/s NVLink: about 1e-5 of the compute (printed
by --model). Rows are appended to
bench/results/bench_distributed.csv.
"""

from __future__ import annotations

import argparse
import itertools
import os
import socket
import time

import numpy as np

from ._harness import append_csv, machine, markdown_table, require_compiled, time_call

H200_PAIR_DIMS_PER_S = 1.67e13  # shared/DESIGN.md: 2 instructions per pair-dim on 132 SMs at 1.98 GHz
NVLINK_BYTES_PER_S = 450e9  # per direction, H100/H200 SXM (NVLink 4)


def model_bytes(n: int, d: int, p: int, itemsize: int) -> float:
    """Ring mode: bytes one rank sends in the partition (expected) and over both passes."""
    return (2 * (p - 1) + (p - 1) / p) * (n / p) * (d * itemsize + 8)


def model_ratio(n: int = 2**27, d: int = 16, p: int = 8, itemsize: int = 4) -> tuple[float, float, float]:
    """(bytes per rank, seconds of compute per rank on an H200, communication seconds / compute seconds)."""
    sent = model_bytes(n, d, p, itemsize)
    compute = 2 * n * n * d / p / H200_PAIR_DIMS_PER_S
    return sent, compute, sent / NVLINK_BYTES_PER_S / compute


def data(n: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 2))
    return x.astype(dtype), (x + rng.standard_normal((n, 2))).astype(dtype)


def _rank(rank: int, world: int, port: int, n: int, dtype: str, queue) -> None:
    import torch
    import torch.distributed as dist

    from cchmi.ops import set_num_threads

    threads = max(1, (os.cpu_count() or 1) // world)  # the ranks share this machine's cores
    torch.set_num_threads(threads)
    set_num_threads(threads)  # the cpu kernels' OpenMP threads
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        from cchmi.distributed.estimators import kernel_backend, setup
        from cchmi.distributed.passes import count_pass, knn_pass, ring_layout
        from cchmi.estimators.options import KnnOptions

        x, y = data(n, dtype)
        rows = np.array_split(np.arange(n), world)[rank]
        for repeat, config in itertools.product(range(-WARMUP, REPEATS), LAYOUTS):
            dist.barrier()
            start = time.perf_counter()
            mode = config.split(",")[0]
            run, _ = setup({"x": x[rows], "y": y[rows]}, KnnOptions(), None, mode, None)
            if mode == "replicate":
                layout, _ = run.layout(run.block)
            else:
                kernel = None if config == "ring, block ops" else kernel_backend(run.comm.device)
                layout = ring_layout(run.block, run.comm, kernel, prune=config == "ring, kernels, pruned")
            rho = knn_pass(layout, 3, run.widths).dist[:, 2]
            count_pass(layout, rho[:, None].expand(-1, 2), run.widths, (((0,), False), ((1,), False)), False)
            seconds = time.perf_counter() - start
            st = layout.stats
            if repeat < 0:
                continue
            queue.put((config, repeat, seconds, run.comm.bytes_sent,
                       (st["knn_steps"] + st["count_steps"], st["knn_skipped"] + st["count_skipped"],
                        st["knn_rows"] + st["count_rows"], st["knn_rows_skipped"] + st["count_rows_skipped"]),
                       layout.queries.points.shape[0]))
    finally:
        dist.destroy_process_group()


# The layouts each group runs (before the first comma: the mode), after WARMUP untimed rounds of
# all of them, REPEATS times (the slowest rank's seconds of each round; their median, min, max).
WARMUP, REPEATS = 1, 3
LAYOUTS = ("replicate", "ring, kernels, unpruned", "ring, kernels, pruned", "ring, block ops")


def sharded(world: int, n: int, dtype: str) -> dict:
    """{layout: ((median, min, max) over the rounds of the slowest rank's seconds, most bytes sent by
    a rank, (ring steps, steps skipped, query rows of the steps, query rows pruned) summed over the
    ranks, most query rows on a rank)} of a gloo group of `world` (counts: those of one round)."""
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    queue = mp.get_context("spawn").SimpleQueue()
    mp.spawn(_rank, args=(world, port, n, dtype, queue), nprocs=world, join=True)
    slowest: dict = {}
    out: dict = {}
    while not queue.empty():
        config, repeat, seconds, sent, steps, rows = queue.get()
        slowest[config, repeat] = max(slowest.get((config, repeat), 0.0), seconds)
        if repeat == 0:
            old = out.get(config, (0, (0, 0, 0, 0), 0))
            out[config] = (max(old[0], sent), tuple(a + b for a, b in zip(old[1], steps)), max(old[2], rows))
    for config, rest in out.items():
        times = [slowest[config, r] for r in range(REPEATS)]
        out[config] = ((float(np.median(times)), min(times), max(times)), *rest)
    return out


def main(argv=None) -> int:
    import cchmi

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--worlds", default="1,2,4")
    parser.add_argument("--gpu", action="store_true", help="devices=[0] against backend='cuda' (needs a GPU)")
    parser.add_argument("--model", action="store_true", help="print the communication model at N=2^27, d=16, P=8")
    parser.add_argument("--no-csv", action="store_true")
    args = parser.parse_args(argv)
    from cchmi.ops import registry

    registry.import_compiled("_cpu")  # first import by cchmi's loader: its OpenMP wait policy, as users get it
    require_compiled()
    if args.model:
        sent, compute, ratio = model_ratio()
        print(f"model, N=2^27, d=16, float32, P=8, ring: {sent / 1e9:.1f} GB sent per rank, {compute:.0f} s of compute "
              f"per rank at {H200_PAIR_DIMS_PER_S:.3g} pair-dims/s, communication/compute = {ratio:.2e} at "
              f"{NVLINK_BYTES_PER_S / 1e9:.0f} GB/s")
    n = args.n or (2048 if args.quick else 8192)
    tags = machine()
    print(f"machine: {tags['cpu']}, {tags['cores']} cores; cchmi {tags['cchmi']} ({tags['git']}), n={n}, "
          f"{args.dtype}, load {os.getloadavg()[0]:.1f}")
    x, y = data(n, args.dtype)
    itemsize = np.dtype(args.dtype).itemsize
    table, csv_rows = [], []
    reference = "cuda" if args.gpu else "cpu"
    one = time_call(lambda: cchmi.ksg_mi(x, y, backend=reference).estimate, repeats=9)
    device = 0 if args.gpu else "cpu"
    path = time_call(lambda: cchmi.ksg_mi(x, y, devices=[device]).estimate, repeats=9)
    halves = time_call(lambda: cchmi.ksg_mi(x, y, devices=[device, device]).estimate, repeats=9)
    for label, t in ((f"one process, backend={reference}", one), ("one process, devices=[one device]", path),
                     ("one process, devices=[one device] x 2", halves)):
        table.append([label, 1, f"{t.median:.3f}", "0", "0", "", "", n, f"{t.value:.6f}"])
        csv_rows.append({**tags, "n": n, "d": 4, "dtype": args.dtype, "config": label, "world": 1,
                         "seconds_median": t.median, "seconds_min": t.low, "seconds_max": t.high, "bytes_sent": 0,
                         "model_bytes": 0, "estimate": t.value, "steps": "", "steps_skipped": "", "step_rows": "",
                         "step_rows_skipped": "", "rows_max": n})
    print(f"sharded path on one device / {reference} backend: {path.median / one.median:.2f}x; two shards on it: "
          f"{halves.median / one.median:.2f}x", flush=True)
    if not args.gpu:
        for world in map(int, args.worlds.split(",")):
            results = sharded(world, n, args.dtype)
            for config in LAYOUTS:
                (seconds, low, high), sent, (steps, skipped, step_rows, rows_skipped), rows = results[config]
                ring = config.startswith("ring")
                gathered = (world - 1) * (n / world) * (4 * itemsize + 8)
                expected = model_bytes(n, 4, world, itemsize) if ring else gathered
                table.append([f"gloo, {config}", world, f"{seconds:.3f}", f"{sent:,}", f"{expected:,.0f}",
                              f"{skipped}/{steps}" if ring else "",
                              f"{rows_skipped}/{step_rows}" if ring else "", rows, ""])
                csv_rows.append({**tags, "n": n, "d": 4, "dtype": args.dtype, "config": f"gloo {config}",
                                 "world": world, "seconds_median": seconds, "seconds_min": low, "seconds_max": high,
                                 "bytes_sent": sent, "model_bytes": expected, "estimate": "",
                                 "steps": steps if ring else "", "steps_skipped": skipped if ring else "",
                                 "step_rows": step_rows if ring else "",
                                 "step_rows_skipped": rows_skipped if ring else "", "rows_max": rows})
            print(f"done P={world}", flush=True)
    print(markdown_table(["configuration", "P", "seconds (slowest rank, median)", "bytes sent per rank (max)",
                          "model bytes (unpadded)", "ring steps skipped", "query rows pruned", "query rows (max rank)",
                          "estimate"], table))
    if not args.no_csv:
        print(f"\nappended to {append_csv('bench_distributed', csv_rows)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
