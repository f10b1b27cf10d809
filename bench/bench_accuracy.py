"""Accuracy of cchmi's estimators and the installed peers on the task catalogue (`cchmi bench
accuracy`; run this way, results go to bench/results/accuracy/).

    python -m bench.bench_accuracy --quick          # about 2 minutes on 2 cores
    python -m bench.bench_accuracy                  # every task, n = 500, 2000, 8000, 5 seeds

Every task of a suite (``suite``: "catalogue", :mod:`cchmi.data.tasks`, or "hd", the 64- to
1024-dim suite of :mod:`cchmi.data.hd_tasks`; or its ``--quick`` subset) at several n, with several seeds
(``seed_offset``, ``seed_offset + 1``, ...); each method (bench/peers.py; by default cchmi's kNN
estimators and the peers, or the ``methods`` named) estimates MI on the same sample. Summary per
(task, n, method): seeds, median absolute and relative error, the spread (the 25-75% range of the
estimates), median seconds and how many calls failed. Each call runs in its own forked process
with a timeout; the one call it makes is timed cold, which is indicative only.

Summary per (n, method) over every (task, seed) run, first in the report: the mean absolute error,
its ratio to KSG-1's (``REFERENCE``) on the runs where both returned (the issue's goal for
:func:`cchmi.mi`: at most half of KSG-1's at n = 5000), and, for methods that report an
interval (cchmi.mi: 95%; bench/peers.HD_METHODS: 90%), its coverage of the true MI. For the runs of
the high-dimensional suite, the issue's goals per method (:func:`goal_summary`: error over truths in
[0.5, 10] nats, 90% interval coverage, the unreliability flag's hits and false alarms, the ratio to
the best peer) and a table of every run (:func:`run_table`). For the extrapolated estimates of
cchmi.mi (every run whose estimator was "...-extrapolated"), the report also gives the coverage
their intervals would have had with MODEL_SPREAD = c (bench/_harness.py: ``widened_coverage``).

The rules of ``cchmi.mi(estimator="auto")`` were derived on the rule seed 1000, so that run is
in-sample for "cchmi.mi auto"; it is kept apart from the held-out runs (seeds 0, 1, ...) in
bench/results/accuracy/rules/ (command in :data:`RULES_COMMAND`). Every run appends its rows to
accuracy.csv; ``report_only`` rebuilds accuracy.md and the plots from all of them (a rerun of the
same task, n, seed and method superseding the earlier row: :func:`latest_runs`).
"""

from __future__ import annotations

import csv
import math
import shlex
import statistics
import sys
from pathlib import Path

import numpy as np

from cchmi._progress import Progress
from cchmi.data.hd_tasks import HD_QUICK_TASKS, hd_suite
from cchmi.data.tasks import QUICK_TASKS, Task, catalogue

from . import peers
from ._harness import RESULTS, calibration_table, fmt, markdown_table, write_report

REFERENCE = "cchmi KSG-1 / Ross"
"""The method the summary's error ratios are taken against."""

RULES_COMMAND = ("cchmi bench accuracy --n 5000 --seeds 1 --seed-offset 1000 --methods 'cchmi KSG-1 / Ross' "
                 "'cchmi.mi ksg-extrapolated' 'cchmi.mi auto' 'cchmi.mi neural' --timeout 900 "
                 "--out bench/results/accuracy/rules")
"""The run behind the rule table of cchmi.mi(estimator="auto") (bench/results/accuracy/rules/)."""

SUITES = ("catalogue", "hd")
"""Task lists of ``suite``: the catalogue (cchmi.data.tasks) and the high-dimensional suite (cchmi.data.hd_tasks)."""


def suite_tasks(suite: str) -> tuple[dict[str, Task], tuple[str, ...]]:
    """The tasks of `suite` by name, and the names of its quick subset."""
    if suite not in SUITES:
        raise ValueError(f"suite must be one of {', '.join(SUITES)}; got {suite!r}")
    if suite == "hd":
        return {t.name: t for t in hd_suite()}, HD_QUICK_TASKS
    return catalogue(), QUICK_TASKS


