"""Sweeps of KD configurations: resumable, parallel over processes or GPUs.

A config (a TOML file for ``cchmi experiment``, or the same as a dict) looks like::

    name = "digits"
    seeds = 10                       # or a list of seeds
    pairs = "all"                    # every ordered pair of views, or [["pixel", "fourier"], ...]

    [data]                           # dataset and its options
    name = "mfeat"                   # "mfeat", "mfh" (synthetic) or "fashion_mnist"

    [train]                          # TrainConfig fields for every network
    epochs = 60
    [teacher]                        # TrainConfig fields for the teacher only (over [train])
    [student]                        # TrainConfig fields for the students only (over [train])

    [split]                          # SplitConfig fields
    [budget]                         # student_labels_per_class, teacher_labels_per_class, transfer_size
    [kd]                             # teacher_rows = "disjoint" | "crossfit" | "shared",
                                     # crossfit_folds, control (also allowed at the top level)
    [cch]                            # representation = "logits" | "features", k = 3, pca = 8, estimator = "auto"
    [report]                         # regime = "<sweep axis>": report per value of that axis too

    [sweep]                          # lists of values, crossed
    pairing = ["aligned", "label"]
    "student.kd_weight" = [0.5, 1.0]

Sweep axes: "pairing", "p", "teacher_rows", "crossfit_folds", "control" (or "kd.<key>"), and
"<section>.<field>" for the sections train, teacher, student, split, budget and data (any
option but data.name). ``control`` is one of the trainer's controls, or "none" (no control; TOML
has no null). The teacher trains without KD, so [teacher] refuses the KD loss fields
(kd_weight, temperature, ce_weight, feature_kd_weight).

Every (sweep point, view pair, seed) is a job. Its summary goes to
``<out>/runs/<job key>/summary.json`` (with run.jsonl beside it), written atomically; a job whose
summary is complete and valid is skipped, so an interrupted sweep resumes where it stopped (an
unreadable summary is named in a warning and the job runs again). A running job holds the lock of
its folder (``lock``, an flock that dies with its process), so sweeps sharing ``<out>`` share the
work. A failed job leaves ``error.json`` and the others still run. The config is checked whole
(keys and values at every level, the number of jobs: ``CCHMI_MAX_JOBS``, default 100 000) before
any job runs; ``name`` must be a plain name. Results are aggregated by :mod:`cchmi.distill.report`.

Jobs run in this machine's processes (``jobs=N``), or on a Dask cluster or Slurm through submitit
(``executor=``, :mod:`cchmi.distill.executors`), with the same keys, locks, resumption and failure
records; without a shared file system the driver writes the files the workers send back.
``[report] regime`` names the sweep axis whose values :func:`cchmi.distill.report.write_report`
reports on separately (``regime=``).

A job's key is the hash of its options; the teacher, student, budget and kd entries enter a job
only when the config gives them, so the jobs of older configs keep their keys (their folders). A
summary written before the trainer had budgets and teacher_rows (whose default changed the
teacher's rows) is named in a warning and its job runs again.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import itertools
import json
import math
import os
import re
import traceback
import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import fields
from multiprocessing import get_context
from pathlib import Path

from cchmi import _io
from cchmi._progress import Progress
from cchmi.cch import ESTIMATORS as CCH_ESTIMATORS
from cchmi.distill.pairing import PAIRINGS
from cchmi.distill.summary import CURRENT_SUMMARY_KEYS, check_summary

DATASETS = ("mfeat", "mfh", "fashion_mnist")
KD_KEYS = ("teacher_rows", "crossfit_folds", "control")
TOP_KEYS = {"name", "seeds", "pairs", "data", "train", "teacher", "student", "split", "budget", "kd", "cch", "report",
            "sweep", "pairing", "p", *KD_KEYS}
CCH_KEYS = {"representation", "k", "pca", "estimator"}
REPORT_KEYS = {"regime"}
BUDGET_KEYS = ("student_labels_per_class", "teacher_labels_per_class", "transfer_size")
# KD loss fields: meaningless for the teacher, which trains without KD.
KD_LOSS_FIELDS = ("ce_weight", "kd_weight", "temperature", "feature_kd_weight")
# Sweep axes: plain ones, and "<section>.<field>" for these sections.
PLAIN_AXES = ("pairing", "p", *KD_KEYS)
AXIS_SECTIONS = ("train", "teacher", "student", "split", "budget", "data")
MAX_JOBS_ENV = "CCHMI_MAX_JOBS"
DEFAULT_MAX_JOBS = 100_000
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class SweepIncomplete(RuntimeError):
    """Some jobs of a sweep failed; every other job finished. ``summaries``: those of the finished
    jobs; ``failures``: one dict per failed job (key, error; also in ``<out>/runs/<key>/error.json``)."""

    def __init__(self, summaries: list[dict], failures: list[dict]):
        self.summaries, self.failures = summaries, failures
        total = len(summaries) + len(failures)
        super().__init__(f"{len(failures)} of {total} jobs failed (a rerun retries them): "
                         + "; ".join(f"{f['key']}: {f['error']}" for f in failures[:3])
                         + ("; ..." if len(failures) > 3 else ""))


def max_jobs() -> int:
    """The most jobs a config may expand to: $CCHMI_MAX_JOBS, else 100 000."""
    text = os.environ.get(MAX_JOBS_ENV, str(DEFAULT_MAX_JOBS))
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{MAX_JOBS_ENV} must be a positive integer, got {text!r}")
    return int(text)


def check_name(name) -> str:
    """The config's name: a plain file name (letters, digits, '.', '_', '-'; no separator, not '..')."""
    if not (isinstance(name, str) and PLAIN_NAME.fullmatch(name) and ".." not in name):
        raise ValueError(f"name must be a plain name (letters, digits, '.', '_', '-', no path), got {name!r}")
    return name


