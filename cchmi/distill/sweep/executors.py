"""Where the jobs of a KD sweep run: this machine's processes, a Dask cluster, or Slurm.

:func:`cchmi.distill.sweep.runner.run_experiment` takes ``executor=`` and ``executor_options=``:

* ``"local"`` (default): this machine's process pool (``jobs=N`` workers, ``devices=`` handed out
  round-robin); no options.
* ``"dask"`` (``pip install 'cchmi[dask]'``): ``address`` (a running scheduler, e.g.
  ``"tcp://host:8786"``), or ``workers`` (a LocalCluster of that many worker processes, one
  thread each; default: ``jobs``) and ``processes`` (default true; threads share torch's global
  seed, so only processes give each job the results it has alone).
* ``"submitit"`` (``pip install 'cchmi[slurm]'``): a Slurm job array through
  ``submitit.AutoExecutor``. ``folder`` (submitit's pickles and logs, default ``<out>/submitit``;
  the nodes and the driver must share it), ``cluster`` (None: Slurm where it is installed, else
  local processes; "slurm", "local" or "debug"), ``timeout_min`` (minutes >= 1, default 60), ``partition``
  (= ``slurm_partition``), ``array_parallelism`` (= ``slurm_array_parallelism``, default:
  ``jobs``), ``gpus_per_node``, ``cpus_per_task``, ``mem_gb``, ... (any other AutoExecutor
  parameter, passed as given: submitit refuses unknown ones), ``poll_seconds`` (how often the
  driver asks for finished jobs, default 5).

Every executor also takes ``shared_filesystem`` (default true: the workers see ``<out>`` and
write each job's files there, under the job's lock, as local workers do). With false, a job runs
in a scratch folder of its worker (``scratch``: that folder; default a temporary one, removed after
the job) and sends its summary and run.jsonl back; the driver writes them into ``<out>``, holding
the job's lock from submission until they are written (one open lock file per job in flight).

Results are the same everywhere: a job is keyed, locked, skipped when done and recorded as
failed (``error.json``, :class:`~cchmi.distill.sweep.runner.SweepIncomplete`) by the same code; the
driver's progress bar counts finished jobs. Workers need cchmi[torch] installed.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from cchmi import _io
from cchmi import _validate as V
from cchmi._extras import require
from cchmi.distill.sweep.jobs import read_summary, run_job, run_locked

EXECUTORS = ("local", "dask", "submitit")
COMMON_OPTIONS = ("shared_filesystem", "scratch")
DASK_OPTIONS = ("address", "workers", "processes")
SUBMITIT_ALIASES = {"partition": "slurm_partition", "array_parallelism": "slurm_array_parallelism"}
SUBMITIT_OWN = ("folder", "cluster", "poll_seconds")
SUBMITIT_CLUSTERS = (None, "slurm", "local", "debug")
# The submitit options that count something, checked by name (submitit takes -5 minutes as given):
# name -> smallest value.
SUBMITIT_COUNTS = {"timeout_min": 1, "array_parallelism": 1, "slurm_array_parallelism": 1, "nodes": 1,
                   "tasks_per_node": 1, "cpus_per_task": 1, "gpus_per_node": 0}


def check_options(executor: str, options: dict | None) -> dict:
    """The executor's options, checked (ValueError/TypeError naming the option) and with defaults
    for the common ones; the executor's package is imported here (ImportError naming the extra)."""
    V.choice(executor, "executor", EXECUTORS)
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise TypeError(f"executor_options must be a dict, got {options!r}")
    if executor == "local":
        if options:
            raise ValueError(f"the local executor takes no executor_options (jobs= and devices= set it), got "
                             f"{', '.join(sorted(options))}")
        return {}
    opts = {"shared_filesystem": True, "scratch": None, **options}
    if not isinstance(opts["shared_filesystem"], bool):
        raise TypeError(f"executor option shared_filesystem must be true or false, got {opts['shared_filesystem']!r}")
    if opts["scratch"] is not None:
        if not isinstance(opts["scratch"], (str, Path)):
            raise TypeError(f"executor option scratch must be a folder name, got {opts['scratch']!r}")
        if opts["shared_filesystem"]:
            raise ValueError("executor option scratch is for shared_filesystem=false (the workers then write there)")
    if executor == "dask":
        unknown = sorted(set(opts) - set(COMMON_OPTIONS) - set(DASK_OPTIONS))
        if unknown:
            raise ValueError(f"unknown dask executor option(s) {', '.join(unknown)}; known: "
                             f"{', '.join(DASK_OPTIONS + COMMON_OPTIONS)}")
        if "address" in opts and ("workers" in opts or "processes" in opts):
            raise ValueError("dask executor options: address (a running scheduler) or workers/processes (a local "
                             "cluster), not both")
        if "address" in opts and not isinstance(opts["address"], str):
            raise TypeError(f"dask executor option address must be a scheduler address, got {opts['address']!r}")
        if "workers" in opts:
            V.as_int(opts["workers"], "dask executor option workers", 1)
        if not isinstance(opts.get("processes", True), bool):
            raise TypeError(f"dask executor option processes must be true or false, got {opts['processes']!r}")
        require("distributed", "dask", "the dask executor")
    else:
        V.choice(opts.get("cluster"), "submitit executor option cluster", SUBMITIT_CLUSTERS)
        for name, low in SUBMITIT_COUNTS.items():
            if name in opts:
                V.as_int(opts[name], f"submitit executor option {name}", low)
        if "mem_gb" in opts:
            V.as_real(opts["mem_gb"], "submitit executor option mem_gb", 0, low_open=True)
        if "folder" in opts and not isinstance(opts["folder"], (str, Path)):
            raise TypeError(f"submitit executor option folder must be a folder name, got {opts['folder']!r}")
        V.as_real(opts.get("poll_seconds", 5.0), "submitit executor option poll_seconds", 0, low_open=True)
        for alias, name in SUBMITIT_ALIASES.items():
            if alias in opts and name in opts:
                raise ValueError(f"submitit executor options {alias} and {name} are one option: keep one")
        require("submitit", "slurm", "the submitit executor")
    return opts