def run_accuracy(tasks: list[Task], sizes: list[int], seeds: int, *, method_list: list, timeout: float,
                 device=None, progress: bool = True, seed_offset: int = 0) -> list[dict]:
    """One row per (task, n, seed, method), seeds seed_offset, ..., seed_offset + seeds - 1: estimate,
    truth, error, seconds, status; for methods that report an interval (a dict, bench/peers.py) also
    ci_low, ci_high, its level, whether it covers the truth, the estimator that ran, the bias
    correction and MODEL_SPREAD (NaN or "" where they do not apply)."""
    peers.preload(method_list)
    rows = []
    bar = Progress(len(tasks) * len(sizes) * seeds * len(method_list), "accuracy", progress)
    for task in tasks:
        for n in sizes:
            for seed in range(seed_offset, seed_offset + seeds):
                s = task.sample(n, seed)
                for method in method_list:
                    bar.step(f"{task.name} n={n} {method[0]}")
                    value, seconds, status, d = peers.call_details(method, task, s, device, timeout, warmup=False)
                    low, high = d.get("ci_low", math.nan), d.get("ci_high", math.nan)
                    interval = math.isfinite(low) and math.isfinite(high)
                    level = d.get("confidence", peers.INTERVAL_LEVEL)
                    rows.append({"task": task.name, "kind": task.kind, "dims": f"{task.dim_x}+{task.dim_y}", "n": n,
                                 "seed": seed, "method": method[0], "estimate": value, "truth": task.mi,
                                 "error": value - task.mi, "seconds": seconds, "status": status,
                                 "ran": d.get("estimator", ""), "ci_low": low, "ci_high": high,
                                 "confidence": level if interval else math.nan,
                                 "covered": int(low <= task.mi <= high) if interval else "",
                                 "bias": d.get("bias", math.nan), "model_spread": d.get("model_spread", math.nan),
                                 "flag": d.get("flag", ""), "reasons": d.get("reasons", ""), "note": d.get("note", ""),
                                 "version": peers.version_of(method)})
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


def method_summary(rows: list[dict]) -> list[dict]:
    """Per (n, method): runs ((task, seed) pairs), ok, tasks ok, the mean absolute error over the ok
    runs, its ratio to REFERENCE's over the runs where both returned (``paired``; NaN without the
    reference), and the coverage of the intervals (covered / runs with one)."""
    reference = {(r["task"], r["n"], r["seed"]): abs(r["error"]) for r in rows
                 if r["method"] == REFERENCE and r["status"] == "ok" and math.isfinite(r["error"])}
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["n"], r["method"]), []).append(r)
    out = []
    for (n, method), rs in groups.items():
        ok = [r for r in rs if r["status"] == "ok" and math.isfinite(r["error"])]
        paired = [r for r in ok if (r["task"], n, r["seed"]) in reference]
        ref = sum(reference[(r["task"], n, r["seed"])] for r in paired)
        with_ci = [r for r in ok if r["covered"] != ""]
        out.append({
            "n": n, "method": method, "runs": len(rs), "ok": len(ok), "tasks": len({r["task"] for r in ok}),
            "mae": float(np.mean([abs(r["error"]) for r in ok])) if ok else math.nan,
            "paired": len(paired),
            "ratio": sum(abs(r["error"]) for r in paired) / ref if paired and ref > 0 else math.nan,
            "interval_runs": len(with_ci), "covered": sum(int(r["covered"]) for r in with_ci),
            "median_seconds": float(np.median([r["seconds"] for r in ok])) if ok else math.nan,
        })
    out.sort(key=lambda s: (s["n"], s["method"] != REFERENCE, s["method"]))
    return out


def method_table(summary: list[dict]) -> str:
    rows = [[s["n"], s["method"], f"{s['ok']}/{s['runs']}", s["tasks"], fmt(s["mae"], ".3f"),
             fmt(s["ratio"], ".2f") + (f" ({s['paired']} runs)" if s["paired"] else ""),
             f"{s['covered']}/{s['interval_runs']} ({s['covered'] / s['interval_runs']:.2f})" if s["interval_runs"]
             else "-", fmt(s["median_seconds"], ".3g")] for s in summary]
    return markdown_table(["n", "method", "runs ok", "tasks", "mean abs error [nats]", f"ratio to {REFERENCE}",
                           "interval coverage", "median s"], rows)