def _table(config: dict, key: str) -> dict:
    value = config.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"[{key}] must be a table, got {value!r}")
    return value


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _data_options(name: str) -> dict:
    """The options a dataset takes in [data] (name -> default), from its loader's signature."""
    from cchmi.data.multiview import load_fashion_mnist
    from cchmi.data.synthetic import mfh_classification

    if name == "mfeat":
        return {"views": None}
    loader, fixed = (mfh_classification, {"random_state"}) if name == "mfh" else (load_fashion_mnist, set())
    return {k: p.default for k, p in inspect.signature(loader).parameters.items() if k not in fixed}


def _check_data(data: dict) -> None:
    """Every option of a (sweep point's) [data] table, without loading or drawing the dataset."""
    from cchmi import _validate as V
    from cchmi.data.multiview import MFEAT_VIEWS, fashion_options
    from cchmi.data.synthetic import mfh_classification

    name = data.get("name")
    if name not in DATASETS:
        raise ValueError(f"data.name must be one of {', '.join(DATASETS)}; got {name!r}")
    known = _data_options(name)
    unknown = sorted(set(data) - set(known) - {"name"})
    if unknown:
        raise ValueError(f"unknown data option(s) {', '.join(unknown)} for {name}; known: {', '.join(sorted(known))}")
    for key, default in known.items():
        if isinstance(default, bool) and key in data and not isinstance(data[key], bool):
            raise ValueError(f"data.{key} must be true or false, got {data[key]!r}")
    if name == "mfeat" and "views" in data:
        views = data["views"]
        if not (isinstance(views, list) and views and all(v in MFEAT_VIEWS for v in views)):
            raise ValueError(f"data.views must be a non-empty list of {', '.join(MFEAT_VIEWS)}; got {views!r}")
    elif name == "mfh":
        options = {k: v for k, v in data.items() if k not in ("name", "n")}
        V.as_int(data.get("n", 2000), "data.n", 2)
        try:  # the generator's own checks, on two rows
            mfh_classification(2, random_state=0, **options)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"data: {exc}") from None
    elif name == "fashion_mnist":
        if "split" in data:
            V.choice(data["split"], "data.split", ("train", "test", "all"))
        if "n" in data:
            V.as_int(data["n"], "data.n", 1)
        if "random_state" in data:
            V.as_int(data["random_state"], "data.random_state", 0)
        if not isinstance(data.get("root", ""), str):
            raise ValueError(f"data.root must be a folder name, got {data['root']!r}")
        options = {k: data[k] for k in ("views", "overlap", "student_blur", "student_noise") if k in data}
        try:  # the view options, checked by the loader's own function (no images needed)
            fashion_options(**options)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"data: {exc}") from None


