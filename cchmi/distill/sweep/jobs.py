"""One job of a KD sweep on disk: where its summary goes, whether it is done (resume), running it
under its lock.

A job's folder is ``<out>/runs/<job key>``: ``summary.json`` (the run's summary with the job
added, written atomically: its presence marks the job done), ``run.jsonl``, ``lock`` while it
runs, ``error.json`` when it failed.
"""

from __future__ import annotations

import json
from pathlib import Path

from cchmi import _io
from cchmi.distill.summary import CURRENT_SUMMARY_KEYS, SCHEMA_VERSION, check_summary, schema_version
from cchmi.distill.sweep.config import job_config, load_dataset
from cchmi.distill.trainer import run_kd
from cchmi.distill.training import process_group_rank_world


def summary_path(out, job: dict) -> Path:
    """``<out>/runs/<job key>/summary.json``."""
    return Path(out) / "runs" / job["key"] / "summary.json"


def read_summary(out, job: dict) -> tuple[dict | None, str]:
    """A job's summary if it is complete, valid and written by the current trainer (schema
    version :data:`~cchmi.distill.summary.SCHEMA_VERSION`: its entries
    :data:`~cchmi.distill.summary.CURRENT_SUMMARY_KEYS`), else (None, why not: "" when there is none)."""
    path = summary_path(out, job)
    try:
        summary = json.loads(path.read_text())
        check_summary(summary)
        if not (isinstance(summary.get("job"), dict) and summary["job"].get("key") == job["key"]):
            raise ValueError(f"job.key is not {job['key']}")
        if schema_version(summary) < SCHEMA_VERSION:
            older = [key for key in CURRENT_SUMMARY_KEYS if key not in summary]
            why = {1: "whose teacher trained on the student's rows",
                   2: "whose predictors read the test rows that score the gain"}[schema_version(summary)]
            raise ValueError(f"written by an older trainer (schema {schema_version(summary)}: no "
                             f"{', '.join(older)}), {why}")
    except FileNotFoundError:
        return None, ""
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None, f"{path}: {exc}"
    return summary, ""


def run_job(job: dict, out: str, device=None, threads: int | None = None) -> dict:
    """Run one job (in this process: its KDConfig, :func:`~cchmi.distill.sweep.config.job_config`)
    and write its summary with the job added; returns that summary. `threads`: this worker's
    share of the cores, for torch and the kNN kernels of the held-out predictors."""
    if threads:
        import torch

        import cchmi

        torch.set_num_threads(threads)
        cchmi.set_num_threads(threads)
    data = load_dataset(job["data"], job["seed"])
    summary = {**run_kd(data, job_config(job), device=device, out_dir=Path(out) / "runs" / job["key"]), "job": job}
    if process_group_rank_world()[0] == 0:
        _io.write_atomic(summary_path(out, job), _io.dumps_json(summary))
    return summary


def run_locked(job: dict, out: str, device, threads: int | None, wait: bool) -> str:
    """Run a job under its lock (in this process; also what a worker of a remote executor runs when
    it shares the output folder): "ran"; "finished" when another process has finished it meanwhile;
    "busy" when another process holds the lock (and wait is False)."""
    folder = Path(out) / "runs" / job["key"]
    with _io.job_lock(folder, wait) as held:
        if not held:
            return "busy"
        if read_summary(out, job)[0] is not None:
            return "finished"
        _io.remove_dead_temps(folder)
        (folder / "error.json").unlink(missing_ok=True)
        run_job(job, out, device, threads)
    return "ran"
