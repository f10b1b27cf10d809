"""Calibration of the unreliability flag (issue 24): cchmi.mi's self-consistency checks on tasks with known MI.

For each task and n, runs ``cchmi.mi(x, y, estimator=E, checks="all")`` and records the truth, the
estimate, the relative error, whether the result is flagged unreliable, the reasons, the seconds of
the estimate and of the checks. The flag's goal: raised on every run whose error exceeds 25%, on
at most 10% of the others. Writes flag.csv and flag.md to --out.

    python bench/bench_flag.py --n 2000 5000 --out bench/results/flag_calibration
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import time
from pathlib import Path

import cchmi
from cchmi.data.hd_tasks import hd_suite
from cchmi.data.tasks import catalogue
from cchmi.estimators.consistency import CHECK_NAMES

ERROR_LIMIT = 0.25

NUMBERS = ("projected", "one_copy", "two_copies", "response", "times", "quarter", "tolerance")
"""The numbers of each check kept in the table."""

COLUMNS = ("data processing.projected", "data processing.tolerance", "additivity.one_copy", "additivity.two_copies",
           "additivity.tolerance", "extrapolation.times", "planted signal.response", "planted signal.tolerance",
           "stability.quarter", "stability.tolerance")

HD_WIDER = ("hd-gauss-dense-128-0.5", "hd-gauss-dense-128-2", "hd-gauss-sparse-128-2", "hd-embed-k1-128-2",
            "hd-halfcube-128-4", "hd-label-128-0.5")
"""Tasks at 128 dims per side added to every task of the suite at 64."""


def tasks(which: str) -> list:
    """The continuous tasks: the suite at 64 dims and HD_WIDER ("hd"), the catalogue ("catalogue"), or both."""
    chosen = []
    if which in ("hd", "both"):
        chosen += hd_suite(dims=(64,))
        chosen += [t for t in hd_suite(dims=(128,)) if t.name in HD_WIDER]
    if which in ("catalogue", "both"):
        chosen += [t for t in catalogue().values() if t.kind == "continuous"]
    return chosen


def run(task, n: int, estimator: str, seed: int) -> dict:
    s = task.sample(n, seed)
    start = time.perf_counter()
    r = cchmi.mi(s.x, s.y, estimator=estimator, checks="all", random_state=seed)
    seconds = time.perf_counter() - start
    record = (r.reliability.checks or {}).get("I(X; Y)", {})
    error = abs(r.estimate - task.mi) / task.mi
    numbers = {f"{check}.{key}": round(value, 4) for check in ("extrapolation", *CHECK_NAMES)
               for key, value in record.get(check, {}).items() if key in NUMBERS and value is not None}
    return dict(task=task.name, dims=f"{task.dim_x}+{task.dim_y}", n=n, asked=estimator, estimator=r.estimator,
                truth=round(task.mi, 4), estimate=round(r.estimate, 4), error=round(error, 4),
                flag=not r.reliability.reliable, reasons=" | ".join(r.reliability.reasons), seconds=round(seconds, 2),
                check_seconds=round(record.get("seconds", 0.0), 2), **{key: numbers.get(key) for key in COLUMNS})


def summary(rows: list[dict]) -> list[str]:
    bad = [r for r in rows if r["error"] > ERROR_LIMIT]
    good = [r for r in rows if r["error"] <= ERROR_LIMIT]
    hits = sum(r["flag"] for r in bad)
    alarms = sum(r["flag"] for r in good)
    lines = [f"- runs with error > {100 * ERROR_LIMIT:g}%: {len(bad)}, flagged {hits} (goal: all)",
             f"- runs with error <= {100 * ERROR_LIMIT:g}%: {len(good)}, flagged {alarms} (goal: at most 10%)"]
    missed = [f"{r['task']} n={r['n']} {r['estimator']} ({100 * r['error']:.0f}% off)" for r in bad if not r["flag"]]
    if missed:
        lines.append("- missed: " + "; ".join(missed))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[2000, 5000])
    parser.add_argument("--estimators", nargs="+", default=["auto", "ksg"])
    parser.add_argument("--tasks", choices=("hd", "catalogue", "both"), default="both")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/flag_calibration"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for task in tasks(args.tasks):
        for n in args.n:
            for estimator in args.estimators:
                rows.append(run(task, n, estimator, args.seed))
                print(rows[-1], flush=True)
    with open(args.out / "flag.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    text = ["# Calibration of the unreliability flag (issue 24)", "",
            f"Command: `python bench/bench_flag.py --n {' '.join(map(str, args.n))} --estimators "
            f"{' '.join(args.estimators)} --tasks {args.tasks} --seed {args.seed} --out {args.out}`",
            f"(git {commit} plus the working tree, {platform.machine()} with {os.cpu_count()} cores shared by other "
            f"jobs, {time.strftime('%Y-%m-%d')}). Every run: `cchmi.mi(x, y, estimator=E, checks='all')`; error = "
            f"|estimate - truth| / truth; flag = reliability.reliable is False. Rows: flag.csv.", "",
            *summary(rows), ""]
    for name in args.estimators:
        text += [f"## estimator={name!r}", "", *summary([r for r in rows if r["asked"] == name]), ""]
    (args.out / "flag.md").write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
