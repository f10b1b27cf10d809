"""Import of the compiled CPU module with OpenMP threads that do not spin on a busy machine.

libgomp's worker threads spin for a while (active waiting) at every barrier and between parallel
regions. On a machine whose cores are busy with other work those spinning threads compete with the
threads doing the work and with the other processes: a small estimate measured 3.5-5.2 s instead
of 0.2 s on a loaded 2-core machine. ``OMP_WAIT_POLICY=PASSIVE`` makes them sleep instead, at a cost
of microseconds per parallel region on an idle machine.

libgomp reads its environment once, when it is loaded, and offers no call to change the policy
later; cchmi._cpu loads it. So the variable is set for the import only, when the user has chosen no
policy (neither ``OMP_WAIT_POLICY`` nor ``GOMP_SPINCOUNT`` is set), and the environment is restored
afterwards.

If another module loaded the same runtime earlier (torch ships a libgomp.so.1 and loads it on
``import torch``), its settings stand and its threads spin: with torch imported first and a CPU hog
per core, cch took 5-16x as long. Then, unless the user chose a policy, calls that leave the thread
count to OpenMP (``cchmi.set_num_threads`` not called, or called with 0) run one thread more than
processors whenever other processes' threads are runnable, checked at each call: libgomp spins only
briefly while it manages more threads than processors (csrc/bind_cpu.cpp). On an idle machine the
default team stands.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

_USER_CHOICES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def _mapped_files() -> set[str]:
    """Paths of the files mapped into this process (its shared libraries among them); empty where
    /proc/self/maps is not readable (not Linux)."""
    try:
        with open("/proc/self/maps") as maps:
            return {fields[5].strip() for fields in (line.split(None, 5) for line in maps) if len(fields) == 6}
    except OSError:
        return set()


def import_cpu_module() -> ModuleType:
    """Import and return cchmi._cpu (ImportError when it was not built), its OpenMP runtime waiting
    passively unless OMP_WAIT_POLICY or GOMP_SPINCOUNT says otherwise; where the runtime was loaded
    before (so waits as its loader chose) and the user chose no policy, default thread counts adapt
    to the load (see the module's docstring)."""
    if "cchmi._cpu" in sys.modules:
        return sys.modules["cchmi._cpu"]
    if any(name in os.environ for name in _USER_CHOICES):
        return importlib.import_module("cchmi._cpu")
    loaded_before = _mapped_files()
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        module = importlib.import_module("cchmi._cpu")
    finally:
        del os.environ["OMP_WAIT_POLICY"]
    runtime = module.build_info().get("openmp_runtime")  # None: unknown, or a module built before the key
    if runtime is not None and os.path.realpath(runtime) in loaded_before:
        module.set_threads_follow_load(True)
    return module
