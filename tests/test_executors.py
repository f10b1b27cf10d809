"""KD sweeps on Dask and submitit executors (CPU, tiny jobs): the same summaries as one local
process, files written by the driver when the workers do not share the output folder, failures
and resumption by job key as with the local pool."""

from __future__ import annotations

import json
import sys

import pytest

torch = pytest.importorskip("torch")

from cchmi.distill.sweep import SweepIncomplete, executors, expand_jobs, run_experiment
from conftest import TINY_SWEEP as TINY

# One job that trains and one whose 4 rows cannot be split: it fails inside run_kd, on the worker.
FAILING = {**TINY, "sweep": {"data.n": [100, 4]}}


def _results(summaries: list[dict]) -> list[tuple]:
    """What must not depend on where a job ran: its key, accuracies, gain and CCH fields (but the time)."""
    return [(s["job"]["key"], s["accuracy"], s["gain"], {k: v for k, v in s["cch"].items() if k != "seconds"},
             s["config_hash"]) for s in summaries]


def _stamps(out) -> dict:
    return {p.parent.name: p.stat().st_mtime_ns for p in out.glob("runs/*/summary.json")}


@pytest.fixture(scope="module")
def local_results(tmp_path_factory):
    return _results(run_experiment(TINY, tmp_path_factory.mktemp("local"), progress=False))


@pytest.fixture(scope="module")
def dask_address():
    """A LocalCluster of two worker processes (one thread each), started once for the module."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


def test_options_are_checked_before_anything_runs(tmp_path, monkeypatch):
    for executor, options, error, message in [
        ("slurm", None, ValueError, "executor must be one of 'local', 'dask', 'submitit'"),
        ("local", {"workers": 2}, ValueError, "local executor takes no executor_options"),
        ("dask", {"adress": "tcp://x:1"}, ValueError, "unknown dask executor option.*known: address"),
        ("dask", {"address": "tcp://x:1", "workers": 2}, ValueError, "not both"),
        ("dask", {"workers": 0}, ValueError, "workers must be >= 1"),
        ("dask", {"shared_filesystem": "no"}, TypeError, "shared_filesystem must be true or false"),
        ("dask", {"scratch": "/tmp/x"}, ValueError, "scratch is for shared_filesystem=false"),
        ("submitit", {"cluster": "pbs"}, ValueError, "cluster must be one of"),
        ("submitit", {"poll_seconds": 0}, ValueError, "poll_seconds"),
        ("submitit", {"partition": "a", "slurm_partition": "b"}, ValueError, "one option"),
        ("submitit", {"timeout_min": -5}, ValueError, "submitit executor option timeout_min must be >= 1, got -5"),
        ("submitit", {"timeout_min": 1.5}, TypeError, "submitit executor option timeout_min must be an integer"),
        ("submitit", {"array_parallelism": 0}, ValueError, "option array_parallelism must be >= 1"),
        ("submitit", {"gpus_per_node": -1}, ValueError, "option gpus_per_node must be >= 0"),
        ("submitit", {"mem_gb": 0}, ValueError, "option mem_gb"),
        ("dask", [("workers", 2)], TypeError, "executor_options must be a dict"),
    ]:
        with pytest.raises(error, match=message):
            run_experiment(TINY, tmp_path, progress=False, executor=executor, executor_options=options)
    with pytest.raises(ValueError, match="devices is for the local executor"):
        run_experiment(TINY, tmp_path, progress=False, devices=["cpu"], executor="dask")
    with pytest.raises(ValueError, match="submitit executor options: Parameter 'colour' need"):  # submitit's own check
        executors.run_remote("submitit", {"cluster": "local", "colour": 1}, expand_jobs(TINY)[:1], tmp_path, 1,
                             False, lambda job, outcome: None)
    monkeypatch.setitem(sys.modules, "distributed", None)  # not installed
    with pytest.raises(ImportError, match=r"dask executor needs distributed: pip install 'cchmi\[dask\]'"):
        run_experiment(TINY, tmp_path, progress=False, executor="dask")
    assert not (tmp_path / "runs").exists()


def test_a_relative_out_reaches_the_workers_absolute(tmp_path, monkeypatch):
    """Workers in another folder wrote every summary there, and the driver crashed writing error.json
    into folders no job had made (no report). Now `out` is absolute before any worker sees it, and the
    driver makes a failed job's folder before writing its error.json."""
    from cchmi.distill.sweep import runner

    seen = []

    def died_before_its_folder(executor, options, todo, out, jobs, wait, record):
        seen.append(out)
        for job in todo:
            record(job, "RuntimeError: the worker died before creating the job's folder")

    monkeypatch.setattr(runner, "run_remote", died_before_its_folder)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SweepIncomplete) as failed:
        run_experiment(TINY, "rel/out", progress=False, executor="dask", executor_options={"workers": 1})
    assert set(seen) == {tmp_path / "rel" / "out"} and seen[0].is_absolute()
    assert len(failed.value.failures) == 2
    for failure in failed.value.failures:
        written = json.loads((tmp_path / "rel" / "out" / "runs" / failure["key"] / "error.json").read_text())
        assert written["error"] == "RuntimeError: the worker died before creating the job's folder"


