"""Import of the compiled CPU module with OpenMP threads that wait passively by default.

libgomp's worker threads spin for a while (active waiting) at every barrier and between parallel
regions. On a machine whose cores are busy with other work those spinning threads compete with the
threads doing the work and with the other processes: a small estimate measured 3.5-5.2 s instead
of 0.2 s on a loaded 2-core machine. ``OMP_WAIT_POLICY=PASSIVE`` makes them sleep instead, at a cost
of microseconds per parallel region on an idle machine.

libgomp reads its environment once, when it is loaded, and offers no call to change the policy
later; cchmi._cpu loads it. So the variable is set for the import only, when the user has chosen no
policy (neither ``OMP_WAIT_POLICY`` nor ``GOMP_SPINCOUNT`` is set), and the environment is restored
afterwards. If another module loaded the same libgomp earlier, its settings stand.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

_USER_CHOICES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def import_cpu_module() -> ModuleType:
    """Import and return cchmi._cpu (ImportError when it was not built), its OpenMP runtime waiting
    passively unless OMP_WAIT_POLICY or GOMP_SPINCOUNT says otherwise."""
    if "cchmi._cpu" in sys.modules or any(name in os.environ for name in _USER_CHOICES):
        return importlib.import_module("cchmi._cpu")
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        return importlib.import_module("cchmi._cpu")
    finally:
        del os.environ["OMP_WAIT_POLICY"]
