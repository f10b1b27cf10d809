"""Every estimator setting of :func:`cchmi.cch` on the CCH task catalogue (`cchmi bench cch`; run
this way, results go to bench/results/cch_estimators/).

    python -m bench.bench_cch --quick                   # a few minutes on 2 cores
    python -m bench.bench_cch --n 2000,10000 --seeds 3  # every task, every setting

The catalogue is :func:`cchmi.data.cch_tasks` ((T, S, Y) problems with I(T; S), I(S; Y) and the gap
I(T; S) - I(S; Y) known); ``suite="hd"`` (``--suite hd``) runs its high-dimensional suite instead
(:func:`cchmi.data.hd_cch_tasks`: low-dimensional tasks lifted or padded to 64-512 columns per side,
and Gaussians at those dims), ``dims`` (``--dims 64,128``) keeps the tasks whose larger side has one
of those dims. Tasks with a continuous Y (``n_classes`` 0, the jointly Gaussian ones) are
given to ``cch`` with ``labels_kind="continuous"``; where the installed ``cch`` has no such
parameter, they are left out and named in the report as not applicable. A setting is an estimator
of ``cchmi.cch.ESTIMATORS`` (read when the script runs, so new estimators are benchmarked without
editing this file) with keyword options of ``cch``, written ``name`` or
``name:key=value,key=value`` (e.g. ``ksg:pca=8``, ``ksg:k=5``). Every setting estimates on the
same sample of each (task, n, seed), with ``random_state=seed``; each call runs in its own forked
process killed after ``timeout`` seconds (a timeout or a crash is a row, never dropped; so is a
setting's refusal of a task, e.g. "latent" on a continuous Y). Seconds are those ``cch`` reports
(the whole call: PCA, training, estimates, interval), cold, in that process. The parent process
runs no cchmi kernel: GNU OpenMP's thread pool does not survive fork, and a child forked from a
process whose OpenMP threads ran hangs in its first parallel region. Hardware: "gpu" when the kNN
backend is a GPU one or the call initialised CUDA in torch, else "cpu". Every run appends its rows
to cch.csv; ``report_only`` rebuilds the Markdown and the plots from all of them (several runs,
commits or machines, e.g. a CPU and a GPU run, in the same tables).

Summary per (setting, n, hardware, dimension band: the larger of dim T and dim S <= 8, 9-32, <= 32
(the issue's goals), > 32, all):

* sign accuracy: share of runs with |true gap| >= 0.1 nats whose estimated gap has the sign of the
  true gap, with its Wilson 95% interval and the count (runs, i.e. (task, seed) pairs: seeds of one
  task are not independent problems, the distinct tasks are counted too), and the runs whose verdict
  (interval wholly on one side of 0) is the wrong sign;
* mean absolute error of I(T; S), I(S; Y) and the gap against the truth, over every run;
* coverage of the reported gap interval: share of the runs with an interval where it contains the
  true gap, the interval widened on each side by z times the truth's Monte Carlo standard error
  (z of the interval's level; the catalogue's standard errors are at most about 0.002 nats, so the
  widening is small but a truth is never counted as missed for its own Monte Carlo error);
* median seconds.

The rule table of ``cch(estimator="auto")`` is by joint dimension instead (``JOINT_BANDS`` on
dim T + dim S: <= 8, 9-32, 33-64, > 64): per setting, n, hardware and band, the sign right, the
coverage and the gap's mean absolute error, as above. Below it, the calibration of
:data:`cchmi.estimators.extrapolate.MODEL_SPREAD`: the coverage the extrapolated settings' gap
intervals would have had with MODEL_SPREAD = c for c in bench/_harness.py's ``SPREADS``
(``widened_coverage``: the reported standard error with the MODEL_SPREAD the run used, recorded in
the row, swapped for c, the correction being hypot(bias_ts, bias_sy), as cch combines them, and
the truth's Monte Carlo slack as in the coverage above). Both are in the report of every run and
of ``report_only``.

Runs of the high-dimensional suite get two more tables first (:func:`hd_tables`), for its goal:
the sign of the gap right in >= 95% of the runs with |true gap| >= 0.1 nats, or the verdict
"undecided", and never a confident wrong verdict. Per setting, n, hardware and family (lifted,
padded, gauss, all), then also per D (the larger of dim T and dim S: 64, 128, 256, 512): the runs
with |true gap| >= 0.1, those of them with the sign right, "undecided", either of the two, and
with a wrong verdict; wrong verdicts on the runs with |true gap| < 0.1 (their sign is known too:
the truths are closed forms or have Monte Carlo errors far below it); coverage, MAE of the gap,
median seconds; and the goal: met when the sign is right or the verdict undecided in >= 95% of the
runs with |true gap| >= 0.1 and no run has a wrong verdict.

The rules were derived on the rule seeds 1000 and 1001 (``seed_offset``), in-sample for them:
that run is kept apart from the held-out runs (seeds 0, 1, ...) in
bench/results/cch_estimators/rules/ (command in :data:`RULES_COMMAND`).
"""

from __future__ import annotations