def _check_pairing(point: dict) -> None:
    """The pairing and p of a config or a sweep point, where given."""
    if "pairing" in point and point["pairing"] not in PAIRINGS:
        raise ValueError(f"pairing must be one of {', '.join(map(repr, PAIRINGS))}; got {point['pairing']!r}")
    if "p" in point and not (_is_number(point["p"]) and 0 <= point["p"] <= 1):
        raise ValueError(f"p must be a probability in [0, 1], got {point['p']!r}")


def _check_budget(budget: dict) -> None:
    """[budget]: labels per class for the student and the teacher (>= 1), transfer set size (>= 0)."""
    from cchmi import _validate as V

    unknown = sorted(set(budget) - set(BUDGET_KEYS))
    if unknown:
        raise ValueError(f"unknown budget option(s) {', '.join(unknown)}; known: {', '.join(BUDGET_KEYS)}")
    for key in ("student_labels_per_class", "teacher_labels_per_class"):
        if key in budget:
            V.as_int(budget[key], f"budget.{key}", 1)
    if "transfer_size" in budget:
        V.as_int(budget["transfer_size"], "budget.transfer_size", 0)


def _check_kd(kd: dict, pairing: str, p, student) -> None:
    """teacher_rows, crossfit_folds and control (None: no control), where given, and the
    combinations run_kd refuses: a control with a pairing other than "aligned", p without the
    within-class shuffle, crossfit_folds without teacher_rows = "crossfit", feature KD with it."""
    from cchmi import _validate as V
    from cchmi.distill.trainer import CONTROLS, PAIRING_CONTROLS, TEACHER_ROWS

    teacher_rows, control = kd.get("teacher_rows"), kd.get("control")  # None: run_kd's default, not crossfit
    if teacher_rows is not None:
        V.choice(teacher_rows, "teacher_rows", TEACHER_ROWS)
    if "crossfit_folds" in kd:
        V.as_int(kd["crossfit_folds"], "crossfit_folds", 2)
        if teacher_rows != "crossfit":
            given = "not set" if teacher_rows is None else f"= {teacher_rows!r}"
            raise ValueError(f"crossfit_folds applies to teacher_rows = 'crossfit' only (teacher_rows {given})")
    if control is not None:
        if control not in CONTROLS:
            raise ValueError(f"control must be one of {', '.join(map(repr, CONTROLS))} or 'none'; got {control!r}")
        if pairing != "aligned":
            raise ValueError(f"give pairing = {pairing!r} or control = {control!r}, not both (pairing 'label' is "
                             "control 'label_pairing', 'shuffled' is 'within_class_shuffle')")
    if p != 0 and (control or PAIRING_CONTROLS.get(pairing)) != "within_class_shuffle":
        raise ValueError(f"p (here {p:g}) is the re-pairing probability of pairing = 'shuffled' / control = "
                         "'within_class_shuffle' only")
    if teacher_rows == "crossfit" and student.feature_kd_weight > 0:
        raise ValueError("feature KD needs one teacher feature space; teacher_rows = 'crossfit' scores rows with "
                         "several fold models: use teacher_rows = 'disjoint' or feature_kd_weight = 0")


def _control(value):
    """A control as given in a config ("none" or None: no control) -> the trainer's value."""
    return None if value == "none" else value


