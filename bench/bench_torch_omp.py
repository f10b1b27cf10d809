"""cchmi's CPU kernels with torch imported first, on a busy machine: one estimate timed in a fresh
process that imported torch and ran a few matrix products before importing cchmi (torch's libgomp
is then the OpenMP runtime, spinning by default), against the same estimate in a process without
torch (cchmi's passive waiting applies), while CPU hogs (one per core) compete for the cores.

A third process imports torch first and fixes the threads at one per core
(``cchmi.set_num_threads(os.cpu_count())``): what every call did before cchmi's default thread count
followed the idle cores (cchmi._loader).

    python -m bench.bench_torch_omp                 # cch, 3,000 rows, 16+16 dims, 10 classes, 2 rounds
    python -m bench.bench_torch_omp --estimate ksg  # cchmi.ksg_mi on the same rows

Rows are appended to bench/results/torch_omp/bench_torch_omp.csv with the machine, the load
average before and after, the hogs, each process's median time and its ratio to the process
without torch of the same round.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile

from ._harness import RESULTS, append_csv, machine, markdown_table, require_compiled

_CHILD = """
import json, os, statistics, sys, time
mode, estimate, n, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if mode != "no torch":
    import torch
    a = torch.randn(512, 512)
    for _ in range(5):
        a = (a @ a).tanh()
import numpy as np
import cchmi
from cchmi._loader import import_cpu_module
if mode == "torch first, threads fixed":
    cchmi.set_num_threads(os.cpu_count())
rng = np.random.default_rng(0)
teacher = rng.standard_normal((n, 16))
student = 0.5 * teacher + rng.standard_normal((n, 16))
labels = rng.integers(0, 10, n)
if estimate == "cch":
    fn = lambda: cchmi.cch(teacher, student, labels)
else:
    fn = lambda: cchmi.ksg_mi(teacher, student)
fn()  # warm-up, as bench._harness.time_call does
times = []
for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
info = import_cpu_module().build_info()
print(json.dumps({"median": statistics.median(times), "low": min(times), "high": max(times),
                  "follows_load": info["threads_follow_load"], "openmp_runtime": info["openmp_runtime"]}))
"""

MODES = ("no torch", "torch first", "torch first, threads fixed")


def _hog():
    while True:
        pass


def run(mode: str, estimate: str, n: int, repeats: int) -> dict:
    """One fresh process: `mode`'s imports, then the estimate's median time (and the OpenMP facts)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    # Outside the checkout, so that the child imports the installed cchmi (an editable one included).
    done = subprocess.run([sys.executable, "-c", _CHILD, mode, estimate, str(n), str(repeats)], env=env,
                          cwd=tempfile.gettempdir(), capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estimate", choices=("cch", "ksg"), default="cch")
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per process (after one warm-up)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 1, help="CPU hog processes (default: 1 per core)")
    args = parser.parse_args(argv)
    try:
        import torch  # noqa: F401
    except ImportError:
        raise SystemExit("bench_torch_omp needs torch (pip install torch)") from None
    require_compiled()
    facts = machine()
    load_before = os.getloadavg()[0]
    hogs = [mp.get_context("fork").Process(target=_hog, daemon=True) for _ in range(args.hogs)]
    for h in hogs:
        h.start()
    rows = []
    try:
        for round_ in range(args.rounds):
            times = {mode: run(mode, args.estimate, args.n, args.repeats) for mode in MODES}
            for mode, t in times.items():
                rows.append({**facts, "hogs": len(hogs), "estimate": args.estimate, "n": args.n, "dims": "16+16",
                             "round": round_, "process": mode, "follows_load": t["follows_load"],
                             "seconds": t["median"], "low": t["low"], "high": t["high"],
                             "ratio_to_no_torch": t["median"] / times["no torch"]["median"]})
    finally:
        for h in hogs:
            h.kill()
    load_after = os.getloadavg()[0]
    for r in rows:
        r["load_before"], r["load_after"] = round(load_before, 2), round(load_after, 2)
    path = append_csv("bench_torch_omp", rows, folder=RESULTS / "torch_omp")
    print(f"machine: {facts['cpu']} ({facts['cores']} cores, {len(hogs)} hogs), 1-min load {load_before:.1f} before, "
          f"{load_after:.1f} after (hogs included), git {facts['git']}, {facts['date']} UTC")
    print(markdown_table(["round", "process", "threads follow load", "seconds (median)", "ratio to no torch"],
                         [[r["round"], r["process"], r["follows_load"], f"{r['seconds']:.3g}",
                           f"{r['ratio_to_no_torch']:.2f}"] for r in rows]))
    print(f"appended to {path}")


if __name__ == "__main__":
    main()
