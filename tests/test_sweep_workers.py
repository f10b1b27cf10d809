"""The local pool's workers end with the driver: after a SIGKILL of the sweep, its spawned workers
(a few hundred MB each) used to keep running their queued jobs forever."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")

from cchmi.distill.sweep import runner  # noqa: E402

# A driver with the sweep's pool of 2 workers and 6 slow jobs; it prints the workers' pids once both run.
DRIVER = """
import time
from cchmi.distill.sweep import runner
pool = runner._pool(2)
futures = [pool.submit(time.sleep, 120) for _ in range(6)]
while len(pool._processes) < 2:
    time.sleep(0.05)
time.sleep(1.0)  # both workers past their initializer, each in a job
print(*pool._processes, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (an unreaped corpse counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to tell a zombie from a live worker")
def test_workers_die_with_a_killed_driver():
    driver = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True)
    try:
        workers = [int(pid) for pid in driver.stdout.readline().split()]
        assert len(workers) == 2 and all(_alive(pid) for pid in workers)
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        driver.stdout.close()


def test_a_worker_whose_driver_is_gone_takes_no_job():
    """The portable check (no prctl): a worker started by another process than its parent exits
    before the job, with status 1."""
    code = ("from cchmi.distill.sweep import runner\n"
            "runner.run_pooled(1, {'key': 'x'}, '/nonexistent', None, None, False)\n"
            "print('ran')")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "ran" not in run.stdout
    assert runner.PR_SET_PDEATHSIG == 1
