"""KSG-1 end to end on each host backend (cpu, faiss): seconds on the same float32 input, the ratio
to cpu in the same run, and whether the estimates agree (they must: same neighbour counts).

    python -m bench.bench_backends           # n = 20000 (2+2, 8+8 dims) and 50000 (4+4)
    python -m bench.bench_backends --quick   # n = 5000

Rows are appended to bench/results/bench_backends.csv. The GPU backends are in bench_gpu.py.
"""

from __future__ import annotations

import argparse

import numpy as np

from ._harness import append_csv, machine, markdown_table, require_compiled, time_call

FULL = [(20_000, 2), (20_000, 8), (50_000, 4)]
QUICK = [(5_000, 2), (5_000, 8)]


def main(argv=None) -> None:
    import cchmi

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    require_compiled()
    backends = [name for name in ("cpu", "faiss") if name in cchmi.available_backends()]
    facts = machine()
    rows = []
    for n, d in QUICK if args.quick else FULL:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((n, d)).astype(np.float32)
        y = (x + rng.standard_normal((n, d))).astype(np.float32)
        timings = {be: time_call(lambda be=be: cchmi.ksg_mi(x, y, backend=be).estimate, args.repeats)
                   for be in backends}
        for be, t in timings.items():
            rows.append({**facts, "n": n, "dims": f"{d}+{d}", "backend": be, "seconds": t.median,
                         "ratio_to_cpu": t.median / timings["cpu"].median, "estimate": t.value,
                         "same_as_cpu": t.value == timings["cpu"].value})
    append_csv("bench_backends", rows)
    print(f"machine: {facts['cpu']} ({facts['cores']} cores), git {facts['git']}, {facts['date']} UTC")
    print(markdown_table(["n", "dims", "backend", "seconds", "time / cpu", "estimate", "same as cpu"],
                         [[r["n"], r["dims"], r["backend"], f"{r['seconds']:.3g}", f"{r['ratio_to_cpu']:.1f}",
                           f"{r['estimate']:.4f}", r["same_as_cpu"]] for r in rows]))


if __name__ == "__main__":
    main()
