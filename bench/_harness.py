"""The one benchmark harness (the scripts in bench/, which ``cchmi bench`` runs): timing, machine
tags, append-only CSV results in bench/results (or a folder of the caller's), Markdown tables and the
report files of ``cchmi bench``.

Timing: one warm-up call (compiles nothing here, but warms caches and thread pools), then
`repeats` timed calls; the median is reported with the spread (min, max). Calls that may run long
(peers) go through `run_with_timeout`, in a forked process that is killed at the deadline, so a
slow peer is recorded as a timeout instead of hanging the run.
"""

from __future__ import annotations

import csv
import datetime
import json
import math
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Timing:
    median: float
    low: float
    high: float
    repeats: int
    value: float | dict | None = None  # what the timed call returned (an estimate, or a dict of results)
    status: str = "ok"  # ok, timeout, error: <text>, unsupported


def require_compiled() -> None:
    """Benchmarks measure the compiled kernels: refuse to run on the NumPy fallback (e.g. when
    `python -m bench...` from a checkout imports the source tree of a non-editable install)."""
    try:
        import cchmi._cpu  # noqa: F401
    except ImportError as exc:
        raise SystemExit(f"cchmi._cpu is not importable ({exc}): install with `pip install -e .` (or run from "
                         "outside the checkout after `pip install .`)") from None


def time_call(fn, repeats: int = 3, warmup: bool = True) -> Timing:
    if warmup:
        fn()
    times, value = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return Timing(statistics.median(times), min(times), max(times), repeats, value)


def _child(fn, queue, warmup=False):
    try:
        if warmup:
            fn()
        t0 = time.perf_counter()
        value = fn()
        queue.put(("ok", time.perf_counter() - t0, value if isinstance(value, dict) else float(value)))
    except Exception as exc:  # a peer's crash is a result, recorded as such
        queue.put((f"error: {type(exc).__name__}: {exc}"[:200], float("nan"), None))


def run_with_timeout(fn, timeout: float, repeats: int = 1, warmup: bool = False) -> Timing:
    """Times fn() in forked child processes (one per repeat), killing any that exceeds `timeout`
    (the warm-up call, if any, included). warmup: call fn() once in the child before timing it."""
    ctx = mp.get_context("fork")
    times, value = [], None
    for _ in range(repeats):
        queue = ctx.Queue()
        proc = ctx.Process(target=_child, args=(fn, queue, warmup))
        proc.start()
        proc.join(timeout)
        if proc.is_alive():
            proc.kill()
            proc.join()
            return Timing(float("nan"), float("nan"), float("nan"), 0, None, f"timeout > {timeout:g} s")
        status, seconds, value = queue.get()
        if status != "ok":
            return Timing(float("nan"), float("nan"), float("nan"), 0, None, status)
        times.append(seconds)
    return Timing(statistics.median(times), min(times), max(times), repeats, value)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    try:
        import cchmi

        version = cchmi.__version__
    except ImportError:
        version = "not installed"
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             check=True).stdout.strip()  # the checkout the command runs in, if any
    except (OSError, subprocess.CalledProcessError):
        sha = "unknown"
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "cchmi": version,
        "git": sha,
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "threads": cpu_threads(),
        "gpu": "",
    }


def cpu_threads() -> int | str:
    """Threads the CPU kernels use in this process (cchmi.set_num_threads, else OpenMP's default)."""
    try:
        import cchmi
        from cchmi._loader import import_cpu_module

        return cchmi.get_num_threads() or import_cpu_module().build_info()["max_threads"]
    except ImportError:
        return ""