def remote_job(job: dict, out: str | None, scratch: str | None, wait: bool) -> dict:
    """Run one job on a worker. With `out` (a shared file system): under the job's lock in `out`,
    as a local worker does; returns {"status": "ran" | "finished" | "busy"}. Without: in `scratch`
    (or a temporary folder, removed after), returning {"status": "ran", "summary": the text of
    summary.json, "run_log": the text of run.jsonl} for the driver to write."""
    if out is not None:
        return {"status": run_locked(job, out, None, None, wait)}
    folder = Path(scratch) if scratch is not None else Path(tempfile.mkdtemp(prefix="cchmi-job-"))
    try:
        run_job(job, str(folder))
        files = folder / "runs" / job["key"]
        log = files / "run.jsonl"
        return {"status": "ran", "summary": (files / "summary.json").read_text(),
                "run_log": log.read_text() if log.is_file() else ""}
    finally:
        if scratch is None:
            shutil.rmtree(folder, ignore_errors=True)


def remote_error(exc: BaseException) -> str:
    """A failed remote job's error: a first line that names the cause, then the full text."""
    if type(exc).__name__ == "KilledWorker":  # dask gave up after the job's workers died
        return f"its worker process died (killed by a signal, e.g. out of memory): {exc}"
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip() and not set(line.strip()) <= set("-=")]
    if len(lines) > 1:  # submitit: "Job (task=0) failed during processing with trace: ..." then the traceback
        return f"{lines[-1]}\n{text}"
    return f"{type(exc).__name__}: {text}"