def _kd_options(config: dict) -> dict:
    """teacher_rows, crossfit_folds and control from the top level and [kd] (each given once)."""
    kd = dict(_table(config, "kd"))
    unknown = sorted(set(kd) - set(KD_KEYS))
    if unknown:
        raise ValueError(f"unknown kd option(s) {', '.join(unknown)}; known: {', '.join(KD_KEYS)}")
    for key in KD_KEYS:
        if key in config:
            if key in kd:
                raise ValueError(f"{key} is given twice, at the top level and in [kd]: keep one")
            kd[key] = config[key]
    if "control" in kd:
        kd["control"] = _control(kd["control"])
    return kd


def _axis(key: str) -> str:
    """A sweep key's canonical axis name ("kd.control" -> "control"), or a ValueError."""
    if key.startswith("kd.") and key[3:] in KD_KEYS:
        return key[3:]
    section, dot, field = key.partition(".")
    if key in PLAIN_AXES or (dot and field and section in AXIS_SECTIONS and key != "data.name"):
        return key
    raise ValueError(f"sweep key {key!r} must be one of {', '.join(PLAIN_AXES)} (or 'kd.<key>'), or "
                     f"'<section>.<field>' for a section among {', '.join(AXIS_SECTIONS)} (data.name excepted)")


def _check_train(sections: dict):
    """[train], [teacher] and [student]: each network's TrainConfig, the section named in errors;
    returns the students' TrainConfig."""
    from cchmi.distill.trainer import TrainConfig

    misplaced = sorted(set(sections["teacher"]) & set(KD_LOSS_FIELDS))
    if misplaced:
        raise ValueError(f"teacher.{misplaced[0]} has no effect (the teacher trains without KD): set it in "
                         "[student] or [train]")
    configs = {}
    for name in ("train", "teacher", "student"):
        values = sections["train"] if name == "train" else {**sections["train"], **sections[name]}
        try:
            configs[name] = TrainConfig.from_dict(values)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"[{name}] {exc}") from None
    return configs["student"]


def _check_point(pairing, p, sections: dict, kd: dict) -> None:
    """A sweep point's options (pairing, p, the sections, the kd options), before any job runs."""
    from cchmi.distill.trainer import SplitConfig

    _check_pairing({"pairing": pairing, "p": p})
    student = _check_train(sections)
    known = {f.name for f in fields(SplitConfig)}
    unknown = sorted(set(sections["split"]) - known)
    if unknown:
        raise ValueError(f"unknown split option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    SplitConfig(**sections["split"])
    _check_budget(sections["budget"])
    _check_kd(kd, pairing, p, student)
    _check_data(sections["data"])


def _check_config(config: dict) -> dict:
    """Check a config's keys and values (the per-point ones: :func:`expand_jobs`) and the number of
    jobs it makes; returns it with defaults filled in (seeds as a list)."""
    from cchmi import _validate as V

    if not isinstance(config, dict):
        raise ValueError("an experiment config must be a table (dict)")
    if not config:
        raise ValueError("the config is empty: it needs at least a [data] table with the dataset's name")
    unknown = sorted(set(config) - TOP_KEYS)
    if unknown:
        raise ValueError(f"unknown config key(s) {', '.join(unknown)}; known: {', '.join(sorted(TOP_KEYS))}")
    if "data" not in config:
        raise ValueError(f"the config needs a [data] table with the dataset's name ({', '.join(DATASETS)})")
    check_name(config.get("name", "experiment"))
    data = dict(_table(config, "data"))
    _check_data(data)
    for key in ("train", "teacher", "student", "split", "budget", "cch"):
        _table(config, key)
    kd = _kd_options(config)
    seeds = config.get("seeds", 3)
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1 or a list of seeds, got {seeds}")
    elif not (isinstance(seeds, list) and seeds and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                                       for s in seeds)):
        raise ValueError(f"seeds must be a count or a non-empty list of non-negative integers, got {seeds!r}")
    cch = config.get("cch", {})
    unknown = sorted(set(cch) - CCH_KEYS)
    if unknown:
        raise ValueError(f"unknown cch option(s) {', '.join(unknown)}; known: {', '.join(sorted(CCH_KEYS))}")
    V.choice(cch.get("representation", "logits"), "cch.representation", ("logits", "features"))
    V.as_int(cch.get("k", 3), "cch.k", 1)
    if "pca" in cch:
        V.as_int(cch["pca"], "cch.pca", 1)
    V.choice(cch.get("estimator", "auto"), "cch.estimator", CCH_ESTIMATORS)
    _check_pairing(config)
    sweep = {}
    for key, values in _table(config, "sweep").items():
        if not (isinstance(values, list) and values):
            raise ValueError(f"sweep.{key} must be a non-empty list of values")
        axis = _axis(key)
        if axis in sweep:
            raise ValueError(f"sweep axis {axis} is given twice (as {axis!r} and 'kd.{axis}'): keep one")
        sweep[axis] = [_control(v) for v in values] if axis == "control" else values
    report = _table(config, "report")
    unknown = sorted(set(report) - REPORT_KEYS)
    if unknown:
        raise ValueError(f"unknown report option(s) {', '.join(unknown)}; known: {', '.join(sorted(REPORT_KEYS))}")
    if "regime" in report and report["regime"] not in sweep:
        axes = ", ".join(sweep) or "none: the config has no [sweep]"
        raise ValueError(f"report.regime must be one of the sweep axes ({axes}); got {report['regime']!r}")
    pairs = _pairs(config.get("pairs", "all"), data)
    n_seeds = seeds if isinstance(seeds, int) else len(seeds)
    n_points = math.prod(len(values) for values in sweep.values())
    total, limit = n_points * len(pairs) * n_seeds, max_jobs()
    if total > limit:
        raise ValueError(f"the config would make {total} jobs ({n_points} sweep points x {len(pairs)} view pairs x "
                         f"{n_seeds} seeds), over the limit of {limit} (set {MAX_JOBS_ENV} to raise it)")
    if isinstance(seeds, int):
        seeds = list(range(seeds))
    rest = {key: value for key, value in config.items() if key not in KD_KEYS}  # moved into [kd]
    return {**rest, "data": data, "seeds": seeds, "sweep": sweep, "report": report, "kd": kd}


