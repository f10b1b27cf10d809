"""Sweeps of KD configurations: resumable, parallel over processes or GPUs.

A config (a TOML file for ``cchmi experiment``, or the same as a dict) looks like::

    name = "digits"
    seeds = 10                       # or a list of seeds
    pairs = "all"                    # every ordered pair of views, or [["pixel", "fourier"], ...]

    [data]                           # dataset and its options
    name = "mfeat"                   # "mfeat", "mfh" (synthetic) or "fashion_mnist"

    [train]                          # TrainConfig fields (fixed values)
    epochs = 60

    [split]                          # SplitConfig fields
    [cch]                            # representation = "logits" | "features", k = 3, pca = 8

    [sweep]                          # lists of values, crossed: "pairing", "p", "train.<field>",
    pairing = ["aligned", "label"]   # "data.<option>" (synthetic data options)
    "train.kd_weight" = [0.5, 1.0]

Every (sweep point, view pair, seed) is a job. Its summary goes to
``<out>/runs/<job key>/summary.json`` (with run.jsonl beside it); a job whose summary exists is
skipped, so an interrupted sweep resumes where it stopped. Results are aggregated by
:mod:`cchmi.distill.report` into ``<out>``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

from cchmi._progress import Progress

DATASETS = ("mfeat", "mfh", "fashion_mnist")
TOP_KEYS = {"name", "seeds", "pairs", "data", "train", "split", "cch", "sweep", "pairing", "p"}
CCH_KEYS = {"representation", "k", "pca"}


def _check_config(config: dict) -> dict:
    if not isinstance(config, dict):
        raise ValueError("an experiment config must be a table (dict)")
    unknown = sorted(set(config) - TOP_KEYS)
    if unknown:
        raise ValueError(f"unknown config key(s) {', '.join(unknown)}; known: {', '.join(sorted(TOP_KEYS))}")
    data = dict(config.get("data", {"name": "mfeat"}))
    if data.get("name", "mfeat") not in DATASETS:
        raise ValueError(f"data.name must be one of {', '.join(DATASETS)}; got {data.get('name')!r}")
    seeds = config.get("seeds", 3)
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1 or a list of seeds, got {seeds}")
        seeds = list(range(seeds))
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) and s >= 0 for s in seeds)):
        raise ValueError(f"seeds must be a count or a non-empty list of non-negative integers, got {seeds!r}")
    unknown = sorted(set(config.get("cch", {})) - CCH_KEYS)
    if unknown:
        raise ValueError(f"unknown cch option(s) {', '.join(unknown)}; known: {', '.join(sorted(CCH_KEYS))}")
    sweep = config.get("sweep", {})
    for key, values in sweep.items():
        if not (isinstance(values, list) and values):
            raise ValueError(f"sweep.{key} must be a non-empty list of values")
        if key not in ("pairing", "p") and not key.startswith(("train.", "data.", "split.")):
            raise ValueError(f"sweep key {key!r} must be 'pairing', 'p', 'train.<field>', 'split.<field>' or "
                             "'data.<option>'")
    return {**config, "data": data, "seeds": seeds, "sweep": sweep}


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
    return list(FASHION_VIEWS)


def expand_jobs(config: dict) -> list[dict]:
    """All jobs of a config, each a plain dict with a stable ``key``."""
    config = _check_config(config)
    data = config["data"]
    pairs = config.get("pairs", "all")
    views = _view_names(data)
    if pairs == "all":
        pairs = [[a, b] for a in views for b in views if a != b]
    if not (isinstance(pairs, list) and pairs and all(isinstance(q, list) and len(q) == 2 for q in pairs)):
        raise ValueError(f"pairs must be 'all' or a list of [teacher_view, student_view], got {pairs!r}")
    for teacher, student in pairs:
        for v in (teacher, student):
            if v not in views:
                raise ValueError(f"view {v!r} is not a view of {data.get('name', 'mfeat')}: {', '.join(views)}")
    keys = list(config["sweep"])
    jobs = []
    for values in itertools.product(*(config["sweep"][k] for k in keys)):
        point = dict(zip(keys, values))
        train = dict(config.get("train", {}))
        split = dict(config.get("split", {}))
        job_data = dict(data)
        for k, v in point.items():
            if k.startswith("train."):
                train[k[6:]] = v
            elif k.startswith("split."):
                split[k[6:]] = v
            elif k.startswith("data."):
                job_data[k[5:]] = v
        for teacher, student in pairs:
            for seed in config["seeds"]:
                job = {
                    "data": job_data,
                    "teacher_view": teacher,
                    "student_view": student,
                    "pairing": point.get("pairing", config.get("pairing", "aligned")),
                    "p": float(point.get("p", config.get("p", 0.0))),
                    "train": train,
                    "split": split,
                    "cch": dict(config.get("cch", {})),
                    "seed": seed,
                    "point": {k: v for k, v in point.items()},
                }
                job["key"] = hashlib.sha256(json.dumps(job, sort_keys=True).encode()).hexdigest()[:16]
                jobs.append(job)
    return jobs


def run_job(job: dict, out: str, device=None, threads: int | None = None) -> dict:
    """Run one job (in this process) and write its summary; returns the summary."""
    import torch

    from cchmi.distill.trainer import SplitConfig, TrainConfig, distributed, run_kd

    if threads:
        torch.set_num_threads(threads)
    data = load_dataset(job["data"], job["seed"])
    cch = job["cch"]
    summary = run_kd(
        data, job["teacher_view"], job["student_view"], pairing=job["pairing"], p=job["p"],
        train=TrainConfig.from_dict(job["train"]), split=SplitConfig(**job["split"]), seed=job["seed"],
        device=device, cch_representation=cch.get("representation", "logits"), cch_k=cch.get("k", 3),
        cch_pca=cch.get("pca"), out_dir=Path(out) / "runs" / job["key"],
    )
    summary["job"] = job
    if distributed()[0] == 0:
        (Path(out) / "runs" / job["key"] / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def _summary_path(out, job) -> Path:
    return Path(out) / "runs" / job["key"] / "summary.json"


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


def run_experiment(config: dict, out, *, jobs: int = 1, devices=None, progress: bool = True) -> list[dict]:
    """Run every job of `config` not yet done in `out`, with `jobs` worker processes; devices (e.g.
    ["cuda:0", "cuda:1"]) are handed to jobs round-robin. Under torchrun (an initialised process
    group), the processes instead train each job together with DDP (jobs must be 1).
    Returns all summaries (old and new)."""
    from cchmi.distill.trainer import distributed

    config = _check_config(config)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
    rank, world = distributed()
    if world > 1 and (jobs != 1 or devices):
        raise ValueError("under torchrun the processes share each job: use jobs=1 and no devices list")
    out = Path(out)
    all_jobs = expand_jobs(config)
    todo = [j for j in all_jobs if not _summary_path(out, j).is_file()]
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    devices = list(devices) if devices else [None]
    bar = Progress(len(todo), config.get("name", "experiment"), progress and rank == 0)
    if world > 1:
        _run_distributed(todo, out, bar)
    elif todo and jobs == 1:
        for i, job in enumerate(todo):
            run_job(job, str(out), devices[i % len(devices)])
            bar.step()
    elif todo:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(run_job, job, str(out), devices[i % len(devices)], threads)
                       for i, job in enumerate(todo)]
            for fut in as_completed(futures):
                fut.result()
                bar.step()
    return [json.loads(_summary_path(out, j).read_text()) for j in all_jobs]
