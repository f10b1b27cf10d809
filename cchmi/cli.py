"""The ``cchmi`` command line.

``cchmi demo`` (the CCH end to end on bundled data), ``cchmi cch T S LABELS``, ``cchmi experiment
CONFIG``, ``cchmi mi X Y``, ``cchmi mi-demo``, ``cchmi info``, ``cchmi bench``, ``cchmi --version``.
Bad input: one line on stderr, status 2; ``cchmi`` alone prints the help on stderr, status 2 (a
missing command is a usage error, as argparse treats a missing required argument). The accepted
values listed in the help come from the code (backends, bundled configs, estimators, tasks).
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from cchmi._cli_input import (
    devices,
    executor_option,
    load_array,
    log_base,
    non_negative_int,
    open_unit,
    output_folder,
    positive_int,
    positive_seconds,
    sizes,
)
from cchmi._extras import require


def _cmd_info(args) -> int:
    from cchmi.info import format_info, info

    print(format_info(info()))
    return 0


def _cmd_mi_demo(args) -> int:
    import cchmi
    from cchmi.data import load_sample

    sample = load_sample()
    print(f"bundled sample: {sample.description}, n={sample.x.shape[0]}, true MI {sample.mi:.4f} nats\n")
    rows = [
        ("KSG-1, k=3", cchmi.ksg_mi(sample.x, sample.y, k=3, confidence=0.95)),
        ("KSG-2, k=3", cchmi.ksg_mi(sample.x, sample.y, k=3, variant=2, confidence=0.95)),
        ("KSG-1, k=10", cchmi.ksg_mi(sample.x, sample.y, k=10, confidence=0.95)),
    ]
    print(f"{'estimator':<14}{'estimate':>10}{'95% CI':>22}{'error':>10}{'backend':>9}{'seconds':>10}")
    for name, r in rows:
        ci = f"[{r.ci_low:.3f}, {r.ci_high:.3f}]"
        print(f"{name:<14}{r.estimate:>10.4f}{ci:>22}{r.estimate - sample.mi:>+10.4f}{r.backend:>9}{r.seconds:>10.3f}")
    test = cchmi.permutation_test(sample.x, sample.y, n_permutations=99)
    print(f"\npermutation test of independence (99 shuffles): p = {test.p_value:.3g}")
    return 0


def _bundled_configs() -> dict:
    """The configs bundled in cchmi/distill/configs, by name (read without importing cchmi.distill,
    which needs torch)."""
    folder = resources.files("cchmi").joinpath("distill", "configs")
    return {f.name[:-5]: f for f in sorted(folder.iterdir(), key=lambda f: f.name) if f.name.endswith(".toml")}


def _bundled_config(name_or_path: str):
    """A config file, or the name of one bundled in cchmi/distill/configs (digits, synthetic, ...),
    checked and expanded into its jobs once (a :class:`~cchmi.distill.sweep.config.SweepConfig`)."""
    from cchmi.distill.sweep.config import check_config, load_config, parse_toml

    if Path(name_or_path).is_dir():
        raise ValueError(f"{name_or_path}: is a directory, not a config file")
    if Path(name_or_path).is_file():
        return load_config(name_or_path)
    bundled = _bundled_configs()
    if name_or_path not in bundled:
        raise ValueError(f"{name_or_path}: no such file, nor a bundled config ({', '.join(bundled)})")
    return check_config(parse_toml(bundled[name_or_path].read_text()))


REPORT_LEGEND = (
    "I(T;S), I(S;Y), gap: nats, on held-out rows (validation + test), with the gap's 95% interval from\n"
    "stratified half-samples; verdict: distil (interval above 0), do not distil (below 0) or undecided.\n"
    "KD gain: test accuracy of the KD student minus the baseline student's, in accuracy points, mean\n"
    "over seeds (s.d.); agree: the gap's sign equals the gain's, \"-\" where the gain's 95% t-interval\n"
    "over seeds contains 0 (no definite sign). Predictors below: sign agreement on the definite gains\n"
    "(Wilson 95% interval), AUROC for gain > 0 (DeLong) and Spearman with the gain (bootstrap).")


def _print_report(summaries, out, title, failures=(), regime=None) -> int:
    """Write and print the report; 0, or 1 (with a line on stderr) when jobs failed. `regime`: the
    config's [report] regime (a sweep axis reported on per value)."""
    from cchmi.distill import report

    stats = report.write_report(summaries, out, title, failures, regime=regime)
    configs = report.aggregate(summaries)
    print(report.format_table(configs))
    print(f"\n{REPORT_LEGEND}\n")
    print(report.format_agreement(stats))
    notes = report.format_run_notes(summaries)
    if notes:
        print(notes)
    print()
    print(report.format_predictors(report.predictor_report(configs, regime), regime))
    print(f"\nwritten to {out}/: runs.csv, configs.csv, report.json, report.md, gain_vs_gap.png")
    if not failures:
        return 0
    print(f"\n{report.format_failures(failures)}")
    print(f"cchmi: {len(failures)} of {len(failures) + len(summaries)} jobs failed (errors in runs/<key>/error.json; "
          "a rerun retries them)", file=sys.stderr)
    return 1