@contextmanager
def _dask(opts: dict, jobs: int):
    """Yields run(calls): (index, result, exception) per call of remote_job, as they finish."""
    distributed = require("distributed", "dask", "the dask executor")
    cluster = None
    if "address" in opts:
        try:
            client = distributed.Client(opts["address"])
        except (OSError, TimeoutError) as exc:  # refused, unknown host, timed out: one line, not a traceback
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ValueError(f"dask executor option address={opts['address']} (--executor-option address=...): "
                             f"cannot reach the scheduler: {reason}") from None
    else:
        cluster = distributed.LocalCluster(n_workers=opts.get("workers", jobs), threads_per_worker=1,
                                           processes=opts.get("processes", True), dashboard_address=":0")
        client = distributed.Client(cluster)

    def run(calls):
        futures = [client.submit(remote_job, *call, pure=False) for call in calls]
        index = {f.key: i for i, f in enumerate(futures)}
        for fut in distributed.as_completed(futures):
            try:
                yield index[fut.key], fut.result(), None
            except Exception as exc:
                yield index[fut.key], None, exc

    try:
        yield run
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@contextmanager
def _submitit(opts: dict, jobs: int, out: Path):
    """Yields run(calls) for a submitit job array (see :func:`_dask`)."""
    submitit = require("submitit", "slurm", "the submitit executor")
    params = {SUBMITIT_ALIASES.get(k, k): v for k, v in opts.items()
              if k not in SUBMITIT_OWN and k not in COMMON_OPTIONS}
    params.setdefault("timeout_min", 60)
    params.setdefault("slurm_array_parallelism", jobs)
    executor = submitit.AutoExecutor(folder=str(opts.get("folder", out / "submitit")), cluster=opts.get("cluster"))
    try:
        executor.update_parameters(**params)
    except (NameError, AssertionError, TypeError, ValueError) as exc:  # submitit's own checks
        raise ValueError(f"submitit executor options: {str(exc).strip().splitlines()[0]}") from None
    poll = float(opts.get("poll_seconds", 5.0))

    def run(calls):
        submitted = executor.map_array(remote_job, *(list(column) for column in zip(*calls)))
        index = {id(j): i for i, j in enumerate(submitted)}
        for job in submitit.helpers.as_completed(submitted, poll_frequency=poll):
            try:
                yield index[id(job)], job.result(), None
            except Exception as exc:
                yield index[id(job)], None, exc

    yield run


def _deliver(job: dict, result: dict, out: Path, record) -> None:
    """Write the files a worker sent back into the job's folder (the summary last: it marks the job
    done) and record the outcome; a write that fails (e.g. a full disk) is this job's failure."""
    folder = out / "runs" / job["key"]
    try:
        _io.write_atomic(folder / "run.jsonl", result["run_log"])
        _io.write_atomic(folder / "summary.json", result["summary"])
    except OSError as exc:
        record(job, f"OSError: the driver could not write its files: {exc}")
        return
    record(job, result["status"])


def run_remote(executor: str, options: dict | None, todo: list[dict], out: Path, jobs: int, wait: bool,
               record) -> None:
    """Run `todo` on a dask or submitit executor; record(job, outcome) is called as each job ends
    with "ran", "finished", "busy" or the error text, as the local pool does."""
    opts = check_options(executor, options)
    shared, scratch = opts["shared_filesystem"], opts["scratch"]
    if not todo:
        return
    held = {}  # without a shared file system: the locks the driver holds for jobs in flight
    try:
        send = []
        for job in todo:
            if shared:
                send.append(job)
                continue
            folder = out / "runs" / job["key"]
            lock = _io.job_lock(folder, wait)
            try:
                held_now = lock.__enter__()
            except ValueError as exc:  # a lock that is not one (a planted link): this job's failure
                record(job, f"ValueError: {exc}")
                continue
            if not held_now:
                lock.__exit__(None, None, None)
                record(job, "busy")
            elif read_summary(out, job)[0] is not None:
                lock.__exit__(None, None, None)
                record(job, "finished")
            else:
                held[job["key"]] = lock
                _io.remove_dead_temps(folder)
                (folder / "error.json").unlink(missing_ok=True)
                send.append(job)
        if not send:
            return
        adapter = _dask(opts, jobs) if executor == "dask" else _submitit(opts, jobs, out)
        calls = [(job, str(out) if shared else None, None if scratch is None else str(scratch), wait) for job in send]
        with adapter as run:
            for i, result, exc in run(calls):
                job = send[i]
                try:
                    if exc is not None:
                        record(job, remote_error(exc))
                    elif shared:
                        record(job, result["status"])
                    else:
                        _deliver(job, result, out, record)
                finally:
                    if job["key"] in held:
                        held.pop(job["key"]).__exit__(None, None, None)
    finally:
        for lock in held.values():
            lock.__exit__(None, None, None)
