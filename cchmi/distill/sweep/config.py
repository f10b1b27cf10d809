"""The TOML schema of a KD sweep: a config -> its jobs, each a plain dict with a stable key, each
sweep point checked as a :class:`~cchmi.distill.config.KDConfig` before any job runs.

A config (a TOML file for ``cchmi experiment``, or the same as a dict) looks like::

    name = "digits"
    seeds = 10                       # or a list of seeds
    pairs = "all"                    # every ordered pair of views, or [["pixel", "fourier"], ...]

    [data]                           # dataset and its options
    name = "mfeat"                   # "mfeat", "mfh" (synthetic), "fashion_mnist", "emoji" or "miniacc"
    nuisance = 0.0                   # shared label-irrelevant nuisance (every dataset; > 0: not with image views)

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
    [endpoints]                      # primary, predictors, comparator, selection, dose, auroc, bootstrap,
                                     # seed, alpha: fixed before the runs (cchmi.distill.report.endpoints)

    [sweep]                          # lists of values, crossed
    pairing = ["aligned", "label"]
    "student.kd_weight" = [0.5, 1.0]

Sweep axes: "pairing", "p", "teacher_rows", "crossfit_folds", "control" (or "kd.<key>"), and
"<section>.<field>" for the sections train, teacher, student, split, budget and data (any
option but data.name). The datasets and their [data] options are :mod:`cchmi.data.registry`'s
(every one takes ``nuisance`` and ``nuisance_dims``: :func:`cchmi.data.views.add_nuisance`).
``control`` is one of the trainer's controls, or "none" (no control; TOML has no null). The
teacher trains without KD, so [teacher] refuses the KD loss fields (kd_weight, temperature,
ce_weight, feature_kd_weight).

Every (sweep point, view pair, seed) is a job. Its summary goes to
``<out>/runs/<job key>/summary.json`` (with run.jsonl beside it), written atomically; a job whose
summary is complete and valid is skipped, so an interrupted sweep resumes where it stopped (an
unreadable summary is named in a warning and the job runs again). A running job holds the lock of
its folder (``lock``, an flock that dies with its process), so sweeps sharing ``<out>`` share the
work. A failed job leaves ``error.json`` and the others still run. The config is checked whole
(keys and values at every level, the number of jobs: ``CCHMI_MAX_JOBS``, default 100 000) before
any job runs (:func:`check_config`, once: it returns a :class:`SweepConfig` that is not checked
again); ``name`` must be a plain name. Results are aggregated by :mod:`cchmi.distill.report`.

Jobs run in this machine's processes (``jobs=N``), or on a Dask cluster or Slurm through submitit
(``executor=``, :mod:`cchmi.distill.sweep.executors`), with the same keys, locks, resumption and
failure records (:mod:`cchmi.distill.sweep.jobs`, :mod:`cchmi.distill.sweep.runner`); without a
shared file system the driver writes the files the workers send back. ``[report] regime`` names
the sweep axis whose values :func:`cchmi.distill.report.write_report` reports on separately
(``regime=``).

A job's key is the hash of its options; the teacher, student, budget and kd entries enter a job
only when the config gives them, so the jobs of older configs keep their keys (their folders). A
summary written before the trainer had budgets and teacher_rows (whose default changed the
teacher's rows) is named in a warning and its job runs again.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cchmi import _validate as V
from cchmi.data.registry import DATASETS, check_data, check_nuisance_views, load_data, view_names
from cchmi.distill.config import KD_KEYS, PAIRINGS, KDConfig

TOP_KEYS = {"name", "seeds", "pairs", "data", "train", "teacher", "student", "split", "budget", "kd", "cch", "report",
            "endpoints", "sweep", "pairing", "p", *KD_KEYS}
REPORT_KEYS = {"regime"}
# Sweep axes: plain ones, and "<section>.<field>" for these sections.
PLAIN_AXES = ("pairing", "p", *KD_KEYS)
AXIS_SECTIONS = ("train", "teacher", "student", "split", "budget", "data")
MAX_JOBS_ENV = "CCHMI_MAX_JOBS"
DEFAULT_MAX_JOBS = 100_000
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


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


@dataclass(frozen=True)
class SweepConfig:
    """A checked sweep config: `values`, the config with its defaults filled in (seeds as a list,
    sweep axes by their canonical names, the kd options in [kd]; what ``<out>/config.json``
    holds), and `jobs`, every job (a plain dict with its ``key``). Made by :func:`check_config`
    only; the functions that take a config take one of these as it is, without checking it again."""

    values: dict
    jobs: tuple

    @property
    def name(self) -> str:
        """The config's name (default "experiment")."""
        return self.values.get("name", "experiment")

    @property
    def regime(self) -> str | None:
        """The [report] regime: the sweep axis reported on per value, or None."""
        return self.values["report"].get("regime")

    @property
    def endpoints(self) -> dict:
        """The [endpoints] table as :func:`cchmi.distill.report.endpoints.check_endpoints` checked it
        (its defaults filled in)."""
        return self.values["endpoints"]


def check_config(config) -> SweepConfig:
    """Check a config's keys and values, every sweep point's options (as a KDConfig) and the number
    of jobs it makes; returns the :class:`SweepConfig` (a SweepConfig is returned as it is)."""
    if isinstance(config, SweepConfig):
        return config
    values = _checked_values(config)
    return SweepConfig(values, tuple(_jobs(values)))


