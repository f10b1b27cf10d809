"""The neural protocol: do the intervals of ``repeats`` cover the truth where one split's do not?

    python -m bench.bench_neural_protocol                       # defaults below (about 25 min on 2 cores)
    python -m bench.bench_neural_protocol --tasks hd-gauss-dense-64-2 --estimators neural --n 2000

For each task of the hd suite (:mod:`cchmi.data.hd_tasks`), one sample of ``--n`` rows (seed
``--seed``) and each estimator (neural: :func:`cchmi.neural_mi`, SMILE, its defaults; latent:
:func:`cchmi.latent_mi`; diffusion: :func:`cchmi.neural.diffusion_mi`), one call with
``repeats=--repeats`` and ``confidence=--confidence``. Repeat 0 is the single run the default
gives (same seed), so its interval (estimate +- z * its own standard error, the test-batch spread)
is read from the same call: ``single_*`` columns; the ``repeats_*`` columns are the mean and the
Rubin interval of all the repeats (each 2 I(n) - I(n/2) with ``--extrapolate``). ``covered`` =
truth inside the interval.

Rows go to bench/results/neural_protocol/neural_protocol.csv with the machine, the git SHA and the
command line.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from statistics import NormalDist

from ._harness import RESULTS, append_csv, machine

TASKS = ("hd-gauss-dense-64-2", "hd-embed-k4-64-2", "hd-halfcube-64-4")


def _estimator(name: str):
    from cchmi.neural import diffusion_mi, latent_mi, neural_mi

    return {"neural": neural_mi, "latent": latent_mi, "diffusion": diffusion_mi}[name]


def run(tasks, estimators, n: int, seed: int, repeats: int, confidence: float, extrapolate: bool,
        batch_size: int | None = None) -> list[dict]:
    import torch

    from cchmi.data.hd_tasks import hd_suite

    torch.set_num_threads(1)
    suite = {t.name: t for t in hd_suite(dims=(64,))}
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    rows = []
    for name in tasks:
        task = suite[name]
        sample = task.sample(n, seed)
        for est in estimators:
            start = time.perf_counter()
            extra = {} if batch_size is None else {"batch_size": batch_size}
            r = _estimator(est)(sample.x, sample.y, repeats=repeats, extrapolate=extrapolate, confidence=confidence,
                                random_state=0, **extra)
            single, single_se = r.repeat_estimates[0], r.repeat_stderrs[0]
            lo1, hi1 = single - z * single_se, single + z * single_se
            rows.append({
                **machine(), "command": " ".join(["python -m bench.bench_neural_protocol", *sys.argv[1:]]),
                "task": name, "truth": round(task.mi, 6), "estimator": est, "n": n, "seed": seed,
                "confidence": confidence, "repeats": repeats, "extrapolate": extrapolate,
                "batch_size": batch_size or "default",
                "single_estimate": round(single, 4), "single_ci_low": round(lo1, 4), "single_ci_high": round(hi1, 4),
                "single_covered": lo1 <= task.mi <= hi1,
                "repeats_estimate": round(r.estimate, 4), "repeats_ci_low": round(r.ci_low, 4),
                "repeats_ci_high": round(r.ci_high, 4), "repeats_covered": r.ci_low <= task.mi <= r.ci_high,
                "repeat_estimates": " ".join(f"{v:.4f}" for v in r.repeat_estimates),
                "within_se": round(r.within_stderr, 4),
                "between_sd": None if r.between_stderr is None else round(r.between_stderr, 4),
                "df": round(r.df, 2) if math.isfinite(r.df) else "inf",
                "seconds": round(time.perf_counter() - start, 1),
            })
            print({k: rows[-1][k] for k in ("task", "estimator", "truth", "single_estimate", "single_covered",
                                            "repeats_estimate", "repeats_ci_low", "repeats_ci_high",
                                            "repeats_covered", "seconds")}, flush=True)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS))
    ap.add_argument("--estimators", nargs="+", default=["neural", "latent"], choices=["neural", "latent", "diffusion"])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--confidence", type=float, default=0.9)
    ap.add_argument("--extrapolate", action="store_true", help="each repeat also at n/2, extrapolated in 1/n")
    ap.add_argument("--batch-size", type=int, default=None,
                    help="the estimators' batch_size (default: theirs; neural_mi's 256 leaves one test batch at n/2)")
    args = ap.parse_args(argv)
    rows = run(args.tasks, args.estimators, args.n, args.seed, args.repeats, args.confidence, args.extrapolate,
               args.batch_size)
    print(append_csv("neural_protocol", rows, RESULTS / "neural_protocol"))


if __name__ == "__main__":
    main()
