"""Which backends exist here, which one ``auto`` picks, and the CPU kernels' thread count.

``auto`` picks, for inputs that are torch CUDA tensors, ``cuda`` then ``triton`` then ``cpu``; for
host inputs ``cpu``, except that problems of at least ``AUTO_GPU_MIN_N`` points go to ``cuda`` or
``triton`` when a GPU is visible (the copy to the device is negligible at that size). The Triton
interpreter (TRITON_INTERPRET=1) is never an automatic choice. An explicit request that cannot be
met raises with the reason and the list of available backends. The backend that ran is recorded in
every result.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import warnings

from cchmi._extras import source_checkout_hint
from cchmi._loader import import_cpu_module

KNOWN_BACKENDS = ("auto", "cpu", "cuda", "triton", "faiss", "numpy")
# Host inputs at least this large go to a GPU backend under backend="auto" (when one is usable).
AUTO_GPU_MIN_N = 50_000

_state = {"warned_fallback": False}


def import_compiled(name: str):
    """cchmi.<name> (a compiled module), or None when it was not built. cchmi._cpu is imported with
    its OpenMP threads waiting passively unless the user chose a policy (cchmi._loader)."""
    try:
        if name == "_cpu":
            return import_cpu_module()
        return importlib.import_module(f"cchmi.{name}")
    except ImportError:
        return None


def faiss_module():
    try:
        return importlib.import_module("faiss")
    except ImportError:
        return None


def cuda_module():
    """cchmi._cuda when it was built and sees a GPU, else None."""
    m = import_compiled("_cuda")
    return m if m is not None and m.device_count() > 0 else None


def torch_sees_gpu() -> bool:
    m = import_compiled("_cuda")
    if m is not None and m.device_count() == 0:
        return False  # answered without importing torch
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def triton_usable() -> bool:
    if importlib.util.find_spec("triton") is None or importlib.util.find_spec("torch") is None:
        return False
    return _interpreting() or torch_sees_gpu()


def usable(name: str) -> bool:
    if name == "cuda":
        return cuda_module() is not None and torch_sees_gpu()
    if name == "triton":
        return triton_usable()
    if name == "cpu":
        return import_compiled("_cpu") is not None
    if name == "faiss":
        return faiss_module() is not None
    return name == "numpy"


def available_backends() -> list[str]:
    """Names of the backends usable here (GPU backends first; see the module doc for ``auto``)."""
    return [name for name in ("cuda", "triton", "cpu", "faiss", "numpy") if usable(name)]


def _unavailable_reason(name: str) -> str:
    if name == "cpu":
        return "the compiled module cchmi._cpu is missing (reinstall with `pip install .` from a source checkout)"
    if name == "cuda":
        if import_compiled("_cuda") is None:
            return ("cchmi._cuda was not built (install on a machine with nvcc, or force it with "
                    "`CCHMI_CUDA=ON pip install .`)")
        return "no CUDA GPU is visible (cchmi._cuda and torch must both see one)"
    if name == "triton":
        if importlib.util.find_spec("triton") is None or importlib.util.find_spec("torch") is None:
            return "Triton is not installed: `pip install cchmi[gpu]` (torch and triton)"
        return "Triton needs a CUDA GPU (or TRITON_INTERPRET=1 to run its kernels on the CPU, slowly)"
    if name == "faiss":
        return "faiss is not installed: `pip install cchmi[faiss]` (faiss-cpu), or install faiss-gpu"
    return ""


def input_device(*arrays):
    """The torch CUDA device of the first input that is a CUDA tensor, else None (host data)."""
    for a in arrays:
        dev = getattr(a, "device", None)
        if dev is not None and getattr(dev, "type", None) == "cuda":
            return dev
    return None


def _gpu_device(device):
    if device is not None:
        return device
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")  # the Triton interpreter


def auto(device, n: int) -> str:
    """The backend ``auto`` picks for inputs on `device` (None: host) with n points."""
    gpu_first = device is not None or (n >= AUTO_GPU_MIN_N and torch_sees_gpu())
    order = ("cuda", "triton", "cpu") if gpu_first else ("cpu",)
    for name in order:
        if name == "triton" and not torch_sees_gpu():
            continue  # the interpreter is for tests, never an automatic choice
        if usable(name):
            return name
    return "numpy"


def resolve(name: str, *, device=None, n: int = 0):
    """The backend object for `name`. `device`: the torch CUDA device holding the inputs, if any;
    `n`: the number of points (``auto`` sends large host problems to a GPU)."""
    if not isinstance(name, str) or name not in KNOWN_BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, KNOWN_BACKENDS))}; got {name!r}")
    if name == "auto":
        name = auto(device, n)
        if name == "numpy" and not _state["warned_fallback"]:
            _state["warned_fallback"] = True
            hint = source_checkout_hint()
            warnings.warn(
                f"backend 'auto' fell back to the slow NumPy reference: {_unavailable_reason('cpu')}"
                + (f" ({hint})." if hint else "."),
                RuntimeWarning,
                stacklevel=4,
            )
    if not usable(name):
        raise ValueError(
            f"backend {name!r} is not available: {_unavailable_reason(name)}. "
            f"Available here: {', '.join(available_backends())}"
        )
    if name == "cuda":
        from cchmi.ops.cuda import CudaBackend

        return CudaBackend(cuda_module(), _gpu_device(device))
    if name == "triton":
        from cchmi.ops.triton import TritonBackend

        return TritonBackend(_gpu_device(device))
    from cchmi.ops.numpy import NumpyBackend

    if name == "numpy":
        return NumpyBackend()
    cpu = import_compiled("_cpu")
    counter = NumpyBackend() if cpu is None else _cpu_backend(cpu)
    if name == "cpu":
        return counter
    from cchmi.ops.faiss import FaissBackend

    return FaissBackend(faiss_module(), counter)


def _cpu_backend(module):
    from cchmi.ops.cpu import CpuBackend

    return CpuBackend(module)
