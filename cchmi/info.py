"""What was built and what is importable: ``cchmi.info()`` and ``cchmi info``."""

from __future__ import annotations

import importlib
import importlib.util
import platform

from cchmi import ops
from cchmi._version import __version__
from cchmi._loader import import_cpu_module


def _module_version(name: str) -> str | None:
    if importlib.util.find_spec(name) is None:
        return None
    try:
        return str(getattr(importlib.import_module(name), "__version__", "unknown"))
    except Exception as exc:  # importable on paper but broken: say so
        return f"import failed: {type(exc).__name__}: {exc}"


def info() -> dict:
    """A dict of build and runtime facts: version, compiled modules, OpenMP threads, CUDA build facts
    (and devices, if a driver is present), optional packages and available backends.

    Touches a GPU only through the CUDA runtime's device query, and only if cchmi._cuda was built.
    """
    facts: dict = {"cchmi": __version__, "python": platform.python_version(), "platform": platform.platform()}
    try:
        cpu = dict(import_cpu_module().build_info())
        cpu["threads_in_use"] = ops.get_num_threads() or cpu["max_threads"]
        facts["cpu_module"] = cpu
    except ImportError as exc:
        facts["cpu_module"] = f"not built ({exc})"
    try:
        from cchmi import _cuda

        facts["cuda_module"] = {
            "arches": _cuda.arches,
            "nvcc": _cuda.compiler_version,
            "runtime": _cuda.runtime_version(),
            "driver": _cuda.driver_version(),
            "devices": [_cuda.device_name(i) for i in range(_cuda.device_count())],
            "max_k": _cuda.max_k,
        }
    except ImportError:
        facts["cuda_module"] = "not built (no CUDA compiler at build time, or CCHMI_CUDA=OFF)"
    facts["numpy"] = _module_version("numpy")
    for name in ("torch", "triton", "faiss"):
        facts[name] = _module_version(name)
    facts["backends"] = ops.available_backends()
    return facts


def format_info(facts: dict) -> str:
    lines = []
    for key, value in facts.items():
        if isinstance(value, dict):
            lines.append(f"{key}:")
            lines.extend(f"  {k}: {v}" for k, v in value.items())
        else:
            lines.append(f"{key}: {'not installed' if value is None else value}")
    return "\n".join(lines)