import csv
import importlib
import inspect
import math
import shlex
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cchmi import _validate as V
from cchmi._progress import Progress
from cchmi.data.cch_tasks import HD_CCH_DIMS, HD_CCH_QUICK_TASKS, SUITES, CCHTask, cch_tasks, hd_cch_tasks

from ._harness import RESULTS, calibration_table, fmt, markdown_table, run_with_timeout, write_report

cch_module = importlib.import_module("cchmi.cch")  # the module: the name cchmi.cch is the function

SIGN_MIN_GAP = 0.1
"""Runs with |true gap| at least this (nats) count for the sign accuracy (the issue's threshold)."""

GOAL_SIGN, GOAL_COVERAGE, GOAL_BAND, GOAL_N = 0.95, 0.90, "<=32", 10_000
"""The issue's goals: sign accuracy >= 95% and coverage >= 90% for dims up to 32 per side at n = 10,000."""

BANDS = (("<=8", 1, 8), ("9-32", 9, 32), ("<=32", 1, 32), (">32", 33, math.inf), ("all", 1, math.inf))
"""Dimension bands on max(dim T, dim S); "<=32" and "all" overlap the others on purpose."""

JOINT_BANDS = (("<=8", 1, 8), ("9-32", 9, 32), ("33-64", 33, 64), (">64", 65, math.inf))
"""Bands on dim T + dim S, the dimension I(T; S) is searched in (the rule table of cch's "auto")."""

RULES_COMMAND = ("cchmi bench cch --n 4000 --seeds 2 --seed-offset 1000 --estimators ksg ksg-extrapolated "
                 "--timeout 900 --out bench/results/cch_estimators/rules")
"""The run behind the rule table of cch(estimator="auto") and MODEL_SPREAD's calibration
(bench/results/cch_estimators/rules/; run there as one command per seed, ``--seeds 1 --seed-offset
1000`` and ``1001``, which gives the same rows: each (task, n, seed) is sampled and estimated with
its own seed)."""

QUICK_TASKS = (
    "cch-gauss-1x1y1-ts1.2-sy0.2-k1-p0",
    "cch-gauss-4x4y2-ts0.5-sy1-k4-p0",
    "cch-classes2-1x1-sep2-rho0-a0",
    "cch-classes3-1x1-sep2-rho0.7007-a0.5",
    "cch-classes5-2x4-sep1.5-rho0.7133-a1",
    "cch-classes4-8x8-sep2-rho0.5622-a0-prior",
    "rotate-cch-classes5-2x4-sep1.5-rho0.7133-a1",
)
"""Tasks with dims <= 8 per side, five of them with |true gap| >= 0.1 (the two continuous-Y ones run
where cch takes them)."""

FIXED = ("teacher", "student", "labels", "estimator", "random_state", "labels_kind")
"""cch() arguments the benchmark sets itself: a setting cannot override them."""


@dataclass(frozen=True)
class Setting:
    """An estimator of cch with keyword options; `label` is its spec, ``name[:key=value,...]``."""

    estimator: str
    options: tuple = ()

    @property
    def label(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in self.options)
        return self.estimator + (f":{opts}" if opts else "")


def _value(text: str):
    """A setting option's value: int, else float, else None for "None", else the text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return None if text == "None" else text


def parse_setting(spec: str) -> Setting:
    """``name`` or ``name:key=value,key=value`` -> Setting; the name must be in cch.ESTIMATORS and
    every key a keyword of cch() that the benchmark does not set itself."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"estimators: empty setting in {spec!r}")
    name, _, rest = spec.strip().partition(":")
    if name not in cch_module.ESTIMATORS:
        raise ValueError(f"estimators: unknown estimator {name!r} in {spec!r}; cch estimators: "
                         f"{', '.join(cch_module.ESTIMATORS)}")
    keywords = set(inspect.signature(cch_module.cch).parameters) - set(FIXED)
    options = []
    for item in filter(None, rest.split(",")):
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or key not in keywords:
            raise ValueError(f"estimators: {item!r} in {spec!r} is not key=value with a keyword of cch(); "
                             f"keywords: {', '.join(sorted(keywords))}")
        options.append((key, _value(text.strip())))
    return Setting(name, tuple(options))


def default_settings() -> list[Setting]:
    """Every estimator of cch.ESTIMATORS with its defaults, and "ksg" also on 8 principal components."""
    settings = [Setting(name) for name in cch_module.ESTIMATORS]
    if "ksg" in cch_module.ESTIMATORS:
        settings.insert(1 + cch_module.ESTIMATORS.index("ksg"), Setting("ksg", (("pca", 8),)))
    return settings


def _takes_continuous() -> bool:
    return "labels_kind" in inspect.signature(cch_module.cch).parameters


def applicable_tasks(suite: str = "catalogue") -> dict[str, CCHTask]:
    """The tasks of `suite` (:data:`cchmi.data.cch_tasks.SUITES`) that cch() takes, by name: all of
    them when it has ``labels_kind``, else those with class labels."""
    return {t.name: t for t in cch_tasks(suite) if t.n_classes > 0 or _takes_continuous()}


