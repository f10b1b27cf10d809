"""Smoke test of an installed cchmi wheel, run natively and under emulated CPUs by .ci/wheel_check.

Imports cchmi without torch, computes a KSG-1 estimate and the exact kNN distances, neighbours and
marginal counts of the compiled brute-force (SIMD-blocked) kernels on a fixed seeded sample, and
prints them as one JSON object: the estimate as a float's repr, the arrays as SHA-256 digests.

    python wheel_smoke.py                                 # also checks them against cchmi.reference
    python wheel_smoke.py --expect native.json [--simd avx2]

Without --expect, the neighbours and counts must equal the NumPy oracle's (cchmi.reference) bit for
bit; with --expect, the estimate and every digest must equal the reference run's (bit-identical
results across SIMD levels is the numerical contract); with --simd, the SIMD level that
cchmi.info() reports must be that one. Keep n small: CPython under qemu user mode is slow.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys

import numpy as np

import cchmi
from cchmi import _cpu, reference

N, DX, DY, K = 2000, 8, 8, 3
BRUTE = 2  # _cpu method: blocked brute force, the kernels that have SIMD variants


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


def facts(check_oracle: bool) -> dict:
    assert "torch" not in sys.modules, "import cchmi imported torch"
    rng = np.random.default_rng(20261130)
    z = rng.standard_normal((N, DX))
    x = z
    y = 0.8 * z[:, :DY] + 0.6 * rng.standard_normal((N, DY))
    out: dict = {"ksg1": repr(cchmi.ksg_mi(x, y, k=K).estimate)}
    for dtype in (np.float64, np.float32):
        xs, ys = x.astype(dtype), y.astype(dtype)
        joint = np.ascontiguousarray(np.hstack([xs, ys]))
        dist, idx, _ = _cpu.knn(joint, K, method=BRUTE)
        radius = np.ascontiguousarray(dist[:, -1])
        cx, cy, _ = _cpu.count_within_pair(xs, ys, radius, radius, False, method=BRUTE)
        if check_oracle:
            ref_dist, ref_idx = reference.knn(joint, K)
            assert np.array_equal(dist, ref_dist) and np.array_equal(idx, ref_idx), f"{dtype}: kNN != oracle"
            assert np.array_equal(cx, reference.count_within(xs, radius, False)), f"{dtype}: x counts != oracle"
            assert np.array_equal(cy, reference.count_within(ys, radius, False)), f"{dtype}: y counts != oracle"
        name = np.dtype(dtype).name
        out[f"{name}_dist"] = _digest(dist)
        out[f"{name}_idx"] = _digest(idx)
        out[f"{name}_counts"] = _digest(np.stack([cx, cy]))
        out[f"{name}_count_sum"] = int(cx.sum() + cy.sum())
    assert "torch" not in sys.modules, "the estimators imported torch"
    cpu = cchmi.info()["cpu_module"]
    out["simd"] = cpu.get("simd")
    if cpu.get("simd_error"):
        out["simd_error"] = cpu["simd_error"]
    out["march_native"] = cpu.get("march_native", False)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expect", help="JSON printed by a reference run: results must be identical")
    parser.add_argument("--simd", help="the SIMD level cchmi.info() must report")
    args = parser.parse_args()
    got = facts(check_oracle=args.expect is None)
    print(json.dumps(got, sort_keys=True))
    failures = []
    if got["march_native"]:
        failures.append("built with -march=native: not a portable wheel")
    if args.expect:
        with open(args.expect) as f:
            want = json.load(f)
        failures += [
            f"{key}: {got.get(key)} != reference {want[key]}"
            for key in want
            if key not in ("simd", "simd_error", "march_native") and got.get(key) != want[key]
        ]
    if args.simd and got["simd"] != args.simd:
        reason = f": {got['simd_error']}" if "simd_error" in got else ""
        failures.append(f"SIMD level {got['simd']}, expected {args.simd}{reason}")
    for failure in failures:
        print("FAIL:", failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
