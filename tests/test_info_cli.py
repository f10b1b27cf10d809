"""cchmi.info(), the command line, and the build facts (the CUDA module is compiled in CI)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import cchmi
import cchmi.data
from cchmi.cli import main


def test_info_reports_build():
    facts = cchmi.info()
    assert facts["cchmi"] == cchmi.__version__
    assert facts["cpu_module"]["openmp"] in (True, False)
    assert facts["cpu_module"]["max_threads"] >= 1
    assert "cpu" in facts["backends"] and facts["backends"][-1] == "numpy"
    for name in ("torch", "triton", "faiss", "cuda_module"):
        assert name in facts


@pytest.mark.skipif(os.environ.get("CCHMI_CUDA", "").upper() != "ON", reason="built without CCHMI_CUDA=ON")
def test_cuda_module_was_built_when_forced():
    from cchmi import _cuda

    # CMake's list, e.g. "75-real,80-real,86-real,89-real,90" (machine code; the last also PTX).
    arches = {arch.split("-")[0] for arch in _cuda.arches.split(",")}
    assert arches >= {"75", "80", "86", "89", "90"} or os.environ.get("CMAKE_CUDA_ARCHITECTURES")
    assert _cuda.runtime_version() > 0
    assert _cuda.device_count() >= 0  # imports and answers on a machine without a GPU


def test_import_has_no_side_effects():
    code = "import sys, cchmi; print(sorted(m for m in ('torch', 'triton', 'faiss') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]" and out.stderr == ""


def test_cli_info_and_mi_demo(capsys):
    assert main(["info"]) == 0
    assert "cpu_module" in capsys.readouterr().out
    assert main(["mi-demo"]) == 0
    out = capsys.readouterr().out
    assert "true MI 1.0000" in out and "KSG-1" in out and "p = " in out


def test_cli_mi_on_files(tmp_path, capsys):
    s = cchmi.data.correlated_gaussian(300, 2, 1, mi=0.5, random_state=0)
    np.save(tmp_path / "x.npy", s.x)
    np.savetxt(tmp_path / "y.csv", s.y, delimiter=",")
    np.savez(tmp_path / "labels.npz", labels=(s.y[:, 0] > 0).astype(int))
    assert main(["mi", str(tmp_path / "x.npy"), str(tmp_path / "y.csv"), "-k", "4"]) == 0
    assert f"{cchmi.ksg_mi(s.x, s.y, k=4).estimate:.4f}" in capsys.readouterr().out
    assert main(["mi", str(tmp_path / "x.npy"), str(tmp_path / "labels.npz"), "--labels"]) == 0


@pytest.mark.parametrize("argv,message", [
    (["mi", "missing.npy", "missing.npy"], "no such file"),
    (["mi", "{x}", "{short}"], "same number of samples"),
    (["mi", "{x}", "{nan}"], "NaN"),
    (["mi", "{x}", "{bad}"], "unsupported file type"),
])
def test_cli_errors_are_one_line_with_status_2(tmp_path, capsys, argv, message):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((20, 2)))
    np.save(tmp_path / "short.npy", np.zeros(10))
    np.save(tmp_path / "nan.npy", np.full(20, np.nan))
    (tmp_path / "bad.json").write_text("{}")
    files = {name: str(tmp_path / f) for name, f in
             [("x", "x.npy"), ("short", "short.npy"), ("nan", "nan.npy"), ("bad", "bad.json")]}
    assert main([a.format(**files) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("argv", [["mi", "--frobnicate"], ["cch", "a.npy"], ["demo", "--jobs", "0"], ["frobnicate"]])
def test_cli_usage_errors_exit_2_with_one_line(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cchmi") and "error:" in err and len(err.splitlines()) == 1


def test_cli_version_and_bare_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"cchmi {cchmi.__version__}"
    assert main([]) == 2  # a missing command is a usage error: the help goes to stderr
    err = capsys.readouterr().err
    assert err.startswith("usage: cchmi") and all(c in err for c in ("info", "demo", "cch", "experiment", "mi-demo"))


def _help(argv, capsys) -> str:
    """The help text with every space and line break removed (argparse wraps lines, also at hyphens)."""
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    return "".join(capsys.readouterr().out.split())


def test_cli_help_lists_every_accepted_value(capsys):
    from importlib import resources

    from cchmi.cch import ESTIMATORS, REPRESENTATIONS
    from cchmi.data.tasks import catalogue

    for command in ("cch", "mi"):
        assert all(f"{b}," in _help([command], capsys) for b in cchmi.KNOWN_BACKENDS[:-1])
    text = _help(["cch"], capsys)
    assert all(name in text for name in ESTIMATORS + REPRESENTATIONS + ("teacher", "student", "labels"))
    configs = [f.name[:-5] for f in resources.files("cchmi").joinpath("distill", "configs").iterdir()
               if f.name.endswith(".toml")]
    assert len(configs) >= 5 and all(name in _help(["experiment"], capsys) for name in configs)
    text = _help(["bench"], capsys)
    assert all(suite in text for suite in ("accuracy", "cch", "speed")) and "SUITE--help" in text
    assert all(name in _help(["bench", "accuracy"], capsys) for name in catalogue())
    assert "{1,2}" in _help(["mi"], capsys)


def _cch_files(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 400)
    s = y[:, None] + rng.standard_normal((400, 2))
    t = s + 0.3 * rng.standard_normal((400, 2))
    np.save(tmp_path / "t.npy", t)
    np.savetxt(tmp_path / "s.csv", s, delimiter=",")
    np.save(tmp_path / "y.npy", y)
    return t, s, y


def test_cli_cch_on_files(tmp_path, capsys):
    t, s, y = _cch_files(tmp_path)
    assert main(["cch", str(tmp_path / "t.npy"), str(tmp_path / "s.csv"), str(tmp_path / "y.npy")]) == 0
    out = capsys.readouterr().out
    assert f"gap = {cchmi.cch(t, s, y).gap:+.4f}" in out and "distil" in out
    torch = pytest.importorskip("torch")
    torch.save(torch.from_numpy(t), tmp_path / "t.pt")
    torch.save({"labels": torch.from_numpy(y)}, tmp_path / "y.pt")
    assert main(["cch", str(tmp_path / "t.pt"), str(tmp_path / "s.csv"), str(tmp_path / "y.pt"), "--json",
                 "-k", "5", "--pca", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["k"] == 5 and result["dims"] == [1, 1] and result["verdict"] in ("distil", "undecided")


def test_cli_cch_and_mi_show_progress_unless_told_not_to(tmp_path, capsys):
    _cch_files(tmp_path)
    files = [str(tmp_path / "t.npy"), str(tmp_path / "s.csv"), str(tmp_path / "y.npy")]
    assert main(["cch", *files]) == 0
    assert "cch: half-samples" in capsys.readouterr().err
    assert main(["cch", *files, "--no-progress"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["mi", files[0], files[1], "--confidence", "0.9"]) == 0
    assert "mi: " in capsys.readouterr().err
    assert main(["mi", files[0], files[1], "--confidence", "0.9", "--no-progress"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("files,message", [
    (("missing.npy", "s.csv", "y.npy"), "no such file"),
    (("t.npy", "s.csv", "short.npy"), "labels has 100 entries"),
    (("t.npy", "nan.npy", "y.npy"), "NaN"),
    (("t.npy", "s.csv", "one.npy"), "single class"),
    (("t.npy", "s.csv", "junk.pt"), "could not read it"),
])
def test_cli_cch_errors(tmp_path, capsys, files, message):
    _cch_files(tmp_path)
    np.save(tmp_path / "short.npy", np.zeros(100, dtype=int))
    np.save(tmp_path / "nan.npy", np.full((400, 2), np.nan))
    np.save(tmp_path / "one.npy", np.zeros(400, dtype=int))
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    assert main(["cch", *(str(tmp_path / f) for f in files)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_cli_experiment(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(
        'name = "tiny"\nseeds = 2\npairs = [["teacher", "student"]]\n'
        '[data]\nname = "mfh"\nn = 300\n[train]\nepochs = 2\nhidden = 16\n[sweep]\npairing = ["aligned", "label"]\n')
    out = tmp_path / "out"
    assert main(["experiment", str(config), "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "teacher->student aligned" in text and "Spearman" in text
    assert len(list(out.glob("runs/*/summary.json"))) == 4 and (out / "gain_vs_gap.png").is_file()
    assert main(["experiment", "no-such-config"]) == 2
    err = capsys.readouterr().err
    assert "nor a bundled config (" in err and all(n in err for n in ("digits", "synthetic", "fashion"))
    config.write_text("name = \"tiny\"\nseeds = 2\ncolour = 3\n")
    assert main(["experiment", str(config)]) == 2
    assert "unknown config key(s) colour" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_demo_end_to_end(tmp_path):
    """The README's main job, as a user runs it (console script, two worker processes)."""
    out = tmp_path / "demo"
    run = subprocess.run([sys.executable, "-m", "cchmi", "demo", "--out", str(out), "--no-progress"],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr
    assert "pixel->fourier aligned" in run.stdout and "Spearman" in run.stdout
    assert "in accuracy points" in run.stdout and "AUROC" in run.stdout  # the legend, the predictors' table
    assert "Pre-registered endpoints" in run.stdout and "Teacher selection" in run.stdout
    configs = list(csv.DictReader((out / "configs.csv").read_text().splitlines()))
    expected = 5 if _emoji_installed() else 3  # the emoji part runs where its Debian packages are
    assert len(configs) == expected and all(int(c["seeds"]) == 10 for c in configs)
    assert (out / "gain_vs_gap.png").read_bytes()[:4] == b"\x89PNG"
    report = json.loads((out / "report.json").read_text())
    assert report["agreement"]["configurations"] == expected
    assert {"cch_gap_logits", "teacher_acc", "majority_sign"} <= set(report["predictors"])
    assert set(report["endpoints"]["selection"]) >= {"cch_gap_logits", "teacher_acc", "random"}


def _emoji_installed() -> bool:
    from cchmi.data.emoji import emoji_files

    try:
        emoji_files()
    except FileNotFoundError:
        return False
    return True


@pytest.mark.slow
def test_python_dash_m():
    out = subprocess.run([sys.executable, "-m", "cchmi", "info"], capture_output=True, text=True, check=True)
    assert "backends" in out.stdout


def test_cli_defaults_are_the_python_defaults(tmp_path, capsys):
    """One default per name: `cchmi mi` estimated with KSG by default (0.790 nats where cchmi.mi's auto
    gives 0.978); every option of `cchmi mi` and `cchmi cch` defaults to its Python function's."""
    import inspect

    from cchmi.cli import _parser

    parser = _parser()
    commands = parser._subparsers._group_actions[0].choices
    python = {"cch": (cchmi.cch, {"seed": "random_state"}), "mi": (cchmi.mi, {})}
    for command, (function, renamed) in python.items():
        defaults = {name: p.default for name, p in inspect.signature(function).parameters.items()
                    if p.default is not p.empty}
        for action in commands[command]._actions:
            name = renamed.get(action.dest, action.dest)
            if name in defaults:
                assert action.default == defaults[name], (command, action.dest)
    assert commands["mi"].get_default("estimator") == "auto"
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2000, 1))
    y = x + 0.3 * rng.standard_normal((2000, 1))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    assert main(["mi", str(tmp_path / "x.npy"), str(tmp_path / "y.npy")]) == 0
    assert f"{cchmi.mi(x, y).estimate:.4f} nats" in capsys.readouterr().out