def test_an_unreachable_scheduler_is_one_line_naming_the_option(tmp_path):
    import os
    import socket
    import subprocess

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}
    config = tmp_path / "tiny.toml"
    config.write_text('name = "tiny"\nseeds = 1\npairs = [["teacher", "student"]]\n[data]\nname = "mfh"\nn = 100\n')
    run = subprocess.run([sys.executable, "-m", "cchmi", "experiment", str(config), "--out", str(tmp_path / "o"),
                          "--executor", "dask", "--executor-option", f"address=tcp://127.0.0.1:{port}",
                          "--no-progress"], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("cchmi experiment: error: dask executor option address=tcp://127.0.0.1:")
    assert "--executor-option address" in last and "cannot reach the scheduler" in last


def test_remote_errors_name_their_cause():
    class KilledWorker(Exception):
        pass

    assert executors.remote_error(ValueError("bad rows")) == "ValueError: bad rows"
    assert executors.remote_error(KilledWorker("task x")).startswith("its worker process died")
    trace = "Job (task=0) failed during processing with trace:\n----\nTraceback ...\nValueError: bad rows\n"
    assert executors.remote_error(RuntimeError(trace)).splitlines()[0] == "ValueError: bad rows"


@pytest.mark.slow
def test_dask_cluster_gives_the_local_results_and_resumes(tmp_path, local_results, dask_address, capsys):
    out = tmp_path / "out"
    summaries = run_experiment(TINY, out, executor="dask", executor_options={"address": dask_address})
    assert _results(summaries) == local_results
    assert "tiny [" in capsys.readouterr().err and len(_stamps(out)) == 2  # the driver's progress bar
    assert all((out / "runs" / key / "run.jsonl").stat().st_size > 0 for key in _stamps(out))
    stamps = _stamps(out)
    again = run_experiment(TINY, out, progress=False, executor="dask", executor_options={"address": "tcp://nowhere:1"})
    assert _stamps(out) == stamps and _results(again) == local_results  # all done: no scheduler needed
    # A LocalCluster of the runner's own (one worker, in-process threads: one job at a time).
    own = run_experiment(TINY, tmp_path / "own", progress=False, executor="dask",
                         executor_options={"workers": 1, "processes": False})
    assert _results(own) == local_results


def test_without_a_shared_filesystem_the_driver_writes_the_files(tmp_path, dask_address):
    out, scratch = tmp_path / "out", tmp_path / "worker"
    options = {"address": dask_address, "shared_filesystem": False, "scratch": str(scratch)}
    with pytest.raises(SweepIncomplete) as failed:
        run_experiment(FAILING, out, progress=False, executor="dask", executor_options=options)
    good, bad = (j["key"] for j in expand_jobs(FAILING))
    assert [s["job"]["key"] for s in failed.value.summaries] == [good]
    assert (scratch / "runs" / good / "summary.json").read_text() == (out / "runs" / good / "summary.json").read_text()
    assert (out / "runs" / good / "run.jsonl").read_text() == (scratch / "runs" / good / "run.jsonl").read_text()
    error = json.loads((out / "runs" / bad / "error.json").read_text())
    assert error["key"] == bad and error["error"].startswith("ValueError: ") and "fewer than two" in error["error"]
    assert not list(out.rglob("*.tmp"))
    # A rerun keeps the finished job (by key) and retries the failed one, which fails again.
    stamps = _stamps(out)
    with pytest.raises(SweepIncomplete) as again:
        run_experiment(FAILING, out, progress=False, executor="dask",
                       executor_options={"address": dask_address, "shared_filesystem": False})
    assert _stamps(out) == stamps and [f["key"] for f in again.value.failures] == [bad]


def test_a_driver_that_cannot_write_records_the_failure_and_resumes(tmp_path, dask_address, monkeypatch,
                                                                    local_results):
    import errno

    from cchmi import _io

    real = _io.write_atomic

    def full_disk(path, data):
        if path.name == "summary.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    out, options = tmp_path / "out", {"address": dask_address, "shared_filesystem": False}
    with monkeypatch.context() as m:
        m.setattr(_io, "write_atomic", full_disk)
        with pytest.raises(SweepIncomplete) as failed:
            run_experiment(TINY, out, progress=False, executor="dask", executor_options=options)
    assert [f["error"] for f in failed.value.failures] == ["OSError: the driver could not write its files: "
                                                           "[Errno 28] No space left on device"] * 2
    assert _results(run_experiment(TINY, out, progress=False, executor="dask", executor_options=options)) == \
        local_results


@pytest.mark.slow
def test_submitit_local_executor_gives_the_local_results(tmp_path, local_results):
    """One job (TINY's second: same options, same key) in a process that submitit starts."""
    pytest.importorskip("submitit")
    out = tmp_path / "out"
    options = {"cluster": "local", "timeout_min": 5, "poll_seconds": 0.2, "shared_filesystem": False}
    summaries = run_experiment({**TINY, "sweep": {"pairing": ["label"]}}, out, progress=False, executor="submitit",
                               executor_options=options)
    assert _results(summaries) == local_results[1:]
    assert len(list((out / "submitit").glob("*_result.pkl"))) == 1  # the job ran through submitit
    assert [p.name for p in (out / "runs").iterdir()] == [local_results[1][0]]


@pytest.mark.slow
def test_cli_experiment_on_a_dask_cluster_reports_per_regime(tmp_path, dask_address):
    """`cchmi experiment --executor dask --executor-option address=...`: the config's [report] regime
    gives a section per value in report.md; a misspelt option is one line and status 2."""
    from cchmi import cli

    config = tmp_path / "tiny.toml"
    config.write_text('name = "tiny"\nseeds = 1\npairs = [["teacher", "student"]]\n'
                      '[data]\nname = "mfh"\nn = 100\nshared = 1\nteacher_only = 1\nstudent_only = 1\nnuisance = 1\n'
                      '[train]\nepochs = 1\nhidden = 4\npatience = 1\n[split]\nval = 0.3\ntest = 0.3\n'
                      '[sweep]\npairing = ["aligned", "label"]\n[report]\nregime = "pairing"\n')
    out = tmp_path / "out"
    assert cli.main(["experiment", str(config), "--out", str(out), "--no-progress", "--executor", "dask",
                     "--executor-option", f"address={dask_address}"]) == 0
    assert "pairing = label" in (out / "report.md").read_text()
    assert cli.main(["experiment", str(config), "--out", str(tmp_path / "bad"), "--executor", "dask",
                     "--executor-option", "adress=tcp://x:1"]) == 2
    assert not (tmp_path / "bad").exists()
