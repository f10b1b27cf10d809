"""Running a KD sweep: every job of a config not yet done in the output folder, in this machine's
processes (a pool of spawned workers; a worker's death fails only its own job), on a remote
executor (:mod:`cchmi.distill.sweep.executors`), or under torchrun (every process trains each job
together, DDP). The config's format: :mod:`cchmi.distill.sweep.config`; a job on disk (keys,
locks, resume): :mod:`cchmi.distill.sweep.jobs`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path

from cchmi import _io
from cchmi._progress import Progress
from cchmi.distill.sweep.config import check_config
from cchmi.distill.sweep.executors import check_options, run_remote
from cchmi.distill.sweep.held_out import check_held_out
from cchmi.distill.sweep.jobs import read_summary, run_job, run_locked
from cchmi.distill.training import process_group_rank_world


class SweepIncomplete(RuntimeError):
    """Some jobs of a sweep failed; every other job finished. ``summaries``: those of the finished
    jobs; ``failures``: one dict per failed job (key, error; also in ``<out>/runs/<key>/error.json``)."""

    def __init__(self, summaries: list[dict], failures: list[dict]):
        self.summaries, self.failures = summaries, failures
        total = len(summaries) + len(failures)
        super().__init__(f"{len(failures)} of {total} jobs failed (a rerun retries them): "
                         + "; ".join(f"{f['key']}: {f['error']}" for f in failures[:3])
                         + ("; ..." if len(failures) > 3 else ""))


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, BrokenProcessPool):
        return "its worker process died (killed by a signal, e.g. out of memory)"
    return f"{type(exc).__name__}: {exc}"


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_driver(driver: int) -> None:
    """A pool worker's initializer: the worker ends when the driver (pid `driver`) does, so that a
    SIGKILLed sweep leaves no worker (each holds a few hundred MB) running its queued jobs. On Linux
    the kernel sends SIGKILL at the driver's death (prctl PR_SET_PDEATHSIG); everywhere, a worker
    whose parent is no longer the driver (it died before the prctl, or elsewhere than Linux) exits at
    once and before each job (:func:`run_pooled`)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl in this libc: the check of the parent stays
            pass
    _exit_without_driver(driver)


def _exit_without_driver(driver: int) -> None:
    if os.getppid() != driver:
        os._exit(1)


def run_pooled(driver: int, job: dict, out: str, device, threads: int | None, wait: bool) -> str:
    """:func:`~cchmi.distill.sweep.jobs.run_locked` in a pool worker started by `driver`, which exits
    instead when the driver has died since the last job."""
    _exit_without_driver(driver)
    return run_locked(job, out, device, threads, wait)


