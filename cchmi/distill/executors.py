"""Compatibility module (kept for one release): where sweep jobs run is
:mod:`cchmi.distill.sweep.executors` (local processes, Dask, submitit/Slurm, and their options)."""

from cchmi.distill.sweep.executors import EXECUTORS, check_options, remote_error, remote_job, run_remote

__all__ = ["EXECUTORS", "check_options", "run_remote", "remote_job", "remote_error"]
