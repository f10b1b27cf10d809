"""Every Triton kernel of cchmi compiles for NVIDIA GPUs (sm_80 and sm_90, down to cubin).

CI has no GPU, and the interpreter (TRITON_INTERPRET=1, used by the other tests) runs a kernel's
Python rather than Triton's compiler, so it cannot see what only the compiler refuses (a global
that is not a constexpr, a type mismatch across a loop, an unsupported construct). Triton compiles
without a device; the compilation runs in a subprocess without TRITON_INTERPRET.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("triton")
pytest.importorskip("torch")

_COMPILE = """
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from cchmi._triton import count, knn, rowstats, tiles

def build(fn, signature, constexprs, target):
    triton.compile(ASTSource(fn=fn, signature=signature, constexprs=constexprs), target=target)

def with_blocks(signature):  # the query-block variant's signature: a BLOCKS pointer just before n
    out = {}
    for name, kind in signature.items():
        if name == "n":
            out["BLOCKS"] = "*i64"
        out[name] = kind
    return out

for arch in (80, 90):
    target = GPUTarget("cuda", arch, 32)
    blocks = {"BLOCK_M": tiles.BLOCK_M, "BLOCK_N": tiles.BLOCK_N}
    for dt in ("fp32", "fp64"):
        sig = {"P": "*" + dt, "IDX": "*i64", "LO": "*" + dt, "HI": "*" + dt, "OUT_D": "*" + dt, "OUT_I": "*i64",
               "n": "i32", "d": "i32", "k": "i32", "n_tiles": "i32",
               "KP": "constexpr", "BLOCK_M": "constexpr", "BLOCK_N": "constexpr"}
        build(knn._knn_kernel, sig, {"KP": 8, **blocks}, target)
        build(knn._knn_blocks_kernel, with_blocks(sig), {"KP": 8, **blocks}, target)
        sig = {name: "*" + dt for name in ("X", "Y", "LOX", "HIX", "LOY", "HIY", "RX", "RY")}
        sig.update({"OUT_X": "*i64", "OUT_Y": "*i64", "n": "i32", "dx": "i32", "dy": "i32", "n_tiles": "i32",
                    "HAS_Y": "constexpr", "INCLUSIVE": "constexpr", "BLOCK_M": "constexpr", "BLOCK_N": "constexpr"})
        for has_y in (True, False):
            build(count._count_kernel, sig, {"HAS_Y": has_y, "INCLUSIVE": has_y, **blocks}, target)
            build(count._count_blocks_kernel, with_blocks(sig), {"HAS_Y": has_y, "INCLUSIVE": has_y, **blocks}, target)
    for dt, ieee in (("fp32", True), ("fp32", False), ("bf16", False)):
        consts = {"CLIP": True, "IEEE": ieee, "UPCAST": False, "BLOCK_M": rowstats.BLOCK_M,
                  "BLOCK_N": rowstats.BLOCK_N, "BLOCK_D": 128}
        ints = {name: "i32" for name in ("m", "n", "d", "offset", "stride_a", "stride_b")}
        sig = {"A": "*" + dt, "B": "*" + dt, "LSE_ALL": "*fp32", "LSE_OFF": "*fp32", "SP_OFF": "*fp32", **ints,
               "tau": "fp32", **{name: "constexpr" for name in consts}}
        build(rowstats._rowstats_fwd, sig, consts, target)
        for fn, grad, stride in ((rowstats._rowstats_bwd_a, "DA", "stride_da"),
                                 (rowstats._rowstats_bwd_b, "DB", "stride_db")):
            sig = {"A": "*" + dt, "B": "*" + dt, grad: "*fp32",
                   **{name: "*fp32" for name in ("LSE_ALL", "LSE_OFF", "G_ALL", "G_OFF", "G_SP")}, **ints,
                   stride: "i32", "tau": "fp32", **{name: "constexpr" for name in consts}}
            build(fn, sig, consts, target)
print("ok")
"""


@pytest.mark.slow
def test_triton_kernels_compile_for_nvidia_gpus():
    env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    done = subprocess.run([sys.executable, "-c", _COMPILE], capture_output=True, text=True, env=env, timeout=900,
                          check=False)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-4000:]
