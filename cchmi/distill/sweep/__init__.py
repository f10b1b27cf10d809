"""KD sweeps: a TOML config -> jobs (:mod:`~cchmi.distill.sweep.config`), each job's folder, lock
and resumption (:mod:`~cchmi.distill.sweep.jobs`), where jobs run
(:mod:`~cchmi.distill.sweep.executors`) and the driver (:mod:`~cchmi.distill.sweep.runner`).
Imports go one way: runner -> executors -> jobs -> config (and the trainer)."""

from cchmi.distill.sweep.config import SweepConfig, check_config, expand_jobs, job_config, load_config
from cchmi.distill.sweep.jobs import read_summary, run_job
from cchmi.distill.sweep.runner import SweepIncomplete, run_experiment

__all__ = ["run_experiment", "SweepIncomplete", "SweepConfig", "check_config", "load_config", "expand_jobs",
           "job_config", "read_summary", "run_job"]