def append_csv(name: str, rows: list[dict], folder: Path = RESULTS) -> Path:
    """Appends rows (dicts with the same keys) to <folder>/<name>.csv, writing a header once. When
    the rows bring columns the file lacks (a newer script), the file is rewritten with the union of
    the columns, older rows left empty in the new ones, so that no row is ever misaligned."""
    path = Path(folder) / f"{name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = list(rows[0])
    if path.exists():
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            old_fields, old_rows = list(reader.fieldnames or []), list(reader)
        missing = [k for k in fields if k not in old_fields]
        if not missing:
            with path.open("a", newline="") as f:
                csv.DictWriter(f, fieldnames=old_fields, restval="").writerows(rows)
            return path
        fields = old_fields + missing
        rows = old_rows + rows
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
    return path


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(value, spec: str) -> str:
    """A table cell: `value` formatted with `spec`, "-" for a missing (None or NaN) number."""
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def gpu_name() -> str:
    """The first CUDA device's name, or "" (torch is consulted only if something imported it)."""
    if "torch" not in sys.modules:
        return ""
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""


def versions() -> dict:
    """Installed versions of cchmi, its dependencies and the peers."""
    from importlib import metadata

    out = {}
    for dist in ("cchmi", "numpy", "torch", "scikit-learn", "scipy", "npeet-plus", "ennemi", "infomeasure",
                 "latentmi"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def write_report(out: Path, kind: str, rows: list[dict], table: str, plot) -> str:
    """The files of ``cchmi bench <kind>`` in `out`: rows appended to <kind>.csv with the machine's
    tags and the versions, <kind>.md (the table under a header naming the machine), and the plots
    that plot(out) writes. Returns the header, the table and where the files went."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    facts = machine()
    facts["gpu"] = gpu_name()
    facts["versions"] = json.dumps(versions())
    append_csv(kind, [{**facts, **r} for r in rows], folder=out)
    header = (f"cchmi bench {kind}: {facts['cpu']} ({facts['cores']} cores){', ' + facts['gpu'] if facts['gpu'] else ''}"
              f", cchmi {facts['cchmi']} ({facts['git']}), {facts['date']} UTC")
    (out / f"{kind}.md").write_text(f"# {header}\n\n{table}\n")
    plot(out)
    return f"{header}\n\n{table}\n\nwritten to {out}/: {kind}.csv (appended), {kind}.md, PNG plots"


SPREADS = (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4)
"""The values c of the MODEL_SPREAD calibration tables (:func:`widened_coverage`)."""


def widened_coverage(rows: list[dict], spreads=SPREADS) -> dict[float, tuple[int, int]]:
    """Coverage of extrapolated estimates' intervals had MODEL_SPREAD been c, for each c in `spreads`:
    {c: (covered, runs)}. Each row (one extrapolated estimate with its interval) has "error" (estimate
    minus truth), "stderr" (the reported standard error), "correction" (|extrapolated - plain estimate|),
    "model_spread" (the MODEL_SPREAD that reported stderr used), "z" (the interval's z) and "slack"
    (a tolerance for the truth's own Monte Carlo error, 0 for exact truths). The reported variance
    is stderr^2 = rest^2 + (model_spread * correction)^2 (cchmi.estimators.extrapolate.model_stderr),
    so with c the standard error is sqrt(rest^2 + (c * correction)^2) (rest^2 clamped at 0 against
    rounding), and the row is covered when |error| <= z * that + slack."""
    out = {}
    for c in spreads:
        covered = 0
        for r in rows:
            rest2 = max(r["stderr"] ** 2 - (r["model_spread"] * r["correction"]) ** 2, 0.0)
            covered += abs(r["error"]) <= r["z"] * math.sqrt(rest2 + (c * r["correction"]) ** 2) + r["slack"]
        out[c] = (covered, len(rows))
    return out


def calibration_table(groups: dict[str, list[dict]], spreads=SPREADS) -> str:
    """Markdown: per group (a label: rows for :func:`widened_coverage`), the coverage at each c."""
    body = []
    for label, rows in groups.items():
        cov = widened_coverage(rows, spreads)
        body.append([label, len(rows)] + [f"{k}/{t} ({k / t:.2f})" if t else "-" for k, t in cov.values()])
    return markdown_table(["rows", "runs"] + [f"c = {c:g}" for c in spreads], body)
