"""Accuracy of cchmi's estimators and the installed peers on the task catalogue (`cchmi bench
accuracy`; run this way, results go to bench/results/accuracy/).

    python -m bench.bench_accuracy --quick          # about 2 minutes on 2 cores
    python -m bench.bench_accuracy                  # every task, n = 500, 2000, 8000, 5 seeds

Every task of :mod:`cchmi.data.tasks` (or the ``--quick`` subset) at several n, with several seeds;
each method (bench/peers.py) estimates MI on the same sample. Summary per (task, n, method): seeds,
median absolute and relative error, the spread (the 25-75% range of the estimates), median seconds
and how many calls failed. Each call runs in its own forked process with a timeout; the one call
it makes is timed cold, which is indicative only.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from bench import peers
from bench._harness import RESULTS, fmt, markdown_table, write_report
from cchmi._progress import Progress
from cchmi.data.tasks import QUICK_TASKS, Task, catalogue


def run_accuracy(tasks: list[Task], sizes: list[int], seeds: int, *, method_list: list, timeout: float,
                 device=None, progress: bool = True) -> list[dict]:
    """One row per (task, n, seed, method): estimate, truth, error, seconds, status."""
    peers.preload(method_list)
    rows = []
    bar = Progress(len(tasks) * len(sizes) * seeds * len(method_list), "accuracy", progress)
    for task in tasks:
        for n in sizes:
            for seed in range(seeds):
                s = task.sample(n, seed)
                for method in method_list:
                    bar.step(f"{task.name} n={n} {method[0]}")
                    value, seconds, status = peers.call(method, task, s, device, timeout, warmup=False)
                    rows.append({"task": task.name, "kind": task.kind, "dims": f"{task.dim_x}+{task.dim_y}", "n": n,
                                 "seed": seed, "method": method[0], "estimate": value, "truth": task.mi,
                                 "error": value - task.mi, "seconds": seconds, "status": status})
    return rows


def summarise_accuracy(rows: list[dict]) -> list[dict]:
    """Per (task, n, method): seeds, median |error|, median relative error, IQR of the estimates,
    median seconds, failures (calls that did not return: not installed and unsupported excluded)."""
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["task"], r["n"], r["method"]), []).append(r)
    out = []
    for (task, n, method), rs in groups.items():
        ok = [r for r in rs if r["status"] == "ok" and math.isfinite(r["estimate"])]
        skipped = {r["status"] for r in rs if r["status"] in ("not installed", "unsupported")}
        est = np.array([r["estimate"] for r in ok])
        truth = rs[0]["truth"]
        failed = [r["status"] for r in rs if r["status"] not in ("ok", "not installed", "unsupported")]
        out.append({
            "task": task, "n": n, "method": method, "truth": truth, "seeds": len(rs), "ok": len(ok),
            "median_estimate": float(np.median(est)) if ok else math.nan,
            "median_abs_error": float(np.median(np.abs(est - truth))) if ok else math.nan,
            "median_rel_error": float(np.median(np.abs(est - truth)) / truth) if ok and truth > 0 else math.nan,
            "iqr": float(np.subtract(*np.percentile(est, [75, 25]))) if ok else math.nan,
            "median_seconds": float(np.median([r["seconds"] for r in ok])) if ok else math.nan,
            "status": "ok" if ok and not failed else (", ".join(sorted(set(failed)))[:80] if failed
                                                       else ", ".join(sorted(skipped))),
        })
    return out


def accuracy_table(summary: list[dict]) -> str:
    rows = [[s["task"], s["n"], s["method"], f"{s['truth']:.3f}", fmt(s["median_estimate"], ".3f"),
             fmt(s["median_abs_error"], ".3f"), fmt(s["median_rel_error"], ".1%"), fmt(s["iqr"], ".3f"),
             f"{s['ok']}/{s['seeds']}", fmt(s["median_seconds"], ".3g"), "" if s["status"] == "ok" else s["status"]]
            for s in summary]
    return markdown_table(["task", "n", "method", "true MI", "median estimate", "median abs error",
                           "median rel error", "IQR", "seeds ok", "median s", "note"], rows)


def plot_accuracy(summary: list[dict], folder: Path) -> list[Path]:
    """error against n per task (one PNG per task with more than one n)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for task in sorted({s["task"] for s in summary}):
        sel = [s for s in summary if s["task"] == task and s["ok"]]
        if len({s["n"] for s in sel}) < 2:
            continue
        fig, ax = plt.subplots(figsize=(5.5, 4), dpi=110)
        for method in sorted({s["method"] for s in sel}):
            pts = sorted((s["n"], s["median_estimate"] - s["truth"]) for s in sel if s["method"] == method)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", ms=3, label=method)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("n")
        ax.set_ylabel("median estimate - truth [nats]")
        ax.set_title(task, fontsize=10)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = folder / f"accuracy_{task}.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths


def main_accuracy(out: Path, *, quick: bool, seeds: int | None, tasks: list[str] | None, neural: bool,
                  device, timeout: float, progress: bool) -> str:
    """`cchmi bench accuracy`: runs, writes the report files to `out`, returns the printed text."""
    cat = catalogue()
    names = tasks or (list(QUICK_TASKS) if quick else list(cat))
    unknown = [t for t in names if t not in cat]
    if unknown:
        raise ValueError(f"unknown task(s) {', '.join(unknown)}; tasks: {', '.join(cat)}")
    sizes = [1000, 4000] if quick else [500, 2000, 8000]
    seeds = seeds or (3 if quick else 5)
    method_list = (peers.CCHMI_METHODS + (peers.NEURAL_METHODS if neural else []) + peers.PEERS
                   + ([] if quick else peers.SLOW_PEERS))
    rows = run_accuracy([cat[t] for t in names], sizes, seeds, method_list=method_list, timeout=timeout,
                        device=device, progress=progress)
    summary = summarise_accuracy(rows)
    return write_report(out, "accuracy", rows, accuracy_table(summary), lambda folder: plot_accuracy(summary, folder))


if __name__ == "__main__":
    from cchmi.cli import main  # the arguments of `cchmi bench accuracy`

    sys.exit(main(["bench", "accuracy", "--out", str(RESULTS / "accuracy"), *sys.argv[1:]]))
