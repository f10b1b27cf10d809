"""Column scales: standardisation with statistics of some rows only (a training split), applied to
all rows; and the robust choice of the scale that the kNN estimators' preparation divides by
(:func:`robust_sd`, the same rule on the host, the device and sharded paths)."""

from __future__ import annotations

import warnings

import numpy as np


def standardise(a: np.ndarray, fit_rows: np.ndarray, dtype=np.float32) -> np.ndarray:
    """(a - mean) / sd for every row, mean and sd (ddof=0) of the rows `fit_rows`; constant
    columns are only centred. Each column is first scaled by the power of two of its largest
    |value| (exact), so data near the ends of the float range keep their spread."""
    a = np.asarray(a)
    if a.dtype.kind != "f":
        a = a.astype(np.float64)
    exponent = np.frexp(np.abs(a).max(axis=0))[1]
    a = np.ldexp(a, -exponent).astype(a.dtype, copy=False)
    mean, sd = a[fit_rows].mean(axis=0), a[fit_rows].std(axis=0)
    sd[sd == 0] = 1.0
    return ((a - mean) / sd).astype(dtype)


# The interquartile range of N(0, 1), 2 * Phi^-1(0.75): IQR / IQR_NORMAL estimates a normal column's s.d.
# The IQR rather than 1.4826 * MAD: its two quartiles come from one round of exact order statistics
# (the MAD needs the median, then a second round on |x - median|: two bisections when sharded), and
# its breakdown point of 25% covers "a few rows".
IQR_NORMAL = 1.3489795003921634
# A column whose s.d. exceeds ROBUST_FACTOR times its interquartile scale is scaled by the latter.
# Measured ratio s.d. / (IQR / IQR_NORMAL), 30-2,000 draws per cell at n = 100 .. 100,000: Gaussian
# columns at most 1.49 (n = 100; 1.09 at n = 1,000), exponential 2.50 (never above 3), Student-t(3)
# and lognormal 1.5-2.0 typically, above 3 in 0.8% and 6.6% of samples at n = 100 (0.35% and 0.75% at
# n = 1,000; their tails do set the s.d. then), up to 7.6 and 7.9; one row at 1e3 among 3,000
# N(0, 1) rows gives 18. A column squeezed 3 times next to the others already moves KSG estimates
# (2 + 2 Gaussian columns, n = 3,000: -0.04 nats; 4 + 4: -0.2), so the factor is not set higher.
ROBUST_FACTOR = 3.0


def quartile_ranks(n: int) -> np.ndarray:
    """The 0-based ranks of the order statistics that the quartiles of n values interpolate
    between (NumPy's default 'linear' quantile): [floor(h1), ceil(h1), floor(h3), ceil(h3)] with
    h = (n - 1) * q for q = 0.25, 0.75."""
    h = (n - 1) * np.array([0.25, 0.75])
    return np.stack([np.floor(h), np.ceil(h)], axis=1).reshape(-1).astype(np.int64)


def quartiles(order_stats: np.ndarray, n: int) -> np.ndarray:
    """(q1, q3) per column, (2, d), from the order statistics at ``quartile_ranks(n)`` (rows of a
    (4, d) float64 array)."""
    h = (n - 1) * np.array([0.25, 0.75])
    frac = (h - np.floor(h))[:, None]
    lower, upper = order_stats[0::2], order_stats[1::2]
    return lower + frac * (upper - lower)


def interquartile_scale(order_stats: np.ndarray, n: int) -> np.ndarray:
    """IQR / IQR_NORMAL per column (see :func:`quartiles`): the s.d. of a normal column, estimated
    from its middle half."""
    q1, q3 = quartiles(order_stats, n)
    return (q3 - q1) / IQR_NORMAL


def quartile_centre(order_stats: np.ndarray, n: int) -> np.ndarray:
    """(q1 + q3) / 2 per column: where the columns scaled by their interquartile scale are centred
    (their mean, pulled by the far rows, would leave the other rows' differences below the
    rounding of float32, or of float64 past a ratio of about 1e12)."""
    q1, q3 = quartiles(order_stats, n)
    return (q1 + q3) / 2


def robust_sd(sd: np.ndarray, order_stats: np.ndarray, at_quartiles: np.ndarray, n: int,
              name: str) -> tuple[np.ndarray, np.ndarray]:
    """(the scale each column is divided by when standardised, which columns take the robust one).
    The scale is the column's s.d. `sd`, unless that exceeds ROBUST_FACTOR times its interquartile
    scale (a few rows then set it: one far outlier makes the other rows' spread vanish next to the
    other columns'), in which case the interquartile scale, with a RuntimeWarning naming `name` and
    the columns. Columns where the two agree keep their s.d., so that ordinary data are scaled
    exactly as by the s.d. alone; so do partly discrete ones, where one value at a quartile holds a
    quarter of the rows or more (`at_quartiles`: (4, d) counts of the rows equal to each of
    `order_stats`): their interquartile scale is 0 (mostly constant columns) or measures the
    atom's edge (a rectified unit's zeros: with 60-80% of zeros, the s.d. is 3 to 10^5 times it).
    `sd` and `order_stats` share one scale (the same power-of-two shift). The jitter of a column
    scaled by the robust scale has s.d. `noise` (its far rows would make ``noise * mean |column|``
    large)."""
    robust = interquartile_scale(order_stats, n)
    partly_discrete = 4 * at_quartiles.max(axis=0) >= n
    tripped = (robust > 0) & ~partly_discrete & (sd > ROBUST_FACTOR * robust)
    if not tripped.any():
        return sd, tripped
    columns = np.flatnonzero(tripped)
    ratio = float(np.max(sd[columns] / robust[columns]))
    listed = ", ".join(str(int(c)) for c in columns[:10]) + (", ..." if columns.size > 10 else "")
    warnings.warn(f"{name}: columns [{listed}] have a standard deviation {'up to ' if columns.size > 1 else ''}"
                  f"{ratio:.0f}x their interquartile scale: a few rows set it; scaled by the IQR / 1.349 instead",
                  RuntimeWarning, stacklevel=2)
    return np.where(tripped, robust, sd), tripped
