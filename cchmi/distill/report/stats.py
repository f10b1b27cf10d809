"""The statistics of the KD report, in numpy: Student t quantiles, the Wilson interval of a
proportion, Spearman's rank correlation with a bootstrap interval, AUROC with DeLong's interval,
and the mean of a sample with its t-interval.

numpy only, on purpose: scipy is no dependency of cchmi (it is in the bench and test extras), and
one implementation everywhere means a report's numbers do not depend on whether scipy happens to be
installed (``scipy.stats.t.ppf`` and ``t975`` differ in the fourth digit beyond 30 degrees of
freedom; the bootstrap draws its own resamples). The tests check each function against scipy.stats
(``t.ppf``, ``binomtest(...).proportion_ci(method="wilson")``, ``spearmanr``, ``mannwhitneyu``).
"""

from __future__ import annotations

import math

import numpy as np

# Two-sided 95% Student t quantiles for 1..30 degrees of freedom.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t: a table to 30 degrees of freedom (three decimals), 1.96 +
    2.4 / df beyond (within 0.11% of the exact quantile, the most at 31); inf below 1."""
    if df < 1:
        return math.inf
    return _T975[df - 1] if df <= 30 else 1.96 + 2.4 / df


def mean_ci(values: np.ndarray) -> tuple[float, float, float, float]:
    """(mean, sample s.d., lower and upper 95% t-interval bound of the mean); the last three nan
    for a single value."""
    m = float(values.mean())
    sd = float(values.std(ddof=1)) if values.size > 1 else math.nan
    half = t975(values.size - 1) * sd / math.sqrt(values.size) if values.size > 1 else math.nan
    return m, sd, m - half, m + half


def wilson(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion (nan, nan when total is 0)."""
    if total == 0:
        return math.nan, math.nan
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)  # rounding gave -1e-17 at 0 successes


def _ranks(a: np.ndarray) -> np.ndarray:
    """0-based ranks of a 1-d array of numbers, tied values sharing their average rank."""
    _, inverse, counts = np.unique(a, return_inverse=True, return_counts=True)
    return (np.cumsum(counts) - (counts + 1) / 2)[inverse.reshape(-1)]


def spearman(a, b) -> float:
    """Spearman rank correlation (average ranks for ties); nan with fewer than two pairs or when
    either side is constant."""
    ra, rb = _ranks(np.asarray(a, dtype=float)), _ranks(np.asarray(b, dtype=float))
    if ra.size < 2 or ra.std() == 0 or rb.std() == 0:
        return math.nan
    return float(np.corrcoef(ra, rb)[0, 1])


def _row_ranks(codes: np.ndarray, width: int) -> np.ndarray:
    """Average ranks (0-based, ties sharing their mean) within each row of integer codes in
    [0, width): one sort of all rows, each row's codes shifted into a range of its own."""
    rows, n = codes.shape
    keys = codes + width * np.arange(rows)[:, None]
    flat = np.sort(keys, axis=None)
    start = n * np.arange(rows)[:, None]
    below = np.searchsorted(flat, keys, "left") - start
    through = np.searchsorted(flat, keys, "right") - start
    return (below + through - 1) / 2


# Fewest pairs for which spearman_interval draws a bootstrap interval.
SPEARMAN_MIN_PAIRS = 4


