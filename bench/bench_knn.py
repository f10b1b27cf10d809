"""The CPU kernels alone: kNN and radius counts, k-d tree against blocked brute force.

    python -m bench.bench_knn            # the grid used to set cchmi/_cpu's `auto` thresholds
    python -m bench.bench_knn --quick

For each (n, d) it times knn(k=3) and count_within (radius = the 3rd-neighbour distance, strict)
with method tree, brute and auto, and reports seconds and, for brute force, pair-dims per second
(n^2 d / seconds), the unit that compares with the machine's SIMD throughput. Rows are appended to
bench/results/bench_knn.csv.
"""

from __future__ import annotations

import argparse

import numpy as np

from ._harness import append_csv, machine, markdown_table, require_compiled, time_call

FULL = [(100_000, 1), (100_000, 2), (100_000, 4), (100_000, 6), (100_000, 8), (100_000, 10), (100_000, 12),
        (20_000, 8), (20_000, 12), (10_000, 16), (10_000, 32), (50_000, 32)]
QUICK = [(20_000, 2), (20_000, 8), (5_000, 16), (5_000, 32)]
METHODS = {"tree": 1, "brute": 2, "auto": 0}


def main(argv=None) -> int:
    from cchmi import _cpu

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--no-csv", action="store_true")
    args = parser.parse_args(argv)
    require_compiled()
    tags = machine()
    print(f"machine: {tags['cpu']}, {tags['cores']} cores; cchmi {tags['cchmi']} ({tags['git']}), {args.dtype}")
    rows, csv_rows = [], []
    for n, d in QUICK if args.quick else FULL:
        pts = np.random.default_rng(0).standard_normal((n, d)).astype(args.dtype)
        radius = np.ascontiguousarray(_cpu.knn(pts, 3, 0)[0][:, -1])
        for op in ("knn", "count"):
            row = [f"{n:,}", d, op]
            for method, code in METHODS.items():
                if op == "knn":
                    t = time_call(lambda: _cpu.knn(pts, 3, code)[2], repeats=2)
                else:
                    t = time_call(lambda: _cpu.count_within(pts, radius, False, code)[1], repeats=2)
                rate = n * n * d / t.median
                row.append(f"{t.median:.4f}" + (f" ({rate:.2e} pd/s)" if method == "brute" else "")
                           + (f" -> {t.value}" if method == "auto" else ""))
                csv_rows.append({**tags, "n": n, "d": d, "op": op, "method": method, "ran": t.value, "dtype": args.dtype,
                                 "seconds_median": t.median, "seconds_min": t.low, "seconds_max": t.high,
                                 "pair_dims_per_s": rate})
            rows.append(row)
        print(f"done n={n} d={d}", flush=True)
    print(markdown_table(["n", "d", "op", "tree s", "brute s (pair-dims/s)", "auto s -> method"], rows))
    if not args.no_csv:
        print(f"\nappended to {append_csv('bench_knn', csv_rows)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