def _pairs(pairs, data: dict) -> list[list[str]]:
    """The [teacher, student] view pairs of a config ("all": every ordered pair of views)."""
    views = _view_names(data)
    if pairs == "all":
        return [[a, b] for a in views for b in views if a != b]
    if not (isinstance(pairs, list) and pairs and all(isinstance(q, list) and len(q) == 2 for q in pairs)):
        raise ValueError(f"pairs must be 'all' or a list of [teacher_view, student_view], got {pairs!r}")
    for teacher, student in pairs:
        for v in (teacher, student):
            if v not in views:
                raise ValueError(f"view {v!r} is not a view of {data.get('name', 'mfeat')}: {', '.join(views)}")
    return pairs


def parse_toml(text: str) -> dict:
    """TOML text -> dict (tomllib, or tomli before Python 3.11)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads(text)


def load_config(path) -> dict:
    """Read a TOML (or JSON) experiment config."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        config = json.loads(p.read_text()) if p.suffix.lower() == ".json" else parse_toml(p.read_text())
    except (ValueError, OSError) as exc:
        raise ValueError(f"{path}: could not read the config: {exc}") from None
    return _check_config(config)


def load_dataset(data: dict, seed: int):
    """The MultiView a job runs on; the synthetic one is drawn with the run's seed."""
    from cchmi.data.multiview import load_fashion_mnist, load_mfeat
    from cchmi.data.synthetic import mfh_classification

    options = {k: v for k, v in data.items() if k != "name"}
    name = data.get("name", "mfeat")
    if name == "mfeat":
        return load_mfeat(**options)
    if name == "mfh":
        n = options.pop("n", 2000)
        options.setdefault("task_seed", 0)
        return mfh_classification(n, random_state=seed, **options)
    return load_fashion_mnist(**options)