def calibration_rows(rows: list[dict]) -> dict[str, list[dict]]:
    """The extrapolated estimates with an interval (bench/_harness.widened_coverage's rows), by n;
    the truths of the catalogue are exact (no slack)."""
    out: dict = {}
    for r in rows:
        if r["status"] == "ok" and r["covered"] != "" and str(r["ran"]).endswith("-extrapolated"):
            z = statistics.NormalDist().inv_cdf(0.5 + r["confidence"] / 2)
            out.setdefault(f"{r['method']}, n = {r['n']}", []).append({
                "error": r["error"], "stderr": (r["ci_high"] - r["ci_low"]) / (2 * z), "correction": abs(r["bias"]),
                "model_spread": r["model_spread"], "z": z, "slack": 0.0})
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


GOAL_TRUTH = (0.5, 10.0)
"""Truths (nats) of the runs the issue's goals are scored on."""

GOAL_MAE, GOAL_MEDIAN_REL, GOAL_COVERAGE, GOAL_FLAG_ERROR, GOAL_FALSE_ALARMS, GOAL_PEER_RATIO = (
    0.3, 0.10, (0.85, 0.95), 0.25, 0.10, 0.8)
"""The goals of the high-dimensional issue: mean absolute error (nats) and median relative error at
most these, 90% intervals covering on a share in this range, the flag raised on every run whose
relative error exceeds GOAL_FLAG_ERROR and on at most GOAL_FALSE_ALARMS of the others, and a mean
absolute error at most GOAL_PEER_RATIO x the best peer's on the same runs."""


def _rel(r: dict) -> float:
    return abs(r["error"]) / r["truth"]


def goal_summary(rows: list[dict]) -> list[dict]:
    """Per (n, dims, method), over its runs with truth in GOAL_TRUTH: runs, ok (returned a number), the
    statuses of the others, the mean absolute error and the median relative error of the ok runs,
    the interval coverage (covered / runs with an interval, and their level(s)), the flag's hits
    (flagged runs among those with relative error above GOAL_FLAG_ERROR, of those) and false alarms
    (flagged among the others), and, for cchmi's methods, ``peers``: per peer (bench/peers.is_peer)
    the ratio of the method's mean absolute error to the peer's on the runs both returned, and those
    runs, largest ratio first; ``peer_ratio`` and ``best_peer`` are the first: the peer that did
    best against the method, the one the goal is stated against."""
    scored = [r for r in rows if GOAL_TRUTH[0] <= r["truth"] <= GOAL_TRUTH[1]]
    ok_runs = [r for r in scored if r["status"] == "ok" and math.isfinite(r["error"])]
    groups: dict = {}
    for r in scored:
        groups.setdefault((r["n"], r["dims"], r["method"]), []).append(r)
    peer_errors: dict = {}
    for r in ok_runs:
        if peers.is_peer(r["method"]):
            peer_errors.setdefault(r["method"], {})[(r["task"], r["n"], r["seed"])] = abs(r["error"])
    out = []
    for (n, dims, method), rs in groups.items():
        ok = [r for r in rs if r["status"] == "ok" and math.isfinite(r["error"])]
        with_ci = [r for r in ok if r["covered"] != ""]
        flagged = [r for r in ok if r.get("flag") in ("reliable", "unreliable")]
        bad = [r for r in flagged if _rel(r) > GOAL_FLAG_ERROR]
        good = [r for r in flagged if _rel(r) <= GOAL_FLAG_ERROR]
        against = []  # (ratio, peer, runs) on the runs both returned, largest ratio first
        for peer, errors in ({} if peers.is_peer(method) else peer_errors).items():
            common = [r for r in ok if (r["task"], n, r["seed"]) in errors]
            if common:
                peer_mae = float(np.mean([errors[(r["task"], n, r["seed"])] for r in common]))
                mae = float(np.mean([abs(r["error"]) for r in common]))
                against.append((mae / peer_mae if peer_mae > 0 else math.inf, peer, len(common)))
        against.sort(key=lambda a: -a[0])
        best = against[0] if against else (math.nan, "", 0)
        out.append({
            "n": n, "dims": dims, "method": method, "runs": len(rs), "ok": len(ok),
            "other": ", ".join(f"{k} {v}" for k, v in sorted(_status_counts(rs).items())),
            "mae": float(np.mean([abs(r["error"]) for r in ok])) if ok else math.nan,
            "median_rel": float(np.median([_rel(r) for r in ok])) if ok else math.nan,
            "interval_runs": len(with_ci), "covered": sum(int(r["covered"]) for r in with_ci),
            "levels": sorted({float(r["confidence"]) for r in with_ci}),
            "flag_runs": len(flagged), "bad": len(bad), "hits": sum(r["flag"] == "unreliable" for r in bad),
            "good": len(good), "false_alarms": sum(r["flag"] == "unreliable" for r in good),
            "peer_ratio": best[0], "best_peer": best[1], "peer_runs": best[2], "peers": against,
        })
    out.sort(key=lambda g: (g["n"], int(g["dims"].split("+")[0]), peers.is_peer(g["method"]), g["method"]))
    return out


