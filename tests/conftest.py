"""Shared fixtures and the GPU switch.

Tests marked ``gpu`` are skipped on machines without a usable NVIDIA GPU, unless ``--require-gpu``
or ``CCHMI_REQUIRE_GPU=1`` is given: then a missing GPU fails them, so a GPU run cannot pass
vacuously. Collection never touches CUDA: the probe runs only when a gpu test is about to run.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest


def pytest_configure(config):
    # Running against the source tree (e.g. `python -m pytest` from the repository root puts it
    # first on sys.path) would silently test the NumPy fallback: refuse instead.
    try:
        import cchmi._cpu  # noqa: F401
    except ImportError as exc:
        raise pytest.UsageError(
            f"cchmi._cpu is not importable ({exc}); install the package (pip install \".[test]\") and run "
            "`pytest` so that the installed build, not the source tree, is imported"
        ) from None


def pytest_addoption(parser):
    parser.addoption("--require-gpu", action="store_true", default=False,
                     help="fail (instead of skip) gpu tests when no GPU is usable")


@functools.lru_cache(maxsize=1)
def _gpu_unavailable_reason() -> str | None:
    try:
        from cchmi import _cuda
    except ImportError:
        return "cchmi._cuda was not built"
    if _cuda.device_count() < 1:
        return "no CUDA device visible"
    return None


def pytest_runtest_setup(item):
    if item.get_closest_marker("gpu") is None:
        return
    reason = _gpu_unavailable_reason()
    if reason is None:
        return
    if item.config.getoption("--require-gpu") or os.environ.get("CCHMI_REQUIRE_GPU") == "1":
        pytest.fail(f"GPU required (--require-gpu / CCHMI_REQUIRE_GPU=1) but {reason}")
    pytest.skip(reason)


def make_points(kind: str, n: int, d: int, dtype, seed: int = 0) -> np.ndarray:
    """Adversarial point sets for the exact-count tests.

    gauss: continuous; dup: a third of the rows are copies of other rows; discrete: half the
    columns integer-valued (ties in the marginals); grid: every column on a 3-value grid (massive
    ties in the joint space); scaled: columns of very different scales (1e-3 to 1e3).
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    if kind == "dup" and n >= 3:
        rows = rng.choice(n, size=n // 3, replace=False)
        x[rows] = x[rng.choice(n, size=rows.size)]
    elif kind == "discrete":
        x[:, ::2] = rng.integers(0, 4, size=x[:, ::2].shape)
    elif kind == "grid":
        x = rng.integers(-1, 2, size=(n, d)).astype(np.float64)
    elif kind == "scaled":
        x *= np.logspace(-3, 3, d)
    return np.ascontiguousarray(x, dtype=dtype)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
