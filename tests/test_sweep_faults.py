"""Faults of KD sweeps and of file input: interrupted and failed writes, killed workers, two
processes on one output folder, crafted files and configs. Nothing lost, nothing escapes, no traceback."""

from __future__ import annotations

import errno
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cchmi import _cli_input, cli
from cchmi.distill import sweep
from cchmi.distill.sweep import expand_jobs, run_experiment
from cchmi.distill.report import write_report
from conftest import TINY_SWEEP as TINY

TINY_TOML = """name = "tiny"
seeds = SEEDS
pairs = [["teacher", "student"]]
[data]
name = "mfh"
n = 100
shared = 1
teacher_only = 1
student_only = 1
nuisance = 1
[train]
epochs = 1
hidden = 4
patience = 1
[split]
val = 0.3
test = 0.3
"""
REPO = Path(__file__).resolve().parents[1]


def _valid_summaries(out: Path) -> set[str]:
    """Keys of the jobs whose summary.json is complete, valid JSON naming its own job."""
    keys = set()
    for path in out.glob("runs/*/summary.json"):
        s = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"{path}: bare {c}"))
        assert s["job"]["key"] == path.parent.name and {"accuracy", "gain", "cch"} <= set(s)
        keys.add(path.parent.name)
    return keys


def _count_trainings(monkeypatch) -> list:
    """Patch run_kd (as run_job imports it) to record each training (its seed)."""
    from cchmi.distill.sweep import jobs

    calls, real = [], jobs.run_kd

    def counted(data, config, **kwargs):
        calls.append(config.seed)
        return real(data, config, **kwargs)

    monkeypatch.setattr(jobs, "run_kd", counted)
    return calls


# -- results on disk ------------------------------------------------------------------------------

def test_unreadable_or_incomplete_summary_is_rerun(tmp_path):
    run_experiment(TINY, tmp_path, progress=False)
    paths = sorted(tmp_path.glob("runs/*/summary.json"))
    paths[0].write_text(paths[0].read_text()[:100])  # truncated by a full disk
    paths[1].write_text(json.dumps({"gain": 0.1}))  # valid JSON, not a summary
    with pytest.warns(RuntimeWarning) as caught:
        again = run_experiment(TINY, tmp_path, progress=False)
    assert sorted(str(w.message).split(":")[0] for w in caught) == [str(p) for p in paths]
    assert len(again) == 2 and _valid_summaries(tmp_path) == {j["key"] for j in expand_jobs(TINY)}


def test_summaries_of_the_older_trainer_are_rerun(tmp_path):
    run_experiment(TINY, tmp_path, progress=False)
    path = sorted(tmp_path.glob("runs/*/summary.json"))[0]
    old = json.loads(path.read_text())
    for key in ("teacher_rows", "budget", "val_accuracy", "predictors"):
        del old[key]
    path.write_text(json.dumps(old))
    with pytest.warns(RuntimeWarning, match="older trainer .schema 1: no teacher_rows, budget, val_accuracy, "
                                            "predictors.*teacher trained on the student's rows"):
        run_experiment(TINY, tmp_path, progress=False)
    assert "teacher_rows" in json.loads(path.read_text())
    old = json.loads(path.read_text())
    del old["regime"]  # schema 2: predictors on validation + test rows
    path.write_text(json.dumps(old))
    with pytest.warns(RuntimeWarning, match="schema 2: no regime.*predictors read the test rows"):
        run_experiment(TINY, tmp_path, progress=False)
    assert "regime" in json.loads(path.read_text())


