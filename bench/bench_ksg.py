"""KSG-1 end to end: cchmi against the CPU peers, in the same run, on the same samples.

    python -m bench.bench_ksg            # the cases of the foundation issue (several minutes)
    python -m bench.bench_ksg --quick    # small sizes, about a minute

Every tool gets the same standardised float64 sample of a correlated Gaussian (true MI 1 nat for
the multivariate cases, 0.5 for 1+1), k=3, nats. Peers, each optional (skipped when missing):

* scikit-learn ``mutual_info_regression`` (1+1 only: it estimates one feature at a time),
* NPEET (``npeet_plus.mi``, base e; a scikit-learn KDTree/BallTree per search),
* ennemi ``estimate_mi`` (1+1 only: its public API pairs one x column with a 1-D y),
* SciPy: KSG-1 written by hand with ``cKDTree`` (p=inf, ``workers=-1``): what a user writes with
  SciPy's compiled tree, using every core.

Peers run in a forked process killed after ``--timeout`` seconds (recorded as a timeout). Rows are
appended to bench/results/bench_ksg.csv with the machine and the git SHA.
"""

from __future__ import annotations

import argparse
import importlib.util
import math

import numpy as np

from bench._harness import append_csv, machine, markdown_table, require_compiled, run_with_timeout, time_call

FULL_CASES = [(100_000, 1, 1), (100_000, 4, 4), (10_000, 16, 16), (100_000, 16, 16)]
QUICK_CASES = [(20_000, 1, 1), (20_000, 4, 4), (4_000, 16, 16)]
K = 3


def sample(n: int, dx: int, dy: int):
    from cchmi.data import correlated_gaussian

    s = correlated_gaussian(n, dx, dy, mi=0.5 if dx == 1 else 1.0, random_state=0)
    x = (s.x - s.x.mean(0)) / s.x.std(0)
    y = (s.y - s.y.mean(0)) / s.y.std(0)
    return x, y, s.mi


def cchmi_ksg(x, y):
    import cchmi

    return cchmi.ksg_mi(x, y, k=K).estimate


def sklearn_ksg(x, y):
    from sklearn.feature_selection import mutual_info_regression

    return mutual_info_regression(x, y[:, 0], n_neighbors=K, random_state=0)[0]


def npeet_ksg(x, y):
    import npeet_plus

    return npeet_plus.mi(x, y, k=K, base=math.e)


def ennemi_ksg(x, y):
    import ennemi

    return float(np.asarray(ennemi.estimate_mi(y[:, 0], x[:, 0], k=K)).ravel()[0])


def scipy_ksg(x, y):
    from scipy.spatial import cKDTree
    from scipy.special import digamma

    xy = np.hstack([x, y])
    eps = cKDTree(xy).query(xy, k=K + 1, p=np.inf, workers=-1)[0][:, K]
    r = np.nextafter(eps, 0)  # strict inequality: points at exactly eps are not counted
    nx = cKDTree(x).query_ball_point(x, r, p=np.inf, return_length=True, workers=-1)  # includes self
    ny = cKDTree(y).query_ball_point(y, r, p=np.inf, return_length=True, workers=-1)
    return digamma(K) + digamma(len(x)) - np.mean(digamma(nx) + digamma(ny))


PEERS = [
    ("scikit-learn", "sklearn", sklearn_ksg, lambda dx, dy: dx == 1 and dy == 1),
    ("NPEET", "npeet_plus", npeet_ksg, lambda dx, dy: True),
    ("ennemi", "ennemi", ennemi_ksg, lambda dx, dy: dx == 1 and dy == 1),
    ("SciPy cKDTree", "scipy", scipy_ksg, lambda dx, dy: True),
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (about a minute)")
    parser.add_argument("--timeout", type=float, default=130.0, help="seconds before a peer call is killed")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls of cchmi (after a warm-up)")
    parser.add_argument("--no-csv", action="store_true", help="do not append to bench/results")
    args = parser.parse_args(argv)
    require_compiled()

    tags = machine()
    print(f"machine: {tags['cpu']}, {tags['cores']} cores; cchmi {tags['cchmi']} ({tags['git']}), {tags['date']}")
    rows, csv_rows = [], []
    for n, dx, dy in QUICK_CASES if args.quick else FULL_CASES:
        x, y, truth = sample(n, dx, dy)
        ours = time_call(lambda: cchmi_ksg(x, y), repeats=args.repeats)
        case = f"N={n:,}, {dx}+{dy}"
        results = [("cchmi (cpu)", ours)]
        for label, module, fn, supports in PEERS:
            if importlib.util.find_spec(module) is None:
                results.append((label, None))
                continue
            if not supports(dx, dy):
                continue
            first = run_with_timeout(lambda: fn(x, y), args.timeout)
            if first.status == "ok" and first.median < 5:  # fast enough to repeat
                first = run_with_timeout(lambda: fn(x, y), args.timeout, repeats=3)
            results.append((label, first))
        timed = [t.median for label, t in results[1:] if t is not None and t.status == "ok"]
        fastest = min(timed) if timed else float("nan")
        for label, t in results:
            if t is None:
                rows.append([case, label, "not installed", "", "", ""])
                continue
            if t.status != "ok":
                rows.append([case, label, t.status, "", "", ""])
            else:
                spread = f"{t.median:.3g} [{t.low:.3g}, {t.high:.3g}]"
                if label.startswith("cchmi"):
                    diff = ""
                    ratio = f"{fastest / ours.median:.1f}x (fastest peer / cchmi)" if timed else "no peer finished"
                else:
                    diff = f"{t.value - ours.value:+.1e}"
                    ratio = f"{t.median / ours.median:.1f}x"
                rows.append([case, label, f"{t.value:.5f}", diff, spread, ratio])
            csv_rows.append({**tags, "case": case, "n": n, "dx": dx, "dy": dy, "k": K, "true_mi": truth, "tool": label,
                             "status": t.status, "estimate": t.value, "seconds_median": t.median,
                             "seconds_min": t.low, "seconds_max": t.high, "repeats": t.repeats})
        print(f"done {case}", flush=True)
    print()
    print(markdown_table(["case", "tool", "estimate (nats)", "diff to cchmi", "seconds median [min, max]",
                          "time / cchmi"], rows))
    if not args.no_csv:
        print(f"\nappended to {append_csv('bench_ksg', csv_rows)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
