"""Ctrl-C during a long compiled call stops it: the kernels poll for signals between work items
(csrc/common/interrupt.h), so KeyboardInterrupt arrives within a poll interval, not when the kernel
would have finished (minutes at these sizes on two cores).

Each case runs in a subprocess that reports when its call starts; SIGINT follows one second later.
Timing bounds are loose (a loaded CI machine): the call must still have been running when the
signal came, and the process must exit within WAIT_S of it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

WAIT_S = 8.0

WORKER = r"""
import sys, time
import numpy as np
from cchmi._loader import import_cpu_module

_cpu = import_cpu_module()

op = sys.argv[1]
rng = np.random.default_rng(0)
x = rng.standard_normal((200_000, 16)).astype(np.float32)
y = rng.standard_normal((200_000, 16)).astype(np.float32)
r = np.full(200_000, 0.5, dtype=np.float32)
calls = {
    "knn-brute": lambda: _cpu.knn(np.hstack([x, y]), 3, 2),
    "knn-tree": lambda: _cpu.knn(x[:, :10].copy(), 50, 1),
    "count-brute": lambda: _cpu.count_within(np.hstack([x, y]), r, False, 2),
    "pair-brute": lambda: _cpu.count_within_pair(x, y, r, r, False, 2),
}
print("start", flush=True)
t0 = time.perf_counter()
try:
    calls[op]()
except KeyboardInterrupt:
    print(f"interrupted after {time.perf_counter() - t0:.2f} s", flush=True)
    sys.exit(3)
print(f"finished after {time.perf_counter() - t0:.2f} s", flush=True)
"""


@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT")
@pytest.mark.parametrize("op", ["knn-brute", "knn-tree", "count-brute", "pair-brute"])
def test_ctrl_c_stops_a_long_kernel(op):
    # SIGINT back to its default in the child: a test run started in the background of a
    # non-interactive shell (`cmd &`) has SIGINT ignored, which the child would inherit (and Python
    # then installs no KeyboardInterrupt handler): the kernels' polling is what is tested here.
    proc = subprocess.Popen([sys.executable, "-c", WORKER, op], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stdout.readline().strip() == "start", proc.stderr.read()[-3000:]
        time.sleep(1.0)
        assert proc.poll() is None, f"{op} finished within a second: make the case larger"
        proc.send_signal(signal.SIGINT)
        sent = time.perf_counter()
        out, err = proc.communicate(timeout=WAIT_S)
        waited = time.perf_counter() - sent
    finally:
        proc.kill()
        proc.communicate()  # reaps it and closes its pipes (left open, they warn in a later test)
    assert proc.returncode == 3, f"rc={proc.returncode}\n{out}\n{err[-3000:]}"
    assert out.startswith("interrupted"), out
    assert waited < WAIT_S