def _status_counts(rows: list[dict]) -> dict[str, int]:
    """How many of `rows` did not return a number, by status (a timeout's or an error's first word)."""
    counts: dict = {}
    for r in rows:
        if r["status"] != "ok":
            key = str(r["status"]).split(":")[0].split(" >")[0]
            counts[key] = counts.get(key, 0) + 1
    return counts


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "not met")


def goal_table(goals: list[dict]) -> str:
    """Markdown: :func:`goal_summary` with each goal met / not met (n/a where nothing was measured;
    the error goals say so when only some runs returned a number)."""
    body = []
    for g in goals:
        cov = g["covered"] / g["interval_runs"] if g["interval_runs"] else math.nan
        level = "/".join(f"{c:.0%}" for c in g["levels"])
        partial = f" on the {g['ok']} runs that returned" if 0 < g["ok"] < g["runs"] else ""
        body.append([
            g["n"], g["dims"], g["method"], f"{g['ok']}/{g['runs']}" + (f" ({g['other']})" if g["other"] else ""),
            fmt(g["mae"], ".3f") + f" ({_met(g['mae'] <= GOAL_MAE if g['ok'] else None)}{partial})",
            fmt(g["median_rel"], ".1%")
            + f" ({_met(g['median_rel'] <= GOAL_MEDIAN_REL if g['ok'] else None)}{partial})",
            (f"{g['covered']}/{g['interval_runs']} = {cov:.2f} at {level} "
             f"({_met(GOAL_COVERAGE[0] <= cov <= GOAL_COVERAGE[1] if g['levels'] == [0.9] else None)})")
            if g["interval_runs"] else "-",
            (f"{g['hits']}/{g['bad']} hits, {g['false_alarms']}/{g['good']} false alarms "
             f"({_met(g['hits'] == g['bad'] and g['false_alarms'] <= GOAL_FALSE_ALARMS * g['good'])})")
            if g["flag_runs"] else "-",
            ", ".join(f"{ratio:.2f} vs {peer} ({runs} run{'s' * (runs != 1)})" for ratio, peer, runs in g["peers"])
            + f" ({_met(g['peer_ratio'] <= GOAL_PEER_RATIO)})" if g["best_peer"] else "-",
        ])
    return markdown_table(["n", "dims", "method", "runs ok", f"mean abs error [nats] (goal <= {GOAL_MAE:g})",
                           f"median rel error (goal <= {GOAL_MEDIAN_REL:.0%})",
                           f"interval coverage (goal {GOAL_COVERAGE[0]:.0%}-{GOAL_COVERAGE[1]:.0%} at 90%)",
                           f"flag: error > {GOAL_FLAG_ERROR:.0%} flagged / others flagged "
                           f"(goal all / <= {GOAL_FALSE_ALARMS:.0%})",
                           f"error / each peer's on the same runs (goal: the largest <= {GOAL_PEER_RATIO:g})"],
                          body)


REASON_CHARS = 70
"""Characters of the flag's first reason shown in the per-run table (the CSV has every reason)."""


def run_table(rows: list[dict]) -> str:
    """Markdown: one line per run (task, dims, n, method, truth, estimate, error, interval with its
    level and whether it covers, flag and its first reason, seconds, status and note)."""
    body = []
    for r in sorted(rows, key=lambda r: (r["task"], r["n"], r["seed"], r["method"])):
        interval = (f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}] ({r['confidence']:.0%})"
                    if r["covered"] != "" else "-")
        reasons = str(r.get("reasons") or "")
        flag = r.get("flag") or "-"
        if reasons:
            flag += ": " + (reasons[:REASON_CHARS] + "..." if len(reasons) > REASON_CHARS else reasons)
        status = str(r["status"])
        note = str(r.get("note") or "")
        body.append([r["task"], r["dims"], r["n"], r["method"], f"{r['truth']:.3f}", fmt(r["estimate"], ".3f"),
                     fmt(r["error"], "+.3f"), interval, {1: "yes", 0: "no"}.get(r["covered"], "-"), flag,
                     fmt(r["seconds"], ".3g"), status + (f": {note}" if note and note not in status else "")])
    return markdown_table(["task", "dims", "n", "method", "true MI", "estimate", "error", "interval", "covers",
                           "flag", "seconds", "status"], body)


