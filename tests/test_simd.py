"""Every SIMD level of the CPU kernels returns bit for bit the same neighbours, distances and counts.

The kernels are compiled per level and the level is chosen once per process (csrc/cpu/simd.h), so
each level this CPU supports runs in a subprocess with CCHMI_SIMD forcing it; the results are
compared exactly with each other and with cchmi.reference. The data is adversarial: duplicated
rows, grid data (massive ties), radii equal to neighbour distances, odd n, d around the vector
widths, float32 and float64.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_points

from cchmi import reference

N = 1023
K = 3
# (kind, d): duplicated rows and grid data in every dimension, continuous data across the widths.
SHAPES = [(kind, d) for d in (1, 3, 16, 17, 70) for kind in ("dup", "grid")] + [("gauss", 17)]
DTYPES = (np.float32, np.float64)

# Runs every kernel with every method on the cases in argv[1]; writes the outputs to argv[2].
WORKER = r"""
import sys
import numpy as np
from cchmi._loader import import_cpu_module

_cpu = import_cpu_module()

cases = np.load(sys.argv[1])
out = {"simd": np.array(_cpu.build_info()["simd"])}
for key in sorted({name.split("/")[0] for name in cases.files}):
    x, y, rx, ry = (cases[f"{key}/{part}"] for part in ("x", "y", "rx", "ry"))
    for method in (1, 2):
        dist, idx, _ = _cpu.knn(x, 3, method)
        out[f"{key}/knn{method}/dist"], out[f"{key}/knn{method}/idx"] = dist, idx
    for inclusive in (False, True):
        for method in (1, 2, 3) if x.shape[1] == 1 else (1, 2):
            out[f"{key}/count{method}/{inclusive}"] = _cpu.count_within(x, rx, inclusive, method)[0]
        for method in (0, 2):
            cx, cy, _ = _cpu.count_within_pair(x, y, rx, ry, inclusive, method)
            out[f"{key}/pair{method}/{inclusive}/x"], out[f"{key}/pair{method}/{inclusive}/y"] = cx, cy
np.savez(sys.argv[2], **out)
"""


def cpu_levels() -> list[str]:
    """The levels this CPU supports, from /proc/cpuinfo (x86-64 Linux); otherwise baseline only."""
    if platform.machine().lower() not in ("x86_64", "amd64") or not Path("/proc/cpuinfo").exists():
        return ["baseline"]
    flags: set[str] = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    levels = ["baseline"]
    if {"avx2", "fma"} <= flags:
        levels.append("avx2")
        if {"avx512f", "avx512dq", "avx512bw", "avx512vl"} <= flags:
            levels.append("avx512")
    return levels


def run_python(code: str, *args: str, simd: str | None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("CCHMI_SIMD", None)
    if simd is not None:
        env["CCHMI_SIMD"] = simd
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    """Point sets and radii, and the reference neighbours of x. The radius of a point is its K-th
    neighbour distance (ties with other points' distances are then certain), except every 7th point
    gets radius 0. The second space y of the pair counts is one grid set per dtype."""
    data, ref = {}, {}
    for dtype in DTYPES:
        y = make_points("grid", N, 3, dtype, seed=99)
        ry = reference.knn(y, K)[0][:, -1].copy()
        for kind, d in SHAPES:
            key = f"{kind}-d{d}-{np.dtype(dtype).name}"
            x = make_points(kind, N, d, dtype, seed=d)
            ref[key] = reference.knn(x, K)
            rx = ref[key][0][:, -1].copy()
            rx[::7] = 0
            data.update({f"{key}/x": x, f"{key}/y": y, f"{key}/rx": rx, f"{key}/ry": ry})
    path = tmp_path_factory.mktemp("simd") / "cases.npz"
    np.savez(path, **data)
    return path, data, ref


@pytest.fixture(scope="module")
def results(cases, tmp_path_factory):
    """{level: outputs} for every level this CPU supports, each computed in its own process."""
    path = cases[0]
    out = {}
    for level in cpu_levels():
        dest = tmp_path_factory.mktemp(level) / "out.npz"
        done = run_python(WORKER, str(path), str(dest), simd=level)
        assert done.returncode == 0, done.stderr[-3000:]
        with np.load(dest) as f:
            out[level] = {name: f[name] for name in f.files}
    return out


@pytest.mark.slow
def test_levels_agree_bit_for_bit(results):
    levels = list(results)
    base = results["baseline"]
    for level in levels:
        assert str(results[level].pop("simd")) == level
    for level in levels[1:]:
        assert results[level].keys() == base.keys()
        for name, value in base.items():
            assert value.dtype == results[level][name].dtype
            np.testing.assert_array_equal(results[level][name], value, err_msg=f"{level} vs baseline: {name}")
    if len(levels) == 1:
        pytest.skip("this CPU supports the baseline level only: nothing to compare")


@pytest.mark.slow
def test_baseline_matches_reference(cases, results):
    _, data, ref = cases
    out = results["baseline"]
    ref_y = {}  # the y sets are shared: count each once
    for key, (ref_dist, ref_idx) in ref.items():
        x, y, rx, ry = (data[f"{key}/{part}"] for part in ("x", "y", "rx", "ry"))
        for method in (1, 2):
            np.testing.assert_array_equal(out[f"{key}/knn{method}/idx"], ref_idx, err_msg=f"{key} knn {method}")
            np.testing.assert_array_equal(out[f"{key}/knn{method}/dist"], ref_dist, err_msg=f"{key} knn {method}")
        for inclusive in (False, True):
            ref_x = reference.count_within(x, rx, inclusive)
            if (y.dtype, inclusive) not in ref_y:
                ref_y[y.dtype, inclusive] = reference.count_within(y, ry, inclusive)
            for method in (1, 2, 3) if x.shape[1] == 1 else (1, 2):
                np.testing.assert_array_equal(out[f"{key}/count{method}/{inclusive}"], ref_x, err_msg=key)
            for method in (0, 2):
                np.testing.assert_array_equal(out[f"{key}/pair{method}/{inclusive}/x"], ref_x, err_msg=key)
                np.testing.assert_array_equal(out[f"{key}/pair{method}/{inclusive}/y"], ref_y[y.dtype, inclusive],
                                              err_msg=key)


def test_level_in_use_is_the_best_supported():
    import cchmi._cpu as cpu

    info = cpu.build_info()
    supported = cpu_levels()
    if info["compiler"].startswith(("gcc", "clang")):
        assert info["simd_levels"] == supported
    assert info["simd_error"] is None
    if "CCHMI_SIMD" not in os.environ:
        assert info["simd"] == info["simd_levels"][-1]


CHECK_ERROR = r"""
import numpy as np
from cchmi import _cpu

info = _cpu.build_info()
assert info["simd"] is None, info
print(info["simd_error"])
try:
    _cpu.knn(np.zeros((4, 2)), 1)
except RuntimeError as exc:
    print(exc)
else:
    raise SystemExit("no error")
"""


@pytest.mark.parametrize("value", ["sse9", "AVX-512", "avx512"])
def test_unusable_level_is_a_clean_error(value):
    if value in cpu_levels():
        pytest.skip(f"this CPU supports {value}")
    done = run_python(CHECK_ERROR, simd=value)
    assert done.returncode == 0, done.stderr[-3000:]
    report, error = done.stdout.strip().splitlines()
    assert report == error
    assert f"CCHMI_SIMD={value}" in error and "baseline" in error
