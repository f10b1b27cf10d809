"""The ``cchmi`` command line.

``cchmi demo`` (the CCH end to end on bundled data), ``cchmi cch T S LABELS``, ``cchmi experiment
CONFIG``, ``cchmi mi X Y``, ``cchmi mi-demo``, ``cchmi info``, ``cchmi bench``, ``cchmi --version``.
Bad input: one line on stderr, status 2; ``cchmi`` alone prints the help on stderr, status 2 (a
missing command is a usage error, as argparse treats a missing required argument). The accepted
values listed in the help come from the code (backends, bundled configs, estimators, tasks).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cchmi._cli_input import bundled_configs, load_array, output_folder
from cchmi._cli_parser import build_parser
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


def _bundled_config(name_or_path: str):
    """A config file, or the name of one bundled in cchmi/distill/configs (digits, synthetic, ...),
    checked and expanded into its jobs once (a :class:`~cchmi.distill.sweep.config.SweepConfig`)."""
    from cchmi.distill.sweep.config import check_config, load_config, parse_toml

    if Path(name_or_path).is_dir():
        raise ValueError(f"{name_or_path}: is a directory, not a config file")
    if Path(name_or_path).is_file():
        return load_config(name_or_path)
    bundled = bundled_configs()
    if name_or_path not in bundled:
        raise ValueError(f"{name_or_path}: no such file, nor a bundled config ({', '.join(bundled)})")
    return check_config(parse_toml(bundled[name_or_path].read_text()))


REPORT_LEGEND = (
    "I(T;S), I(S;Y), gap: nats, on the validation rows (never the test rows that score the gain), with\n"
    "the gap's 95% interval from stratified half-samples; verdict: distil (interval above 0), do not\n"
    "distil (below 0) or undecided. KD gain: test accuracy of the KD student minus the baseline\n"
    "student's, in accuracy points, mean over seeds (s.d.); agree: the gap's sign equals the gain's,\n"
    "\"-\" where the gain's 95% t-interval over seeds contains 0 (no definite sign). Predictors below:\n"
    "sign agreement on the definite gains (Wilson 95% interval), AUROC for gain > 0 (DeLong) and\n"
    "Spearman with the gain (bootstrap); these pooled intervals treat configurations as independent,\n"
    "the pre-registered endpoints' (last) resample teacher-student pairs, then seeds.")


def _print_report(summaries, out, title, failures=(), regime=None, endpoints=None) -> int:
    """Write and print the report; 0, or 1 (with a line on stderr) when jobs failed. `regime`: the
    config's [report] regime (a sweep axis reported on per value); `endpoints`: its checked
    [endpoints] table (the pre-registered endpoints, printed last)."""
    from cchmi.distill import report

    stats = report.write_report(summaries, out, title, failures, regime=regime, endpoints=endpoints)
    configs = report.aggregate(summaries)
    print(report.format_table(configs))
    print(f"\n{REPORT_LEGEND}\n")
    print(report.format_agreement(stats))
    notes = report.format_run_notes(summaries)
    if notes:
        print(notes)
    print()
    print(report.format_predictors(report.predictor_report(configs, regime), regime))
    if endpoints is not None:  # computed once, by write_report: read back from report.json
        computed = json.loads((Path(out) / "report.json").read_text())["endpoints"]
        print(f"\n{report.format_endpoints(computed, markdown=False)}")
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


DEMO_CONFIGS = ("demo_primary_digits", "demo_primary_emoji")
DEMO_SECONDS = 85  # all of the demo's 50 runs with --jobs 2 on 2 idle cores: 84 s measured (README)


def _demo_duration(todo: int, total: int, jobs: int) -> str:
    """What the demo will take: its runs to train and the time on 2 idle cores, scaled by the share
    of runs left, and by the machine's load where it is busy."""
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


def _demo_configs() -> tuple[dict, str | None]:
    """The demo's configs by name, and why the emoji part is left out (None when it runs): its Debian
    packages are not installed (the loader's own message names them)."""
    from cchmi.data.emoji import emoji_files

    configs = {name: _bundled_config(name) for name in DEMO_CONFIGS}
    try:
        emoji_files()
    except FileNotFoundError as exc:
        del configs["demo_primary_emoji"]
        return configs, str(exc)
    return configs, None