def select_tasks(suite: str = "catalogue", *, quick: bool = False, tasks: list[str] | None = None,
                 dims: list[int] | None = None) -> list[CCHTask]:
    """The tasks a run of `suite` takes: `tasks` (names in it), else its quick subset with `quick`
    (QUICK_TASKS, or HD_CCH_QUICK_TASKS for "hd"), else every task cch() takes; with `dims`, only
    those whose larger side (max of dim T, dim S) has one of these dims. A ValueError names an unknown
    task, a continuous-Y task this cch() cannot take, or dims that leave no task."""
    V.choice(suite, "suite", SUITES)
    catalogue = applicable_tasks(suite)
    every = {t.name for t in cch_tasks(suite)}
    quick_names = HD_CCH_QUICK_TASKS if suite == "hd" else QUICK_TASKS
    names = tasks or ([t for t in quick_names if t in catalogue] if quick else list(catalogue))
    unknown = [t for t in names if t not in every]
    if unknown:
        raise ValueError(f"unknown CCH task(s) {', '.join(unknown)} in suite {suite!r}; tasks: {', '.join(catalogue)}")
    continuous = [t for t in names if t not in catalogue]
    if continuous:
        raise ValueError(f"tasks: {', '.join(continuous)} have continuous Y, which this cch() does not take "
                         "(no labels_kind parameter)")
    chosen = [catalogue[t] for t in names]
    if dims is not None:
        wanted = {V.as_int(d, "dims", 1) for d in dims}
        chosen = [t for t in chosen if max(t.dim_t, t.dim_s) in wanted]
        if not chosen:
            have = sorted({max(catalogue[t].dim_t, catalogue[t].dim_s) for t in names})
            raise ValueError(f"dims: no task of the selection has its larger side in {sorted(wanted)}; "
                             f"its dims: {', '.join(map(str, have))}")
    return chosen


def _call(setting: Setting, task: CCHTask, t, s, y, seed: int, extra: dict) -> dict:
    """In the forked child: cch() on the sample, the full result as a dict (the harness's runner
    passes it back), with whether torch used CUDA."""
    kind = {} if task.n_classes else {"labels_kind": "continuous"}
    result = cch_module.cch(t, s, y, estimator=setting.estimator, random_state=seed, **kind, **extra,
                            **dict(setting.options))
    torch = sys.modules.get("torch")
    extrapolate = sys.modules.get("cchmi.estimators.extrapolate")
    spread = getattr(extrapolate, "MODEL_SPREAD", math.nan) if "extrapolated" in result.estimator else math.nan
    return {**result.as_dict(), "cuda_used": bool(torch is not None and torch.cuda.is_initialized()),
            "model_spread": spread}


def _hardware(result: dict) -> str:
    """"gpu" when the kNN backend is a GPU one or torch initialised CUDA during the call, else "cpu"."""
    on_gpu = result.get("backend") in ("cuda", "triton") or result.get("cuda_used", False)
    return "gpu" if on_gpu else "cpu"


def run_cch(tasks: list[CCHTask], sizes: list[int], seeds: int, settings: list[Setting], *, timeout: float,
            device=None, backend: str = "auto", progress: bool = True, seed_offset: int = 0) -> list[dict]:
    """One row per (task, n, seed, setting), seeds seed_offset, ..., seed_offset + seeds - 1: the
    three estimates, the gap interval, the truths with their Monte Carlo standard errors, seconds,
    the backend that ran, a status, and for extrapolated estimates the MODEL_SPREAD in effect."""
    extra = {} if backend == "auto" else {"backend": backend}
    if device is not None:
        if "device" not in inspect.signature(cch_module.cch).parameters:
            raise ValueError(f"device: cch() has no device parameter, so device={device!r} cannot be applied")
        extra["device"] = device
    rows = []
    bar = Progress(len(tasks) * len(sizes) * seeds * len(settings), "cch", progress)
    for task in tasks:
        truth = task.truth()  # computed here once: the forked children inherit the cache
        for n in sizes:
            for seed in range(seed_offset, seed_offset + seeds):
                t, s, y = task.sample(n, seed)
                for setting in settings:
                    bar.step(f"{task.name} n={n} {setting.label}")
                    timing = run_with_timeout(lambda: _call(setting, task, t, s, y, seed, extra), timeout)
                    result = timing.value if timing.status == "ok" and isinstance(timing.value, dict) else None
                    status = timing.status if result is not None or timing.status != "ok" else "error: no result"
                    r = result or {}
                    rows.append({
                        "task": task.name, "family": task.family, "dims": f"{task.dim_t}+{task.dim_s}",
                        "dim_t": task.dim_t, "dim_s": task.dim_s, "n_classes": task.n_classes, "n": n,
                        "seed": seed, "setting": setting.label, "estimator": r.get("estimator", ""),
                        "i_ts": r.get("i_ts", math.nan), "i_sy": r.get("i_sy", math.nan),
                        "gap": r.get("gap", math.nan), "ci_low": _number(r.get("gap_ci_low")),
                        "ci_high": _number(r.get("gap_ci_high")), "confidence": _number(r.get("confidence")),
                        "verdict": r.get("verdict", ""), "n_used": r.get("n", ""),
                        "bias_ts": _number(r.get("bias_ts")), "bias_sy": _number(r.get("bias_sy")),
                        "model_spread": _number(r.get("model_spread")),
                        "choice_reason": r.get("choice_reason") or "", "interval_note": r.get("interval_note") or "",
                        "true_i_ts": truth.i_ts, "true_i_sy": truth.i_sy, "true_gap": truth.gap,
                        "true_i_ts_se": truth.i_ts_stderr, "true_i_sy_se": truth.i_sy_stderr,
                        "true_gap_se": truth.gap_stderr, "seconds": r.get("seconds", math.nan),
                        "backend": r.get("backend", ""), "device": "" if device is None else str(device),
                        "hardware": _hardware(r), "status": status,
                    })
    return rows