def _run_sweep(config, out, **options):
    """run_experiment's summaries and failures (jobs that did not finish)."""
    from cchmi.distill.sweep import SweepIncomplete, run_experiment

    try:
        return run_experiment(config, out, **options), []
    except SweepIncomplete as incomplete:
        return incomplete.summaries, incomplete.failures


def _require_sweep_extras() -> None:
    """The KD sweeps train with torch and plot with matplotlib: both checked before any work."""
    require("torch", "torch", "the KD trainer")
    require("matplotlib", "plot", "the report's plot (gain_vs_gap.png)")


DEMO_CONFIGS = ("demo_digits", "demo_synthetic")
DEMO_SECONDS = 120  # all of the demo's runs with --jobs 2 on 2 idle cores: 101 and 118 s measured (README)


def _demo_duration(todo: int, total: int, jobs: int) -> str:
    """What the demo will take: its runs to train and the time on 2 idle cores, scaled by the share
    of runs left, and by the machine's load where it is busy (load 4 on 2 cores took 449 s, not 118)."""
    import os

    cores = os.cpu_count() or 1
    seconds = DEMO_SECONDS * todo / total
    text = (f"{todo} of {total} runs to train" + (f" ({total - todo} done in an earlier run)" if todo < total else "")
            + f": about {max(1, round(seconds / 60))} minute(s) with --jobs 2 on 2 idle cores")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    factor = (load + min(jobs, cores)) / min(cores, 2)
    if todo and load >= 0.5 * cores and factor >= 1.5:
        text += (f"; this machine is busy (load {load:.1f} on {cores} cores): expect about {factor:.0f}x that, "
                 f"{max(1, round(factor * seconds / 60))} minutes")
    return text + ". The bars count runs done / total with the time left."


def _cmd_demo(args) -> int:
    _require_sweep_extras()
    from cchmi.distill.sweep.jobs import read_summary

    out = output_folder(Path(args.out))
    configs = {name: _bundled_config(name) for name in DEMO_CONFIGS}
    total = sum(len(config.jobs) for config in configs.values())
    todo = sum(read_summary(out / name, job)[0] is None for name, config in configs.items() for job in config.jobs)
    print("cchmi demo: does distilling a teacher modality help the student? The CCH says yes when\n"
          "I(T;S) > I(S;Y). On two bundled datasets (six-view UCI digits; the synthetic shared/specific-\n"
          "information task) a teacher trains on rows of its own; a student with few (5-10) or many\n"
          "(70-250) labels per class trains without and with KD through a paired unlabelled transfer\n"
          "set, 8 seeds each. KD helps in some of these configurations and hurts in others.\n"
          f"{_demo_duration(todo, total, args.jobs)}\n", flush=True)
    summaries, failures = [], []
    for name, config in configs.items():
        done, failed = _run_sweep(config, out / name, jobs=args.jobs, progress=not args.no_progress)
        summaries, failures = summaries + done, failures + failed
    return _print_report(summaries, out, "cchmi demo: KD gain against the CCH gap", failures,
                         regime="budget.student_labels_per_class")


def _cmd_cch(args) -> int:
    import cchmi

    teacher, student, labels = load_array(args.teacher), load_array(args.student), load_array(args.labels)
    if labels.ndim == 2 and labels.shape[1] == 1 and args.labels_kind == "discrete":
        labels = labels[:, 0]
    result = cchmi.cch(teacher, student, labels, estimator=args.estimator, k=args.k,
                       representation=args.representation, pca=args.pca, confidence=args.confidence,
                       random_state=args.seed, backend=args.backend, labels_kind=args.labels_kind,
                       device=args.device)
    if args.json:
        import json

        print(json.dumps(result.as_dict(), indent=1))
    else:
        print(result)
    return 0