def _cmd_demo(args) -> int:
    _require_sweep_extras()
    from cchmi.distill.report.selection import format_teacher_selection, teacher_selection
    from cchmi.distill.sweep.jobs import read_summary

    out = output_folder(Path(args.out))
    configs, missing = _demo_configs()
    total = sum(len(config.jobs) for config in configs.values())
    todo = sum(read_summary(out / name, job)[0] is None for name, config in configs.items() for job in config.jobs)
    print("cchmi demo: does distilling a teacher modality help the student? The CCH says yes when\n"
          "I(T;S) > I(S;Y), and that the teacher with the largest gap is the one to pick. The paper's regime:\n"
          "teacher and student train on the same 20 labelled pairs per class (KD targets cross-fitted: none\n"
          "from a model that saw the row), a baseline and a KD student from the same initial weights, 10\n"
          "seeds. Two real pairs: UCI digits (a Fourier-feature student, three feature teachers) and emoji\n"
          "(an English-name student; a glyph-image teacher and a German-name teacher). Predictors on the\n"
          "validation rows, gains on the test rows.\n"
          f"{_demo_duration(todo, total, args.jobs)}\n", flush=True)
    if missing:
        print(f"The emoji part is left out: {missing}\n", flush=True)
    summaries, failures = [], []
    for name, config in configs.items():
        done, failed = _run_sweep(config, out / name, jobs=args.jobs, progress=not args.no_progress)
        summaries, failures = summaries + done, failures + failed
    code = _print_report(summaries, out, "cchmi demo: the primary regime, KD gain against the CCH gap", failures,
                         endpoints=next(iter(configs.values())).endpoints)
    print(f"\n{format_teacher_selection(teacher_selection(summaries))}")
    return code


def _cmd_cch(args) -> int:
    import cchmi

    teacher, student, labels = load_array(args.teacher), load_array(args.student), load_array(args.labels)
    if labels.ndim == 2 and labels.shape[1] == 1 and args.labels_kind == "discrete":
        labels = labels[:, 0]
    result = cchmi.cch(teacher, student, labels, estimator=args.estimator, k=args.k,
                       representation=args.representation, pca=args.pca, confidence=args.confidence,
                       random_state=args.seed, backend=args.backend, labels_kind=args.labels_kind,
                       device=args.device, progress=not args.no_progress)
    if args.json:
        print(json.dumps(result.as_dict(), indent=1))
    else:
        print(result)
    return 0


def _cmd_experiment(args) -> int:
    _require_sweep_extras()
    from cchmi.distill.sweep.executors import check_options
    from cchmi.distill.sweep.held_out import check_held_out
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
                             regime=config.regime, endpoints=config.endpoints)
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
            timeout=args.timeout, progress=progress, report_only=args.report_only, seed_offset=args.seed_offset,
            suite=args.suite, dims=args.dims)
    else:
        text = _bench_module("bench_ksg").main_speed(out, quick=args.quick, timeout=args.timeout, progress=progress)
    print(text)
    return 0


def _cmd_mi(args) -> int:
    import cchmi

    x, y = load_array(args.x), load_array(args.y)
    if args.variant != 1:  # KSG-2: ksg_mi itself (cchmi.mi runs KSG-1)
        if args.estimator != "ksg" or args.labels:
            raise ValueError(f"--variant {args.variant} applies to --estimator ksg without --labels only")
        result = cchmi.ksg_mi(x, y, k=args.k, variant=args.variant, base=args.base, confidence=args.confidence,
                              backend=args.backend)
    else:  # through cchmi.mi, whatever the estimator: its checks and reliability come with the result
        result = cchmi.mi(x, y, labels=args.labels, estimator=args.estimator, k=args.k, base=args.base,
                          confidence=args.confidence, backend=args.backend, device=args.device,
                          progress=not args.no_progress)
    print(result)
    return 0


def _parser():
    """The parser of :func:`main`, its commands bound to the functions above."""
    return build_parser({"info": _cmd_info, "demo": _cmd_demo, "cch": _cmd_cch, "experiment": _cmd_experiment,
                         "bench": _cmd_bench, "mi": _cmd_mi, "mi_demo": _cmd_mi_demo})


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
