"""The diffusion estimator's floor (issue 24): what `diffusion_mi` reads when Y carries nothing.

For each task of the high-dimensional suite, on one sample (n rows, a seed), the estimates of
I(X; Y) in nats by:

* ``single``: :func:`cchmi.neural.diffusion_mi` with its defaults (one denoiser), and ``floor``, its
  permuted-Y control (the same fit on Y's rows permuted: true MI 0);
* ``crossfit``: two denoisers of the same settings trained on disjoint halves of diffusion_mi's
  training and validation rows, the estimate the mean over the same test rows of the inner product
  of their gaps (``_row_terms`` with a partner): the noise each network reads in y is independent of
  the other's, so it averages out, where the single network's square counts it;
* ``crossfit_null`` (with --null): the cross-fit form on the permuted pairing.

Writes floor.csv (one row per task, appended) and prints the table as markdown.

    python -m bench.bench_diffusion_floor --dims 64 --n 5000 --seed 0 --null --out bench/results/diffusion_floor
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from cchmi._scaling import standardise
from cchmi.data.hd_tasks import hd_suite
from cchmi.neural.diffusion import CONTROL_SEED, _row_terms, _train, diffusion_mi
from cchmi.neural.estimator import split_rows

from ._harness import append_csv, machine, markdown_table, versions

DEFAULTS = dict(hidden=256, layers=3, log_snr=(-10.0, 12.0), p_uncond=0.5, batch_size=256, epochs=300, lr=1e-3,
                patience=50)
"""diffusion_mi's default training settings, used by both halves of the cross-fit."""

N_LEVELS, VAL_SHARE = 32, 0.2
"""diffusion_mi's default log-SNR draws per test row; each half's validation share."""


def crossfit(x: np.ndarray, y: np.ndarray, seed: int) -> float:
    """The cross-fit estimate (nats) on diffusion_mi's test rows for random_state `seed`: two
    denoisers on disjoint halves of its training and validation rows."""
    train, val, test = split_rows(len(x), 0.2, 0.2, np.random.default_rng(seed))
    rest = np.random.default_rng(seed + 1).permutation(np.concatenate([train, val]))
    X = torch.as_tensor(standardise(x, train))
    Y = torch.as_tensor(standardise(y, train))
    models = []
    for h, part in enumerate(np.array_split(rest, 2)):
        n_val = int(round(VAL_SHARE * part.size))
        model, _ = _train(X, Y, np.sort(part[n_val:]), np.sort(part[:n_val]), seed=seed + 2 * h, progress=False,
                          label=f"half {h}", **DEFAULTS)
        models.append(model)
    terms = _row_terms(models[0], X, Y, test, n_levels=N_LEVELS, log_snr=DEFAULTS["log_snr"], seed=seed + 7919,
                       partner=models[1])
    return float(terms.mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dims", type=int, default=64, help="columns per side (a width of the hd suite)")
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tasks", default=None, help="comma-separated task names (default: every task at --dims)")
    ap.add_argument("--null", action="store_true", help="also the cross-fit form on the permuted pairing")
    ap.add_argument("--out", default="bench/results/diffusion_floor")
    args = ap.parse_args()
    suite = [t for t in hd_suite() if t.dim_x == args.dims]
    if args.tasks:
        wanted = args.tasks.split(",")
        unknown = sorted(set(wanted) - {t.name for t in suite})
        if unknown:
            raise SystemExit(f"--tasks: no task {unknown} at --dims {args.dims}")
        suite = [t for t in suite if t.name in wanted]
    rows = []
    for task in suite:
        start = time.perf_counter()
        s = task.sample(args.n, args.seed)
        single = diffusion_mi(s.x, s.y, random_state=args.seed, device="cpu")
        row = {"task": task.name, "truth": s.mi, "n": args.n, "seed": args.seed, "single": single.estimate,
               "floor": single.floor, "crossfit": crossfit(s.x, s.y, args.seed), "crossfit_null": float("nan")}
        if args.null:
            perm = np.random.default_rng(args.seed + CONTROL_SEED).permutation(args.n)
            row["crossfit_null"] = crossfit(s.x, s.y[perm], args.seed)
        row.update(seconds=time.perf_counter() - start, torch=versions().get("torch", ""), **machine())
        rows.append(row)
        append_csv("floor", [row], Path(args.out))
        print(f"{task.name}: single {row['single']:.3f} floor {row['floor']:.3f} crossfit {row['crossfit']:.3f} "
              f"null {row['crossfit_null']:.3f} of {s.mi:.3g} ({row['seconds']:.0f} s)", flush=True)
    print(markdown_table(["task", "true MI", "single network", "its permuted-Y control", "cross-fit", "cross-fit, Y "
                          "permuted", "seconds"],
                         [[r["task"], f"{r['truth']:.3g}", f"{r['single']:.2f}", f"{r['floor']:.2f}",
                           f"{r['crossfit']:.2f}", f"{r['crossfit_null']:.3f}", f"{r['seconds']:.0f}"] for r in rows]))


if __name__ == "__main__":
    main()
