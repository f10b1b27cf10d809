"""The one benchmark harness (``cchmi bench`` and the scripts in bench/): timing, machine tags,
append-only CSV results, Markdown tables.

Timing: one warm-up call (compiles nothing here, but warms caches and thread pools), then
`repeats` timed calls; the median is reported with the spread (min, max). Calls that may run long
(peers) go through `run_with_timeout`, in a forked process that is killed at the deadline, so a
slow peer is recorded as a timeout instead of hanging the run.
"""

from __future__ import annotations

import csv
import datetime
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Timing:
    median: float
    low: float
    high: float
    repeats: int
    value: float | None = None  # what the timed call returned (an estimate), for checking
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
        queue.put(("ok", time.perf_counter() - t0, float(value)))
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
        "gpu": "",
    }


def append_csv(path: Path, rows: list[dict]) -> Path:
    """Appends rows (dicts with the same keys) to the CSV file `path`, writing a header once."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        if new:
            writer.writeheader()
        writer.writerows(rows)
    return path


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
