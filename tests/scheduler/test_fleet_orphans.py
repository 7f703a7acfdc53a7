"""A killed scheduler takes its solver worker processes with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

CHILD = """
import concurrent.futures, os, sys, time
from scheduler.fleet import FleetConfig, FleetRunner
runner = FleetRunner(FleetConfig(workers=2))
runner.open()
pool = runner._executor
assert isinstance(pool, concurrent.futures.ProcessPoolExecutor)
list(pool.map(os.getpid, range(0)))  # nothing yet; start the workers with real calls:
futures = [pool.submit(time.sleep, 0.2) for _ in range(4)]
concurrent.futures.wait(futures)
print(" ".join(str(pid) for pid in pool._processes), flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose; its parent (the forkserver) may be gone too
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_workers_die_when_the_scheduler_is_killed() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
    )
    assert parent.stdout is not None
    workers = [int(pid) for pid in parent.stdout.readline().split()]
    assert len(workers) == 2 and all(_alive(pid) for pid in workers)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)