def _hd_names() -> set[str]:
    return {t.name for t in hd_suite()}


def report_text(rows: list[dict], commands: str) -> str:
    """The report's Markdown: `commands` (the line naming the run's commands), the summary per
    method, for rows of the high-dimensional suite the issue's goals per method (:func:`goal_table`)
    and the table of every run (:func:`run_table`), the MODEL_SPREAD calibration (when there are
    extrapolated estimates with intervals), the table per task."""
    hd = _hd_names()
    hd_rows = [r for r in rows if r["task"] in hd]
    parts = [commands,
             f"Per n and method, over every (task, seed) run: mean absolute error; its ratio to {REFERENCE}'s on "
             "the runs where both returned (the goal for cchmi.mi: at most 0.5 at n = 5000); coverage of the "
             "true MI by the intervals of the methods that report one (95%; 90% for the methods named so).",
             method_table(method_summary(rows))]
    if hd_rows:
        parts += [f"The issue's goals on the high-dimensional suite's runs with truth in [{GOAL_TRUTH[0]:g}, "
                  f"{GOAL_TRUTH[1]:g}] nats, per n, dimensions and method (met / not met on these runs; n/a where "
                  "nothing was measured). The flag column counts runs whose result carries the unreliability "
                  "flag (cchmi.mi).",
                  goal_table(goal_summary(hd_rows)),
                  "Every run of the high-dimensional suite (the flag's first reason shortened; every reason is in "
                  "the CSV's `reasons` column, the version of the package that ran in `version`):",
                  run_table(hd_rows)]
    groups = calibration_rows(rows)
    if groups:
        parts += ["Calibration of MODEL_SPREAD (cchmi/estimators/extrapolate.py): coverage of the extrapolated "
                  "estimates' intervals (at each run's level) had the power law's error been c x |correction| "
                  "instead of the MODEL_SPREAD they ran with (the estimator that ran was '...-extrapolated').",
                  calibration_table(groups)]
    parts.append(accuracy_table(summarise_accuracy(rows)))
    return "\n\n".join(parts)


def command_line(sizes, seeds, seed_offset, methods, tasks, quick, neural, device, timeout,
                 suite: str = "catalogue") -> str:
    """The `cchmi bench accuracy` command that reproduces a run (for the report's header)."""
    parts = ["cchmi", "bench", "accuracy"] + (["--suite", suite] if suite != "catalogue" else [])
    parts += ["--quick"] if quick else []
    parts += ["--n", ",".join(map(str, sizes)), "--seeds", str(seeds)]
    parts += ["--seed-offset", str(seed_offset)] if seed_offset else []
    parts += ["--methods", *methods] if methods else (["--neural"] if neural else [])
    parts += ["--tasks", ",".join(tasks)] if tasks else []
    parts += ["--device", str(device)] if device is not None else []
    return shlex.join(parts + ["--timeout", f"{timeout:g}"])


