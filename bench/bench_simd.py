"""KSG-1 end to end at each SIMD level of the CPU kernels, against the peers, in the same run.

The compiled kernels are built for baseline x86-64, AVX2 and AVX-512 and pick a level at import
(CPUID); CCHMI_SIMD forces one. Each level runs in its own process on the same seeded,
standardised sample (correlated Gaussians, y = x + noise), and must give the same estimate
(bit-identical counts). The peers run on that sample too: SciPy's cKDTree KSG-1 written by hand
(every case) and scikit-learn (1+1 only). Seconds: median of --repeats calls after a warm-up.

    python -m bench.bench_simd           # n = 20000: 1+1, 4+4, 16+16 dims
    python -m bench.bench_simd --quick   # n = 5000

Rows are appended to bench/results/bench_simd.csv with the thread count.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

from . import peers
from ._harness import append_csv, machine, markdown_table, require_compiled, run_with_timeout

FULL = [(20_000, 1), (20_000, 4), (20_000, 16)]
QUICK = [(5_000, 1), (5_000, 4), (5_000, 16)]

_CHILD = """
import json, sys, time
import numpy as np
import cchmi
from cchmi._loader import import_cpu_module
n, d, repeats = (int(v) for v in sys.argv[1:4])
rng = np.random.default_rng(0)
x = rng.standard_normal((n, d)); y = x + rng.standard_normal((n, d))
x, y = ((a - a.mean(axis=0)) / a.std(axis=0) for a in (x, y))
cchmi.ksg_mi(x, y)  # warm-up
times = []
for _ in range(repeats):
    t0 = time.perf_counter(); value = cchmi.ksg_mi(x, y).estimate; times.append(time.perf_counter() - t0)
print(json.dumps({"seconds": sorted(times)[len(times) // 2], "estimate": value,
                  "simd": import_cpu_module().build_info()["simd"]}))
"""


def sample(n: int, d: int):
    """The children's sample: standardised, so that every tool sees the data cchmi's KSG sees."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, d))
    y = x + rng.standard_normal((n, d))
    return tuple((a - a.mean(axis=0)) / a.std(axis=0) for a in (x, y))


def at_level(level: str, n: int, d: int, repeats: int) -> dict:
    env = {**os.environ, "CCHMI_SIMD": level}
    done = subprocess.run([sys.executable, "-c", _CHILD, str(n), str(d), str(repeats)], env=env, capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before a peer is stopped")
    args = parser.parse_args(argv)
    require_compiled()
    from cchmi import get_num_threads
    from cchmi._loader import import_cpu_module

    info = import_cpu_module().build_info()
    levels = list(info["simd_levels"])
    threads = get_num_threads() or info["max_threads"]
    facts = machine()
    rows = []
    for n, d in QUICK if args.quick else FULL:
        results = {f"cchmi ({level})": at_level(level, n, d, args.repeats) for level in levels}
        x, y = sample(n, d)
        others = [("SciPy cKDTree", peers.scipy_ksg)] + ([("scikit-learn", peers.sklearn)] if d == 1 else [])
        for name, fn in others:
            t = run_with_timeout(lambda fn=fn: fn(x, y), args.timeout, repeats=1, warmup=True)
            results[name] = {"seconds": t.median, "estimate": t.value, "simd": "", "note": t.status}
        base = results[f"cchmi ({levels[0]})"]
        for name, r in results.items():
            rows.append({**facts, "n": n, "dims": f"{d}+{d}", "method": name, "threads": threads,
                         "seconds": r["seconds"], "ratio_to_baseline": r["seconds"] / base["seconds"],
                         "estimate": r["estimate"], "same_as_baseline": r["estimate"] == base["estimate"],
                         "note": r.get("note", "")})
    append_csv("bench_simd", rows)
    print(f"machine: {facts['cpu']} ({facts['cores']} cores, {threads} threads), git {facts['git']}, "
          f"{facts['date']} UTC; levels here: {', '.join(levels)}")
    print(markdown_table(["n", "dims", "method", "seconds", "time / baseline", "estimate", "same as baseline"],
                         [[r["n"], r["dims"], r["method"], f"{r['seconds']:.3g}", f"{r['ratio_to_baseline']:.2f}",
                           f"{r['estimate']:.6f}" if r["estimate"] is not None else r["note"],
                           r["same_as_baseline"]] for r in rows]))


if __name__ == "__main__":
    main()
