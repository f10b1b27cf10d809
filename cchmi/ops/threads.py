"""The CPU kernels' thread count: set_num_threads / get_num_threads, and one thread in a process
forked after the kernels were loaded (OpenMP's thread pool does not survive fork)."""

from __future__ import annotations

import os
import sys
import warnings

from cchmi._validate import as_int

_state = {"n_threads": 0, "forked": False}


def _after_fork_in_child() -> None:
    """libgomp's thread pool does not survive fork(): a child forked after the parent's OpenMP
    threads started hangs in its first parallel region. A child forked once the CPU kernels are
    loaded therefore runs them on one thread (fork-based multiprocessing, ProcessPoolExecutor's
    default start method on Linux); spawn or forkserver children are not affected."""
    if "cchmi._cpu" in sys.modules:
        _state["forked"], _state["n_threads"] = True, 1


os.register_at_fork(after_in_child=_after_fork_in_child)


def max_threads() -> int:
    """The most threads set_num_threads accepts: 4 per CPU (more only costs; far more makes
    thread creation fail inside OpenMP)."""
    return 4 * (os.cpu_count() or 1)


def set_num_threads(n: int) -> None:
    """Threads used by the CPU kernels: 1 to 4 per CPU; 0 restores OpenMP's default (all cores, or
    OMP_NUM_THREADS). In a process forked after the kernels were loaded it stays 1, with a warning
    (OpenMP cannot start threads there)."""
    n = as_int(n, "n", 0)
    if n > max_threads():
        raise ValueError(f"n must be at most {max_threads()} (4 threads per CPU; this machine has {os.cpu_count()}), "
                         f"got {n}")
    if _state["forked"] and n != 1:
        warnings.warn("this process was forked after cchmi's OpenMP kernels were loaded, where OpenMP threads "
                      "hang: the kernels keep 1 thread (start workers with the spawn or forkserver method for more)",
                      RuntimeWarning, stacklevel=2)
        n = 1
    _state["n_threads"] = n


def get_num_threads() -> int:
    """Threads the CPU kernels use (0: OpenMP's default)."""
    return _state["n_threads"]