def _number(value) -> float:
    return math.nan if value is None else float(value)


def wilson(successes: int, trials: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of a proportion (NaN, NaN for no trials)."""
    if trials == 0:
        return math.nan, math.nan
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z / (1 + z * z / trials) * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


def covers(row: dict) -> bool:
    """Whether the row's gap interval, widened on each side by z times the truth's standard error,
    contains the true gap (rows without an interval are not asked)."""
    z = statistics.NormalDist().inv_cdf(0.5 + row["confidence"] / 2)
    slack = z * row["true_gap_se"]
    return row["ci_low"] - slack <= row["true_gap"] <= row["ci_high"] + slack


def _wrong_verdict(row: dict) -> bool:
    return ((row["verdict"] == cch_module.VERDICTS[0] and row["true_gap"] < 0)
            or (row["verdict"] == cch_module.VERDICTS[1] and row["true_gap"] > 0))


def summarise_cch(rows: list[dict], joint: bool = False) -> list[dict]:
    """Per (setting, n, hardware, band) with at least one run: the counts and rates described in the
    module docstring. Failed runs (timeouts, errors) count in `runs` but in no rate. Bands: BANDS on
    max(dim T, dim S), or with `joint` JOINT_BANDS on dim T + dim S."""
    bands = JOINT_BANDS if joint else BANDS
    groups: dict = {}
    for r in rows:
        dim = r["dim_t"] + r["dim_s"] if joint else max(r["dim_t"], r["dim_s"])
        for band, low, high in bands:
            if low <= dim <= high:
                groups.setdefault((r["setting"], r["n"], r["hardware"], band), []).append(r)
    out = []
    for (setting, n, hardware, band), rs in groups.items():
        ok = [r for r in rs if r["status"] == "ok"]
        signed = [r for r in ok if abs(r["true_gap"]) >= SIGN_MIN_GAP]
        right = sum(np.sign(r["gap"]) == np.sign(r["true_gap"]) for r in signed)
        with_ci = [r for r in ok if math.isfinite(r["ci_low"]) and math.isfinite(r["ci_high"])]
        low, high = wilson(right, len(signed))

        def mae(key, rs=ok):
            return float(np.mean([abs(r[key] - r["true_" + key]) for r in rs])) if rs else math.nan

        failed = sorted({r["status"] for r in rs if r["status"] != "ok"})
        out.append({
            "setting": setting, "n": n, "hardware": hardware, "band": band, "runs": len(rs), "ok": len(ok),
            "tasks": len({r["task"] for r in rs}), "signed_runs": len(signed),
            "signed_tasks": len({r["task"] for r in signed}), "sign_right": int(right),
            "sign_accuracy": right / len(signed) if signed else math.nan, "sign_low": low, "sign_high": high,
            "wrong_verdicts": sum(_wrong_verdict(r) for r in signed),
            "mae_i_ts": mae("i_ts"), "mae_i_sy": mae("i_sy"), "mae_gap": mae("gap"),
            "interval_runs": len(with_ci), "covered": sum(covers(r) for r in with_ci),
            "coverage": sum(covers(r) for r in with_ci) / len(with_ci) if with_ci else math.nan,
            "median_seconds": float(np.median([r["seconds"] for r in ok])) if ok else math.nan,
            "status": "ok" if not failed else "; ".join(failed)[:80],
        })
    order = {band: i for i, (band, _, _) in enumerate(bands)}
    out.sort(key=lambda s: (s["setting"], s["n"], s["hardware"], order[s["band"]]))
    return out


def _rate(count: int, total: int, rate: float) -> str:
    return f"{count}/{total} ({rate:.0%})" if total else "-"


def _interval(s: dict) -> str:
    return f"[{fmt(s['sign_low'], '.2f')}, {fmt(s['sign_high'], '.2f')}]"


def goal_rows(summary: list[dict]) -> list[dict]:
    """The issue's goals per setting and hardware, at n = GOAL_N in band GOAL_BAND: met, not met,
    or not measured (no run at that n, or no run with an interval)."""
    out = []
    for s in summary:
        if s["band"] != GOAL_BAND or s["n"] != GOAL_N:
            continue
        sign_met = s["signed_runs"] > 0 and s["sign_accuracy"] >= GOAL_SIGN
        cover_met = s["interval_runs"] > 0 and s["coverage"] >= GOAL_COVERAGE
        out.append({**s, "sign_goal": "met" if sign_met else ("not met" if s["signed_runs"] else "not measured"),
                    "coverage_goal": "met" if cover_met else ("not met" if s["interval_runs"] else "not measured")})
    return out


def cch_table(summary: list[dict], skipped: list[str], show_goals: bool = True) -> str:
    """Markdown: the goals (the catalogue's, left out without `show_goals`), then the summary per
    setting, n, hardware and band."""
    goals = [[g["setting"], g["hardware"],
              _rate(g["sign_right"], g["signed_runs"], g["sign_accuracy"]) + f" on {g['signed_tasks']} tasks",
              _interval(g), g["sign_goal"],
              _rate(g["covered"], g["interval_runs"], g["coverage"]), g["coverage_goal"]] for g in goal_rows(summary)]
    rows = [[s["setting"], s["n"], s["hardware"], s["band"], f"{s['ok']}/{s['runs']}", s["tasks"],
             _rate(s["sign_right"], s["signed_runs"], s["sign_accuracy"]),
             _interval(s), s["wrong_verdicts"] if s["signed_runs"] else "-",
             fmt(s["mae_i_ts"], ".3f"), fmt(s["mae_i_sy"], ".3f"), fmt(s["mae_gap"], ".3f"),
             _rate(s["covered"], s["interval_runs"], s["coverage"]), fmt(s["median_seconds"], ".3g"),
             "" if s["status"] == "ok" else s["status"]] for s in summary]
    parts = [f"Goals at n = {GOAL_N:,}, dims <= 32 per side: sign of the gap right in >= {GOAL_SIGN:.0%} of runs "
             f"with |true gap| >= {SIGN_MIN_GAP} nats, coverage of the 95% gap interval >= {GOAL_COVERAGE:.0%}.",
             markdown_table(["setting", "hardware", "sign right", "Wilson 95%", "sign goal", "coverage",
                             "coverage goal"], goals) if goals else f"(no run at n = {GOAL_N:,}: goals not measured)",
             "Per setting, n, hardware and dimension band (max of dim T, dim S); sign: runs with |true gap| >= "
             f"{SIGN_MIN_GAP} nats; wrong verdicts: intervals wholly on the wrong side of 0; MAE over every run; "
             "coverage: the true gap inside the reported interval widened by z x its Monte Carlo s.e.; seconds: "
             "cch's own, median.",
             markdown_table(["setting", "n", "hardware", "band", "runs ok", "tasks", "sign right", "Wilson 95%",
                             "wrong verdicts", "MAE I(T;S)", "MAE I(S;Y)", "MAE gap", "coverage", "median s",
                             "note"], rows)]
    if not show_goals:
        parts = parts[2:]
    if skipped:
        parts.append(f"Not applicable ({len(skipped)} catalogue tasks with continuous Y; this cch takes class labels "
                     "only): " + ", ".join(skipped) + ".")
    return "\n\n".join(parts)


def calibration_rows(rows: list[dict]) -> dict[str, list[dict]]:
    """The runs with an extrapolated gap interval and a recorded MODEL_SPREAD, as rows of
    bench/_harness.widened_coverage, by setting, n and hardware."""
    out: dict = {}
    for r in rows:
        if (r["status"] == "ok" and math.isfinite(r["model_spread"]) and math.isfinite(r["ci_low"])
                and math.isfinite(r["ci_high"])):
            z = statistics.NormalDist().inv_cdf(0.5 + r["confidence"] / 2)
            out.setdefault(f"{r['setting']}, n = {r['n']}, {r['hardware']}", []).append({
                "error": r["gap"] - r["true_gap"], "stderr": (r["ci_high"] - r["ci_low"]) / (2 * z),
                "correction": math.hypot(r["bias_ts"], r["bias_sy"]), "model_spread": r["model_spread"], "z": z,
                "slack": z * r["true_gap_se"]})
    return out


def rule_tables(rows: list[dict]) -> str:
    """Markdown: the summary by joint dimension (the rule table of cch's "auto") and, when there are
    extrapolated runs with a recorded MODEL_SPREAD, its calibration table."""
    joint = [[s["setting"], s["n"], s["hardware"], s["band"], f"{s['ok']}/{s['runs']}", s["tasks"],
              f"{s['sign_right']}/{s['signed_runs']}" if s["signed_runs"] else "-",
              _rate(s["covered"], s["interval_runs"], s["coverage"]), fmt(s["mae_gap"], ".3f")]
             for s in summarise_cch(rows, joint=True)]
    parts = ["By joint dimension dim T + dim S (the rule table of cch(estimator=\"auto\")): sign right of the runs "
             f"with |true gap| >= {SIGN_MIN_GAP} nats, coverage of the gap interval, mean absolute error of the gap.",
             markdown_table(["setting", "n", "hardware", "d_t+d_s", "runs ok", "tasks", "sign right", "coverage",
                             "MAE gap"], joint)]
    groups = calibration_rows(rows)
    if groups:
        parts += ["Calibration of MODEL_SPREAD (cchmi/estimators/extrapolate.py): coverage of the extrapolated gap "
                  "intervals had the power law's error been c x hypot(bias_ts, bias_sy) instead of the "
                  "MODEL_SPREAD the run used (the truth's Monte Carlo slack as in the coverage above).",
                  calibration_table(groups)]
    return "\n\n".join(parts)


HD_FAMILIES = ("lifted", "padded", "gauss")
"""The families of the high-dimensional suite, in the order of :func:`hd_tables`."""


def hd_rows(rows: list[dict]) -> list[dict]:
    """The rows of tasks of the high-dimensional suite (at HD_CCH_DIMS or any dims the rows have)."""
    larger = {max(r["dim_t"], r["dim_s"]) for r in rows}
    names = {t.name for t in hd_cch_tasks(sorted(set(HD_CCH_DIMS) | {d for d in larger if d > 8}))}
    return [r for r in rows if r["task"] in names]


def summarise_hd(rows: list[dict]) -> list[dict]:
    """Per (setting, n, hardware, family, D) of the high-dimensional suite's rows, family also "all"
    and D (max of dim T, dim S) also "all": the counts of the module docstring's hd tables."""
    undecided = cch_module.VERDICTS[2]
    groups: dict = {}
    for r in rows:
        for family in (r["family"], "all"):
            for dim in (str(max(r["dim_t"], r["dim_s"])), "all"):
                groups.setdefault((r["setting"], r["n"], r["hardware"], family, dim), []).append(r)
    out = []
    for (setting, n, hardware, family, dim), rs in groups.items():
        ok = [r for r in rs if r["status"] == "ok"]
        signed = [r for r in ok if abs(r["true_gap"]) >= SIGN_MIN_GAP]
        right = [np.sign(r["gap"]) == np.sign(r["true_gap"]) for r in signed]
        held = [r["verdict"] == undecided for r in signed]
        fine = sum(a or b for a, b in zip(right, held))
        wrong = sum(_wrong_verdict(r) for r in signed)
        wrong_near = sum(_wrong_verdict(r) for r in ok if abs(r["true_gap"]) < SIGN_MIN_GAP)
        with_ci = [r for r in ok if math.isfinite(r["ci_low"]) and math.isfinite(r["ci_high"])]
        share = fine / len(signed) if signed else math.nan
        goal = ("not measured" if not signed else
                "met" if share >= GOAL_SIGN and wrong + wrong_near == 0 else "not met")
        failed = sorted({r["status"] for r in rs if r["status"] != "ok"})
        out.append({
            "setting": setting, "n": n, "hardware": hardware, "family": family, "dims": dim, "runs": len(rs),
            "ok": len(ok), "tasks": len({r["task"] for r in rs}), "signed_runs": len(signed),
            "sign_right": int(sum(right)), "sign_accuracy": sum(right) / len(signed) if signed else math.nan,
            "undecided": int(sum(held)), "right_or_undecided": int(fine),
            "share": share, "wrong_verdicts": int(wrong), "wrong_near_zero": int(wrong_near),
            "interval_runs": len(with_ci), "covered": sum(covers(r) for r in with_ci),
            "coverage": sum(covers(r) for r in with_ci) / len(with_ci) if with_ci else math.nan,
            "mae_gap": float(np.mean([abs(r["gap"] - r["true_gap"]) for r in ok])) if ok else math.nan,
            "median_seconds": float(np.median([r["seconds"] for r in ok])) if ok else math.nan,
            "goal": goal, "status": "ok" if not failed else "; ".join(failed)[:80],
        })
    families = {f: i for i, f in enumerate((*HD_FAMILIES, "all"))}
    out.sort(key=lambda s: (s["setting"], s["n"], s["hardware"], s["dims"] == "all",
                            int(s["dims"]) if s["dims"] != "all" else 0, families.get(s["family"], -1), s["family"]))
    return out


def hd_tables(rows: list[dict]) -> str:
    """Markdown: the high-dimensional suite's goal per setting, n, hardware and family (every D), then
    per D and family (module docstring)."""
    summary = summarise_hd(rows)
    header = ["setting", "n", "hardware", "family", "D", "runs ok", "tasks", "signed runs", "sign right",
              "undecided", "right or undecided", "wrong verdicts", "wrong near 0", "coverage", "MAE gap",
              "median s", "goal", "note"]

    def cells(s):
        return [s["setting"], s["n"], s["hardware"], s["family"], s["dims"], f"{s['ok']}/{s['runs']}", s["tasks"],
                s["signed_runs"], _rate(s["sign_right"], s["signed_runs"], s["sign_accuracy"]),
                s["undecided"] if s["signed_runs"] else "-",
                _rate(s["right_or_undecided"], s["signed_runs"], s["share"]),
                s["wrong_verdicts"] if s["signed_runs"] else "-", s["wrong_near_zero"],
                _rate(s["covered"], s["interval_runs"], s["coverage"]), fmt(s["mae_gap"], ".3f"),
                fmt(s["median_seconds"], ".3g"), s["goal"], "" if s["status"] == "ok" else s["status"]]

    glance = [cells(s) for s in summary if s["dims"] == "all"]
    by_dims = [cells(s) for s in summary if s["dims"] != "all"]
    return "\n\n".join([
        f"High-dimensional suite (64-512 columns per side): goal: the sign of the gap right, or the verdict "
        f"\"{cch_module.VERDICTS[2]}\", in >= {GOAL_SIGN:.0%} of the runs with |true gap| >= {SIGN_MIN_GAP} nats, and "
        "no wrong verdict (an interval wholly on the wrong side of 0) in any run. Signed runs: those with |true "
        f"gap| >= {SIGN_MIN_GAP}; sign right, undecided, right or undecided and wrong verdicts count among them; "
        f"wrong near 0: wrong verdicts on the runs with |true gap| < {SIGN_MIN_GAP}. Per setting, n, hardware and "
        "family, every D together:",
        markdown_table(header, glance),
        "Per D (the larger of dim T, dim S) and family:",
        markdown_table(header, by_dims)])


def plot_cch(rows: list[dict], summary: list[dict], folder: Path) -> list[Path]:
    """cch_sign.png: sign accuracy (Wilson 95% bars) against n per setting, dims <= 32 and all;
    cch_gap.png: estimated against true gap per setting at the largest n, with the intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = sorted({r["setting"] for r in rows})
    paths = []
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=110, sharey=True)
    for ax, band in zip(axes, ("<=32", "all")):
        for i, setting in enumerate(settings):
            pts = sorted((s["n"], s["sign_accuracy"], s["sign_low"], s["sign_high"]) for s in summary
                         if s["setting"] == setting and s["band"] == band and s["signed_runs"])
            if pts:
                x = np.array([p[0] for p in pts]) * (1 + 0.03 * i)  # offsets keep the bars apart
                y = np.array([p[1] for p in pts])
                err = np.array([[p[1] - p[2] for p in pts], [p[3] - p[1] for p in pts]])
                ax.errorbar(x, y, yerr=err, fmt="o-", ms=3, capsize=2, label=setting)
        ax.axhline(GOAL_SIGN, color="grey", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_xlabel("n")
        ax.set_title(f"dims {band} per side" if band != "all" else "every task", fontsize=10)
    axes[0].set_ylabel(f"sign of the gap right (|true gap| >= {SIGN_MIN_GAP})")
    if axes[0].get_legend_handles_labels()[0]:  # nothing to label when every run failed
        axes[0].legend(fontsize=7)
    fig.tight_layout()
    paths.append(folder / "cch_sign.png")
    fig.savefig(paths[-1])
    plt.close(fig)

    n_max = max(r["n"] for r in rows)
    fig, axes = plt.subplots(1, len(settings), figsize=(3.2 * len(settings), 3.4), dpi=110, squeeze=False)
    for ax, setting in zip(axes[0], settings):
        sel = [r for r in rows if r["setting"] == setting and r["n"] == n_max and r["status"] == "ok"]
        truth = np.array([r["true_gap"] for r in sel])
        gap = np.array([r["gap"] for r in sel])
        err = np.array([[r["gap"] - r["ci_low"], r["ci_high"] - r["gap"]] for r in sel]).T if sel else None
        if sel:
            ax.errorbar(truth, gap, yerr=np.nan_to_num(err), fmt="o", ms=3, capsize=2)
        ends = [-1.2, 1.2]
        ax.plot(ends, ends, color="grey", lw=0.8)
        ax.axhline(0, color="grey", lw=0.5)
        ax.axvline(0, color="grey", lw=0.5)
        ax.set_xlabel("true gap [nats]")
        ax.set_title(f"{setting}, n={n_max}", fontsize=9)
    axes[0][0].set_ylabel("estimated gap, 95% interval")
    fig.tight_layout()
    paths.append(folder / "cch_gap.png")
    fig.savefig(paths[-1])
    plt.close(fig)
    return paths


def command_line(sizes, seeds, settings, tasks, device, backend, timeout, quick, seed_offset=0, suite="catalogue",
                 dims=None) -> str:
    """The `cchmi bench cch` command that reproduces a run (for the report's header)."""
    parts = ["cchmi", "bench", "cch"] + (["--suite", suite] if suite != "catalogue" else [])
    parts += ["--quick"] if quick else []
    parts += ["--n", ",".join(map(str, sizes)), "--seeds", str(seeds)]
    parts += ["--seed-offset", str(seed_offset)] if seed_offset else []
    parts += ["--estimators", *(s.label for s in settings)]
    parts += ["--tasks", ",".join(tasks)] if tasks else []
    parts += ["--dims", ",".join(map(str, dims))] if dims else []
    parts += ["--device", str(device)] if device is not None else []
    parts += ["--backend", backend] if backend != "auto" else []
    return shlex.join(parts + ["--timeout", f"{timeout:g}"])


INTS = ("dim_t", "dim_s", "n_classes", "n", "seed")
FLOATS = ("i_ts", "i_sy", "gap", "ci_low", "ci_high", "confidence", "bias_ts", "bias_sy", "true_i_ts", "true_i_sy",
          "true_gap", "true_i_ts_se", "true_i_sy_se", "true_gap_se", "seconds", "model_spread")


def read_rows(path: Path) -> list[dict]:
    """The rows of a cch.csv (every run appended to it), with their numbers parsed; a column that
    older rows lack (an earlier version of this script) reads as NaN."""
    with Path(path).open(newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r.update({k: int(r[k]) for k in INTS}, **{k: float(r[k]) if r.get(k) else math.nan for k in FLOATS})
    return rows


def report_from_csv(out: Path) -> str:
    """Rewrites cch.md and the plots in `out` from every row of out/cch.csv (several runs, machines
    or commits together: each is named in the header), without running anything; returns the text."""
    rows = read_rows(Path(out) / "cch.csv")
    if not rows:
        raise ValueError(f"out: {out}/cch.csv has no rows")
    summary = summarise_cch(rows)
    high = hd_rows(rows)
    machines = sorted({f"{r['cpu']} ({r['cores']} cores, {r['threads']} threads){', ' + r['gpu'] if r['gpu'] else ''}"
                       for r in rows})
    commands = sorted({r.get("command") or "(not recorded)" for r in rows})
    dates = sorted(r["date"] for r in rows)
    header = (f"cchmi bench cch: {len(rows)} runs, {dates[0]} to {dates[-1]} UTC, cchmi "
              f"{', '.join(sorted({r['cchmi'] for r in rows}))} (git {', '.join(sorted({r['git'] for r in rows}))}); "
              f"machines: {'; '.join(machines)}")
    run = {r["task"] for r in rows}
    table = ("Commands: " + "; ".join(f"`{c}`" for c in commands) + "\n\n" + (hd_tables(high) + "\n\n" if high else "")
             + cch_table(summary, [], show_goals=len(high) < len(rows)) + "\n\n" + rule_tables(rows))
    for suite, label, present in (("catalogue", "Catalogue", len(high) < len(rows)),
                                  ("hd", "High-dimensional suite", bool(high))):
        missing = {t.name for t in cch_tasks(suite)} - run
        if present and missing:
            table += f"\n\n{label} tasks without a run here: {', '.join(sorted(missing))}."
    Path(out, "cch.md").write_text(f"# {header}\n\n{table}\n")
    plot_cch(rows, summary, Path(out))
    return f"{header}\n\n{table}\n\nwritten to {out}/: cch.md, PNG plots (from every row of cch.csv)"


def main_cch(out: Path, *, quick: bool, sizes: list[int] | None = None, seeds: int | None = None,
             estimators: list[str] | None = None, tasks: list[str] | None = None, device=None,
             backend: str = "auto", timeout: float = 300.0, progress: bool = True, report_only: bool = False,
             seed_offset: int = 0, suite: str = "catalogue", dims: list[int] | None = None) -> str:
    """`cchmi bench cch`: runs, writes cch.csv (appended), cch.md, cch_sign.png and cch_gap.png to
    `out`, returns the printed text. Defaults: every task of `suite` ("catalogue" or "hd") that cch
    takes, n = 2,000, 10,000 and 100,000, 3 seeds from seed_offset (0), :func:`default_settings`;
    quick: the suite's quick tasks, n = 2,000, 2 seeds; dims: only the tasks whose larger side has
    one of these dims (:func:`select_tasks`). report_only: run nothing, rebuild the report from every
    row of out/cch.csv (:func:`report_from_csv`)."""
    if report_only:
        return report_from_csv(out)
    if isinstance(seed_offset, bool) or not isinstance(seed_offset, int) or seed_offset < 0:
        raise ValueError(f"seed_offset must be an integer >= 0, got {seed_offset!r}")
    chosen = select_tasks(suite, quick=quick, tasks=tasks, dims=dims)
    sizes = sizes or ([2000] if quick else [2000, 10_000, 100_000])
    seeds = seeds or (2 if quick else 3)
    settings = [parse_setting(e) for e in estimators] if estimators else default_settings()
    rows = run_cch(chosen, sizes, seeds, settings, timeout=timeout, device=device, backend=backend,
                   progress=progress, seed_offset=seed_offset)
    summary = summarise_cch(rows)
    skipped = sorted({t.name for t in cch_tasks(suite)} - set(applicable_tasks(suite))) if tasks is None else []
    command = command_line(sizes, seeds, settings, tasks, device, backend, timeout, quick, seed_offset, suite, dims)
    rows = [{**r, "command": command} for r in rows]
    hd = hd_tables(rows) + "\n\n" if suite == "hd" else ""
    table = (f"Command: `{command}`\n\n{hd}{cch_table(summary, skipped, show_goals=suite != 'hd')}\n\n"
             f"{rule_tables(rows)}")
    return write_report(out, "cch", rows, table, lambda folder: plot_cch(rows, summary, folder))


if __name__ == "__main__":
    from cchmi.cli import main  # the arguments of `cchmi bench cch`

    sys.exit(main(["bench", "cch", "--out", str(RESULTS / "cch_estimators"), *sys.argv[1:]]))