def _cmd_experiment(args) -> int:
    _require_sweep_extras()
    from cchmi.distill.sweep.config import check_held_out
    from cchmi.distill.sweep.executors import check_options
    from cchmi.distill.sweep.runner import join_torchrun, leave_torchrun

    config = _bundled_config(args.config)  # every option checked before the output folder is made
    check_options(args.executor, dict(args.executor_options))
    check_held_out(config)
    out = output_folder(Path(args.out or f"cchmi-{config.name}"))
    rank = join_torchrun()
    try:
        summaries, failures = _run_sweep(config, out, jobs=args.jobs, devices=args.devices,
                                         progress=not args.no_progress, executor=args.executor,
                                         executor_options=dict(args.executor_options))
    finally:
        leave_torchrun()
    if rank == 0:
        return _print_report(summaries, out, f"{config.name}: KD gain against the CCH gap", failures,
                             regime=config.regime)
    return 0


def _bench_module(name: str):
    """The module cchmi.bench.<name> of the benchmark suite installed with cchmi (the wheel ships the
    repository's bench/ folder as the package cchmi.bench); in an editable install of a checkout, its
    bench/ folder, found beside the imported cchmi package (never in the working directory nor from
    an environment variable: a planted ./bench would run as the user)."""
    import importlib
    import importlib.util

    import cchmi

    if importlib.util.find_spec("cchmi.bench") is None:
        folder = Path(cchmi.__file__).resolve().parent.parent / "bench"
        if not ((folder / "__init__.py").is_file() and (folder.parent / "pyproject.toml").is_file()):
            raise FileNotFoundError(f"the benchmark suite (cchmi.bench) is not installed with the cchmi at "
                                    f"{Path(cchmi.__file__).parent}: reinstall cchmi, e.g. pip install 'cchmi[bench]'")
        spec = importlib.util.spec_from_file_location("cchmi.bench", folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])
        package = importlib.util.module_from_spec(spec)
        sys.modules["cchmi.bench"] = package
        spec.loader.exec_module(package)
    return importlib.import_module(f"cchmi.bench.{name}")


def _cmd_bench(args) -> int:
    try:
        return _run_bench(args)
    except ModuleNotFoundError as exc:  # a package of the bench extra (matplotlib, scipy, ...)
        if exc.name is None or exc.name.split(".")[0] == "cchmi":
            raise
        raise ImportError(f"cchmi bench needs {exc.name}: pip install 'cchmi[bench]'") from None


def _run_bench(args) -> int:
    out = Path(args.out)
    progress = not args.no_progress
    if args.kind == "accuracy":
        tasks = args.tasks.split(",") if args.tasks else None
        text = _bench_module("bench_accuracy").main_accuracy(
            out, quick=args.quick, seeds=args.seeds, tasks=tasks, neural=args.neural, device=args.device,
            timeout=args.timeout, progress=progress, sizes=args.n, seed_offset=args.seed_offset,
            methods=args.methods, report_only=args.report_only, suite=args.suite)
    elif args.kind == "cch":
        text = _bench_module("bench_cch").main_cch(
            out, quick=args.quick, sizes=args.n, seeds=args.seeds, estimators=args.estimators,
            tasks=args.tasks.split(",") if args.tasks else None, device=args.device, backend=args.backend,
            timeout=args.timeout, progress=progress, report_only=args.report_only, seed_offset=args.seed_offset)
    else:
        text = _bench_module("bench_ksg").main_speed(out, quick=args.quick, timeout=args.timeout, progress=progress)
    print(text)
    return 0


def _cmd_mi(args) -> int:
    import cchmi

    x, y = load_array(args.x), load_array(args.y)
    if args.estimator != "ksg":
        if args.variant != 1:
            raise ValueError(f"--variant {args.variant} applies to --estimator ksg only")
        result = cchmi.mi(x, y, labels=args.labels, estimator=args.estimator, k=args.k, base=args.base,
                          confidence=args.confidence, backend=args.backend, device=args.device)
    elif args.labels:
        result = cchmi.mixed_mi(x, y, k=args.k, base=args.base, confidence=args.confidence, backend=args.backend)
    else:
        result = cchmi.ksg_mi(x, y, k=args.k, variant=args.variant, base=args.base, confidence=args.confidence,
                              backend=args.backend)
    print(result)
    return 0


