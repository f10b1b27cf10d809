"""Shared fixtures and the GPU switch.

Tests marked ``gpu`` are skipped on machines without a usable NVIDIA GPU, unless ``--require-gpu``
or ``CCHMI_REQUIRE_GPU=1`` is given: then a missing GPU fails them, so a GPU run cannot pass
vacuously. Collection never touches CUDA: the probe runs only when a gpu test is about to run.

The op tests run on every backend through the ``op_backend`` fixture: cpu, numpy (the reference),
triton (under TRITON_INTERPRET=1, set here once, before anything imports Triton, on machines with
no NVIDIA device), the CUDA kernels under the block emulator (``cuda-emulated``: cchmi._cuda's own
bindings compiled over tests/cuda/emulate.h, on CPU tensors) and faiss.

Property tests (hypothesis) draw their examples from a fixed seed per test (``derandomize``) and keep
no example database: a run is reproducible, and CI cannot fail on a draw no earlier run made
(``HYPOTHESIS_PROFILE=random`` draws fresh examples, to hunt for failures locally).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import numpy as np
import pytest

try:
    from hypothesis import settings as hypothesis_settings
except ImportError:  # a machine without the test extra (bench/gpu_check.sh's) runs the tests that need none
    pass
else:
    hypothesis_settings.register_profile("fixed", derandomize=True, database=None)
    hypothesis_settings.register_profile("random", database=None)
    hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fixed"))

ROOT = Path(__file__).resolve().parents[1]
if not Path("/dev/nvidiactl").exists():  # no NVIDIA driver: Triton kernels run in its interpreter
    os.environ.setdefault("TRITON_INTERPRET", "1")
# Child Pythons of the tests (python -c ..., python -m cchmi) must import the installed build, not
# the checkout they start in: safe-path mode (Python 3.11+) keeps the working directory off sys.path.
os.environ["PYTHONSAFEPATH"] = "1"
OP_BACKENDS = ("cpu", "numpy", "triton", "cuda-emulated", "faiss")
EMULATOR_FLAGS = ["-std=c++20", "-O2", "-pthread", "-Wno-subobject-linkage", f"-I{ROOT / 'csrc'}",
                  f"-I{ROOT / 'tests/cuda'}"]


def pytest_configure(config):
    # Running against the source tree (e.g. `python -m pytest` from the repository root puts it
    # first on sys.path) would silently test the NumPy fallback: refuse instead.
    try:
        from cchmi._loader import import_cpu_module

        import_cpu_module()  # as the library does: OpenMP threads wait passively
    except ImportError as exc:
        raise pytest.UsageError(
            f"cchmi._cpu is not importable ({exc}); install the package (pip install \".[test]\") and run "
            "`pytest` so that the installed build, not the source tree, is imported"
        ) from None


def pytest_collection_modifyitems(config, items):
    # Triton's interpreter (no NVIDIA device) takes seconds to minutes per case: every case that runs
    # the triton backend is then `slow`, in the full suite but not in the quick loop.
    if os.environ.get("TRITON_INTERPRET") != "1":
        return
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and any(isinstance(v, str) and v == "triton" for v in callspec.params.values()):
            item.add_marker(pytest.mark.slow)


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


def cxx() -> str | None:
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++")


def compile_emulated(args: list[str], timeout: int = 900) -> None:
    """The host C++ compiler over CUDA sources under the block emulator (tests/cuda/emulate.h)."""
    build = subprocess.run([cxx(), *EMULATOR_FLAGS, *args], capture_output=True, text=True, timeout=timeout,
                           check=False)
    assert build.returncode == 0, build.stderr[-4000:]


@pytest.fixture(scope="session")
def emulated_cuda(tmp_path_factory):
    """cchmi._cuda's pybind11 module (csrc/bind_cuda.cpp) built over the emulated CUDA kernels."""
    if cxx() is None:
        pytest.skip("no C++ compiler found")
    pybind11 = pytest.importorskip("pybind11")
    pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("emulated") / f"_cuda{sysconfig.get_config_var('EXT_SUFFIX')}"
    compile_emulated(["-shared", "-fPIC", f"-I{pybind11.get_include()}", f"-I{sysconfig.get_paths()['include']}",
                      '-DCCHMI_CUDA_ARCHES="emulated"', '-DCCHMI_CUDA_COMPILER_VERSION="none"', "-x", "c++",
                      str(ROOT / "tests/cuda/emulated_module.cpp"), "-o", str(out)])
    spec = importlib.util.spec_from_file_location("_cuda", out)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_backend(name: str, request):
    """The backend object `name` of OP_BACKENDS, or a skip when it cannot run here."""
    from cchmi import ops
    from cchmi.ops import registry

    if name == "cuda-emulated":
        torch = pytest.importorskip("torch")
        from cchmi.ops.cuda import CudaBackend

        return CudaBackend(request.getfixturevalue("emulated_cuda"), torch.device("cpu"))
    if not registry.usable(name):
        pytest.skip(f"backend {name} is not available here")
    return ops.resolve(name)


@pytest.fixture(params=OP_BACKENDS)
def op_backend(request):
    return make_backend(request.param, request)


@pytest.fixture(params=("triton", "cuda-emulated"))
def device_backend(request):
    return make_backend(request.param, request)


# The smallest sweep the experiment runner allows: two one-epoch jobs on 100 synthetic rows
# (tests/test_sweep_faults.py, tests/test_executors.py).
def toy_multiview(n: int, seed: int = 0):
    """A two-view, three-class MultiView ("teacher": 2 informative columns, "student": 2 noisier
    ones and a noise column) for the KD trainer's tests."""
    from cchmi.data.multiview import MultiView

    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    z = rng.standard_normal((n, 2)) + labels[:, None] * np.array([1.5, -1.0])
    views = {"teacher": (z + 0.3 * rng.standard_normal((n, 2))).astype(np.float32),
             "student": np.hstack([z + rng.standard_normal((n, 2)), rng.standard_normal((n, 1))]).astype(np.float32)}
    return MultiView("toy", views, labels, "toy task")


TINY_SWEEP = {
    "name": "tiny",
    "seeds": 1,
    "pairs": [["teacher", "student"]],
    "data": {"name": "mfh", "n": 100, "shared": 1, "teacher_only": 1, "student_only": 1, "nuisance": 1},
    "train": {"epochs": 1, "hidden": 4, "patience": 1},
    "split": {"val": 0.3, "test": 0.3},
    "sweep": {"pairing": ["aligned", "label"]},
}