def _seed_count(seeds) -> int:
    """How many seeds a config's seeds give: a count (>= 1) or a non-empty list of non-negative integers."""
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1 or a list of seeds, got {seeds}")
        return seeds
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                                      for s in seeds)):
        raise ValueError(f"seeds must be a count or a non-empty list of non-negative integers, got {seeds!r}")
    return len(seeds)


def _sweep_axes(config: dict) -> dict:
    """The [sweep] table by canonical axis name ("kd.control" -> "control"; "none" -> None)."""
    sweep = {}
    for key, values in _table(config, "sweep").items():
        if not (isinstance(values, list) and values):
            raise ValueError(f"sweep.{key} must be a non-empty list of values")
        axis = _axis(key)
        if axis in sweep:
            raise ValueError(f"sweep axis {axis} is given twice (as {axis!r} and 'kd.{axis}'): keep one")
        sweep[axis] = [_control(v) for v in values] if axis == "control" else values
    return sweep


def _checked_values(config) -> dict:
    """The config-level checks (the per-point ones: :func:`_jobs`); the config with defaults filled in."""
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
    check_data(data)
    for key in ("train", "teacher", "student", "split", "budget", "cch"):
        _table(config, key)
    kd = _kd_options(config)
    seeds = config.get("seeds", 3)
    n_seeds = _seed_count(seeds)
    # The top-level pairing and p (a sweep axis may override them: checked here as well as per point).
    V.choice(config.get("pairing", "aligned"), "pairing", PAIRINGS)
    V.as_real(config.get("p", 0.0), "pairing probability p", 0, 1)
    sweep = _sweep_axes(config)
    report = _table(config, "report")
    unknown = sorted(set(report) - REPORT_KEYS)
    if unknown:
        raise ValueError(f"unknown report option(s) {', '.join(unknown)}; known: {', '.join(sorted(REPORT_KEYS))}")
    if "regime" in report and report["regime"] not in sweep:
        axes = ", ".join(sweep) or "none: the config has no [sweep]"
        raise ValueError(f"report.regime must be one of the sweep axes ({axes}); got {report['regime']!r}")
    from cchmi.distill.report.endpoints import check_endpoints  # the report's module, only where it is checked

    endpoints = check_endpoints(config.get("endpoints"), list(sweep))
    pairs = _pairs(config.get("pairs", "all"), data)
    n_points = math.prod(len(values) for values in sweep.values())
    total, limit = n_points * len(pairs) * n_seeds, max_jobs()
    if total > limit:
        raise ValueError(f"the config would make {total} jobs ({n_points} sweep points x {len(pairs)} view pairs x "
                         f"{n_seeds} seeds), over the limit of {limit} (set {MAX_JOBS_ENV} to raise it)")
    rest = {key: value for key, value in config.items() if key not in KD_KEYS}  # moved into [kd]
    seeds = list(range(seeds)) if isinstance(seeds, int) else seeds
    return {**rest, "data": data, "seeds": seeds, "sweep": sweep, "report": report, "kd": kd, "endpoints": endpoints}


def _pairs(pairs, data: dict) -> list[list[str]]:
    """The [teacher, student] view pairs of a config ("all": every ordered pair of views)."""
    views = view_names(data)
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
    """Read a TOML (or JSON) experiment config and check it (:func:`check_config`)."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        config = json.loads(p.read_text()) if p.suffix.lower() == ".json" else parse_toml(p.read_text())
    except (ValueError, OSError) as exc:
        raise ValueError(f"{path}: could not read the config: {exc}") from None
    return check_config(config)


def load_dataset(data: dict, seed: int):
    """The MultiView a job runs on (:func:`cchmi.data.registry.load_data`): the synthetic one is drawn
    with the run's seed; data.nuisance, when > 0, appends the shared nuisance (a fixed data seed)."""
    return load_data(data, seed)


def expand_jobs(config) -> list[dict]:
    """All jobs of a config (a dict, checked here, or a :class:`SweepConfig`), each a plain dict
    with a stable ``key``."""
    return list(check_config(config).jobs)


def job_config(job: dict) -> KDConfig:
    """The KDConfig a job runs (:meth:`KDConfig.from_sections` of its tables)."""
    return KDConfig.from_sections(
        job["teacher_view"], job["student_view"], job["seed"], pairing=job["pairing"], p=job["p"], train=job["train"],
        teacher=job.get("teacher"), student=job.get("student"), split=job["split"], budget=job.get("budget"),
        kd=job.get("kd"), cch=job["cch"])


def _jobs(config: dict) -> list[dict]:
    """The jobs of checked config values; every sweep point's options are checked here (as the
    KDConfig of its first view pair and seed, and its [data] table), before any job runs.

    A job's key is the hash of its entries; the teacher, student, budget and kd entries enter a job
    only when the config gives them, so that older configs keep their keys."""
    pairs = _pairs(config.get("pairs", "all"), config["data"])
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
            KDConfig.from_sections(*pairs[0], config["seeds"][0], pairing=pairing, p=p, train=sections["train"],
                                   teacher=sections["teacher"], student=sections["student"], split=sections["split"],
                                   budget=sections["budget"], kd=kd, cch=config.get("cch", {}))
            check_data(sections["data"])
            check_nuisance_views(sections["data"], {view for pair in pairs for view in pair})
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