def spearman_interval(a, b, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """(rho, 2.5% and 97.5% bootstrap quantiles over resampled pairs); the interval is nan below
    :data:`SPEARMAN_MIN_PAIRS` pairs or when rho is; resamples whose ranks are constant on a side are
    left out. All resamples are ranked at once."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    rho = spearman(a, b)
    if a.size < SPEARMAN_MIN_PAIRS or math.isnan(rho):
        return rho, math.nan, math.nan
    idx = np.random.default_rng(seed).integers(0, a.size, (n_boot, a.size))
    centred = []
    for side in (a, b):
        _, codes = np.unique(side, return_inverse=True)
        r = _row_ranks(codes.reshape(-1)[idx], a.size)
        centred.append(r - r.mean(axis=1, keepdims=True))
    ra, rb = centred
    norm = np.sqrt((ra * ra).sum(axis=1) * (rb * rb).sum(axis=1))
    ok = norm > 0
    if not ok.any():
        return rho, math.nan, math.nan
    boots = (ra * rb).sum(axis=1)[ok] / norm[ok]
    return rho, float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))


def auroc(scores, positive) -> tuple[float, float, float]:
    """(AUROC, DeLong 95% interval clipped to [0, 1]) of `scores` for the boolean labels `positive`:
    the probability that a positive scores above a negative, ties counting one half (midranks).
    nan when a class is empty; the interval is nan with fewer than two of either class."""
    s, y = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    m, n = int(y.sum()), int((~y).sum())
    if m == 0 or n == 0:
        return math.nan, math.nan, math.nan
    ranks = _ranks(s)
    # Structural components: v10[i] = share of negatives below positive i (ties one half), v01[j] =
    # share of positives above negative j; each a difference of ranks in all and in its own class.
    v10 = (ranks[y] - _ranks(s[y])) / n
    v01 = 1 - (ranks[~y] - _ranks(s[~y])) / m
    auc = float(v10.mean())
    if m < 2 or n < 2:
        return auc, math.nan, math.nan
    half = 1.96 * math.sqrt(v10.var(ddof=1) / m + v01.var(ddof=1) / n)
    return auc, max(0.0, auc - half), min(1.0, auc + half)


def holm(p_values) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given: the i-th smallest of m p-values is
    multiplied by m - i + 1 (i from 1), made non-decreasing along that order and capped at 1. nan
    (a test that could not be run) stays nan and does not count in m."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, math.nan)
    known = np.flatnonzero(~np.isnan(p))
    order = known[np.argsort(p[known], kind="stable")]
    m = order.size
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m)))) if m else p[order]
    out[order] = adjusted
    return out.tolist()


def _t_abs_cdf(t: float, df: int) -> float:
    """P(|T| < t) for Student's t with integer df >= 1: the finite series of Abramowitz and Stegun
    26.7.3 (odd df) and 26.7.4 (even df) in theta = atan(t / sqrt(df))."""
    theta = math.atan(t / math.sqrt(df))
    c2, s = math.cos(theta) ** 2, math.sin(theta)
    if df % 2 == 0:
        term, total = 1.0, 1.0
        for k in range(2, df - 1, 2):  # 1 + 1/2 c^2 + (1*3)/(2*4) c^4 + ... up to c^(df-2)
            term *= c2 * (k - 1) / k
            total += term
        return s * total
    if df == 1:
        return 2 * theta / math.pi
    term, total = 1.0, 1.0
    for k in range(3, df - 1, 2):  # 1 + 2/3 c^2 + (2*4)/(3*5) c^4 + ... up to c^(df-3)
        term *= c2 * (k - 1) / k
        total += term
    return 2 / math.pi * (theta + s * math.cos(theta) * total)


def t_quantile(q: float, df: int) -> float:
    """The q quantile (0.5 < q < 1) of Student's t with integer df (inf below 1), by bisection of
    the exact distribution function to 1e-10."""
    if df < 1:
        return math.inf
    lo, hi = 0.0, 1.0
    while _t_abs_cdf(hi, df) < 2 * q - 1:
        hi *= 2
    while hi - lo > 1e-10 * max(1.0, hi):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _t_abs_cdf(mid, df) < 2 * q - 1 else (lo, mid)
    return (lo + hi) / 2


def _codes(labels) -> tuple[np.ndarray, int]:
    """Integer codes 0..k-1 of hashable labels (in order of first occurrence) and k."""
    index: dict = {}
    codes = np.array([index.setdefault(label, len(index)) for label in labels], dtype=np.int64)
    return codes, len(index)


# Replicates drawn and evaluated together: bounds the (replicates x rows) weight matrix held at once.
BOOTSTRAP_CHUNK = 256


def cluster_weights(clusters, units, shared=None, n_boot: int = 2000, seed: int = 0):
    """Yield the two-stage cluster bootstrap's replicates of a table of rows, as arrays of weights
    (replicates x rows: how often each row is in a replicate; up to :data:`BOOTSTRAP_CHUNK` replicates
    an array, `n_boot` in all, seeded by `seed`).

    Stage one draws as many clusters (``clusters[i]``, a hashable label of row i) as there are, with
    replacement; stage two draws units (``units[i]``: the seed) with replacement, as many as the
    group of the draw has. A row's weight is its cluster's count times its unit's count. Without
    `shared`, each drawn copy of a cluster draws its own units (the textbook two-stage bootstrap).
    With `shared` (a label per row, constant within a cluster), the units are drawn once per shared
    group and replicate, for every cluster of that group: rows of different clusters that share
    something per unit (runs of one student view and seed share the baseline student, whatever the
    teacher) then enter a replicate together, as often as each other, or not at all."""
    c_codes, n_clusters = _codes(clusters)
    g_labels = list(clusters) if shared is None else list(shared)
    g_codes, n_groups = _codes(g_labels)
    u_codes = np.empty(c_codes.size, dtype=np.int64)  # each row's unit column within its group
    group_units: dict[int, dict] = {}
    for i, (g, u) in enumerate(zip(g_codes, units)):
        u_codes[i] = group_units.setdefault(int(g), {}).setdefault(u, len(group_units[int(g)]))
    width = np.array([len(group_units[g]) for g in range(n_groups)])
    cluster_group = np.zeros(n_clusters, dtype=np.int64)
    cluster_group[c_codes] = g_codes
    if shared is not None and np.unique(np.stack([c_codes, g_codes]), axis=1).shape[1] != n_clusters:
        raise ValueError("shared must be constant within each cluster")
    offset = np.concatenate([[0], np.cumsum(width)])
    columns = offset[g_codes] + u_codes  # each row's column among all groups' units
    rng = np.random.default_rng(seed)
    for start in range(0, n_boot, BOOTSTRAP_CHUNK):
        b = min(BOOTSTRAP_CHUNK, n_boot - start)
        draws = rng.integers(0, n_clusters, (b, n_clusters))
        counts = np.zeros((b, n_clusters))
        np.add.at(counts, (np.arange(b)[:, None], draws), 1)
        unit_counts = np.zeros((b, int(offset[-1])))
        for g in range(n_groups):
            k = int(width[g])
            if shared is None:  # each drawn copy of the cluster draws k units: k * copies draws in all
                draws_n = (counts[:, np.flatnonzero(cluster_group == g)].sum(axis=1) * k).astype(np.int64)
                unit_counts[:, offset[g]:offset[g + 1]] = rng.multinomial(draws_n, np.full(k, 1 / k))
            else:
                unit_counts[:, offset[g]:offset[g + 1]] = rng.multinomial(k, np.full(k, 1 / k), size=b)
        if shared is None:  # the copies' units are pooled: a row's weight is its unit's count
            yield unit_counts[:, columns]
        else:
            yield counts[:, c_codes] * unit_counts[:, columns]


def cluster_bootstrap(statistic, clusters, units, shared=None, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """The replicates of `statistic` under :func:`cluster_weights`: an array (n_boot x k).
    `statistic` maps weights (replicates x rows, the point estimate's being all ones) to one value
    per replicate, or a column per quantity (k of them; compute quantities that are compared in one
    statistic: they then share each replicate, a paired bootstrap). Any statistic of a table of rows
    fits: a weight is how many copies of the row the replicate holds."""
    parts = [np.asarray(statistic(w), dtype=float) for w in cluster_weights(clusters, units, shared, n_boot, seed)]
    return np.concatenate([p.reshape(p.shape[0], -1) for p in parts])


def percentile_interval(draws: np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    """The alpha/2 and 1 - alpha/2 quantiles of bootstrap draws, nan draws (replicates where the
    statistic is undefined) left out; nan when none is defined."""
    d = np.asarray(draws, dtype=float)
    d = d[~np.isnan(d)]
    if d.size == 0:
        return math.nan, math.nan
    return float(np.quantile(d, alpha / 2)), float(np.quantile(d, 1 - alpha / 2))


def bootstrap_p(draws: np.ndarray) -> float:
    """Two-sided bootstrap p-value of "the quantity is 0": twice the smaller share of defined draws
    at or below 0 and at or above 0, counting the observed as one more draw on each side ((1 + k) /
    (n + 1)), capped at 1; nan without defined draws."""
    d = np.asarray(draws, dtype=float)
    d = d[~np.isnan(d)]
    if d.size == 0:
        return math.nan
    tail = min(int((d <= 0).sum()), int((d >= 0).sum()))
    return min(1.0, 2 * (1 + tail) / (d.size + 1))


def weighted_auroc(scores, positive, weights: np.ndarray) -> np.ndarray:
    """AUROC of `scores` for the boolean labels `positive`, one per row of `weights` (replicates x
    rows): a row of weight w counts w times; ties one half (as :func:`auroc`); nan where a class has
    no weight."""
    s, y = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    w = np.atleast_2d(weights)
    order = np.argsort(s, kind="stable")
    _, starts = np.unique(s[order], return_index=True)
    pos = np.add.reduceat(w[:, order] * y[order], starts, axis=1)
    neg = np.add.reduceat(w[:, order] * ~y[order], starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    total = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (pos * (below + neg / 2)).sum(axis=1) / total, math.nan)


def within_slope(x, y, groups, weights: np.ndarray) -> np.ndarray:
    """The OLS slope of y on x with a level per group (fixed effects: x and y centred within each
    group), one per row of `weights` (replicates x rows, a row of weight w counting w times); nan
    where x does not vary within any group."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    codes, k = _codes(groups)
    w = np.atleast_2d(weights)
    order = np.argsort(codes, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(codes[order]) != 0])
    ws, xs, ys = w[:, order], x[order], y[order]
    sw, sx, sy = (np.add.reduceat(ws * v, starts, axis=1) for v in (1.0, xs, ys))
    with np.errstate(invalid="ignore", divide="ignore"):
        sxy = (ws * xs * ys).sum(axis=1) - np.where(sw > 0, sx * sy / sw, 0).sum(axis=1)
        sxx = (ws * xs * xs).sum(axis=1) - np.where(sw > 0, sx * sx / sw, 0).sum(axis=1)
        return np.where(sxx > 1e-12 * np.maximum(1.0, (ws * xs * xs).sum(axis=1)), sxy / sxx, math.nan)
