"""Compatibility module (kept for one release): the KD sweep lives in :mod:`cchmi.distill.sweep`.

The TOML format of a sweep config is documented in :mod:`cchmi.distill.sweep.config`; jobs on disk
(keys, locks, resume) in :mod:`cchmi.distill.sweep.jobs`; :func:`run_experiment` in
:mod:`cchmi.distill.sweep.runner`. The names below are those modules' own.
"""

from cchmi.distill.sweep.config import (
    DATASETS,
    SweepConfig,
    check_config,
    check_name,
    expand_jobs,
    load_config,
    load_dataset,
    max_jobs,
    parse_toml,
)
from cchmi.distill.sweep.jobs import read_summary, run_job, run_locked
from cchmi.distill.sweep.runner import SweepIncomplete, run_experiment

__all__ = ["run_experiment", "SweepIncomplete", "SweepConfig", "check_config", "load_config", "expand_jobs",
           "parse_toml", "load_dataset", "read_summary", "run_job", "run_locked", "check_name", "max_jobs",
           "DATASETS"]
