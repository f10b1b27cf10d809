"""Standardisation with statistics of some rows only (a training split), applied to all rows."""

from __future__ import annotations

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