def _view_names(data: dict) -> list[str]:
    from cchmi.data.multiview import FASHION_VIEWS, MFEAT_VIEWS

    name = data.get("name", "mfeat")
    if name == "mfh":
        return ["teacher", "student"]
    if name == "mfeat":
        return list(data.get("views") or MFEAT_VIEWS)
    return list(data.get("views") or FASHION_VIEWS)


def expand_jobs(config: dict) -> list[dict]:
    """All jobs of a config, each a plain dict with a stable ``key``; every sweep point's options
    are checked here, before any job runs."""
    config = _check_config(config)
    data = config["data"]
    pairs = _pairs(config.get("pairs", "all"), data)
    keys = list(config["sweep"])
    jobs = []
    for values in itertools.product(*(config["sweep"][k] for k in keys)):
        point = dict(zip(keys, values))
        sections = {name: dict(config.get(name, {})) for name in AXIS_SECTIONS}
        kd = dict(config["kd"])
        for k, v in point.items():
            section, _, field = k.partition(".")
            if field:
                sections[section][field] = v
            elif k in KD_KEYS:
                kd[k] = v
        pairing, p = point.get("pairing", config.get("pairing", "aligned")), point.get("p", config.get("p", 0.0))
        try:
            _check_point(pairing, p, sections, kd)
        except (ValueError, TypeError) as exc:
            where = f" (sweep point {json.dumps(point, sort_keys=True)})" if point else ""
            raise type(exc)(f"{exc}{where}") from None
        # Entries the config leaves empty stay out of the job, so that older configs keep their keys.
        optional = {name: value for name, value in (("teacher", sections["teacher"]), ("student", sections["student"]),
                                                    ("budget", sections["budget"]), ("kd", kd)) if value}
        for teacher, student in pairs:
            for seed in config["seeds"]:
                job = {
                    "data": sections["data"],
                    "teacher_view": teacher,
                    "student_view": student,
                    "pairing": pairing,
                    "p": float(p),
                    "train": sections["train"],
                    "split": sections["split"],
                    "cch": dict(config.get("cch", {})),
                    "seed": seed,
                    "point": {k: v for k, v in point.items()},
                    **optional,
                }
                job["key"] = hashlib.sha256(json.dumps(job, sort_keys=True).encode()).hexdigest()[:16]
                jobs.append(job)
    return jobs


def run_job(job: dict, out: str, device=None, threads: int | None = None) -> dict:
    """Run one job (in this process) and write its summary; returns the summary."""
    import torch

    from cchmi.distill.trainer import SplitConfig, TrainConfig, distributed, run_kd

    if threads:
        import cchmi

        torch.set_num_threads(threads)
        cchmi.set_num_threads(threads)  # the kNN kernels of the held-out predictors: this worker's share too
    data = load_dataset(job["data"], job["seed"])
    cch = job["cch"]
    if "teacher" in job or "student" in job:  # a TrainConfig each, over the shared [train]
        networks = {f"{role}_train": TrainConfig.from_dict({**job["train"], **job.get(role, {})})
                    for role in ("teacher", "student")}
    else:
        networks = {"train": TrainConfig.from_dict(job["train"])}
    summary = run_kd(
        data, job["teacher_view"], job["student_view"], pairing=job["pairing"], p=job["p"],
        split=SplitConfig(**job["split"]), seed=job["seed"], device=device,
        cch_representation=cch.get("representation", "logits"), cch_k=cch.get("k", 3), cch_pca=cch.get("pca"),
        cch_estimator=cch.get("estimator", "auto"),
        out_dir=Path(out) / "runs" / job["key"], **networks, **job.get("budget", {}), **job.get("kd", {}),
    )
    summary["job"] = job
    if distributed()[0] == 0:
        _io.write_atomic(_summary_path(out, job), _io.dumps_json(summary))
    return summary


def _summary_path(out, job) -> Path:
    return Path(out) / "runs" / job["key"] / "summary.json"