def main_accuracy(out: Path, *, quick: bool, seeds: int | None, tasks: list[str] | None, neural: bool,
                  device, timeout: float, progress: bool, sizes: list[int] | None = None, seed_offset: int = 0,
                  methods: list[str] | None = None, report_only: bool = False, suite: str = "catalogue") -> str:
    """`cchmi bench accuracy`: runs, writes the report files to `out`, returns the printed text.
    suite: the task list, "catalogue" or "hd" (:data:`SUITES`); tasks: names in it (default all, or the
    suite's quick subset with `quick`).
    sizes: n (default 500, 2000, 8000; quick 1000, 4000); seeds from seed_offset; methods: names of
    bench/peers.py methods (default: cchmi's kNN estimators, the neural ones with `neural`, the peers).
    report_only: run nothing, rebuild the report from every row of out/accuracy.csv."""
    if report_only:
        return report_from_csv(out)
    cat, quick_tasks = suite_tasks(suite)
    names = tasks or (list(quick_tasks) if quick else list(cat))
    unknown = [t for t in names if t not in cat]
    if unknown:
        raise ValueError(f"unknown task(s) {', '.join(unknown)}; tasks: {', '.join(cat)}")
    if isinstance(seed_offset, bool) or not isinstance(seed_offset, int) or seed_offset < 0:
        raise ValueError(f"seed_offset must be an integer >= 0, got {seed_offset!r}")
    sizes = sizes or ([1000, 4000] if quick else [500, 2000, 8000])
    seeds = seeds or (3 if quick else 5)
    if methods is not None:
        method_list = peers.by_name(methods)
    else:
        method_list = (peers.CCHMI_METHODS + (peers.NEURAL_METHODS if neural else []) + peers.PEERS
                       + ([] if quick else peers.SLOW_PEERS))
    rows = run_accuracy([cat[t] for t in names], sizes, seeds, method_list=method_list, timeout=timeout,
                        device=device, progress=progress, seed_offset=seed_offset)
    command = command_line(sizes, seeds, seed_offset, methods, tasks, quick, neural, device, timeout, suite)
    rows = [{**r, "command": command} for r in rows]
    summary = summarise_accuracy(rows)
    return write_report(out, "accuracy", rows, report_text(rows, f"Command: `{command}`"),
                        lambda folder: plot_accuracy(summary, folder))


FLOATS = ("estimate", "truth", "error", "seconds", "ci_low", "ci_high", "confidence", "bias", "model_spread")


def read_rows(path: Path) -> list[dict]:
    """The rows of an accuracy.csv with their numbers parsed; columns that older rows lack (an
    earlier version of this script) read as NaN, or "" for ``covered`` and ``ran``."""
    with Path(path).open(newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r.update(n=int(r["n"]), seed=int(r["seed"]), covered=int(r["covered"]) if r.get("covered") else "",
                 ran=r.get("ran") or "", **{k: float(r[k]) if r.get(k) else math.nan for k in FLOATS})
    return rows


def latest_runs(rows: list[dict]) -> list[dict]:
    """The last row (in file order: run order) of each (task, n, seed, method): a rerun of the same
    run, after a fix, supersedes the earlier one instead of counting the same sample twice."""
    last = {(r["task"], r["n"], r["seed"], r["method"]): i for i, r in enumerate(rows)}
    return [r for i, r in enumerate(rows) if last[(r["task"], r["n"], r["seed"], r["method"])] == i]


def report_from_csv(out: Path) -> str:
    """Rewrites accuracy.md and the plots in `out` from every row of out/accuracy.csv (several runs
    together, each command named), without running anything; returns the text."""
    every = read_rows(Path(out) / "accuracy.csv")
    if not every:
        raise ValueError(f"out: {out}/accuracy.csv has no rows")
    rows = latest_runs(every)
    commands = sorted({r.get("command") or "(not recorded)" for r in rows})
    dates = sorted(r["date"] for r in rows)
    machines = sorted({f"{r['cpu']} ({r['cores']} cores){', ' + r['gpu'] if r.get('gpu') else ''}" for r in rows})
    rerun = f" ({len(every) - len(rows)} earlier rows superseded by reruns)" if len(every) > len(rows) else ""
    header = (f"cchmi bench accuracy: {len(rows)} rows{rerun}, {dates[0]} to {dates[-1]} UTC, cchmi "
              f"{', '.join(sorted({r['cchmi'] for r in rows}))} (git {', '.join(sorted({r['git'] for r in rows}))}); "
              f"machines: {'; '.join(machines)}")
    table = report_text(rows, "Commands: " + "; ".join(f"`{c}`" for c in commands))
    Path(out, "accuracy.md").write_text(f"# {header}\n\n{table}\n")
    plot_accuracy(summarise_accuracy(rows), Path(out))
    return f"{header}\n\n{table}\n\nwritten to {out}/: accuracy.md, PNG plots (from every row of accuracy.csv)"


if __name__ == "__main__":
    from cchmi.cli import main  # the arguments of `cchmi bench accuracy`

    sys.exit(main(["bench", "accuracy", "--out", str(RESULTS / "accuracy"), *sys.argv[1:]]))