def _full_disk(monkeypatch, after: int):
    """Writes to summary.json files (final or temporary) stop with ENOSPC halfway, from the
    `after`-th such file on."""
    import builtins

    real_open, opened = builtins.open, []

    class Half:
        def __init__(self, fh):
            self.fh = fh

        def write(self, data):
            self.fh.write(data[: len(data) // 2])
            self.fh.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    def fake_open(file, mode="r", *args, **kwargs):
        fh = real_open(file, mode, *args, **kwargs)
        if "summary.json" in str(file) and "w" in mode:
            opened.append(file)
            if len(opened) >= after:
                return Half(fh)
        return fh

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)


def test_full_disk_mid_write_leaves_no_finished_looking_job(tmp_path, monkeypatch):
    with monkeypatch.context() as m:
        _full_disk(m, after=2)
        with pytest.raises((OSError, sweep.SweepIncomplete) if hasattr(sweep, "SweepIncomplete")
                           else OSError):
            run_experiment(TINY, tmp_path, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a half-written file may be named
        run_experiment(TINY, tmp_path, progress=False)
    assert _valid_summaries(tmp_path) == {j["key"] for j in expand_jobs(TINY)}
    assert not list(tmp_path.glob("runs/*/*.tmp")) and not list(tmp_path.glob("runs/*/error.json"))


def test_report_json_is_strict_json(tmp_path):
    summary = {"dataset": "toy", "teacher_view": "t", "student_view": "s", "pairing": "aligned", "p": 0.0, "seed": 0,
               "accuracy": {"teacher": 0.9, "baseline": 0.8, "kd": 0.85}, "gain": 0.05,
               "cch": {"i_ts": 1.0, "i_sy": 0.5, "gap": 0.5, "gap_ci_low": 0.4, "gap_ci_high": 0.6,
                       "verdict": "distil"}, "seconds": 1.0, "config_hash": "x"}
    write_report([summary], tmp_path)  # one seed: no interval, agreement and correlations undefined
    report = json.loads((tmp_path / "report.json").read_text(),
                        parse_constant=lambda c: pytest.fail(f"bare {c} in report.json"))
    assert report["agreement"]["agreement"] is None and report["configurations"][0]["gain_sd"] is None


# -- workers and concurrent sweeps ----------------------------------------------------------------

@pytest.mark.slow
def test_killed_worker_is_recorded_and_the_rest_finish(tmp_path):
    """Every worker that takes one job's lock is killed (SIGKILL) in a --jobs 2 sweep: the other job
    finishes, the report is written with the failure listed, and the command says so (status 1)."""
    import threading

    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML.replace("SEEDS", "2"))
    out = tmp_path / "out"
    jobs = {j["seed"]: j["key"] for j in expand_jobs(sweep.load_config(config))}
    lock, done, killed = out / "runs" / jobs[1] / "lock", threading.Event(), set()

    def parent(pid: int) -> int:
        try:
            return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return -1

    def killer():  # the pid a worker writes into the lock file it holds; only our own workers
        while not done.wait(0.01):
            text = lock.read_text().strip() if lock.exists() else ""
            if text.isdigit() and int(text) not in killed and parent(int(text)) == os.getpid():
                killed.add(int(text))
                try:
                    os.kill(int(text), signal.SIGKILL)
                except ProcessLookupError:
                    pass

    watcher = threading.Thread(target=killer)
    watcher.start()
    try:
        status = cli.main(["experiment", str(config), "--out", str(out), "--jobs", "2", "--no-progress"])
    finally:
        done.set()
        watcher.join()
    assert status == 1 and killed
    assert _valid_summaries(out) == {jobs[0]}
    error = json.loads((out / "runs" / jobs[1] / "error.json").read_text())
    assert error["key"] == jobs[1] and "died" in error["error"]
    report = json.loads((out / "report.json").read_text())
    assert [f["key"] for f in report["failures"]] == [jobs[1]] and report["configurations"][0]["seeds"] == 1


def test_two_sweeps_on_one_folder_train_each_job_once(tmp_path, monkeypatch):
    import threading

    calls = _count_trainings(monkeypatch)
    key = expand_jobs(TINY)[0]["key"]
    (tmp_path / "runs" / key).mkdir(parents=True)
    (tmp_path / "runs" / key / "lock").write_text("999999999\n")  # left by a dead process: no obstacle
    results = {}
    threads = [threading.Thread(target=lambda i=i: results.update({i: run_experiment(TINY, tmp_path, progress=False)}))
               for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 2  # each job trained once, by one of the two
    assert [s["job"]["key"] for s in results[0]] == [s["job"]["key"] for s in results[1]]
    assert [s["gain"] for s in results[0]] == [s["gain"] for s in results[1]]


def test_a_planted_lock_link_is_refused_and_its_target_kept(tmp_path, monkeypatch):
    """Keys are predictable: a symlink (or a hard link) planted at runs/<key>/lock made the sweep
    truncate and overwrite its target. Now the job fails naming the lock, the target is untouched
    and the other jobs run."""
    from cchmi import _io

    calls = _count_trainings(monkeypatch)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    first, second = (job["key"] for job in expand_jobs(TINY))
    (tmp_path / "out" / "runs" / first).mkdir(parents=True)
    (tmp_path / "out" / "runs" / first / "lock").symlink_to(victim)
    with pytest.raises(sweep.SweepIncomplete) as exc:
        run_experiment(TINY, tmp_path / "out", progress=False)
    assert victim.read_text() == "precious\n" and len(calls) == 1
    assert [f["key"] for f in exc.value.failures] == [first] and "lock" in exc.value.failures[0]["error"]
    hard = tmp_path / "hard"
    hard.mkdir()
    os.link(victim, hard / "lock")
    with pytest.raises(ValueError, match="not a job lock"):
        with _io.job_lock(hard, False):
            pass
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(ValueError, match="not a folder this sweep can lock"):
        with _io.job_lock(tmp_path / "linked", False):
            pass
    assert victim.read_text() == "precious\n" and not (tmp_path / "elsewhere" / "lock").exists()
    assert second in {path.parent.name for path in (tmp_path / "out").glob("runs/*/summary.json")}


def test_job_lock_is_not_truncated_and_holds_the_pid(tmp_path):
    from cchmi import _io

    (tmp_path / "lock").write_text("1\n" + "x" * 100)
    with _io.job_lock(tmp_path, False) as held:
        assert held
        text = (tmp_path / "lock").read_text()
    assert text.split()[0] == str(os.getpid()) and len(text) == 102  # written over, not truncated


# -- the sweep killed at random points ------------------------------------------------------------

# Imports torch once, then forks one sweep per line read; the test SIGKILLs the forked sweeps.
CHILD = """
import builtins, io, os, signal, sys, time
real_open = builtins.open
class Slow:  # a summary written in two halves with a pause: SIGKILL can land inside the write
    def __init__(self, fh): self.fh = fh
    def write(self, data):
        h = len(data) // 2
        self.fh.write(data[:h]); self.fh.flush()
        print("WRITING", flush=True); time.sleep(0.3)
        return self.fh.write(data[h:])
    def __getattr__(self, name): return getattr(self.fh, name)
    def __enter__(self): return self
    def __exit__(self, *exc): self.fh.close()
def slow_open(file, mode="r", *args, **kwargs):
    fh = real_open(file, mode, *args, **kwargs)
    return Slow(fh) if "summary.json" in str(file) and "w" in mode else fh
builtins.open = io.open = slow_open
import cchmi.distill.trainer  # torch and the trainer, imported once
from cchmi.distill.sweep import load_config, run_experiment
config = load_config(sys.argv[1])
while sys.stdin.readline():  # "go": one sweep
    pid = os.fork()
    if pid == 0:
        try:
            print("PID", os.getpid(), flush=True)
            run_experiment(config, sys.argv[2], progress=False)
            print("END", flush=True)
        finally:
            os._exit(0)
    sys.stdin.readline()  # "kill": the sweep is running or a zombie, its pid not yet reusable
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    print("EXIT", flush=True)
"""


@pytest.mark.slow
def test_sweep_killed_at_random_points_resumes_to_the_full_set(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML.replace("SEEDS", "2"))
    out = tmp_path / "out"
    rng = random.Random(12)
    # Kill inside a write (at the k-th "WRITING": the trainer's summary, then the runner's temporary
    # file), then after random delays (in training or between writes; a sweep may also end first).
    plans = [("write", 1), ("write", 2), ("delay", rng.uniform(0.0, 2.0)), ("delay", rng.uniform(0.5, 3.0))]
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(config), str(out)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=tmp_path)
    try:
        for how, when in plans:
            child.stdin.write("go\n")
            child.stdin.flush()
            words = child.stdout.readline().split()
            assert words[0] == "PID", words
            if how == "delay":
                time.sleep(when)
            else:
                seen = 0
                while seen < when:
                    line = child.stdout.readline().strip()
                    if line in ("END", ""):
                        break
                    seen += line == "WRITING"
            child.stdin.write("kill\n")
            child.stdin.flush()
            while child.stdout.readline().strip() not in ("EXIT", ""):
                pass
    finally:
        child.stdin.close()
        child.wait()
        child.stdout.close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # half-written summaries are named, then rerun
        summaries = run_experiment(sweep.load_config(config), out, progress=False)
    keys = {j["key"] for j in expand_jobs(sweep.load_config(config))}
    assert len(summaries) == 2 and _valid_summaries(out) == keys
    assert {p.name for p in (out / "runs").iterdir()} == keys
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


# -- configs --------------------------------------------------------------------------------------

@pytest.mark.parametrize("change,message", [
    ({"name": "../escape"}, "name"),
    ({"name": "/tmp/abs"}, "name"),
    ({"train": {"epoch": 1}}, "unknown training option"),
    ({"train": {"epochs": "1"}}, "epochs"),
    ({"split": {"validation": 0.2}}, "split"),
    ({"cch": {"k": "3"}}, "k"),
    ({"cch": {"representation": "probabilities"}}, "representation"),
    ({"sweep": {"train.epochs": [1, 0]}}, "epochs"),
    ({"sweep": {"train.epoch": [1]}}, "unknown training option"),
    ({"sweep": {"split.val": [0.3, 2.0]}}, "val"),
    ({"sweep": {"data.colour": [1]}}, "colour"),
    ({"sweep": {"data.noise": [0.3, -1.0]}}, "noise"),
    ({"sweep": {"pairing": ["aligned", "random"]}}, "pairing"),
    ({"sweep": {"p": [0.5, 2.0]}}, "p"),
    ({"pairing": "random"}, "pairing"),
    ({"data": {"name": "mfh", "n": 100, "random_state": 3}}, "random_state"),
    ({"seeds": True}, "seeds"),
    ({"pairs": [["teacher", 3]]}, "view"),
    # The trainer's CCH cannot run on 60 held-out rows: refused before any job trains (it trained fully, then failed).
    ({"cch": {"estimator": "ksg-extrapolated"}}, r"cch.estimator = 'ksg-extrapolated' cannot run on the 60 held-out"),
    ({"cch": {"estimator": "neural"}}, r"cch.estimator = 'neural' cannot run on the 60 held-out rows .*needs 160"),
])
def test_config_errors_come_before_any_training(tmp_path, monkeypatch, change, message):
    calls = _count_trainings(monkeypatch)
    with pytest.raises((ValueError, TypeError), match=message):
        run_experiment({**TINY, **change}, tmp_path, progress=False)
    assert calls == [] and not (tmp_path / "runs").exists()


def test_cli_refuses_a_cch_estimator_the_held_out_rows_cannot_run_before_making_out(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML.replace("SEEDS", "1") + '[cch]\nestimator = "ksg-extrapolated"\n')
    assert cli.main(["experiment", str(config), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "cch.estimator = 'ksg-extrapolated' cannot run on the 60 held-out rows" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_empty_config_and_huge_expansions_are_refused(monkeypatch):
    with pytest.raises(ValueError, match="empty"):
        expand_jobs({})
    with pytest.raises(ValueError, match="data"):
        expand_jobs({"name": "x", "seeds": 1})  # no dataset: not the 90-job default sweep
    with pytest.raises(ValueError, match="1000000000000 jobs"):
        expand_jobs({**TINY, "seeds": 10**12, "sweep": {}})
    monkeypatch.setenv("CCHMI_MAX_JOBS", "1")
    with pytest.raises(ValueError, match="2 jobs.*CCHMI_MAX_JOBS"):
        expand_jobs(TINY)


def test_bundled_configs_still_validate():
    counts = {name: len(expand_jobs(cli._bundled_config(name))) for name in _cli_input.bundled_configs()}
    # The sweeps' and the demos' sizes (their files state them); gpu/: sized for a GPU.
    assert counts == {"digits": 1800, "digits_cpu": 900, "synthetic": 240, "fashion": 1200, "demo_digits": 64,
                      "demo_synthetic": 64, "demo_primary_digits": 30, "demo_primary_emoji": 20,
                      "primary_digits": 600, "primary_emoji": 240, "primary_omics": 400, "knobs_digits": 200,
                      "knobs_nuisance_digits": 160, "transfer_digits": 200, "transfer_repair_digits": 120,
                      "gpu/emoji_cnn": 600, "gpu/fashion_70k": 1200}


# -- the command line -----------------------------------------------------------------------------

def _cli_error(capsys, argv) -> str:
    try:
        status = cli.main(argv)
    except SystemExit as exit:  # argparse's own checks
        status = exit.code
    assert status == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_cli_refuses_bad_output_folders_and_devices(tmp_path, capsys, monkeypatch):
    calls = _count_trainings(monkeypatch)
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML.replace("SEEDS", "1"))
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for out in (a_file, a_file / "below"):
        assert "--out" in _cli_error(capsys, ["experiment", str(config), "--out", str(out), "--no-progress"])
    assert "--out" in _cli_error(capsys, ["demo", "--out", str(a_file / "below"), "--no-progress"])
    assert "--devices" in _cli_error(capsys, ["experiment", str(config), "--out", str(tmp_path / "o"),
                                              "--devices", "foo", "--no-progress"])
    escape = tmp_path / "escape.toml"
    escape.write_text(TINY_TOML.replace("SEEDS", "1").replace('name = "tiny"', 'name = "../../../escape"'))
    monkeypatch.chdir(tmp_path)
    assert "name" in _cli_error(capsys, ["experiment", str(escape), "--no-progress"])
    assert calls == [] and not (tmp_path.parent / "escape").exists()


def _write_npy_header(fh, shape, dtype="<f8"):
    np.lib.format.write_array_header_1_0(fh, {"descr": dtype, "fortran_order": False, "shape": shape})


def test_cli_checks_array_sizes_before_loading(tmp_path, capsys, monkeypatch):
    huge = tmp_path / "huge.npy"  # a header asking for 7 TiB, 128 bytes on disk
    with open(huge, "wb") as fh:
        _write_npy_header(fh, (2**40 * 7 // 8,))
    bomb = tmp_path / "bomb.npz"  # a zip member that would unpack to 4 GB
    buf = io.BytesIO()
    _write_npy_header(buf, (2**29,))
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("x.npy", "w", force_zip64=True) as member:
            member.write(buf.getvalue())
            member.write(bytes(2**20))  # the rest is left out: the header is what is checked
    for path in (huge, bomb):
        with pytest.raises(ValueError, match=f"{path.name}.*bytes"):
            _cli_input.load_array(str(path))
    small = np.zeros((100, 2))
    np.save(tmp_path / "small.npy", small)
    np.savez_compressed(tmp_path / "small.npz", x=small)
    monkeypatch.setenv("CCHMI_MAX_ARRAY_BYTES", "1000")  # 1600 bytes each: over this limit
    for name in ("small.npy", "small.npz"):
        with pytest.raises(ValueError, match=f"{name}.*1600 bytes.*CCHMI_MAX_ARRAY_BYTES"):
            _cli_input.load_array(str(tmp_path / name))
    monkeypatch.delenv("CCHMI_MAX_ARRAY_BYTES")
    assert np.array_equal(_cli_input.load_array(str(tmp_path / "small.npz")), small)
    err = _cli_error(capsys, ["mi", str(tmp_path), str(tmp_path / "small.npy")])
    assert "is a directory" in err


def test_cli_keeps_float64_tensors(tmp_path):
    x = torch.arange(6, dtype=torch.float64).reshape(3, 2) / 3
    torch.save(x, tmp_path / "x.pt")
    torch.save({"h": x.to(torch.bfloat16)}, tmp_path / "h.pt")
    loaded = _cli_input.load_array(str(tmp_path / "x.pt"))
    assert loaded.dtype == np.float64 and np.array_equal(loaded, x.numpy())
    assert _cli_input.load_array(str(tmp_path / "h.pt")).dtype == np.float32
