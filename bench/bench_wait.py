"""OpenMP waiting on a busy machine: 20 small kNN calls with cchmi's default (passive waiting,
cchmi._loader) against spinning threads (OMP_WAIT_POLICY=ACTIVE), while CPU hogs (one per core)
compete for the cores. Each policy runs in its own process (libgomp reads it once, at load).

    python -m bench.bench_wait            # n = 2000, d = 4, k = 3, 20 calls, one hog per core

Rows are appended to bench/results/bench_wait.csv with the thread count and the hogs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys

from ._harness import append_csv, machine, markdown_table, require_compiled

_CHILD = """
import json, sys, time
import numpy as np
import cchmi
n, calls = int(sys.argv[1]), int(sys.argv[2])
x = np.random.default_rng(0).standard_normal((n, 4))
cchmi.entropy(x)  # warm-up: loads the module and its threads
t0 = time.perf_counter()
for _ in range(calls):
    cchmi.entropy(x)
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def _hog():
    while True:
        pass


def run(policy: str | None, n: int, calls: int) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    done = subprocess.run([sys.executable, "-c", _CHILD, str(n), str(calls)], env=env, capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout)["seconds"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    require_compiled()
    facts = machine()
    hogs = [mp.get_context("fork").Process(target=_hog, daemon=True) for _ in range(os.cpu_count() or 1)]
    for h in hogs:
        h.start()
    rows = []
    try:
        for _ in range(args.rounds):
            for label, policy in (("passive (cchmi default)", None), ("spinning (OMP_WAIT_POLICY=ACTIVE)", "ACTIVE")):
                rows.append({**facts, "hogs": len(hogs), "n": args.n, "calls": args.calls, "policy": label,
                             "seconds": run(policy, args.n, args.calls)})
    finally:
        for h in hogs:
            h.kill()
    append_csv("bench_wait", rows)
    print(f"machine: {facts['cpu']} ({facts['cores']} cores, {facts['threads']} threads, {len(hogs)} hogs), "
          f"git {facts['git']}, {facts['date']} UTC")
    print(markdown_table(["policy", "calls", "seconds"], [[r["policy"], r["calls"], f"{r['seconds']:.3g}"] for r in rows]))


if __name__ == "__main__":
    main()
