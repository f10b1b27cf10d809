"""``cchmi bench accuracy`` and ``cchmi bench speed``: cchmi's estimators and the installed peers on
the same samples, in the same run.

Accuracy: every task of :mod:`cchmi.data.tasks` (or the ``--quick`` subset) at several n, with
several seeds; each method estimates MI on the same sample. Summary per (task, n, method): seeds,
median absolute and relative error, the spread (the 25-75% range of the estimates), median seconds
and how many calls failed. Speed: seconds to a KSG-1 estimate (k=3) on correlated Gaussians against
n, every method on the same sample, with the log-log slope fitted per method.

Peers (each optional; "not installed" is recorded, a crash or a timeout too, never dropped), called
with their documented defaults, which already use k=3, plus the settings that matter for the
comparison: natural log units (NPEET's default is bits: base=e is passed) and the same sample:

* scikit-learn ``mutual_info_regression(x, y, n_neighbors=3)`` (1+1 tasks) and
  ``mutual_info_classif(x, labels, n_neighbors=3)`` (1-dim labels tasks): it scores one feature at
  a time, so multivariate tasks are "unsupported";
* NPEET (``npeet_plus.mi(x, y, k=3, base=e)``; ``micd`` for labels);
* ennemi ``estimate_mi(y, x, k=3)`` (1+1; ``discrete_y=True`` for labels);
* infomeasure ``mutual_information(x, y, approach="ksg", k=3, base="e")``;
* benchmark-mi ``KSGEnsembleFirstEstimator(neighborhoods=(3,)).estimate(x, y)`` (its default
  neighbourhoods are (5, 10); it pins NumPy < 2, so it cannot share an environment with NumPy 2);
* latentmi ``lmi.estimate(x, y)`` (continuous; slow, accuracy only; np.NaN shimmed on NumPy 2).

Every call runs in its own forked process, killed after ``timeout`` seconds; peers' modules are
imported before, so no time includes an import. Speed times the second of two identical calls in
that process (warm: thread pools started, caches filled, for every method alike); accuracy times
the one call it makes (cold), which is indicative only.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np

from cchmi._harness import append_csv, machine, markdown_table, run_with_timeout
from cchmi._progress import Progress
from cchmi.data.tasks import QUICK_TASKS, Task, catalogue

K = 3


# -- methods --------------------------------------------------------------------------------------

def _cchmi_ksg(variant):
    def run(x, y, task, device):
        import cchmi

        if task.kind == "labels":
            return cchmi.mixed_mi(x, y, k=K).estimate
        return cchmi.ksg_mi(x, y, k=K, variant=variant).estimate
    return run


def _cchmi_neural(x, y, task, device):
    import cchmi

    if task.kind == "labels":
        return cchmi.latent_mi(x, y, labels=True, device=device).estimate
    return cchmi.neural_mi(x, y, device=device).estimate


def _sklearn(x, y, task, device):
    from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

    if task.kind == "labels":
        return float(mutual_info_classif(x, y, n_neighbors=K, random_state=0)[0])
    return float(mutual_info_regression(x, y[:, 0], n_neighbors=K, random_state=0)[0])


def _npeet(x, y, task, device):
    import npeet_plus

    if task.kind == "labels":
        return float(npeet_plus.micd(x, y.reshape(-1, 1), k=K, base=math.e))
    return float(npeet_plus.mi(x, y, k=K, base=math.e))


def _ennemi(x, y, task, device):
    import ennemi

    if task.kind == "labels":
        return float(np.asarray(ennemi.estimate_mi(y, x[:, 0], k=K, discrete_y=True)).ravel()[0])
    return float(np.asarray(ennemi.estimate_mi(y[:, 0], x[:, 0], k=K)).ravel()[0])


def _infomeasure(x, y, task, device):
    import infomeasure

    return float(infomeasure.mutual_information(x, y, approach="ksg", k=K, base="e"))


def _bmi(x, y, task, device):
    from bmi.estimators import KSGEnsembleFirstEstimator

    return float(KSGEnsembleFirstEstimator(neighborhoods=(K,)).estimate(x, y))


def _latentmi(x, y, task, device):
    from latentmi import lmi

    if not hasattr(np, "NaN"):
        np.NaN = np.nan
    pmi, _, _ = lmi.estimate(x, y, quiet=True, device=device)
    return float(np.nanmean(pmi))


# name, module that must be importable, function, which tasks it supports
CCHMI_METHODS = [
    ("cchmi KSG-1 / Ross", "cchmi", _cchmi_ksg(1), lambda t: True),
    ("cchmi KSG-2", "cchmi", _cchmi_ksg(2), lambda t: t.kind == "continuous"),
]
NEURAL_METHODS = [("cchmi neural (SMILE / latent for labels)", "torch", _cchmi_neural, lambda t: True)]
PEERS = [
    ("scikit-learn", "sklearn", _sklearn, lambda t: t.dim_x == 1 and (t.kind == "labels" or t.dim_y == 1)),
    ("NPEET", "npeet_plus", _npeet, lambda t: True),
    ("ennemi", "ennemi", _ennemi, lambda t: t.dim_x == 1 and (t.kind == "labels" or t.dim_y == 1)),
    ("infomeasure", "infomeasure", _infomeasure, lambda t: t.kind == "continuous"),
    ("benchmark-mi (bmi)", "bmi", _bmi, lambda t: t.kind == "continuous"),
]
SLOW_PEERS = [("latentmi", "latentmi", _latentmi, lambda t: t.kind == "continuous")]


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# Imported in the parent before any forked call, so that no timing includes an import.
_PRELOAD = {"sklearn": "sklearn.feature_selection", "npeet_plus": "npeet_plus", "ennemi": "ennemi", "bmi": "bmi",
            "infomeasure": "infomeasure", "latentmi": "latentmi.lmi", "torch": "cchmi.neural"}


def _preload(method_list: list) -> None:
    for _, module, _, _ in method_list:
        if module in _PRELOAD and _installed(module):
            importlib.import_module(_PRELOAD[module])


def methods(neural: bool = False, slow_peers: bool = False) -> list:
    return CCHMI_METHODS + (NEURAL_METHODS if neural else []) + PEERS + (SLOW_PEERS if slow_peers else [])


def _call(method, task: Task, s, device, timeout: float, warmup: bool) -> tuple[float, float, str]:
    """(estimate, seconds, status) of one method on one sample, in a forked process with a timeout."""
    _, module, fn, supports = method
    if not _installed(module):
        return math.nan, math.nan, "not installed"
    if not supports(task):
        return math.nan, math.nan, "unsupported"
    t = run_with_timeout(lambda: fn(s.x, s.y, task, device), timeout, warmup=warmup)
    return (t.value if t.value is not None else math.nan), t.median, t.status


# -- accuracy -------------------------------------------------------------------------------------

def run_accuracy(tasks: list[Task], sizes: list[int], seeds: int, *, method_list: list, timeout: float,
                 device=None, progress: bool = True) -> list[dict]:
    """One row per (task, n, seed, method): estimate, truth, error, seconds, status."""
    _preload(method_list)
    rows = []
    bar = Progress(len(tasks) * len(sizes) * seeds * len(method_list), "accuracy", progress)
    for task in tasks:
        for n in sizes:
            for seed in range(seeds):
                s = task.sample(n, seed)
                for method in method_list:
                    bar.step(f"{task.name} n={n} {method[0]}")
                    value, seconds, status = _call(method, task, s, device, timeout, warmup=False)
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


def _fmt(v, spec):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def accuracy_table(summary: list[dict]) -> str:
    rows = [[s["task"], s["n"], s["method"], f"{s['truth']:.3f}", _fmt(s["median_estimate"], ".3f"),
             _fmt(s["median_abs_error"], ".3f"), _fmt(s["median_rel_error"], ".1%"), _fmt(s["iqr"], ".3f"),
             f"{s['ok']}/{s['seeds']}", _fmt(s["median_seconds"], ".3g"), "" if s["status"] == "ok" else s["status"]]
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


# -- speed ----------------------------------------------------------------------------------------

def run_speed(cases: list[tuple[int, int]], *, method_list: list, timeout: float, progress: bool = True) -> list[dict]:
    """Seconds to an estimate for (n, dims per side) cases; one sample per case, shared."""
    from cchmi.data import correlated_gaussian

    _preload(method_list)
    rows = []
    bar = Progress(len(cases) * len(method_list), "speed", progress)
    for n, dim in cases:
        s = correlated_gaussian(n, dim, dim, mi=1.0, random_state=0)
        task = Task(f"gauss-{dim}x{dim}-1", "", "continuous", dim, dim, 1.0, lambda n_, seed: s)
        for method in method_list:
            bar.step(f"n={n} {dim}+{dim} {method[0]}")
            value, seconds, status = _call(method, task, s, None, timeout, warmup=True)
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
    base = {(r["n"], r["dims"]): r["seconds"] for r in rows if r["method"].startswith("cchmi KSG-1")}
    table = []
    for r in rows:
        ref = base.get((r["n"], r["dims"]), math.nan)
        ratio = r["seconds"] / ref if r["status"] == "ok" and ref == ref and ref > 0 else math.nan
        table.append([r["n"], r["dims"], r["method"], _fmt(r["estimate"], ".4f"), _fmt(r["seconds"], ".3g"),
                      _fmt(ratio, ".1f") + ("x" if ratio == ratio else ""),
                      _fmt(slopes.get((r["method"], r["dims"]), math.nan), ".2f"),
                      "" if r["status"] == "ok" else r["status"]])
    return markdown_table(["n", "dims", "method", "estimate", "seconds", "time / cchmi", "log-log slope", "note"],
                          table)


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


# -- the command ----------------------------------------------------------------------------------

def main_accuracy(out: Path, *, quick: bool, seeds: int | None, tasks: list[str] | None, neural: bool,
                  device, timeout: float, progress: bool) -> str:
    cat = catalogue()
    names = tasks or (list(QUICK_TASKS) if quick else list(cat))
    unknown = [t for t in names if t not in cat]
    if unknown:
        raise ValueError(f"unknown task(s) {', '.join(unknown)}; tasks: {', '.join(cat)}")
    sizes = [1000, 4000] if quick else [500, 2000, 8000]
    seeds = seeds or (3 if quick else 5)
    rows = run_accuracy([cat[t] for t in names], sizes, seeds, method_list=methods(neural, slow_peers=not quick),
                        timeout=timeout, device=device, progress=progress)
    return _write(out, "accuracy", rows, summarise_accuracy(rows), accuracy_table, plot_accuracy)


def main_speed(out: Path, *, quick: bool, timeout: float, progress: bool) -> str:
    cases = ([(n, 1) for n in (1000, 4000, 16000)] + [(n, 4) for n in (1000, 4000, 16000)] if quick
             else [(n, 1) for n in (1000, 10_000, 100_000)] + [(n, 4) for n in (1000, 10_000, 100_000)]
             + [(n, 16) for n in (1000, 10_000)])
    rows = run_speed(cases, method_list=CCHMI_METHODS[:1] + PEERS, timeout=timeout, progress=progress)
    slopes = fit_slopes(rows)
    return _write(out, "speed", rows, None, lambda _: speed_table(rows, slopes),
                  lambda _, folder: [plot_speed(rows, slopes, folder)])


def _write(out: Path, kind: str, rows: list[dict], summary, table_fn, plot_fn) -> str:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    facts = machine()
    facts["gpu"] = _gpu_name()
    facts["versions"] = json.dumps(_versions())
    append_csv(out / f"{kind}.csv", [{**facts, **r} for r in rows])
    table = table_fn(summary)
    header = (f"cchmi bench {kind}: {facts['cpu']} ({facts['cores']} cores){', ' + facts['gpu'] if facts['gpu'] else ''}"
              f", cchmi {facts['cchmi']} ({facts['git']}), {facts['date']} UTC")
    (out / f"{kind}.md").write_text(f"# {header}\n\n{table}\n")
    plot_fn(summary, out)
    return f"{header}\n\n{table}\n\nwritten to {out}/: {kind}.csv (appended), {kind}.md, PNG plots"


def _gpu_name() -> str:
    if "torch" not in sys.modules:  # a GPU matters only to the neural methods, which import torch
        return ""
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""


def _versions() -> dict:
    from importlib import metadata

    out = {}
    for dist in ("cchmi", "numpy", "torch", "scikit-learn", "npeet-plus", "ennemi", "infomeasure", "latentmi"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out
