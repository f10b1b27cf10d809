"""Speed of KSG-1 end to end: cchmi against the installed peers, in the same run, on the same samples
(`cchmi bench speed`; run this way, results go to bench/results/speed/).

    python -m bench.bench_ksg --quick    # n = 1000 to 16 000 (1+1, 4+4), 4000 (16+16): about a minute
    python -m bench.bench_ksg            # n up to 100 000 for 1+1, 4+4 and 16+16 dims (the foundation issue's cases)

Seconds to a KSG-1 estimate (k=3, nats) on a correlated Gaussian with 1 nat of MI, standardised
(so that every tool's conventions match: cchmi and scikit-learn scale, NPEET does not), every method
on the same sample: cchmi, the peer packages and KSG-1 written by hand on SciPy's cKDTree (see
bench/peers.py for how each is called). Every method runs in a fresh forked process, killed after
``--timeout`` seconds (recorded as a timeout), and the second of two identical calls in that
process is timed (warm: thread pools started, caches filled, for every method alike). Reported per
row: the estimate and its difference to cchmi's (the implementations must agree), seconds, time /
cchmi in the same run, and the log-log slope of seconds against n per method.
"""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from cchmi._progress import Progress
from cchmi.data.tasks import Task

from . import peers
from ._harness import RESULTS, fmt, markdown_table, write_report

QUICK_CASES = [(n, 1) for n in (1000, 4000, 16000)] + [(n, 4) for n in (1000, 4000, 16000)] + [(4000, 16)]
FULL_CASES = ([(n, 1) for n in (1000, 10_000, 100_000)] + [(n, 4) for n in (1000, 10_000, 100_000)]
              + [(n, 16) for n in (1000, 10_000, 100_000)])
METHODS = peers.CCHMI_METHODS[:1] + peers.PEERS + peers.BY_HAND


def run_speed(cases: list[tuple[int, int]], *, method_list: list, timeout: float, progress: bool = True) -> list[dict]:
    """Seconds to an estimate for (n, dims per side) cases; one sample per case, shared."""
    from cchmi.data import correlated_gaussian

    peers.preload(method_list)
    rows = []
    bar = Progress(len(cases) * len(method_list), "speed", progress)
    for n, dim in cases:
        s = correlated_gaussian(n, dim, dim, mi=1.0, random_state=0)
        s = replace(s, x=(s.x - s.x.mean(0)) / s.x.std(0), y=(s.y - s.y.mean(0)) / s.y.std(0))
        task = Task(f"gauss-{dim}x{dim}-1", "", "continuous", dim, dim, 1.0, lambda n_, seed: s)
        for method in method_list:
            bar.step(f"n={n} {dim}+{dim} {method[0]}")
            value, seconds, status = peers.call(method, task, s, None, timeout, warmup=True)
            rows.append({"n": n, "dims": f"{dim}+{dim}", "method": method[0], "estimate": value, "seconds": seconds,
                         "status": status})
    return rows


def fit_slopes(rows: list[dict]) -> dict:
    """Log-log slope of seconds against n per (method, dims), over the sizes that finished."""
    out = {}
    for key in {(r["method"], r["dims"]) for r in rows}:
        pts = [(r["n"], r["seconds"]) for r in rows if (r["method"], r["dims"]) == key and r["status"] == "ok"
               and r["seconds"] > 0]
        if len(pts) >= 2:
            x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
            out[key] = float(np.polyfit(x, y, 1)[0])
    return out


def speed_table(rows: list[dict], slopes: dict) -> str:
    ours = {(r["n"], r["dims"]): r for r in rows if r["method"].startswith("cchmi KSG-1")}
    table = []
    for r in rows:
        ref = ours.get((r["n"], r["dims"]))
        ratio = r["seconds"] / ref["seconds"] if ref and r["status"] == "ok" and ref["seconds"] > 0 else math.nan
        diff = r["estimate"] - ref["estimate"] if ref and r is not ref else math.nan
        table.append([r["n"], r["dims"], r["method"], fmt(r["estimate"], ".4f"), fmt(diff, "+.1e"),
                      fmt(r["seconds"], ".3g"), fmt(ratio, ".1f") + ("x" if ratio == ratio else ""),
                      fmt(slopes.get((r["method"], r["dims"]), math.nan), ".2f"),
                      "" if r["status"] == "ok" else r["status"]])
    return markdown_table(["n", "dims", "method", "estimate", "diff to cchmi", "seconds", "time / cchmi",
                           "log-log slope", "note"], table)


def plot_speed(rows: list[dict], slopes: dict, folder: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=110)
    for key in sorted({(r["method"], r["dims"]) for r in rows}):
        pts = sorted((r["n"], r["seconds"]) for r in rows if (r["method"], r["dims"]) == key and r["status"] == "ok")
        if pts:
            slope = slopes.get(key)
            label = f"{key[0]} ({key[1]})" + (f", slope {slope:.2f}" if slope is not None else "")
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", ms=3, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("n")
    ax.set_ylabel("seconds")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = folder / "speed.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def main_speed(out: Path, *, quick: bool, timeout: float, progress: bool) -> str:
    """`cchmi bench speed`: runs, writes the report files to `out`, returns the printed text."""
    rows = run_speed(QUICK_CASES if quick else FULL_CASES, method_list=METHODS, timeout=timeout, progress=progress)
    slopes = fit_slopes(rows)
    return write_report(out, "speed", rows, speed_table(rows, slopes), lambda folder: plot_speed(rows, slopes, folder))


if __name__ == "__main__":
    from cchmi.cli import main  # the arguments of `cchmi bench speed`

    sys.exit(main(["bench", "speed", "--out", str(RESULTS / "speed"), *sys.argv[1:]]))
