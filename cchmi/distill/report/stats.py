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