def _pool(workers: int) -> ProcessPoolExecutor:
    """A pool of `workers` spawned processes that die with this one (:func:`die_with_driver`)."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=die_with_driver,
                               initargs=(os.getpid(),))


def _run_isolated(job: dict, out: str, device, threads: int, wait: bool) -> str:
    """One job in a worker process of its own: its death is its own failure."""
    with _pool(1) as pool:
        return pool.submit(run_pooled, os.getpid(), job, out, device, threads, wait).result()


BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")


@contextlib.contextmanager
def worker_blas_threads(threads: int):
    """While the pool starts its (spawned) workers, the BLAS thread variables the user has not set
    say `threads`: numpy's BLAS reads them once, at import, before a job can set anything. With every
    worker's BLAS on all cores, the workers' BLAS threads oversubscribe the cores (the held-out
    predictors' PCA slowed many-fold in a hand-timed sweep on the 2-core VM; no benchmark measures it)."""
    added = [name for name in BLAS_THREAD_VARIABLES if name not in os.environ]
    os.environ.update({name: str(threads) for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def _run_jobs(todo: list[dict], out: Path, devices: list, jobs: int, wait: bool, bar: Progress) -> dict:
    """Run `todo` with `jobs` worker processes (in this one when 1); key -> "ran", "finished", "busy"
    or the error (text) that stopped the job. A worker's death breaks the shared pool: the jobs it
    took down are rerun each in a process of its own, so that only the job that kills its worker fails."""
    outcome = {}

    def record(job, result):
        outcome[job["key"]] = result
        if result != "busy":
            bar.step()

    if jobs == 1:
        for i, job in enumerate(todo):
            try:
                record(job, run_locked(job, str(out), devices[i % len(devices)], None, wait))
            except Exception as exc:
                record(job, _error_text(exc) + "\n" + traceback.format_exc())
        return outcome
    threads = max(1, (os.cpu_count() or 1) // jobs)
    device = {job["key"]: devices[i % len(devices)] for i, job in enumerate(todo)}
    taken_down = []
    with worker_blas_threads(threads):
        with _pool(jobs) as pool:
            futures = {pool.submit(run_pooled, os.getpid(), job, str(out), device[job["key"]], threads, wait): job
                       for job in todo}
            for fut in as_completed(futures):
                try:
                    record(futures[fut], fut.result())
                except BrokenProcessPool:
                    taken_down.append(futures[fut])
                except Exception as exc:
                    record(futures[fut], _error_text(exc))
        with ThreadPoolExecutor(max_workers=jobs) as threads_pool:
            futures = {threads_pool.submit(_run_isolated, job, str(out), device[job["key"]], threads, wait): job
                       for job in taken_down}
            for fut in as_completed(futures):
                try:
                    record(futures[fut], fut.result())
                except Exception as exc:
                    record(futures[fut], _error_text(exc))
    return outcome


def _run_distributed(todo: list[dict], out: Path, bar: Progress) -> None:
    """Under torchrun: every process runs every job together (DDP), one GPU per process."""
    import torch
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = f"cuda:{local}" if torch.cuda.is_available() else "cpu"
    for job in todo:
        run_job(job, str(out), device)
        dist.barrier()  # rank 0 has written the summary
        bar.step()


def run_experiment(config, out, *, jobs: int = 1, devices=None, progress: bool = True,
                   executor: str = "local", executor_options: dict | None = None) -> list[dict]:
    """Run every job of `config` not yet done in `out`, with `jobs` worker processes; devices (e.g.
    ["cuda:0", "cuda:1"]) are handed to jobs round-robin. Under torchrun (an initialised process
    group), the processes instead train each job together with DDP (jobs must be 1).

    `executor`: "local" (this machine's processes), "dask" or "submitit" (Slurm), with its
    `executor_options` (:mod:`cchmi.distill.sweep.executors`; `jobs` is then the default number of dask
    workers or of array tasks at a time, and devices are the workers' own).

    `config`: a dict or a :class:`~cchmi.distill.sweep.config.SweepConfig`; a dict is checked whole
    (:func:`~cchmi.distill.sweep.config.check_config`) before any job runs, and so is whether its cch
    estimator can run on every job's held-out rows (:func:`~cchmi.distill.sweep.held_out.check_held_out`).
    A job holds a lock (``runs/<key>/lock``) while it runs, so two sweeps on one folder share the
    work; its summary is written atomically; a summary that is unreadable or incomplete (warning
    naming the file) counts as not done. Returns all summaries (old and new); when jobs failed,
    raises :class:`SweepIncomplete` (with the finished summaries) after every other job has run,
    each error in ``runs/<key>/error.json``. A relative `out` is made absolute here, in the
    driver's working folder, before any worker sees it."""
    config = check_config(config)
    check_held_out(config)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
    check_options(executor, executor_options)
    rank, world = process_group_rank_world()
    if world > 1 and (jobs != 1 or devices or executor != "local"):
        raise ValueError("under torchrun the processes share each job: use jobs=1, no devices list and the local "
                         "executor")
    if executor != "local" and devices:
        raise ValueError(f"devices is for the local executor; {executor} workers use their own devices")
    out = Path(os.path.abspath(out))  # remote workers in other folders write where the driver reads
    all_jobs = config.jobs
    todo = []
    for job in all_jobs:
        summary, problem = read_summary(out, job)
        if summary is None:
            todo.append(job)
            if problem:
                warnings.warn(f"{problem}: not a finished run, it runs again", RuntimeWarning, stacklevel=2)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        _io.remove_dead_temps(out)
        _io.write_atomic(out / "config.json", _io.dumps_json(config.values))
    devices = list(devices) if devices else [None]
    bar = Progress(len(todo), config.name, progress and rank == 0)
    if world > 1:
        _run_distributed(todo, out, bar)
        return [read_summary(out, j)[0] for j in all_jobs]

    def run(batch: list[dict], wait: bool) -> dict:
        if executor == "local":
            return _run_jobs(batch, out, devices, jobs, wait, bar)
        outcome = {}

        def record(job, result):
            outcome[job["key"]] = result
            if result != "busy":
                bar.step()

        run_remote(executor, executor_options, batch, out, jobs, wait, record)
        return outcome

    outcome = run(todo, False)
    busy = [j for j in todo if outcome[j["key"]] == "busy"]  # another sweep runs them: wait for it
    outcome.update(run(busy, True))
    summaries, failures = [], []
    for job in all_jobs:
        summary, problem = read_summary(out, job)
        if summary is not None:
            summaries.append(summary)
            continue
        error = outcome.get(job["key"], "ran")
        if error in ("ran", "finished", "busy"):  # it did not fail, yet left no valid summary
            error = problem or "no summary was written"
        failure = {"key": job["key"], "error": error.splitlines()[0], "details": error}
        folder = out / "runs" / job["key"]
        folder.mkdir(parents=True, exist_ok=True)  # a remote job can die before making its folder
        _io.write_atomic(folder / "error.json", _io.dumps_json(failure))
        failures.append(failure)
    if failures:
        raise SweepIncomplete(summaries, failures)
    return summaries


def leave_torchrun() -> None:
    """Leave the process group this process joined (:func:`join_torchrun`), if any."""
    if "torch.distributed" in sys.modules:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def join_torchrun() -> int:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); returns this process's rank."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank()
