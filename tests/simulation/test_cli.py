"""``hbopt box-sim`` serves the map; a client discovers it over TCP."""

from __future__ import annotations

import subprocess
import sys

import pytest

from adapters.heartbeat.client import HeartbeatClient
from adapters.heartbeat.esi_types import ControlState
from hbopt.cli import main

pytestmark = pytest.mark.anyio


async def test_box_sim_command_serves_esi(tmp_path):
    cmd = [sys.executable, "-m", "hbopt", "box-sim", "--port", "0", "--speed", "60",
           "--start", "2024-06-10T08:00Z", "--run-for", "20"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        port = int(line.split(" on ")[1].split()[0].rsplit(":", 1)[1])
        async with HeartbeatClient("127.0.0.1", port) as c:
            info = await c.discover()
            st = await c.read_status()
        assert info.magic == "ESI1" and st.control_state == ControlState.LOCAL
        assert st.box_time is not None and st.box_time.year == 2024
    finally:
        proc.terminate()
        proc.wait(10)


def test_bad_speed_is_a_user_error(capsys):
    assert main(["box-sim", "--port", "0", "--speed", "-1"]) == 2
    assert "--speed" in capsys.readouterr().err
