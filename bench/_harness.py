"""The benchmark scripts' harness: cchmi's own (cchmi/_harness.py), with results in bench/results."""

from __future__ import annotations

from pathlib import Path

from cchmi._harness import Timing, machine, markdown_table, require_compiled, run_with_timeout, time_call

RESULTS = Path(__file__).resolve().parent / "results"

__all__ = ["Timing", "machine", "markdown_table", "require_compiled", "run_with_timeout", "time_call", "append_csv"]


def append_csv(name: str, rows: list[dict]) -> Path:
    """Appends rows to bench/results/<name>.csv (header written once)."""
    from cchmi._harness import append_csv as _append

    return _append(RESULTS / f"{name}.csv", rows)