def read_summary(out, job) -> tuple[dict | None, str]:
    """A job's summary if it is complete, valid and written by the current trainer (its entries
    :data:`CURRENT_SUMMARY_KEYS`), else (None, why not: "" when there is none)."""

    path = _summary_path(out, job)
    try:
        summary = json.loads(path.read_text())
        check_summary(summary)
        if not (isinstance(summary.get("job"), dict) and summary["job"].get("key") == job["key"]):
            raise ValueError(f"job.key is not {job['key']}")
        older = [key for key in CURRENT_SUMMARY_KEYS if key not in summary]
        if older:
            raise ValueError(f"written by an older trainer (no {', '.join(older)}), whose teacher trained on the "
                             "student's rows")
    except FileNotFoundError:
        return None, ""
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None, f"{path}: {exc}"
    return summary, ""


def run_locked(job: dict, out: str, device, threads: int | None, wait: bool) -> str:
    """Run a job under its lock (in this process; also what a worker of a remote executor runs when
    it shares the output folder): "ran"; "finished" when another process has finished it meanwhile;
    "busy" when another process holds the lock (and wait is False)."""
    folder = Path(out) / "runs" / job["key"]
    with _io.job_lock(folder, wait) as held:
        if not held:
            return "busy"
        if read_summary(out, job)[0] is not None:
            return "finished"
        _io.remove_dead_temps(folder)
        (folder / "error.json").unlink(missing_ok=True)
        run_job(job, out, device, threads)
    return "ran"


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, BrokenProcessPool):
        return "its worker process died (killed by a signal, e.g. out of memory)"
    return f"{type(exc).__name__}: {exc}"


def _run_isolated(job: dict, out: str, device, threads: int, wait: bool) -> str:
    """One job in a worker process of its own: its death is its own failure."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(run_locked, job, out, device, threads, wait).result()


BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")


@contextlib.contextmanager
def _worker_blas_threads(threads: int):
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
    with _worker_blas_threads(threads):
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(run_locked, job, str(out), device[job["key"]], threads, wait): job for job in todo}
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


def run_experiment(config: dict, out, *, jobs: int = 1, devices=None, progress: bool = True,
                   executor: str = "local", executor_options: dict | None = None) -> list[dict]:
    """Run every job of `config` not yet done in `out`, with `jobs` worker processes; devices (e.g.
    ["cuda:0", "cuda:1"]) are handed to jobs round-robin. Under torchrun (an initialised process
    group), the processes instead train each job together with DDP (jobs must be 1).

    `executor`: "local" (this machine's processes), "dask" or "submitit" (Slurm), with its
    `executor_options` (:mod:`cchmi.distill.executors`; `jobs` is then the default number of dask
    workers or of array tasks at a time, and devices are the workers' own).

    The whole config is checked before any job runs. A job holds a lock (``runs/<key>/lock``)
    while it runs, so two sweeps on one folder share the work; its summary is written atomically;
    a summary that is unreadable or incomplete (warning naming the file) counts as not done.
    Returns all summaries (old and new); when jobs failed, raises :class:`SweepIncomplete` (with
    the finished summaries) after every other job has run, each error in ``runs/<key>/error.json``."""
    from cchmi.distill.executors import check_options, run_remote
    from cchmi.distill.trainer import distributed

    config = _check_config(config)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
    check_options(executor, executor_options)
    rank, world = distributed()
    if world > 1 and (jobs != 1 or devices or executor != "local"):
        raise ValueError("under torchrun the processes share each job: use jobs=1, no devices list and the local "
                         "executor")
    if executor != "local" and devices:
        raise ValueError(f"devices is for the local executor; {executor} workers use their own devices")
    out = Path(out)
    all_jobs = expand_jobs(config)
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
        _io.write_atomic(out / "config.json", _io.dumps_json(config))
    devices = list(devices) if devices else [None]
    bar = Progress(len(todo), config.get("name", "experiment"), progress and rank == 0)
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
        _io.write_atomic(out / "runs" / job["key"] / "error.json", _io.dumps_json(failure))
        failures.append(failure)
    if failures:
        raise SweepIncomplete(summaries, failures)
    return summaries