class _Parser(argparse.ArgumentParser):
    """One-line errors; `lazy_help` maps an argument to a function giving its help text, called only
    when the help is shown (for lists that take time to compute)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_help = {}

    def error(self, message):  # one line, status 2 (argparse prints the whole usage)
        self.exit(2, f"{self.prog}: error: {message}\n")

    def format_help(self) -> str:
        for action, make in self.lazy_help.items():
            action.help = make()
        return super().format_help()


def _listed(values) -> str:
    return ", ".join(map(str, values))


def _defaults(function) -> dict:
    """The keyword defaults of a Python function: the command line takes its defaults from the
    function it calls, so that one name has one default in Python and on the command line."""
    import inspect

    return {name: p.default for name, p in inspect.signature(function).parameters.items() if p.default is not p.empty}


def _accuracy_task_help() -> str:
    from cchmi.data.hd_tasks import HD_QUICK_TASKS, hd_suite
    from cchmi.data.tasks import QUICK_TASKS, catalogue

    return (f"comma-separated task names (default: all, or with --quick {_listed(QUICK_TASKS)}); tasks: "
            f"{_listed(catalogue())}. --suite hd (with --quick {_listed(HD_QUICK_TASKS)}): "
            f"{_listed(t.name for t in hd_suite())}")


def _cch_task_help() -> str:
    from cchmi.data.cch_tasks import cch_tasks

    return f"comma-separated task names (default: all, with --quick a subset): {_listed(t.name for t in cch_tasks())}"


def _add_demo(sub) -> None:
    """`cchmi demo`: the CCH end to end on the bundled demo configs."""
    demo = sub.add_parser("demo", help="the CCH end to end on bundled data (128 runs: about 2 minutes on 2 idle cores)",
                          description="Trains teachers and students with and without KD on the bundled configs "
                                      "demo_digits and demo_synthetic, and reports KD gain against the CCH gap. "
                                      "Needs cchmi[torch] and cchmi[plot].")
    demo.add_argument("--out", default="cchmi-demo", help="output folder (default ./cchmi-demo; reruns resume)")
    demo.add_argument("--jobs", type=positive_int, default=2, help="worker processes (default 2)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")
    demo.set_defaults(run=_cmd_demo)


def _add_cch(sub, backend_help: str) -> None:
    """`cchmi cch T S LABELS`: the CCH on a user's representations."""
    from cchmi.cch import ESTIMATORS, LABEL_KINDS, REPRESENTATIONS, cch
    from cchmi.ops import KNOWN_BACKENDS

    default = _defaults(cch)
    crit = sub.add_parser("cch", help="test the CCH on your own representations (.npy, .npz, .csv, .txt, .pt)",
                          description="Is I(T; S) > I(S; Y)? Prints the gap, its interval and the verdict.")
    crit.add_argument("teacher", help="teacher representation, n rows (.npy, .npz, .csv, .txt or .pt)")
    crit.add_argument("student", help="student representation, the same n rows")
    crit.add_argument("labels", help="the n labels (one column)")
    crit.add_argument("--estimator", default=default["estimator"], choices=ESTIMATORS,
                      help=f"{_listed(ESTIMATORS)} (default {default['estimator']}; latent and neural need "
                           "cchmi[torch]; auto chooses by n and the dimensions and prints why)")
    crit.add_argument("--labels-kind", default=default["labels_kind"], choices=LABEL_KINDS,
                      help=f"what the labels file holds: {_listed(LABEL_KINDS)} (default {default['labels_kind']})")
    crit.add_argument("--device", default=default["device"],
                      help="torch device of the neural and latent estimators, e.g. cpu, cuda")
    crit.add_argument("-k", type=positive_int, default=default["k"], help=f"neighbours (default {default['k']})")
    crit.add_argument("--representation", default=default["representation"], choices=REPRESENTATIONS,
                      help=f"what the arrays hold: {_listed(REPRESENTATIONS)} (default {default['representation']})")
    crit.add_argument("--pca", type=positive_int, default=default["pca"],
                      help="reduce each representation to this many components")
    crit.add_argument("--confidence", type=open_unit, default=default["confidence"],
                      help=f"interval level for the gap (default {default['confidence']})")
    crit.add_argument("--seed", type=non_negative_int, default=default["random_state"],
                      help=f"random seed (default {default['random_state']})")
    crit.add_argument("--backend", default=default["backend"], choices=KNOWN_BACKENDS, help=backend_help)
    crit.add_argument("--json", action="store_true", help="print the result as JSON")
    crit.set_defaults(run=_cmd_cch)