@pytest.mark.parametrize("argv, named", [
    (["cch", "t", "s", "y", "--seed", "-1"], "argument --seed: must be >= 0, got -1"),
    (["cch", "t", "s", "y", "-k", "0"], "argument -k: must be >= 1, got 0"),
    (["cch", "t", "s", "y", "--pca", "x"], "argument --pca: must be an integer, got 'x'"),
    (["cch", "t", "s", "y", "--confidence", "2"], "argument --confidence: must be in (0, 1)"),
    (["mi", "x", "y", "--confidence", "1.5"], "argument --confidence: must be in (0, 1)"),
    (["mi", "x", "y", "--base", "1"], "argument --base: must be a finite number > 0 other than 1"),
    (["mi", "x", "y", "-k", "-2"], "argument -k: must be >= 1, got -2"),
    (["bench", "accuracy", "--suite", "big"], "argument --suite: invalid choice: 'big'"),
])
def test_cli_numeric_options_are_checked_by_name(argv, named, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and named in err and len(err.strip().splitlines()) == 1


def test_cli_bench_accuracy_passes_the_suite(monkeypatch):
    from cchmi import cli

    calls = []

    class Accuracy:
        @staticmethod
        def main_accuracy(out, **options):
            calls.append(options)
            return "report"

    monkeypatch.setattr(cli, "_bench_module", lambda name: Accuracy)
    assert main(["bench", "accuracy", "--suite", "hd", "--quick", "--no-progress"]) == 0
    assert calls[0]["suite"] == "hd" and calls[0]["quick"]
    assert main(["bench", "accuracy", "--no-progress"]) == 0 and calls[1]["suite"] == "catalogue"


def test_cli_bench_task_help_lists_the_hd_suite(capsys):
    from cchmi.data.hd_tasks import hd_suite

    text = _help(["bench", "accuracy"], capsys)
    assert "--suitehd" in text and all(task.name in text for task in hd_suite())


def test_cli_bench_help_is_short(capsys):
    """89 lines with every suite's options and tasks: now the suites, a line each; details per suite."""
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    out = capsys.readouterr().out
    assert len(out.splitlines()) <= 15 and "--tasks" not in out
    for suite in ("accuracy", "cch", "speed"):
        assert any(line.split()[:1] == [suite] for line in out.splitlines())
    assert "--timeout" in _help(["bench", "speed"], capsys)
    with pytest.raises(SystemExit) as exc:
        main(["bench"])
    assert exc.value.code == 2 and "SUITE" in capsys.readouterr().err


def test_cli_demo_without_the_emoji_packages_says_so_and_runs_the_digits(tmp_path, capsys, monkeypatch):
    """The demo's emoji part needs Debian packages: without them it is left out with the loader's own
    message (the packages to install), and the digits part runs."""
    pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    from cchmi import cli

    ran = []

    def missing(root=None):
        raise FileNotFoundError("emoji data not found under /usr: sudo apt-get install fonts-noto-color-emoji")

    monkeypatch.setattr(cli, "_run_sweep", lambda config, out, **options: ran.append(config.name) or ([], []))
    monkeypatch.setattr(cli, "_print_report", lambda *args, **kwargs: 0)
    monkeypatch.setattr("cchmi.data.emoji.emoji_files", missing)
    assert main(["demo", "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert ran == ["demo_primary_digits"]
    assert "30 of 30 runs to train" in out
    assert "The emoji part is left out: emoji data not found" in out and "fonts-noto-color-emoji" in out


def test_cli_demo_says_how_long_it_takes(tmp_path, capsys, monkeypatch):
    """449 s at load 4 where the README says 118 s, with no word of it: the demo says up front how
    many runs it trains and how long they take, scaled by the machine's load, and its bars count
    runs done / total with the time left."""
    pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    from cchmi import cli
    from cchmi._progress import Progress

    monkeypatch.setattr(cli, "_run_sweep", lambda config, out, **options: ([], []))
    monkeypatch.setattr(cli, "_print_report", lambda *args, **kwargs: 0)
    monkeypatch.setattr("cchmi.data.emoji.emoji_files", lambda root=None: {})  # both parts, packages or not
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    assert main(["demo", "--out", str(tmp_path / "idle"), "--no-progress"]) == 0
    assert "50 of 50 runs to train: about 1 minute(s) with --jobs 2 on 2 idle cores." in capsys.readouterr().out
    monkeypatch.setattr(os, "getloadavg", lambda: (4.0, 4.0, 4.0))
    assert main(["demo", "--out", str(tmp_path / "busy"), "--no-progress"]) == 0
    assert "this machine is busy (load 4.0 on 2 cores): expect about 3x that, 4 minutes" in capsys.readouterr().out
    bar = Progress(128, "demo_digits")
    bar.step(count=32)
    assert "demo_digits [" in capsys.readouterr().err.splitlines()[-1]
    bar.step(count=32)
    line = capsys.readouterr().err.splitlines()[-1]
    assert "] 64/128 " in line and "s elapsed, ~" in line and line.endswith("s left")


def test_cli_bench_names_the_missing_extra(monkeypatch, capsys):
    from cchmi import cli

    def missing(name):
        raise ModuleNotFoundError("No module named 'scipy'", name="scipy")

    monkeypatch.setattr(cli, "_bench_module", missing)
    assert main(["bench", "speed", "--no-progress"]) == 2
    assert capsys.readouterr().err == "cchmi bench: error: cchmi bench needs scipy: pip install 'cchmi[bench]'\n"
