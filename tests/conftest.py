"""Fixtures shared by several test packages: two days of real profiles and a real box simulator
on 127.0.0.1 (ephemeral port) on a simulated clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from adapters.clock import SimClock
from adapters.heartbeat.client import HeartbeatClient
from simulation.box import HeartbeatBox
from simulation.box_sim import BoxSimulator, start_box_simulator
from simulation.twin import Profiles, SiteParams, Twin, bundled_profiles

START = "2024-06-10T00:00:00Z"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def june_profiles() -> Profiles:
    """Two June days of real weather, BDEW load and Norwegian EV sessions."""
    return bundled_profiles(START, 2, SiteParams())


@dataclass
class Rig:
    sim: BoxSimulator
    box: HeartbeatBox
    clock: SimClock

    def client(self, **kw: object) -> HeartbeatClient:
        return HeartbeatClient(
            "127.0.0.1",
            self.sim.port,
            clock=self.clock,
            timeout_s=1.0,
            **kw,  # type: ignore[arg-type]
        )


@pytest.fixture
async def rig(june_profiles: Profiles) -> AsyncIterator[Rig]:
    clock = SimClock("2024-06-10T10:00:00Z")
    box = HeartbeatBox(Twin(SiteParams(), june_profiles), clock)
    sim = await start_box_simulator(box)
    try:
        yield Rig(sim, box, clock)
    finally:
        await sim.stop()


# A real PostgreSQL cluster (once per session) and ``db_url``: each test on SQLite and PostgreSQL.
from tests.pg_server import db_url, pg_server  # noqa: E402, F401