def _add_experiment(sub) -> None:
    """`cchmi experiment CONFIG`: a KD sweep from a TOML config or a bundled one."""
    configs = _listed(_bundled_configs())
    exp = sub.add_parser("experiment", help=f"run a KD sweep from a TOML config (or a bundled one: {configs})",
                         description="Runs a resumable KD sweep and reports KD gain against the CCH gap. "
                                     "Needs cchmi[torch] and cchmi[plot].")
    exp.add_argument("config", help=f"a TOML file, or the name of a bundled config: {configs}")
    exp.add_argument("--out", default=None, help="output folder (default ./cchmi-<name>; reruns resume)")
    exp.add_argument("--jobs", type=positive_int, default=1, help="worker processes (default 1)")
    exp.add_argument("--devices", type=devices, default=None,
                     help="comma-separated torch devices (cpu, cuda, cuda:N, mps, xpu, xpu:N), e.g. cuda:0,cuda:1: "
                          "jobs go to them round-robin")
    exp.add_argument("--executor", choices=("local", "dask", "submitit"), default="local",
                     help="where the jobs run: local (this machine's processes: --jobs, --devices), dask (a "
                          "scheduler or a local cluster; cchmi[dask]) or submitit (Slurm job arrays; cchmi[slurm]); "
                          "default local")
    exp.add_argument("--executor-option", dest="executor_options", action="append", type=executor_option,
                     default=[], metavar="KEY=VALUE",
                     help="an option of the executor, repeatable (VALUE read as JSON when it parses, else as text): "
                          "dask: address=tcp://HOST:8786 or workers=N; submitit: partition=NAME, timeout_min=N, "
                          "gpus_per_node=N, array_parallelism=N, folder=PATH, ...; both: shared_filesystem=false "
                          "(the driver writes the files the workers send back); see cchmi.distill.sweep.executors")
    exp.add_argument("--no-progress", action="store_true", help="no progress bar")
    exp.set_defaults(run=_cmd_experiment)


def _add_bench(sub) -> None:
    """`cchmi bench SUITE`: the benchmark suites installed with cchmi (cchmi.bench); `cchmi bench
    --help` lists the suites, `cchmi bench SUITE --help` their options."""
    bench = sub.add_parser(
        "bench", help="accuracy or speed of cchmi and the installed peers on tasks with known MI",
        description="The benchmark suites (cchmi.bench; the peers they compare against: pip install "
                    "'cchmi[bench]'). Options: cchmi bench SUITE --help.")
    suites = bench.add_subparsers(dest="kind", metavar="SUITE", required=True, parser_class=_Parser)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quick", action="store_true", help="a subset that runs in minutes on 2 CPU cores")
    common.add_argument("--timeout", type=positive_seconds, default=300.0,
                        help="seconds before a call is killed (default 300)")
    common.add_argument("--out", default="cchmi-bench", help="output folder (default ./cchmi-bench)")
    common.add_argument("--no-progress", action="store_true", help="no progress bar")
    runs = argparse.ArgumentParser(add_help=False)  # the options of the suites that run tasks x sizes x seeds
    runs.add_argument("--seeds", type=positive_int, default=None, help="seeds per task and n")
    runs.add_argument("--seed-offset", type=non_negative_int, default=0,
                      help="first seed (default 0: the held-out seeds; the auto rules were derived on seeds from 1000)")
    runs.add_argument("--report-only", action="store_true",
                      help="run nothing; rebuild the report and the plots in --out from every row of its CSV")
    runs.add_argument("--device", default=None, help="torch device of the neural estimators, e.g. cpu, cuda, cuda:1")
    accuracy = suites.add_parser("accuracy", parents=[common, runs], help="error against the known MI, every method",
                                 description="cchmi's estimators and the installed peers on tasks with known MI: "
                                             "errors, interval coverage, time.")
    accuracy.add_argument("--suite", choices=("catalogue", "hd"), default="catalogue",
                          help="the task list: catalogue (cchmi.data.tasks) or hd (64- to 1024-dim tasks of "
                               "cchmi.data.hd_tasks); default catalogue")
    tasks = accuracy.add_argument("--tasks", default=None)
    accuracy.lazy_help[tasks] = _accuracy_task_help
    accuracy.add_argument("--n", type=sizes, default=None,
                          help="comma-separated sample sizes (default 500,2000,8000, with --quick 1000,4000)")
    accuracy.add_argument("--methods", nargs="+", default=None, metavar="METHOD",
                          help="methods of cchmi.bench.peers, each quoted, e.g. \"cchmi KSG-1 / Ross\" \"cchmi.mi "
                               "auto\" (default: cchmi's kNN estimators and the installed peers)")
    accuracy.add_argument("--neural", action="store_true", help="also cchmi's neural estimators")
    crit = suites.add_parser("cch", parents=[common, runs], help="every cch estimator setting on the CCH tasks",
                             description="Every cch estimator setting on the CCH tasks of cchmi.data.cch_tasks: sign "
                                         "of the gap, errors, interval coverage.")
    tasks = crit.add_argument("--tasks", default=None)
    crit.lazy_help[tasks] = _cch_task_help
    crit.add_argument("--n", type=sizes, default=None,
                      help="comma-separated sample sizes (default 2000,10000,100000, with --quick 2000)")
    crit.add_argument("--estimators", nargs="+", default=None, metavar="SETTING",
                      help="an estimator of cchmi.cch.ESTIMATORS with optional cch() options, name[:key=value,...], "
                           "e.g. ksg ksg:pca=8 ksg:k=5 latent (default: every estimator, and ksg:pca=8)")
    crit.add_argument("--backend", default="auto", help="kNN backend of the cch estimates (default auto)")
    suites.add_parser("speed", parents=[common], help="seconds to a KSG-1 estimate against n, with the peers",
                      description="Seconds to a KSG-1 estimate against n for cchmi and the installed peers, "
                                  "log-log slopes.")
    bench.set_defaults(run=_cmd_bench)


