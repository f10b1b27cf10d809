"""The parser of the ``cchmi`` command line (:mod:`cchmi.cli` runs the commands): one subparser per
command, its options with the Python defaults of the functions they call, one-line errors."""

from __future__ import annotations

import argparse

from cchmi._cli_input import (
    bundled_configs,
    devices,
    dims,
    executor_option,
    log_base,
    non_negative_int,
    open_unit,
    positive_int,
    positive_seconds,
    sizes,
)


class Parser(argparse.ArgumentParser):
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
    from cchmi.data.cch_tasks import HD_CCH_QUICK_TASKS, cch_tasks

    return (f"comma-separated task names (default: all, with --quick a subset): "
            f"{_listed(t.name for t in cch_tasks())}. --suite hd (with --quick {_listed(HD_CCH_QUICK_TASKS)}): "
            f"{_listed(t.name for t in cch_tasks('hd'))}")


def _add_demo(commands, sub) -> None:
    """`cchmi demo`: the CCH in the paper's regime on the bundled demo configs."""
    demo = sub.add_parser("demo", help="the CCH in the paper's regime on two real pairs (50 runs: a few minutes on "
                                       "2 idle cores)",
                          description="Trains teachers and students with and without KD, teacher and student on the "
                                      "same labelled pairs, on the bundled configs demo_primary_digits and "
                                      "demo_primary_emoji (the latter when its Debian packages are installed), and "
                                      "reports KD gain against the CCH gap, the pre-registered endpoints and the "
                                      "teacher-selection table. Needs cchmi[torch] and cchmi[plot].")
    demo.add_argument("--out", default="cchmi-demo", help="output folder (default ./cchmi-demo; reruns resume)")
    demo.add_argument("--jobs", type=positive_int, default=2, help="worker processes (default 2)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")
    demo.set_defaults(run=commands["demo"])


def _add_cch(commands, sub, backend_help: str) -> None:
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
    crit.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    crit.set_defaults(run=commands["cch"])


def _add_experiment(commands, sub) -> None:
    """`cchmi experiment CONFIG`: a KD sweep from a TOML config or a bundled one."""
    configs = _listed(bundled_configs())
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
    exp.set_defaults(run=commands["experiment"])


def _add_bench(commands, sub) -> None:
    """`cchmi bench SUITE`: the benchmark suites installed with cchmi (cchmi.bench); `cchmi bench
    --help` lists the suites, `cchmi bench SUITE --help` their options."""
    bench = sub.add_parser(
        "bench", help="accuracy or speed of cchmi and the installed peers on tasks with known MI",
        description="The benchmark suites (cchmi.bench; the peers they compare against: pip install "
                    "'cchmi[bench]'). Options: cchmi bench SUITE --help.")
    suites = bench.add_subparsers(dest="kind", metavar="SUITE", required=True, parser_class=Parser)
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
    crit.add_argument("--suite", choices=("catalogue", "hd"), default="catalogue",
                      help="the task list: catalogue (cchmi.data.cch_tasks) or hd (its tasks lifted or padded to "
                           "64-512 columns per side, and Gaussians there: cchmi.data.hd_cch_tasks); default catalogue")
    tasks = crit.add_argument("--tasks", default=None)
    crit.lazy_help[tasks] = _cch_task_help
    crit.add_argument("--dims", type=dims, default=None,
                      help="comma-separated columns per side, e.g. 64,128: only the tasks whose larger side has one "
                           "of them (default: every task)")
    crit.add_argument("--n", type=sizes, default=None,
                      help="comma-separated sample sizes (default 2000,10000,100000, with --quick 2000)")
    crit.add_argument("--estimators", nargs="+", default=None, metavar="SETTING",
                      help="an estimator of cchmi.cch.ESTIMATORS with optional cch() options, name[:key=value,...], "
                           "e.g. ksg ksg:pca=8 ksg:k=5 latent (default: every estimator, and ksg:pca=8)")
    crit.add_argument("--backend", default="auto", help="kNN backend of the cch estimates (default auto)")
    suites.add_parser("speed", parents=[common], help="seconds to a KSG-1 estimate against n, with the peers",
                      description="Seconds to a KSG-1 estimate against n for cchmi and the installed peers, "
                                  "log-log slopes.")
    bench.set_defaults(run=commands["bench"])


def _add_mi(commands, sub, backend_help: str) -> None:
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
                    help=f"{_listed(MI_ESTIMATORS)} (default {default['estimator']}; neural and diffusion need "
                         "cchmi[torch])")
    mi.add_argument("--device", default=default["device"], help="torch device of the neural estimators, e.g. cpu, cuda")
    mi.add_argument("--base", type=log_base, default=default["base"], help="logarithm base (default e: nats; 2: bits)")
    mi.add_argument("--confidence", type=open_unit, default=default["confidence"],
                    help="add a standard error and interval, e.g. 0.95")
    mi.add_argument("--backend", default=default["backend"], choices=KNOWN_BACKENDS, help=backend_help)
    mi.add_argument("--no-progress", action="store_true", help="no progress bar on stderr (estimator auto or neural)")
    mi.set_defaults(run=commands["mi"])


def build_parser(commands: dict) -> argparse.ArgumentParser:
    """The command line: one subparser per command, each built by its _add_<command>; `commands`
    maps each command's name (mi_demo for mi-demo) to the function that runs it."""
    from cchmi import __version__
    from cchmi.ops import KNOWN_BACKENDS

    backend_help = f"kNN backend: {_listed(KNOWN_BACKENDS)} (default auto: the fastest available here)"
    parser = Parser(prog="cchmi", description="Fast mutual-information estimators and the CCH.")
    parser.add_argument("--version", action="version", version=f"cchmi {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.add_parser("info", help="what was built and what is importable").set_defaults(run=commands["info"])
    _add_demo(commands, sub)
    _add_cch(commands, sub, backend_help)
    _add_experiment(commands, sub)
    _add_bench(commands, sub)
    _add_mi(commands, sub, backend_help)
    mi_demo = sub.add_parser("mi-demo", help="MI estimators on the bundled sample with known MI")
    mi_demo.set_defaults(run=commands["mi_demo"])
    return parser