def _add_mi(sub, backend_help: str) -> None:
    """`cchmi mi X Y`: I(X; Y) of two arrays stored in files."""
    from cchmi.estimators.select import MI_ESTIMATORS
    from cchmi.estimators.select import mi as mi_function
    from cchmi.ops import KNOWN_BACKENDS

    default = _defaults(mi_function)
    mi = sub.add_parser("mi", help="estimate I(X; Y) for two arrays stored in files (.npy, .npz, .csv, .txt, .pt)",
                        description="cchmi.mi: --estimator auto (the default) chooses by n and the dimensions and "
                                    "prints why; ksg is KSG (continuous y) or the Ross mixed estimator (--labels: "
                                    "discrete y).")
    mi.add_argument("x", help="n rows of X (.npy, .npz, .csv, .txt or .pt)")
    mi.add_argument("y", help="n rows of Y, or n labels with --labels")
    mi.add_argument("-k", type=positive_int, default=default["k"], help=f"neighbours (default {default['k']})")
    mi.add_argument("--variant", type=int, choices=(1, 2), default=1,
                    help="KSG variant of --estimator ksg: 1 or 2 (default 1)")
    mi.add_argument("--labels", action="store_true", help="y holds discrete labels")
    mi.add_argument("--estimator", default=default["estimator"], choices=MI_ESTIMATORS,
                    help=f"{_listed(MI_ESTIMATORS)} (default {default['estimator']}; neural needs cchmi[torch])")
    mi.add_argument("--device", default=default["device"], help="torch device of the neural estimators, e.g. cpu, cuda")
    mi.add_argument("--base", type=log_base, default=default["base"], help="logarithm base (default e: nats; 2: bits)")
    mi.add_argument("--confidence", type=open_unit, default=default["confidence"],
                    help="add a standard error and interval, e.g. 0.95")
    mi.add_argument("--backend", default=default["backend"], choices=KNOWN_BACKENDS, help=backend_help)
    mi.set_defaults(run=_cmd_mi)


def _parser() -> argparse.ArgumentParser:
    """The command line: one subparser per command, each built by its _add_<command>."""
    from cchmi import __version__
    from cchmi.ops import KNOWN_BACKENDS

    backend_help = f"kNN backend: {_listed(KNOWN_BACKENDS)} (default auto: the fastest available here)"
    parser = _Parser(prog="cchmi", description="Fast mutual-information estimators and the CCH.")
    parser.add_argument("--version", action="version", version=f"cchmi {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.add_parser("info", help="what was built and what is importable").set_defaults(run=_cmd_info)
    _add_demo(sub)
    _add_cch(sub, backend_help)
    _add_experiment(sub)
    _add_bench(sub)
    _add_mi(sub, backend_help)
    sub.add_parser("mi-demo", help="MI estimators on the bundled sample with known MI").set_defaults(run=_cmd_mi_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)  # argparse exits with status 2 on unknown options
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.run(args)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        message = " ".join(str(exc).split())  # one line, whatever the exception's text
        print(f"cchmi {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cchmi {args.command}: interrupted (finished runs are kept: a rerun resumes)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
